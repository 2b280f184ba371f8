"""Series partitions: split a long table into N groups of whole series, validate each group on its own,
and combine what comes back (reports, panels, backtests) into what one pass over all series gives.

A series belongs to group ``crc32(utf8(unique_id)) mod N`` (integer ids are hashed as their decimal
text): stable across processes, machines and runs, so a series always lands in the same group and the
same ``part-<k>.parquet`` for a given N. ``N = 1`` is the unpartitioned pipeline (nothing is copied).

Each group is validated with :func:`rnn_model.stages.validate`; problems do not raise there but come back
in a :class:`PartitionOutcome`, so that :func:`combine_outcomes` can report every problem of every group
at once, exactly as one pass would.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import ForecastConfig
from .errors import ConfigError, DataValidationError
from .frequency import TimeGrid
from .outputs import NOW
from .panel import Panel, freq_mismatch
from .schema import NO_ROWS_LEFT, Problem, ValidationReport

__all__ = [
    "PartitionOutcome",
    "partition_of_ids",
    "split_table",
    "validate_partition",
    "check_forecast_room",
    "check_not_coarser",
    "reconcile_freq",
    "combine_outcomes",
    "merge_reports",
    "merge_panels",
]


@dataclass
class PartitionOutcome:
    """One group's validation: the panel (None when no series is left in it or on error), the report,
    the config resolved for its freq, and the error (a DataValidationError/ConfigError) if any."""

    index: int
    panel: Panel | None
    report: ValidationReport | None
    config: ForecastConfig | None
    error: Exception | None = None
    n_rows: int = 0

    @property
    def freq(self) -> str | None:
        if self.config is not None:
            return self.config.data.freq
        return self.report.freq if self.report is not None else None


def partition_of_ids(ids, n: int) -> np.ndarray:
    """Group of each id (str or int): ``crc32(utf8(str(id))) % n`` as int64."""
    if n == 1:
        return np.zeros(len(ids), np.int64)
    return np.fromiter((zlib.crc32(str(i).encode()) % n for i in ids), np.int64, count=len(ids))


def split_table(table: pa.Table, id_col: str, n: int) -> list[tuple[int, pa.Table]]:
    """``[(k, rows of the series in group k)]`` for the non-empty groups, k ascending.

    Rows keep their order within a group. Rows with a null id go to group 0 (validation reports them).
    With ``n == 1``, or an id column of a type validation will refuse, the table is returned whole.
    """
    if n == 1 or table.num_rows == 0:
        return [(0, table)]
    col = table.column(id_col)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_integer(col.type):
        col = col.cast(pa.string())
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return [(0, table)]
    encoded = pc.dictionary_encode(col).combine_chunks()
    group_of_code = partition_of_ids(encoded.dictionary.to_pylist(), n)  # [n_ids]
    codes = encoded.indices
    if codes.null_count:
        codes = pc.fill_null(codes, 0)
        group = group_of_code[codes.to_numpy()] if len(group_of_code) else np.zeros(len(codes), np.int64)
        group[pc.is_null(encoded.indices).to_numpy(zero_copy_only=False)] = 0
    else:
        group = group_of_code[codes.to_numpy()]
    order = np.argsort(group, kind="stable")  # [n_rows] rows grouped, in their original order
    counts = np.bincount(group, minlength=n)
    ordered = table.take(pa.array(order))
    out, start = [], 0
    for k in range(n):
        if counts[k]:
            out.append((k, ordered.slice(start, counts[k])))
            start += counts[k]
    return out


def validate_partition(
    index: int, table: pa.Table, config: ForecastConfig, as_of=None, purpose: str = "train"
) -> PartitionOutcome:
    """:func:`rnn_model.stages.validate` on one group; data problems are returned, not raised."""
    from .stages import validate

    if as_of is None:  # the default cutoff is the moment of the run: future-dated rows are dropped
        as_of = NOW
    try:
        panel, report, resolved = validate(table, config, as_of=as_of, purpose=purpose)
        assert resolved.window.horizon is not None  # filled in by config.resolve
        check_forecast_room(panel, report, resolved.window.horizon)
    except DataValidationError as exc:
        if exc.report is None:
            raise
        return PartitionOutcome(index, None, exc.report, None, exc, table.num_rows)
    except ConfigError as exc:  # e.g. freq cannot be inferred from this group alone
        return PartitionOutcome(index, None, None, None, exc, table.num_rows)
    return PartitionOutcome(index, panel, report, resolved, None, table.num_rows)


def check_forecast_room(panel: Panel, report: ValidationReport, horizon: int) -> None:
    """Every series' ``horizon`` future steps must have representable ds: int64 for integer ds (which
    wrapped around to negative steps), datetime64[ns] up to 2262 for timestamps. Raises the report."""
    if panel.n_series == 0:
        return
    last = panel.first_tick + panel.lengths - 1  # [n_series] tick of each series' last slot
    worst = int(np.argmax(last))
    if panel.grid.has_room(int(last[worst]), horizon):
        return
    last_ds = panel.grid.to_ds(np.array([last[worst]]))[0]
    report.add(
        panel.ids[worst],
        "no_room",
        horizon,
        f"{horizon} steps of freq {panel.freq} after ds={last_ds} overflow the ds type",
        "error",
    )
    report.raise_if_errors()


def check_not_coarser(panels: list[Panel], report: ValidationReport) -> None:
    """No two observed slots of any series, in any group, one grid step apart: the data is coarser than
    the freq (weekly data on a stored daily model's grid would be six filled gaps a week and forecasts a
    day apart). Checked over all groups together, as an inferred freq (the most common step) is never
    coarser than the data: only a declared or a stored model's freq can be."""
    steps = []
    for panel in panels:
        if panel is None or panel.n_series == 0:
            continue
        both = panel.observed[1:] & panel.observed[:-1]  # [n_slots - 1] consecutive observed slots
        both[panel.offsets[1:-1] - 1] = False  # not across a series boundary
        if both.any():
            return
        slot = np.flatnonzero(panel.observed)
        series = np.searchsorted(panel.offsets, slot, side="right") - 1  # [n_observed] series of each slot
        moves = np.diff(slot)[np.diff(series) == 0]
        if len(moves):
            steps.append(int(np.gcd.reduce(moves)))
    if not steps or int(np.gcd.reduce(steps)) < 2:
        return
    step = int(np.gcd.reduce(steps))
    frames = [p.to_frame() for p in panels if p is not None and p.n_series]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    codes = pd.factorize(frame["unique_id"])[0]  # rows are grouped by series, in time order
    freq = panels[0].freq
    freq_mismatch(report, frame["ds"].to_numpy(), codes, freq, f"every step is a multiple of {step} x {freq}")
    report.add(
        "*", "freq_mismatch", len(frame), f"every step is a multiple of {step} x {freq}, not freq={freq}", "error"
    )
    report.raise_if_errors()


