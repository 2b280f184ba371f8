"""Validation over groups of series, shared by the flows: split, validate each group as a mapped task
(on the flow's task runner), agree on one frequency, and combine into one data-quality report."""

from __future__ import annotations

from prefect import get_run_logger, unmapped

from rnn_model.config import ForecastConfig
from rnn_model.partitions import PartitionOutcome, reconcile_freq
from rnn_model.schema import ValidationReport
from tasks.data import data_quality, split_data, validate_group

__all__ = ["validate_groups"]


def validate_groups(
    table, config: ForecastConfig, as_of, purpose: str, model_name: str, partitions: int, kind: str | None = None
) -> tuple[list, list[PartitionOutcome], ValidationReport, ForecastConfig]:
    """``(futures, outcomes, report, resolved)`` for the groups with series left. ``purpose`` (train or
    predict) sets what validation keeps; ``kind``, the flow's part of the data-quality artifact key
    (default: ``purpose``; a backtest validates as predict does).

    The futures hold each group's outcome where it was computed (a Dask worker keeps it in memory), so
    mapped tasks that take them do not ship the panels again. Raises on any data error of any group.
    """
    # one group: the whole table, no task (a task run costs API events; there is nothing to split)
    groups = split_data(table, config.data, partitions) if partitions > 1 else [(0, table)]
    futures = list(validate_group.map(groups, unmapped(config), unmapped(as_of), unmapped(purpose)))
    outcomes = [f.result() for f in futures]
    freq, redo = reconcile_freq(outcomes, config)
    if redo:
        seen = sorted({str(o.freq) for o in outcomes})
        get_run_logger().warning(
            "groups of series inferred different frequencies (%s); validating %d group(s) "
            "again with freq=%s (the most rows); pass freq (--freq) to choose",
            ", ".join(seen),
            len(redo),
            freq,
        )
        fixed = config.replace(data={"freq": freq})
        again = list(validate_group.map([groups[i] for i in redo], unmapped(fixed), unmapped(as_of), unmapped(purpose)))
        for i, future in zip(redo, again):
            futures[i], outcomes[i] = future, future.result()
    kept, report, resolved = data_quality(outcomes, kind or purpose, model_name, as_of)
    positions = [i for i, o in enumerate(outcomes) if o.panel is not None]
    return [futures[i] for i in positions], [outcomes[i] for i in positions], report, resolved
