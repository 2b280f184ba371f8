"""Scale-out for real: groups of series as mapped tasks on a local Dask cluster (two worker processes)
give exactly the thread pool's predictions; partitioned input (a series split across files, a file://
URL); re-running with another number of partitions replaces the whole set of part files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import distributed
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from flows.backtest import backtest
from flows.cli import main
from flows.pipeline import pipeline
from flows.predict import predict
from rnn_model.config import DataConfig
from rnn_model.io import read_long_table
from rnn_model.partitions import partition_of_ids
from rnn_model.stages import validate

from ._support import AS_OF, HORIZON, child_flow_runs, run_api, sine_frame, small_config, task_runs_of

N_SERIES = 16
PARTITIONS = 4
KEY = ["unique_id", "ds", "horizon_step"]


@pytest.fixture(scope="module")
def split_data(tmp_path_factory) -> Path:
    """16 series, each split across two files (later half first), as a directory."""
    frame = sine_frame(n_series=N_SERIES)
    assert len(set(partition_of_ids(frame.unique_id.unique(), PARTITIONS))) == PARTITIONS  # 4 non-empty groups
    folder = tmp_path_factory.mktemp("scaling") / "panel"
    folder.mkdir()
    late = frame.ds >= pd.Timestamp("2026-01-08")
    frame[late].to_parquet(folder / "part-0.parquet", index=False)
    frame[~late].to_parquet(folder / "part-1.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def partitioned_store(tmp_path_factory, split_data) -> dict:
    """Train and predict with 4 groups on the thread pool, reading the data through a file:// URL."""
    store = tmp_path_factory.mktemp("scaling-store") / "store"
    result = pipeline(
        data=split_data.as_uri(), store=str(store), config=small_config(), as_of=AS_OF, partitions=PARTITIONS
    )
    return {"store": store, "result": result}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


def _predictions(store: Path) -> pd.DataFrame:
    frame = pads.dataset(store / "predictions", format="parquet", partitioning="hive").to_table().to_pandas()
    return frame.sort_values(KEY).reset_index(drop=True)


