"""Business-day data without ``--freq`` through the real CLI (in-process, on the test harness): it used to be
inferred as daily, so weekends were gaps, training found no window and forecasts were dated on Saturdays."""

from __future__ import annotations

import json

import pandas as pd

from flows.cli import main
from rnn_model.sample import make_sample_panel

TINY = ["--horizon", "5", "--input-size", "10", "--epochs", "1", "--units", "8", "--seed", "1"]


def test_cli_infers_business_days_trains_and_forecasts_weekdays(tmp_path):
    data, store = tmp_path / "trading.parquet", tmp_path / "store"
    make_sample_panel(n_series=2, length=60, freq="B", start="2026-01-05").to_parquet(
        data, index=False
    )  # to 2026-03-27
    assert main(["run", "--data", str(data), "--store", str(store), "--force-promote", *TINY]) == 0
    config = json.loads((store / "models" / "default" / "v0001" / "config.json").read_text())
    assert config["data"]["freq"] == "B"
    (part,) = (store / "predictions").glob("as_of=*/part-0.parquet")
    ds = pd.DatetimeIndex(pd.read_parquet(part)["ds"])
    assert len(ds) == 10 and (ds.dayofweek < 5).all() and ds.min() == pd.Timestamp("2026-03-30")
