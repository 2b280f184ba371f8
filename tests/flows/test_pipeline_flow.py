"""The main job end to end: ``pipeline`` trains, registers, promotes and writes validated predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rnn_model.bundle import BUNDLE_FILES
from rnn_model.outputs import PREDICTION_COLUMNS

from ._support import (
    AS_OF,
    HORIZON,
    LAST_INPUT,
    N_SERIES,
    champion_of,
    child_flow_runs,
    decision_of,
    prediction_file,
    run_api,
    small_config,
    task_runs_of,
)


def test_pipeline_registers_and_promotes_v0001(trained):
    store, result = trained["store"], trained["result"]
    train = result["train"]
    assert train["version"] == "v0001"
    assert train["promoted"] is True and train["champion"] == "v0001"
    assert train["model_dir"] == f"{store}/models/default/v0001"

    bundle = store / "models" / "default" / "v0001"
    for name in (*BUNDLE_FILES, "decision.json"):
        assert (bundle / name).is_file() and (bundle / name).stat().st_size > 0, name
    assert not list((store / "models" / "default").glob(".incoming-*"))  # nothing half-registered

    decision = decision_of(store, "v0001")
    assert decision["promoted"] is True and decision["forced"] is False
    assert any(r.startswith("beats seasonal naive") for r in decision["reasons"]), decision
    assert champion_of(store) == "v0001"
    history = (store / "models" / "default" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["version"] for line in history] == ["v0001"]

    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["as_of"] == AS_OF and meta["n_series"] == N_SERIES and meta["champion_at_training"] is None
    # promoted, but not refitted (refit is off by default): the written model is the one the gate judged
    assert meta["refit"] is None and meta["best_epoch"] >= 1
    # it trained through the end of its validation horizons, before the test_windows held-out horizons
    config = json.loads((bundle / "config.json").read_text())
    assert config["window"]["horizon"] == HORIZON and config["data"]["freq"] == "h"
    assert config["model"]["members"] == 2 and config["window"]["test_windows"] == small_config().window.test_windows
    held_out = pd.Timedelta(hours=HORIZON * config["window"]["test_windows"])
    assert meta["trained_through"] == (LAST_INPUT - held_out).isoformat()
    # scaler="window" (the default): windows normalised by themselves, no choice to record
    assert meta["scaler"] is None and config["train"]["scaler"] == "window"
    # input_size set by hand, shorter than a week: long_season resolves to 0 (no week), nothing to report
    assert config["model"]["long_season"] == 0 and meta["long_season"] == ""
    kind = pq.read_schema(bundle / "scaler.parquet").metadata[b"kind"].decode()
    assert kind == "window"


def test_pipeline_is_one_flow_run_with_the_train_and_predict_tasks(trained):
    # no subflow runs: each would cost its own API round trips (see flows/pipeline.py)
    assert run_api(child_flow_runs, trained["flow_run_id"]) == []
    names = [r.name.rsplit("-", 1)[0] for r in run_api(task_runs_of, trained["flow_run_id"])]
    for name in ("train-model", "register-challenger", "promote", "load-model", "forecast", "write-predictions"):
        assert names.count(name) == 1, (name, sorted(names))
    # one ingest for both halves: one read, one validation per group (one group here), one report
    assert names.count("load-data") == names.count("validate-data") == names.count("data-quality") == 1
    assert names.count("sample-data") == 0 and "partition-data" not in names  # data given; one group: no split
    assert names.count("refit-model") == 0  # refit is off by default


def test_pipeline_metrics_compare_challenger_with_baselines(trained):
    metrics = {row["model"]: row for row in trained["result"]["train"]["metrics"]}
    assert {"challenger", "naive", "seasonal_naive"} <= set(metrics)
    assert "champion" not in metrics  # there was none to compare with
    for row in metrics.values():
        assert all(np.isfinite(row[k]) for k in ("mae", "rmse", "smape", "mase")), row
    assert metrics["challenger"]["mase"] < metrics["seasonal_naive"]["mase"]
    stored = json.loads((trained["store"] / "models" / "default" / "v0001" / "metrics.json").read_text())
    assert stored  # the held-out scores travel with the bundle


def test_pipeline_writes_the_prediction_partition(trained, panel_file):
    store, predicted = trained["store"], trained["result"]["predict"]
    path = prediction_file(store)
    assert predicted["predictions"] == str(path)
    assert predicted["rows"] == N_SERIES * HORIZON
    assert predicted["model_version"] == "v0001" and predicted["fallback_series"] == []
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]  # no temporary files left

    table = pq.read_table(path)
    assert table.column_names[: len(PREDICTION_COLUMNS)] == PREDICTION_COLUMNS
    assert table.column_names[len(PREDICTION_COLUMNS) :] == ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    frame = table.to_pandas()
    assert len(frame) == N_SERIES * HORIZON
    assert np.isfinite(frame["y_hat"].to_numpy(dtype=float)).all()
    assert set(frame["model_version"]) == {"v0001"} and set(frame["as_of"]) == {AS_OF}
    assert frame["created_at"].notna().all()
    assert not frame.duplicated(["unique_id", "ds"]).any()

    for uid, rows in frame.groupby("unique_id"):
        rows = rows.sort_values("horizon_step")
        assert rows["horizon_step"].tolist() == list(range(1, HORIZON + 1)), uid
        # forecasts start right after the last observation up to as_of, not after the end of the file
        expected = pd.date_range(LAST_INPUT + pd.Timedelta(hours=1), periods=HORIZON, freq="h")
        assert (pd.DatetimeIndex(rows["ds"]) == expected).all(), uid

    # and they are real forecasts: the file holds the actual values after as_of, the model tracks them
    actual = pd.read_parquet(panel_file)
    joined = frame.merge(actual, on=["unique_id", "ds"], how="left")
    assert joined["y"].notna().all()
    assert float(np.mean(np.abs(joined["y_hat"] - joined["y"]))) < 1.0  # amplitude is 4, noise sd 0.1


def test_one_ingest_trains_without_a_constant_series_and_still_forecasts_it(tmp_path):
    """The pipeline validates once: a constant series is left out of training (on_constant="drop") and
    reported once, and still forecast, by seasonal naive (the constant itself)."""
    from flows.pipeline import pipeline

    from ._support import artifacts_of_run_tree, sine_frame

    frame = sine_frame()
    flat = frame[frame["unique_id"] == "s0"].assign(unique_id="flat", y=7.5)
    data = tmp_path / "panel.parquet"
    pd.concat([frame, flat], ignore_index=True).to_parquet(data, index=False)
    state = pipeline(
        data=str(data), store=str(tmp_path / "store"), config=small_config(), as_of=AS_OF, return_state=True
    )
    assert state.is_completed(), state.message
    result = state.result()
    meta = json.loads((tmp_path / "store" / "models" / "default" / "v0001" / "meta.json").read_text())
    assert meta["n_series"] == N_SERIES  # trained without the constant series
    table = pq.read_table(prediction_file(tmp_path / "store")).to_pandas()
    flat_rows = table[table["unique_id"] == "flat"]
    assert len(flat_rows) == HORIZON and (flat_rows["y_hat"] == 7.5).all()
    assert set(flat_rows["model_version"]) == {"seasonal_naive"} and result["predict"]["fallback_series"] == ["flat"]
    run_id = state.state_details.flow_run_id
    names = [r.name.rsplit("-", 1)[0] for r in run_api(task_runs_of, run_id)]
    assert names.count("load-data") == names.count("data-quality") == 1
    (report,) = [a.data for a in run_api(artifacts_of_run_tree, run_id) if a.key == "default-pipeline-data-quality"]
    assert "| flat | constant |" in report and "(4 trained on)" in report


def test_a_champion_with_other_data_settings_gets_its_own_validation(store_copy, panel_file):
    """One ingest serves both halves only when the champion forecasts with the run's data settings; a
    champion trained with others (here on_gap) is given data validated its way."""
    from flows.pipeline import pipeline

    from ._support import WORSE

    config = small_config(data={"on_gap": "drop"}, **WORSE)  # a worse challenger: v0001 stays champion
    state = pipeline(
        data=str(panel_file), store=str(store_copy), config=config, as_of=AS_OF, margin=0.5, return_state=True
    )
    assert state.is_completed(), state.message
    result = state.result()
    assert result["train"]["promoted"] is False and result["predict"]["model_version"] == "v0001"
    names = [r.name.rsplit("-", 1)[0] for r in run_api(task_runs_of, state.state_details.flow_run_id)]
    assert names.count("load-data") == names.count("data-quality") == 2


def test_a_weekly_pattern_turns_the_week_on_and_the_stored_model_carries_it(tmp_path, prefect_harness):
    """The default input window on hourly data with a weekly cycle: data-quality decides the week
    (rnn_model.seasons), the bundle stores the decided integers, meta.json and the report say why."""
    from flows.pipeline import pipeline
    from rnn_model.sample import make_sample_panel

    data = tmp_path / "weekly.parquet"
    make_sample_panel(n_series=3, length=24 * 7 * 4, noise=0.05).to_parquet(data)
    cfg = small_config(window={"horizon": 24, "input_size": None}, model={"units": 8, "members": 1})
    store = tmp_path / "store"
    state = pipeline(
        data=str(data), store=str(store), config=cfg, as_of="2026-01-29", force_promote=True, return_state=True
    )
    assert state.is_completed(), state.message
    train = state.result()["train"]
    bundle = store / "models" / "default" / train["version"]
    config = json.loads((bundle / "config.json").read_text())
    assert (config["model"]["long_season"], config["model"]["rnn_steps"], config["window"]["input_size"]) == (
        168,
        48,
        168,
    )
    assert train["long_season"].startswith("the week (168 steps) used: weekly naive / daily naive MAE = ")
    assert json.loads((bundle / "meta.json").read_text())["long_season"] == train["long_season"]
    assert len(pd.read_parquet(state.result()["predict"]["predictions"])) == 3 * 24