def reconcile_freq(outcomes: list[PartitionOutcome], config: ForecastConfig) -> tuple[str | None, list[int]]:
    """When the freq was inferred per group and the groups disagree (or some could not infer one), the
    freq to validate again with, and the positions in ``outcomes`` to redo. ``(None, [])``: nothing to do.

    The chosen freq is the one inferred for the most rows (ties: the first group's).
    """
    if config.data.freq is not None or len(outcomes) < 2:
        return None, []
    votes: Counter = Counter()
    for o in outcomes:
        if o.freq is not None:
            votes[o.freq] += o.n_rows
    if not votes:
        return None, []
    chosen = max(votes, key=lambda f: (votes[f], -next(i for i, o in enumerate(outcomes) if o.freq == f)))
    redo = [i for i, o in enumerate(outcomes) if o.freq != chosen]
    return (chosen, redo) if redo else (None, [])


def merge_reports(reports: list[ValidationReport]) -> ValidationReport:
    """One report for all groups: counts summed; table-wide problems (``*``) merged by kind; series
    problems grouped by kind in the order they first appear, then by series id."""
    merged = ValidationReport(
        n_rows_in=sum(r.n_rows_in for r in reports),
        n_series_in=sum(r.n_series_in for r in reports),
        n_series_out=sum(r.n_series_out for r in reports),
        freq=next((r.freq for r in reports if r.freq), None),
    )
    table_wide: dict[str, dict[str, Problem]] = {}  # kind -> action -> problem (counts summed)
    series: dict[str, list[Problem]] = {}  # kind -> problems of single series
    for r in reports:
        for p in r.problems:
            table_wide.setdefault(p.problem, {})
            series.setdefault(p.problem, [])
            if p.unique_id != "*":
                series[p.problem].append(p)
            elif p.action in table_wide[p.problem]:
                q = table_wide[p.problem][p.action]
                table_wide[p.problem][p.action] = dataclasses.replace(q, count=q.count + p.count)
            else:
                table_wide[p.problem][p.action] = p
    for kind in table_wide:  # kinds in the order they first appear
        merged.problems.extend(table_wide[kind].values())
        merged.problems.extend(sorted(series[kind], key=lambda p: p.unique_id))
    return merged


