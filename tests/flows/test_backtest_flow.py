"""The ``backtest`` flow: rolling origins over the champion, no refit, a report in the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from flows.backtest import backtest

from ._support import AS_OF, HORIZON, LAST_INPUT, N_SERIES, champion_of


def test_backtest_reports_long_format_metrics(store_copy, panel_file):
    models_before = sorted(p.name for p in (store_copy / "models" / "default").iterdir())
    result = backtest(data=str(panel_file), store=str(store_copy), as_of=AS_OF, n_windows=2)

    assert result["model_version"] == "v0001"
    # metrics in long format: one record per model (the stored model and the two baselines)
    metrics = {row["model"]: row for row in result["metrics"]}
    assert set(metrics) == {"model", "naive", "seasonal_naive"}
    for row in metrics.values():
        assert all(np.isfinite(row[k]) for k in ("mae", "rmse", "smape", "mase")), row
    assert metrics["model"]["mase"] < metrics["seasonal_naive"]["mase"]

    folder = Path(result["report"])
    assert folder.parent == store_copy / "reports" and folder.name.startswith("backtest-v0001-")
    forecasts = pq.read_table(folder / "backtest.parquet").to_pandas()
    assert {"unique_id", "cutoff", "ds", "horizon_step", "y", "y_hat", "model"} <= set(forecasts.columns)
    # long forecasts: one row per model, series, origin and step
    assert len(forecasts) == 3 * N_SERIES * 2 * HORIZON
    assert not forecasts.duplicated(["model", "unique_id", "ds"]).any()
    assert (forecasts.groupby(["model", "unique_id"])["cutoff"].nunique() == 2).all()
    assert np.isfinite(forecasts["y_hat"].to_numpy(dtype=float)).all()
    assert pd.Timestamp(forecasts["ds"].max()) == LAST_INPUT  # the last origin ends at as_of
    saved = json.loads((folder / "metrics.json").read_text())
    assert {r["model"] for r in saved["overall"]} == set(metrics)

    # no refit: the registry is exactly as before
    assert sorted(p.name for p in (store_copy / "models" / "default").iterdir()) == models_before
    assert champion_of(store_copy) == "v0001"
