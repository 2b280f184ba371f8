"""The ``predict`` flow on its own: idempotent partitions and the seasonal-naive fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from flows.predict import predict

from ._support import (
    AS_OF,
    HORIZON,
    LAST_INPUT,
    N_SERIES,
    prediction_file,
    read_flow_run,
    run_api,
    sine_frame,
    small_config,
)


def test_rerunning_the_same_as_of_replaces_the_partition(store_copy, panel_file):
    path = prediction_file(store_copy)
    before = pq.read_table(path).to_pandas()

    result = predict(data=str(panel_file), store=str(store_copy), config=small_config(), as_of=AS_OF)
    assert result["predictions"] == str(path)

    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]
    after = pq.read_table(path).to_pandas()
    assert len(after) == len(before) == N_SERIES * HORIZON
    assert not after.duplicated(["unique_id", "ds"]).any()
    assert after["created_at"].min() > before["created_at"].max()  # the new run's rows, not the old ones
    key = ["unique_id", "ds"]
    np.testing.assert_allclose(after.sort_values(key)["y_hat"], before.sort_values(key)["y_hat"], rtol=1e-5)

    # the store read as one hive-partitioned data set has no duplicates either
    everything = pads.dataset(store_copy / "predictions", format="parquet", partitioning="hive").to_table().to_pandas()
    assert len(everything) == N_SERIES * HORIZON
    assert not everything.duplicated(["unique_id", "ds"]).any()


def test_no_champion_falls_back_to_seasonal_naive(tmp_path, panel_file):
    store = tmp_path / "empty-store"
    result = predict(data=str(panel_file), store=str(store), config=small_config(), as_of=AS_OF)
    assert result["model_version"] is None
    assert result["fallback_series"] == [f"s{i}" for i in range(N_SERIES)]
    assert result["rows"] == N_SERIES * HORIZON

    frame = pq.read_table(prediction_file(store)).to_pandas()
    assert set(frame["model_version"]) == {"seasonal_naive"}
    assert (frame.groupby("unique_id")["ds"].min() == LAST_INPUT + pd.Timedelta(hours=1)).all()
    # seasonal naive: each forecast repeats the value observed one season (24 h) earlier
    actual = pd.read_parquet(panel_file).set_index(["unique_id", "ds"])["y"]
    earlier = [actual[(uid, ds - pd.Timedelta(hours=24))] for uid, ds in zip(frame["unique_id"], frame["ds"])]
    np.testing.assert_allclose(frame["y_hat"], earlier, rtol=1e-6)
    assert not (store / "models").exists()  # predicting never creates models


def test_series_too_short_for_the_model_get_seasonal_naive(store_copy, tmp_path):
    # the trained panel plus a new series of 20 hours (the model needs 24 inputs), all ending at as_of
    short = sine_frame(n_series=1, length=20, start=str(LAST_INPUT - pd.Timedelta(hours=19)), prefix="short")
    data = tmp_path / "with-short.parquet"
    pd.concat([sine_frame(), short], ignore_index=True).to_parquet(data, index=False)

    state = predict(data=str(data), store=str(store_copy), config=small_config(), as_of=AS_OF, return_state=True)
    result = state.result()
    assert result["model_version"] == "v0001"
    assert result["fallback_series"] == ["short0"]
    assert result["rows"] == (N_SERIES + 1) * HORIZON
    rows = (N_SERIES + 1) * HORIZON
    assert state.message == f"wrote {rows} forecasts, model v0001; 1 series by seasonal naive", state.message
    flow_run = run_api(read_flow_run, state.state_details.flow_run_id)
    assert flow_run.name == f"predict-default-{AS_OF}" and {"model:default", "fallback"} <= set(flow_run.tags)

    frame = pq.read_table(prediction_file(store_copy)).to_pandas()
    labels = frame.groupby("unique_id")["model_version"].unique().map(list).to_dict()
    assert labels == {**{f"s{i}": ["v0001"] for i in range(N_SERIES)}, "short0": ["seasonal_naive"]}
    assert np.isfinite(frame["y_hat"]).all()
    assert (frame.groupby("unique_id")["ds"].min() == LAST_INPUT + pd.Timedelta(hours=1)).all()


def test_stale_data_is_said_in_the_result_and_the_run_list(store_copy, panel_file):
    """Issue 15.7: data that ends long before as_of (here 2026-01-15 vs 2026-12-02) is flagged."""
    state = predict(
        data=str(panel_file), store=str(store_copy), config=small_config(), as_of="2026-12-02", return_state=True
    )
    result = state.result()
    stale = [w for w in result["warnings"] if w.startswith("stale data")]
    assert stale and "ds=2026-01-15 23:00:00" in stale[0] and "as_of=2026-12-02" in stale[0], result["warnings"]
    assert "; stale data: the newest observation (ds=2026-01-15 23:00:00)" in state.message, state.message
    fresh = predict(data=str(panel_file), store=str(store_copy), config=small_config(), as_of=AS_OF)
    assert not any(w.startswith("stale data") for w in fresh["warnings"])
