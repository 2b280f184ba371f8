"""The main job: retrain (and maybe promote), then predict with the champion. Also backfills."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

from prefect import flow

from rnn_model.config import ForecastConfig
from tasks.data import load_table, same_validation
from tasks.outcome import alert_on_failure, finished, run_name
from tasks.prediction import model_settings
from tasks.registry import load_model
from tasks.sample import sample_data_path
from tasks.store import as_of_range, store_lock, writes_results
from tasks.training import prepare_strategy

from .params import AsOf, DataPath, Margin, ModelName, Partitions, documented
from .partitioned import validate_groups
from .predict import predict_steps
from .runners import TaskRunnerName, dask_cluster, runs_on, with_task_runner
from .train import train_steps

__all__ = ["pipeline", "backfill"]


@flow(
    name="pipeline",
    flow_run_name=run_name("pipeline"),
    log_prints=True,
    validate_parameters=True,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
@documented
def pipeline(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    margin: Margin = 0.01,
    force_promote: bool = False,
    partitions: Partitions = 1,
    task_runner: TaskRunnerName = "thread",
    dask_address: Optional[str] = None,
) -> dict:
    """The ``train`` flow's steps then the ``predict`` flow's, in this one flow run, on the same data and
    ``as_of``, read and validated once; their mapped tasks run on ``task_runner`` (with ``dask`` and no address, one temporary local
    cluster serves both). Not as subflows: each subflow run costs its own API round trips (create, three
    state changes, a tracking task run), up to seconds on a local SQLite-backed API."""
    params = dict(locals())  # the parameters as given: run once more, with them, on the requested runner
    with dask_cluster(task_runner, dask_address) as address:
        if not runs_on(task_runner, address):  # a deployment asked for another runner: once more, on it
            return finished(
                "pipeline",
                model_name,
                with_task_runner(pipeline, task_runner, address)(**{**params, "dask_address": address}),
            )
        chief = writes_results(config.train.strategy)  # multi_worker: non-chief workers only help train
        with store_lock(store) if chief else nullcontext():  # one lock for both halves
            if config.train.strategy != "default":
                prepare_strategy(config.train.strategy)  # before anything initialises TensorFlow (multi_worker)
            path = data or sample_data_path(store)
            table = load_table(path, config.data)
            # One ingest: validated for prediction (short and constant series kept: they are forecast),
            # and the series to train on taken from the same validation, in the same report.
            validated = validate_groups(table, config, as_of, "predict", model_name, partitions, "pipeline", True)
            del table
            assert validated.train_panel is not None  # validated with training=True
            trained = train_steps(
                path,
                store,
                validated.train_panel,
                validated,
                as_of,
                model_name,
                margin,
                force_promote,
                partitions,
                chief,
            )
            if not chief:
                return finished("pipeline", model_name, {"train": trained, "predict": None})
            version, bundle = load_model(store, model_name, None)
            settings, warnings = model_settings(bundle, version, config, strict=False)
            if not same_validation(settings, validated.resolved):  # a champion trained with other data settings
                table = load_table(path, settings.data)
                validated = validate_groups(table, settings, as_of, "predict", model_name, partitions)
                del table
            predicted = predict_steps(store, as_of, model_name, version, bundle, validated, warnings)
            return finished("pipeline", model_name, {"train": trained, "predict": predicted})


@flow(
    name="backfill",
    flow_run_name=run_name("backfill"),
    log_prints=True,
    validate_parameters=True,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
@documented
def backfill(
    start: str,
    end: str,
    every: str = "D",
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    model_name: ModelName = "default",
    margin: Margin = 0.01,
    partitions: Partitions = 1,
    task_runner: TaskRunnerName = "thread",
    dask_address: Optional[str] = None,
) -> list[dict]:
    """Run ``pipeline`` for each ``as_of`` from ``start`` to ``end`` (every ``every``), oldest first."""
    with dask_cluster(task_runner, dask_address) as address:
        return finished(
            "backfill",
            model_name,
            [
                pipeline(
                    data=data,
                    store=store,
                    config=config,
                    as_of=as_of,
                    model_name=model_name,
                    margin=margin,
                    partitions=partitions,
                    task_runner=task_runner,
                    dask_address=address,
                )
                for as_of in as_of_range(start, end, every)
            ],
        )
