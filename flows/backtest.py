"""Backtest a stored model (the champion by default) over rolling origins, without refitting; each group
of series is backtested by a mapped task and the groups are scored together."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Optional

from prefect import flow, unmapped
from pydantic import Field

from rnn_model.config import ForecastConfig
from rnn_model.errors import DataValidationError, RegistryError
from tasks.data import load_table
from tasks.evaluation import backtest_group, score_backtest, write_report
from tasks.outcome import alert_on_failure, finished, run_name
from tasks.prediction import model_settings
from tasks.registry import load_model
from tasks.sample import sample_data_path
from tasks.store import as_of_label

from .params import AsOf, DataPath, ModelName, Partitions, Version, documented
from .partitioned import validate_groups
from .runners import TaskRunnerName, runs_on, with_task_runner

__all__ = ["backtest"]


@flow(
    name="backtest",
    flow_run_name=run_name("backtest"),
    log_prints=True,
    validate_parameters=True,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
@documented
def backtest(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    model_version: Version = None,
    n_windows: Annotated[int, Field(ge=1, le=1000)] = 4,
    partitions: Partitions = 1,
    task_runner: TaskRunnerName = "thread",
    dask_address: Optional[str] = None,
) -> dict:
    """Score the champion (or ``model_version``) on the last ``n_windows`` horizons of every series, beside
    naive and seasonal naive, and write ``<store>/reports/<run>/`` (backtest.parquet, metrics.json)."""
    params = dict(locals())  # the parameters as given: run once more, with them, on the requested runner
    if not runs_on(task_runner, dask_address):
        return finished("backtest", model_name, with_task_runner(backtest, task_runner, dask_address)(**params))
    version, bundle = load_model(store, model_name, model_version)
    if bundle is None:
        raise RegistryError(f"no champion for model {model_name!r} in {store}; run `rnn-forecast train` first")
    config, _ = model_settings(bundle, version, config, strict=True)  # a flag the model would ignore: refused
    table = load_table(data or sample_data_path(store), config.data)
    validated = validate_groups(table, config, as_of, "predict", model_name, partitions, "backtest")
    del table
    results = [f.result() for f in backtest_group.map(validated.groups, unmapped(bundle), unmapped(n_windows))]
    check_backtest_windows(results, n_windows)  # no complete window: an error, not an empty report
    forecasts, scores = score_backtest(results, n_windows, model_name)
    run_name = f"backtest-{version}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    folder = write_report(forecasts, scores, store, run_name)
    return finished(
        "backtest",
        model_name,
        {
            "report": folder,
            "model_version": version,
            "n_windows": n_windows,
            "metrics": scores.overall.reset_index().to_dict("records"),
            "as_of": as_of_label(as_of),
            "stale_data": validated.report.stale,
            "data": validated.report.span,
        },
    )


def check_backtest_windows(results: list, n_windows: int) -> None:
    """A backtest without one complete window (input and targets fully observed) scores nothing: an
    error naming the fix, before an empty report is written."""
    if any(len(forecasts) for forecasts, _ in results):
        return
    raise DataValidationError(
        f"the backtest has no complete window: no series has input_size + horizon fully observed points before "
        f"each of its last {n_windows} horizons; supply more history, or backtest a model with a shorter "
        "input_size/horizon"
    )
