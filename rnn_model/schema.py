"""The data contract and its validation report.

Long format, one row per (series, time): ``unique_id`` (string), ``ds`` (timestamp or integer step),
``y`` (number). Validation runs once, at ingest (:func:`rnn_model.panel.build_panel`), and collects
every problem before deciding, so one run tells the user everything that is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from .errors import DataValidationError

__all__ = ["PROBLEMS", "Problem", "ProblemSpec", "ValidationReport", "escape_markdown"]


class ProblemSpec(NamedTuple):
    """One row of the catalogue."""

    policy: str | None  # the DataConfig field holding its policy; None: always fatal, or information
    fix: str  # how to fix it: the advice the error message gives
    remedy: str  # the fix without its policy alternative ('or set on_x=...'): how to keep the data
    row_level: bool  # policy 'drop' removes the flagged rows, not their series


def _problem(policy: str | None, remedy: str, relax: str = "", row_level: bool = False) -> ProblemSpec:
    return ProblemSpec(policy, f"{remedy}, or {relax}" if relax else remedy, remedy, row_level)


# Every kind of problem a report can hold. The rows with a policy are the checks of
# rnn_model.panel.build_panel, which runs them in this order, so the order matters: a row a check drops
# or sets aside is not seen by the checks below it. Null ids/ds come first (such a row belongs to no
# series and has no place on the grid); off-grid rows dropped are not duplicates; a duplicated row is
# set aside before values are checked (it is never laid out), so it is not also non-finite; gaps,
# constant and too-short series are judged on the rows left. The report lists their findings in this order.
PROBLEMS: dict[str, ProblemSpec] = {
    "column_type": _problem(None, "cast the column to the documented type before writing the Parquet file"),
    "null_id": _problem("on_null_id", "fill or remove rows with a null id/ds", "set on_null_id='drop'", True),
    "off_grid": _problem(
        "on_off_grid", "align timestamps to freq, pass the right freq", "set on_off_grid='drop'", True
    ),
    "duplicate": _problem("on_duplicate", "keep one row per (unique_id, ds)", "set on_duplicate='drop'"),
    "non_finite": _problem("on_non_finite", "remove NaN/inf values", "set on_non_finite='fill' (masked) or 'drop'"),
    "gap": _problem("on_gap", "supply the missing timestamps", "set on_gap='fill' (masked) or 'drop'"),
    "constant": _problem("on_constant", "remove constant series", "set on_constant='keep' or 'drop'"),
    "too_short": _problem("on_too_short", "lower input_size/horizon, supply more history", "set on_too_short='drop'"),
    "no_series_left": _problem(None, "fix the problems above or relax the policies; nothing is left to model"),
    "ds_out_of_range": _problem(
        None,
        "fix or remove the rows with that ds: timestamps must lie in the years 1678-2261, integer steps within +-2**61",
    ),
    "future_rows": _problem(None, "pass --as-of to choose the cutoff; rows dated after now are never used by default"),
    "as_of_type": _problem(
        None, "pass --as-of of the same kind as ds: an integer step for integer ds, a date otherwise"
    ),
    "grid_too_large": _problem(
        None, "remove or correct the outlying ds (a typo, a wrong unit), or pass the right freq"
    ),
    "freq_mismatch": _problem(
        None,
        "pass the data's freq (or omit --freq to infer it); a stored model forecasts its own "
        "freq: predict with a model trained on data of this freq, or retrain on this data",
    ),
    "no_room": _problem(None, "renumber or shift ds so that the forecast horizon after the last ds is representable"),
    # Information, never an error:
    "freq_inferred": _problem(None, ""),
    "rows_after_as_of": _problem(None, ""),
    "tz_converted": _problem(None, ""),
}

# Finer causes of ``no_series_left`` (Problem.cause), for code to tell them apart without reading the text.
EMPTY_INPUT, NO_ROWS_LEFT, ALL_DROPPED = "empty_input", "no_rows_left", "all_dropped"

_ROW_LEVEL = {name for name, spec in PROBLEMS.items() if spec.row_level}  # their 'drop' removes rows

_ACTION_BY_POLICY = {"error": "error", "drop": "dropped", "fill": "filled (masked)", "keep": "kept"}


@dataclass(frozen=True)
class Problem:
    unique_id: str  # "*" for problems of the whole table
    problem: str
    count: int
    example: str
    action: str  # error | dropped | filled (masked) | kept | info
    cause: str = ""  # a finer kind within ``problem``: EMPTY_INPUT, NO_ROWS_LEFT, ALL_DROPPED (no_series_left)


@dataclass
class ValidationReport:
    """Every problem found in one ingest, with the action taken for each."""

    problems: list[Problem] = field(default_factory=list)
    n_rows_in: int = 0
    n_series_in: int = 0
    n_series_out: int = 0
    freq: str | None = None
    stale: str | None = None  # the stale-data warning (prediction.stale_data), set once as_of is known
    span: dict = field(default_factory=dict)  # what the kept series cover (panel.data_span), for run summaries
    n_series_train: int | None = None  # of those, the series a pipeline run trains on (stages.training_subset)
    long_season: str = ""  # training: whether the week is used and why (seasons.choose_long_season)

    def add(self, unique_id: str, problem: str, count: int, example: str, action: str, cause: str = "") -> None:
        self.problems.append(Problem(str(unique_id), problem, int(count), example, action, cause))

    def to_frame(self) -> pd.DataFrame:
        cols = ["unique_id", "problem", "count", "example", "action"]  # not the cause: code's, not the user's
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=cols)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.action == "error"]

    @property
    def dropped_ids(self) -> list[str]:
        # Row-level problems (on_off_grid='drop' and the like) remove rows, not the series.
        return sorted(
            {
                p.unique_id
                for p in self.problems
                if p.action == "dropped" and p.unique_id != "*" and p.problem not in _ROW_LEVEL
            }
        )

    def all_series_dropped(self, n_series: int) -> None:
        """Add the ``no_series_left`` error naming why the ``n_series`` series were dropped (for the
        message to say how to keep them), and raise."""
        causes = sorted({p.problem for p in self.problems if p.action == "dropped" and p.unique_id != "*"})
        self.add(
            "*",
            "no_series_left",
            0,
            f"all {n_series} series were dropped ({', '.join(causes) or 'empty'})",
            "error",
            ALL_DROPPED,
        )
        self.raise_if_errors()

    def raise_if_errors(self) -> None:
        errors = self.errors
        if not errors:
            return
        by_problem: dict[str, list[Problem]] = {}
        for p in errors:
            by_problem.setdefault(p.problem, []).append(p)
        parts = []
        for name, items in by_problem.items():
            ids = [_shown_id(p.unique_id) for p in items]
            shown = ", ".join(ids[:5]) + (f" (+{len(ids) - 5} more)" if len(ids) > 5 else "")
            fix = PROBLEMS[name][1]
            if name == "no_series_left":  # say how to keep series, for each reason they were dropped
                causes = sorted({p.problem for p in self.problems if p.action == "dropped" and p.problem in PROBLEMS})
                fix = "; ".join(PROBLEMS[c].remedy for c in causes) or fix
            parts.append(f"{name} in {shown} (e.g. {items[0].example}): {fix}")
        raise DataValidationError("invalid input data: " + "; ".join(parts), report=self)

    def to_markdown(self) -> str:
        """The UI artifact and the CLI's table (no tabulate dependency): a warning for stale data, then the
        problems (what was dropped, filled, kept or refused), then information (inferred freq, rows after
        ``as_of``), each its own table."""
        head = (
            f"rows in: {self.n_rows_in}, series in: {self.n_series_in}, series used: {self.n_series_out}"
            + (f" ({self.n_series_train} trained on)" if self.n_series_train is not None else "")
            + f", freq: {self.freq}\n\n"
        )
        if self.long_season:
            head += f"second season: {escape_markdown(self.long_season, limit=400)}\n\n"
        if self.stale:
            head += f"**Warning: {escape_markdown(self.stale, limit=400)}**\n\n"
        problems = [p for p in self.problems if p.action != "info"]
        info = [p for p in self.problems if p.action == "info"]
        if problems:
            lines = [
                f"#### Problems ({len(problems)})",
                "",
                "| unique_id | problem | count | example | action |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {escape_markdown(p.unique_id)} | {p.problem} | {p.count} | {escape_markdown(p.example)} | {p.action} |"
                for p in problems
            ]
        else:
            lines = ["No problems found."]
        if info:
            lines += ["", "#### Information", "", "| item | detail | rows |", "|---|---|---|"]
            lines += [f"| {p.problem} | {escape_markdown(p.example)} | {p.count or ''} |" for p in info]
        return head + "\n".join(lines)


# Characters that let a value (a series id comes from the user's data) leave its table cell or inject
# markup: pipes and newlines add rows or columns, angle brackets and ampersands become HTML, brackets
# make links and images, backticks and asterisks code and emphasis. Underscores stay (ids use them).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*|\[\]])")


def escape_markdown(text: object, limit: int = 200) -> str:
    """``text`` as literal characters in one markdown table cell (at most ``limit`` characters)."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = " ".join(value.splitlines()) if ("\n" in value or "\r" in value) else value
    value = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in value)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value)


def _shown_id(uid: str, limit: int = 60) -> str:
    """An id as the one-line error message shows it: quoted and escaped when empty, too long, or holding
    a newline or another unprintable character (ids come from the user's data)."""
    if uid and uid.isprintable() and len(uid) <= limit:
        return uid
    return repr(uid[:limit]) + ("..." if len(uid) > limit else "")


def action_for(policy: str) -> str:
    return _ACTION_BY_POLICY[policy]