def test_partitioned_training_uses_the_single_pass_panel(partitioned_store, split_data):
    result = partitioned_store["result"]
    assert result["train"]["promoted"] and result["train"]["version"] == "v0001"
    meta = (partitioned_store["store"] / "models" / "default" / "v0001" / "meta.json").read_text()
    cfg = small_config()
    panel, _, _ = validate(read_long_table(split_data, DataConfig()), cfg, as_of=AS_OF)  # one pass, one group
    assert panel.fingerprint() in meta and '"partitions": 4' in meta

    predicted = result["predict"]
    assert predicted["partitions"] == PARTITIONS and predicted["rows"] == N_SERIES * HORIZON
    folder = partitioned_store["store"] / "predictions" / f"as_of={AS_OF}"
    assert predicted["predictions"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [f"part-{k}.parquet" for k in range(PARTITIONS)]
    frame = _predictions(partitioned_store["store"])
    assert len(frame) == N_SERIES * HORIZON and not frame.duplicated(["unique_id", "ds"]).any()
    assert set(frame.model_version) == {"v0001"} and np.isfinite(frame.y_hat).all()


def test_partitioned_backtest_scores_every_series_as_one_pass(partitioned_store, split_data):
    store = str(partitioned_store["store"])
    results, reports = [], []
    for partitions in (1, PARTITIONS):
        result = backtest(
            data=str(split_data), store=store, config=small_config(), as_of=AS_OF, n_windows=2, partitions=partitions
        )
        results.append({r["model"]: [r[m] for m in ("mae", "rmse", "smape", "mase")] for r in result["metrics"]})
        frame = pd.read_parquet(Path(result["report"]) / "backtest.parquet")
        reports.append(frame.sort_values(["model", "unique_id", "ds"]).reset_index(drop=True))
    one, four = results
    assert one.keys() == four.keys() == {"model", "naive", "seasonal_naive"}
    for model in one:
        np.testing.assert_allclose(four[model], one[model], rtol=1e-6)
    assert len(reports[0]) == len(reports[1]) == 3 * N_SERIES * 2 * HORIZON
    np.testing.assert_allclose(reports[1].y_hat, reports[0].y_hat, rtol=1e-5)


def test_dask_cluster_predictions_equal_the_thread_pool(partitioned_store, split_data, cluster, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(partitioned_store["store"], store)
    thread = _predictions(store)
    # As a deployment would: the runner named by parameters only. The flow (decorated with the thread
    # pool) runs itself once more as a subflow on the Dask runner.
    state = predict(
        data=str(split_data),
        store=str(store),
        config=small_config(),
        as_of=AS_OF,
        partitions=PARTITIONS,
        task_runner="dask",
        dask_address=cluster.scheduler_address,
        return_state=True,
    )
    assert state.is_completed(), state.message
    dask = _predictions(store)
    assert dask.created_at.min() > thread.created_at.max()  # rewritten by the Dask run
    cols = [c for c in dask.columns if c != "created_at"]
    pd.testing.assert_frame_equal(dask[cols], thread[cols])  # bit for bit

    # the mapped tasks ran on the workers and reported to this session's Prefect API
    (child,) = run_api(child_flow_runs, state.state_details.flow_run_id)
    assert child.state.is_completed()
    runs = run_api(task_runs_of, child.id)
    names = [r.name.rsplit("-", 1)[0] for r in runs]
    assert names.count("forecast") == PARTITIONS and names.count("validate-data") == PARTITIONS
    assert all(r.state.is_completed() for r in runs)
    assert len(cluster.workers) == 2
    with distributed.Client(cluster) as client:  # the forecasts were computed in the worker processes
        assert any(client.run(lambda: "tasks.prediction" in sys.modules).values())

    # the CLI (flow.with_options(task_runner=...)) on the same cluster; then a thread-pool run without
    # partitions: the 4 parts are replaced by one
    assert (
        main(
            [
                "predict",
                "--data",
                split_data.as_uri(),
                "--store",
                str(store),
                "--as-of",
                AS_OF,
                "--partitions",
                str(PARTITIONS),
                "--task-runner",
                "dask",
                "--dask-address",
                cluster.scheduler_address,
            ]
        )
        == 0
    )
    pd.testing.assert_frame_equal(_predictions(store)[cols], thread[cols])
    assert predict(data=str(split_data), store=str(store), config=small_config(), as_of=AS_OF)["partitions"] == 1
    folder = store / "predictions" / f"as_of={AS_OF}"
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    assert [p.name for p in folder.parent.iterdir()] == [f"as_of={AS_OF}"]  # no temporaries left
    single = _predictions(store)
    assert len(single) == len(thread) and not single.duplicated(["unique_id", "ds"]).any()
    np.testing.assert_allclose(single.y_hat, thread.y_hat, rtol=1e-5)


def test_pipeline_asked_for_dask_runs_itself_once_on_the_cluster(partitioned_store, split_data, cluster, tmp_path):
    # as a deployment of the pipeline would: the runner named by parameters only
    store = tmp_path / "store"
    state = pipeline(
        data=split_data.as_uri(),
        store=str(store),
        config=small_config(),
        as_of=AS_OF,
        partitions=PARTITIONS,
        task_runner="dask",
        dask_address=cluster.scheduler_address,
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert state.result()["train"]["version"] == "v0001"
    (child,) = run_api(child_flow_runs, state.state_details.flow_run_id)  # the pipeline, on the Dask runner
    assert run_api(child_flow_runs, child.id) == []  # train and predict ran in it, not as subflows
    names = [r.name.rsplit("-", 1)[0] for r in run_api(task_runs_of, child.id)]
    assert names.count("validate-data") == PARTITIONS and names.count("forecast") == PARTITIONS  # one ingest
    assert names.count("train-model") == 1
    thread, dask = _predictions(partitioned_store["store"]), _predictions(store)
    cols = [c for c in dask.columns if c != "created_at"]
    pd.testing.assert_frame_equal(dask[cols], thread[cols])  # same data, seed and groups: bit for bit


def test_runner_choices_are_refused_clearly_before_anything_runs(monkeypatch, tmp_path, capsys, split_data):
    store = tmp_path / "store"
    monkeypatch.setitem(sys.modules, "prefect_dask", None)  # as if the [dask] extra were not installed
    assert main(["predict", "--data", str(split_data), "--store", str(store), "--task-runner", "dask"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: task_runner='dask' needs prefect-dask, which is not installed: "
        "pip install 'rnn-forecast-pipeline[dask]' (prefect-dask)"
    )
    monkeypatch.undo()
    assert main(["predict", "--data", str(split_data), "--store", str(store), "--dask-address", "tcp://h:8786"]) == 2
    assert "dask_address is set but task_runner='thread'" in capsys.readouterr().err
    assert main(["predict", "--data", str(split_data), "--store", str(store), "--partitions", "0"]) == 2
    assert "partitions=0 is invalid" in capsys.readouterr().err
    assert not store.exists()
