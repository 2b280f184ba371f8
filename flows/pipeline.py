"""The main job: retrain (and maybe promote), then predict with the champion. Also backfills."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

from prefect import flow

from rnn_model.config import ForecastConfig
from rnn_model.distribute import writes_results
from rnn_model.outputs import as_of_range
from rnn_model.registry import store_lock

from .params import AsOf, DataPath, Margin, ModelName, Partitions
from .predict import predict
from .runners import TaskRunnerName, dask_cluster, with_task_runner
from .train import train

__all__ = ["pipeline", "backfill"]


@flow(name="pipeline", log_prints=True, validate_parameters=True)
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
    """``train`` then ``predict`` as subflows, on the same data and ``as_of``; their mapped tasks run on
    ``task_runner`` (with ``dask`` and no address, one temporary local cluster serves both)."""
    chief = writes_results(config.train.strategy)  # multi_worker: non-chief workers only help train
    with store_lock(store) if chief else nullcontext(), dask_cluster(task_runner, dask_address) as address:
        scale = dict(partitions=partitions, task_runner=task_runner, dask_address=address)
        trained = with_task_runner(train, task_runner, address)(
            data=data, store=store, config=config, as_of=as_of, model_name=model_name, margin=margin,
            force_promote=force_promote, **scale)
        if not chief:
            return {"train": trained, "predict": None}
        predicted = with_task_runner(predict, task_runner, address)(
            data=data, store=store, config=config, as_of=as_of, model_name=model_name, **scale)
        return {"train": trained, "predict": predicted}


@flow(name="backfill", log_prints=True, validate_parameters=True)
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
        return [
            pipeline(data=data, store=store, config=config, as_of=as_of, model_name=model_name, margin=margin,
                     partitions=partitions, task_runner=task_runner, dask_address=address)
            for as_of in as_of_range(start, end, every)
        ]
