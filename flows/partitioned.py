"""Validation over groups of series, shared by the flows: split, validate each group as a mapped task
(on the flow's task runner), agree on one frequency, and combine into one data-quality report."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from prefect import get_run_logger, unmapped

from rnn_model.config import ForecastConfig
from tasks.data import data_quality, reconcile_freq, split_data, validate_group

if TYPE_CHECKING:
    from rnn_model.panel import Panel
    from rnn_model.partitions import PartitionOutcome
    from rnn_model.schema import ValidationReport

__all__ = ["validate_groups", "Validated"]


class Validated(NamedTuple):
    """One ingest's result. ``groups``: the futures holding each group's outcome where it was computed
    (a Dask worker keeps it in memory), so mapped tasks that take them do not ship the panels again;
    ``outcomes``: the groups with series left; ``train_panel``: with ``training``, the series to train on."""

    groups: list
    outcomes: list[PartitionOutcome]
    report: ValidationReport
    resolved: ForecastConfig
    train_panel: Panel | None


def validate_groups(
    table,
    config: ForecastConfig,
    as_of,
    purpose: str,
    model_name: str,
    partitions: int,
    kind: str | None = None,
    training: bool = False,
) -> Validated:
    """Validate the groups of series (mapped tasks) and report them together. ``purpose`` (train or
    predict) sets what validation keeps; ``kind``, the flow's part of the data-quality artifact key
    (default: ``purpose``); ``training`` (with ``purpose="predict"``): also the training panel, from the
    same validation (``pipeline``: one ingest for both halves); ``purpose="train"``: the groups merged into
    one training panel. Raises on any data error of any group.
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
    _, report, resolved, train_panel = data_quality(outcomes, kind or purpose, model_name, as_of, training)
    positions = [i for i, o in enumerate(outcomes) if o.panel is not None]
    return Validated([futures[i] for i in positions], [outcomes[i] for i in positions], report, resolved, train_panel)
