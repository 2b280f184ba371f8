"""Ingest tasks: read the Parquet input (I/O, retried), split it into groups of series, validate each
group (a mapped task: in parallel on the flow's task runner), and combine the groups' reports into one
data-quality report (in the UI) before anything expensive runs.

Also the plain steps the flows take between those tasks, no task runs of their own (pure and cheap, or
run once on data already in the flow's process): ``reconcile_freq`` (one freq for every group),
``merge_panels`` (the groups onto one grid for training) and ``same_validation`` (whether data validated
with one config serves another)."""

from __future__ import annotations

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from rnn_model.config import DataConfig, ForecastConfig
from rnn_model.io import read_long_table
from rnn_model.panel import Panel, data_span
from rnn_model.partitions import (
    PartitionOutcome,
    combine_outcomes,
    merge_panels,
    reconcile_freq,
    split_table,
    validate_partition,
)
from rnn_model.prediction import stale_data
from rnn_model.schema import ValidationReport
from rnn_model.seasons import choose_long_season, describe_choice
from rnn_model.stages import same_validation, training_subset

from ._options import COMPUTE, IO_RETRY, artifact_key

__all__ = [
    "load_table",
    "split_data",
    "validate_group",
    "data_quality",
    "reconcile_freq",
    "merge_panels",
    "same_validation",
]


@task(name="load-data", **IO_RETRY)
def load_table(data_path: str, data: DataConfig) -> pa.Table:
    table = read_long_table(data_path, data)
    get_run_logger().info("read %d rows from %s", table.num_rows, data_path)
    return table


@task(name="partition-data", **COMPUTE)
def split_data(table: pa.Table, data: DataConfig, partitions: int) -> list[tuple[int, pa.Table]]:
    """Whole series per group: ``crc32(unique_id) mod partitions`` (see rnn_model.partitions)."""
    groups = split_table(table, data.id_col, partitions)
    if partitions > 1:
        sizes = ", ".join(f"{k}: {t.num_rows}" for k, t in groups)
        get_run_logger().info(
            "%d rows in %d non-empty groups of series (rows per group: %s)", table.num_rows, len(groups), sizes
        )
    return groups


@task(name="validate-data", **COMPUTE)
def validate_group(
    group: tuple[int, pa.Table], config: ForecastConfig, as_of: str | None, purpose: str
) -> PartitionOutcome:
    """Validate one group; data problems come back in the outcome (reported together by data_quality)."""
    index, table = group
    outcome = validate_partition(index, table, config, as_of=as_of, purpose=purpose)
    if outcome.panel is not None:
        get_run_logger().info(
            "group %d: %d rows -> %d series, %d slots",
            index,
            table.num_rows,
            outcome.panel.n_series,
            len(outcome.panel.values),
        )
    return outcome


@task(name="data-quality", **COMPUTE)
def data_quality(
    outcomes: list[PartitionOutcome], purpose: str, model_name: str, as_of: str | None = None, training: bool = False
) -> tuple[list[PartitionOutcome], ValidationReport, ForecastConfig, Panel | None]:
    """Every problem of every group in one report (log and UI artifact); raises if any is an error.
    Stale data (the newest observation more than a horizon before ``as_of``) is a warning in it
    (``report.stale``); ``report.span`` says what the kept series cover.

    ``training``: the groups were validated for prediction and a model trains on them too (``pipeline``):
    the series it can train on (:func:`rnn_model.stages.training_subset`) are returned as one panel, and
    what training leaves out is in the same report.

    With ``training`` or ``purpose="train"``, ``model.long_season=None`` is resolved on the training
    panel (:func:`rnn_model.seasons.choose_long_season`; the report says what was chosen and why).

    Returns the groups with series left, the report, the config resolved for the data (freq and second
    season), and the training panel (None unless ``training`` or ``purpose="train"``).
    """
    logger = get_run_logger()
    try:
        kept, report, resolved = combine_outcomes(outcomes)
        panels = [o.panel for o in kept if o.panel is not None]  # all of kept: the groups with series left
        assert resolved.window.horizon is not None  # filled in by config.resolve
        report.stale = stale_data(panels, as_of, resolved.window.horizon)
        report.span = data_span(panels)
        train_panel = None
        if training or purpose == "train":  # the series a model trains on, and its second season from them
            train_panel = merge_panels(panels)
            resolved, choice = choose_long_season(train_panel, resolved)
            report.long_season = describe_choice(choice)
            if training:
                train_panel = training_subset(train_panel, report, resolved)
    except Exception as exc:
        failed = getattr(exc, "report", None)
        if failed is not None:  # the UI shows every problem, not only the message
            create_markdown_artifact(
                failed.to_markdown(),
                key=artifact_key(model_name, purpose, "data-quality"),
                description="Data quality (failed)",
            )
        raise
    create_markdown_artifact(
        report.to_markdown(),
        key=artifact_key(model_name, purpose, "data-quality"),
        description=f"Data quality for {purpose}",
    )
    for p in report.problems:
        if p.action not in ("info",):
            logger.warning("data: %s %s x%d (%s): %s", p.unique_id, p.problem, p.count, p.example, p.action)
    if report.stale:
        logger.warning(report.stale)
    if report.long_season:
        logger.info("second season: %s", report.long_season)
    n_series = sum(p.n_series for p in panels)
    n_slots = sum(len(p.values) for p in panels)
    logger.info(
        "panel: %d series, %d slots, freq %s; window input %d, horizon %d, season %d%s",
        n_series,
        n_slots,
        resolved.data.freq,
        resolved.window.input_size,
        resolved.window.horizon,
        resolved.data.season_length,
        f"; {len(kept)} groups" if len(outcomes) > 1 else "",
    )
    if train_panel is not None and train_panel.n_series != n_series:
        logger.info(
            "training on %d of the %d series (the others are forecast by seasonal naive)",
            train_panel.n_series,
            n_series,
        )
    return kept, report, resolved, train_panel