def combine_outcomes(
    outcomes: list[PartitionOutcome],
) -> tuple[list[PartitionOutcome], ValidationReport, ForecastConfig]:
    """The groups' outcomes -> (groups with series left, one report, the resolved config).

    Raises what one pass would: the original error for a single group; otherwise one
    :class:`DataValidationError` listing every problem of every group (a group whose series were all
    dropped is not an error while other groups have series left).
    """
    if len(outcomes) == 1 and outcomes[0].error is not None:
        raise outcomes[0].error
    config_errors = [o.error for o in outcomes if isinstance(o.error, ConfigError)]
    if config_errors and len(config_errors) == len(outcomes):
        raise config_errors[0]
    reports = []
    for o in outcomes:
        if isinstance(o.error, ConfigError):  # after reconcile_freq this is not a freq problem: raise it
            raise o.error
        report = o.report
        assert report is not None  # only a ConfigError outcome has none, raised above
        if o.error is not None:
            report = dataclasses.replace(report, problems=[p for p in report.problems if p.problem != "no_series_left"])
        reports.append(report)
    merged = merge_reports(reports) if len(reports) > 1 else reports[0]
    kept = [o for o in outcomes if o.panel is not None]
    if not merged.errors and not kept:
        every_row_gone = all(
            o.report is not None  # always (asserted above)
            and any(p.problem == "no_series_left" and p.cause == NO_ROWS_LEFT for p in o.report.problems)
            for o in outcomes
        )
        if every_row_gone:
            merged.add("*", "no_series_left", 0, "no rows left after as_of/null filtering", "error", NO_ROWS_LEFT)
        else:
            merged.all_series_dropped(merged.n_series_in)
    merged.raise_if_errors()
    check_not_coarser([o.panel for o in kept if o.panel is not None], merged)  # all of kept
    configs = {o.config for o in kept}
    if len(configs) != 1:  # reconcile_freq ran first, so this is a bug, not a data problem
        raise RuntimeError(f"partitions resolved to different configurations: {configs}")
    resolved = kept[0].config
    assert resolved is not None  # an outcome with a panel has its config
    return kept, merged, resolved


def merge_panels(panels: list[Panel]) -> Panel:
    """One panel from the groups' panels: series in sorted id order on one grid, the same arrays one
    :func:`rnn_model.panel.build_panel` pass over all rows gives (when the groups share the grid's phase).
    """
    if len(panels) == 1:
        return panels[0]
    freq = panels[0].grid.freq
    if any(p.grid.freq != freq for p in panels):
        raise RuntimeError("cannot merge panels of different frequencies")
    grid = TimeGrid(freq, min(p.grid.anchor for p in panels))
    first_tick = []
    for p in panels:
        ticks, on_grid = grid.to_ticks(p.grid.to_ds(p.first_tick))
        if not np.all(on_grid):
            bad = p.ids[np.flatnonzero(~np.asarray(on_grid))[0]]
            report = ValidationReport(freq=freq)
            report.add(bad, "off_grid", 1, f"series {bad} is on another phase of the {freq} grid than others", "error")
            raise DataValidationError(
                f"invalid input data: off_grid in {bad}: its timestamps are on another phase of the {freq} grid "
                "than other partitions' series; align timestamps to freq (run with partitions=1 to see every "
                "off-grid row)",
                report,
            )
        first_tick.append(np.asarray(ticks, np.int64))
    ids = np.concatenate([p.ids for p in panels])
    order = np.argsort(ids.astype(str), kind="stable")  # [n_series] as build_panel orders its codes
    lengths = np.concatenate([p.lengths for p in panels]).astype(np.int64)
    base = np.cumsum([0] + [len(p.values) for p in panels])[:-1]
    starts = np.concatenate([p.offsets[:-1] + b for p, b in zip(panels, base)])  # [n_series] in the concat
    new_lengths = lengths[order]
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(new_lengths, out=offsets[1:])
    gather = np.repeat(starts[order] - offsets[:-1], new_lengths) + np.arange(offsets[-1])  # [n_slots]
    return Panel(
        ids=ids[order],
        values=np.concatenate([p.values for p in panels])[gather],
        observed=np.concatenate([p.observed for p in panels])[gather],
        offsets=offsets,
        first_tick=np.concatenate(first_tick)[order],
        grid=grid,
    )
