"""The prediction flow: ingest the latest data -> load the champion -> forecast each group of series
(mapped tasks) -> write the partition's parts as one unit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pandas as pd
from prefect import flow, unmapped

from rnn_model.config import ForecastConfig
from tasks.data import load_table
from tasks.outcome import alert_on_failure, finished, run_name
from tasks.prediction import (
    fallback_series,
    forecast_group,
    model_settings,
    publish_plot,
    report_fallback,
    write_partitions,
)
from tasks.registry import load_model
from tasks.sample import sample_data_path
from tasks.store import as_of_label, store_lock

from .params import AsOf, DataPath, ModelName, Partitions, Version, documented
from .partitioned import Validated, validate_groups
from .runners import TaskRunnerName, runs_on, with_task_runner

if TYPE_CHECKING:
    from rnn_model.bundle import Bundle

__all__ = ["predict", "predict_steps"]


@flow(
    name="predict",
    flow_run_name=run_name("predict"),
    log_prints=True,
    validate_parameters=True,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
@documented
def predict(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    model_version: Version = None,
    partitions: Partitions = 1,
    task_runner: TaskRunnerName = "thread",
    dask_address: Optional[str] = None,
) -> dict:
    """Forecast every series after its last observation (up to ``as_of``) with the champion (or
    ``model_version``) and write ``predictions/as_of=<date>/part-<k>.parquet``. Without a champion, or
    for series the model cannot cover, seasonal-naive forecasts are written and labelled
    ``seasonal_naive``. ``partitions``: groups of series validated and forecast in parallel on
    ``task_runner`` (``thread``, or ``dask`` at ``dask_address`` / a temporary local cluster)."""
    params = dict(locals())  # the parameters as given: run once more, with them, on the requested runner
    if not runs_on(task_runner, dask_address):
        return finished("predict", model_name, with_task_runner(predict, task_runner, dask_address)(**params))
    with store_lock(store):
        version, bundle = load_model(store, model_name, model_version)
        config, warnings = model_settings(bundle, version, config, strict=True)
        table = load_table(data or sample_data_path(store), config.data)
        validated = validate_groups(table, config, as_of, "predict", model_name, partitions)
        del table
        return finished(
            "predict", model_name, predict_steps(store, as_of, model_name, version, bundle, validated, warnings)
        )


def predict_steps(
    store: str,
    as_of: AsOf,
    model_name: str,
    version: str | None,
    bundle: Bundle | None,
    validated: Validated,
    warnings: list[str],
) -> dict:
    """Forecast the validated groups (mapped tasks) -> write the partition's parts as one unit -> report
    the fallback and plot, in the calling flow run (locked by the caller; ``pipeline`` runs them without
    a subflow)."""
    label = as_of_label(as_of)
    created_at = pd.Timestamp(dt.datetime.now(dt.timezone.utc))
    outcomes, report, resolved = validated.outcomes, validated.report, validated.resolved
    futures = forecast_group.map(
        validated.groups, unmapped(bundle), unmapped(version), unmapped(resolved), unmapped(label), unmapped(created_at)
    )
    parts = dict(f.result() for f in futures)
    warnings = [*warnings, report.stale] if report.stale else list(warnings)  # printed by the CLI with the others
    paths = write_partitions(parts, store, label)
    panels = [o.panel for o in outcomes if o.panel is not None]  # all of them: the groups with series left
    n_series = sum(p.n_series for p in panels)
    fallback = fallback_series(parts.values())
    report_fallback(fallback, n_series, bundle is not None, model_name)
    publish_plot(panels[0], parts[outcomes[0].index], model_name, label)
    return {
        "predictions": paths[0] if len(paths) == 1 else str(Path(paths[0]).parent),
        "parts": paths,
        "rows": sum(len(f) for f in parts.values()),
        "model_version": version,
        "fallback_series": fallback,
        "partitions": len(paths),
        "warnings": warnings,
        "stale_data": report.stale,
        "as_of": label,
        "data": report.span,
    }
