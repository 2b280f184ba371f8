"""Ingest tasks: read the Parquet input (I/O, retried) and validate it (pure, reported in the UI)."""

from __future__ import annotations

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from rnn_model.config import DataConfig, ForecastConfig
from rnn_model.io import read_long_table
from rnn_model.panel import Panel
from rnn_model.schema import ValidationReport
from rnn_model.stages import validate

from ._options import COMPUTE, IO_RETRY, artifact_key

__all__ = ["load_table", "validate_data"]


@task(name="load-data", **IO_RETRY)
def load_table(data_path: str, data: DataConfig) -> pa.Table:
    table = read_long_table(data_path, data)
    get_run_logger().info("read %d rows from %s", table.num_rows, data_path)
    return table


@task(name="validate-data", **COMPUTE)
def validate_data(
    table: pa.Table, config: ForecastConfig, as_of: str | None, purpose: str, model_name: str
) -> tuple[Panel, ValidationReport, ForecastConfig]:
    logger = get_run_logger()
    try:
        panel, report, resolved = validate(table, config, as_of=as_of, purpose=purpose)
    except Exception as exc:
        report = getattr(exc, "report", None)
        if report is not None:  # the UI shows every problem, not only the message
            create_markdown_artifact(report.to_markdown(), key=artifact_key(model_name, "data-quality"),
                                     description="Data quality (failed)")
        raise
    create_markdown_artifact(report.to_markdown(), key=artifact_key(model_name, "data-quality"),
                             description=f"Data quality for {purpose}")
    for p in report.problems:
        if p.action not in ("info",):
            logger.warning("data: %s %s x%d (%s): %s", p.unique_id, p.problem, p.count, p.example, p.action)
    logger.info("panel: %d series, %d slots, freq %s; window input %d, horizon %d, season %d",
                panel.n_series, len(panel.values), panel.freq, resolved.window.input_size,
                resolved.window.horizon, resolved.data.season_length)
    return panel, report, resolved
