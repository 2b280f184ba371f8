"""Long table -> validated panel: one contiguous float32 buffer with per-series offsets (CSR style).

Series ``i`` occupies ``values[offsets[i]:offsets[i+1]]``, one slot per grid step from its first to its
last timestamp. Slots with no usable observation (filled gaps, masked NaN/inf) hold NaN and have
``observed == False``; windows never touch them. Everything is vectorised over rows: one lexsort, then
bincount/reduceat per series; there is no Python loop over rows or series.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import DataConfig
from .errors import DataValidationError
from .frequency import TimeGrid, infer_freq
from .schema import ValidationReport, action_for

__all__ = ["Panel", "build_panel", "panel_from_frame"]


@dataclass(frozen=True)
class Panel:
    ids: np.ndarray  # [n_series] str, sorted
    values: np.ndarray  # [n_slots] float32, NaN where not observed
    observed: np.ndarray  # [n_slots] bool
    offsets: np.ndarray  # [n_series + 1] int64
    first_tick: np.ndarray  # [n_series] int64 grid position of each series' first slot
    grid: TimeGrid

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def freq(self) -> str:
        return self.grid.freq

    def series(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def ds_at(self, series_idx: np.ndarray, positions: np.ndarray):
        """Timestamps of slot ``positions`` (relative to each series' start; may run past its end)."""
        return self.grid.to_ds(self.first_tick[series_idx] + positions)

    def fingerprint(self) -> str:
        """A content hash of the panel (ids, layout, values): recorded in model metadata."""
        h = hashlib.sha256()
        h.update("\x1f".join(map(str, self.ids)).encode())
        for arr in (self.offsets, self.first_tick, np.nan_to_num(self.values, nan=np.float32(-3.4e38))):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(f"{self.grid.freq}|{self.grid.anchor}".encode())
        return h.hexdigest()[:16]

    def to_frame(self) -> pd.DataFrame:
        """Back to long format (observed slots only): unique_id, ds, y."""
        series_idx = np.repeat(np.arange(self.n_series), self.lengths)
        pos = np.arange(len(self.values)) - self.offsets[series_idx]
        keep = self.observed
        return pd.DataFrame(
            {
                "unique_id": self.ids[series_idx[keep]],
                "ds": self.ds_at(series_idx[keep], pos[keep]),
                "y": self.values[keep],
            }
        )


def _id_codes(col: pa.ChunkedArray, report: ValidationReport) -> tuple[np.ndarray, np.ndarray]:
    """(codes int64 with -1 for null, dictionary of unique ids as str)."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if pa.types.is_integer(col.type) or pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        else:
            report.add("*", "column_type", len(col), f"unique_id has type {col.type}", "error")
            return np.zeros(0, np.int64), np.zeros(0, object)
    encoded = pc.dictionary_encode(col).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    codes = np.where(pc.is_null(encoded.indices).to_numpy(zero_copy_only=False), -1, codes).astype(np.int64)
    dictionary = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    # Codes in sorted id order, so panels (and their fingerprints) do not depend on row order.
    order = np.argsort(dictionary.astype(str), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
    return codes, dictionary[order]


def _time_values(col: pa.ChunkedArray, name: str, report: ValidationReport):
    """ds as datetime64[ns] (tz-naive, UTC when zoned) or int64, plus a null mask."""
    t = col.type
    nulls = pc.is_null(col).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(t):
        return pc.fill_null(col, 0).to_numpy().astype(np.int64), nulls
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_date(t):
            col = col.cast(pa.timestamp("s"))
        if getattr(col.type, "tz", None):
            report.add("*", "tz_converted", 1, f"{name} in time zone {col.type.tz}", "converted to UTC")
        values = pc.fill_null(col.cast(pa.timestamp("ns", tz=col.type.tz)), 0)
        return values.to_numpy().astype("datetime64[ns]"), nulls
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        raw = col.to_pandas()
        try:
            parsed = pd.to_datetime(raw, format="ISO8601")
        except (ValueError, TypeError):
            if _parses_as_utc(raw):  # every value is a timestamp, but with different UTC offsets
                report.add("*", "column_type", len(raw), f"{name} mixes time zones (convert ds to UTC)", "error")
            else:
                bad = _first_unparseable(raw)
                report.add("*", "column_type", len(raw), f"{name} has non-timestamp text {bad!r}", "error")
            return None, nulls
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
            report.add("*", "tz_converted", 1, f"{name} strings with offsets", "converted to UTC")
        return parsed.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64(0, "ns")), nulls
    report.add("*", "column_type", len(col), f"{name} has type {t}; expected timestamp or integer", "error")
    return None, nulls


def _parses_as_utc(raw: pd.Series) -> bool:
    try:
        pd.to_datetime(raw, format="ISO8601", utc=True)
        return True
    except (ValueError, TypeError):
        return False


def _first_unparseable(raw: pd.Series) -> str:
    for v in raw.dropna().head(10_000):
        try:
            pd.Timestamp(v)
        except (ValueError, TypeError):
            return str(v)
    return str(raw.iloc[0])


def _target_values(col: pa.ChunkedArray, name: str, report: ValidationReport) -> np.ndarray | None:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return pc.fill_null(col.cast(pa.float64()), float("nan")).to_numpy()
    report.add("*", "column_type", len(col), f"{name} has type {t}; expected a number", "error")
    return None


def _fmt(v) -> str:
    if isinstance(v, np.datetime64):
        return str(pd.Timestamp(v))
    return str(v)


def build_panel(
    table: pa.Table,
    data: DataConfig,
    min_length: int | Callable[[str], int] = 1,
    as_of=None,
) -> tuple[Panel, ValidationReport]:
    """Validate a long table and lay it out as a :class:`Panel`.

    ``min_length``: observed points a series needs (``input_size + horizon`` plus held-out windows when
    training), or a function of the frequency returning it (when the frequency is inferred here). ``as_of``: keep only rows with ``ds <= as_of``. Every problem is collected first; if any
    has policy ``error``, one :class:`DataValidationError` lists them all before anything else runs.
    """
    report = ValidationReport(n_rows_in=table.num_rows)
    if table.num_rows == 0:
        report.add("*", "no_series_left", 0, "the input has zero rows", "error")
        raise DataValidationError("invalid input data: the input has zero rows; supply at least one series", report)
    codes, ids = _id_codes(table.column(data.id_col), report)
    ds, ds_null = _time_values(table.column(data.time_col), data.time_col, report)
    y = _target_values(table.column(data.target_col), data.target_col, report)
    report.n_series_in = len(ids)
    if report.errors:  # wrong column types: nothing below can be checked meaningfully
        report.raise_if_errors()

    keep = np.ones(len(codes), bool)
    if as_of is not None:
        limit = _as_of_value(as_of, ds)
        after = ds > limit
        if after.any():
            report.add("*", "rows_after_as_of", int(after.sum()), f"ds > {as_of}", "info")
        keep &= ~after

    null_rows = (codes < 0) | ds_null
    if null_rows.any():
        policy = data.on_null_id
        first = int(np.flatnonzero(null_rows)[0])
        report.add("*", "null_id", int(null_rows.sum()), f"row {first} has a null id or ds", action_for(policy))
        keep &= ~null_rows

    codes, ds, y = codes[keep], ds[keep], y[keep]
    order = np.lexsort((ds, codes))  # by series, then time; stable for equal keys
    codes, ds, y = codes[order], ds[order], y[order]
    n_ids = len(ids)
    if len(codes) == 0:
        report.add("*", "no_series_left", 0, "no rows left after as_of/null filtering", "error")
        report.raise_if_errors()

    freq = data.freq or infer_freq(ds, codes)
    if not data.freq:
        report.add("*", "freq_inferred", 0, f"freq={freq}", "info")
    report.freq = freq
    if callable(min_length):
        min_length = min_length(freq)
    if np.issubdtype(ds.dtype, np.integer) != TimeGrid(freq, None).is_integer:
        # Fix: an integer step with timestamp ds laid out one slot per nanosecond (MemoryError), and a
        # calendar freq with integer ds flagged every row off-grid. Name the mismatch instead.
        kind = "integer" if np.issubdtype(ds.dtype, np.integer) else "timestamp"
        fix = "pass a pandas alias such as freq='h' or 'D'" if kind == "timestamp" else "pass an integer step such as freq='1'"
        report.add("*", "column_type", len(ds), f"{data.time_col} is {kind} but freq={freq!r}; {fix}", "error")
        report.raise_if_errors()
    grid = TimeGrid.for_values(freq, ds.min(), ds)  # ds: anchor the grid on the most common phase
    ticks, on_grid = grid.to_ticks(ds)

    drop_series = np.zeros(n_ids, bool)

    def per_series(flag_rows: np.ndarray, problem: str, policy: str, example_of, drop_rows: bool = False):
        """Count flagged rows per series, report them, and apply the policy."""
        nonlocal keep_rows
        if not flag_rows.any():
            return
        counts = np.bincount(codes[flag_rows], minlength=n_ids)
        first_idx = np.flatnonzero(flag_rows)
        series_with, first_pos = np.unique(codes[first_idx], return_index=True)
        action = action_for(policy)
        for code, pos in zip(series_with, first_idx[first_pos]):
            report.add(ids[code], problem, counts[code], example_of(pos), action)
        if policy == "drop":
            if drop_rows:
                keep_rows &= ~flag_rows
            else:
                drop_series[series_with] = True

    keep_rows = np.ones(len(codes), bool)
    per_series(~on_grid, "off_grid", data.on_off_grid, lambda i: f"ds={_fmt(ds[i])} not on freq {freq}", True)

    same_series = np.r_[False, codes[1:] == codes[:-1]]
    dup = same_series & np.r_[False, ds[1:] == ds[:-1]] & keep_rows
    per_series(dup, "duplicate", data.on_duplicate, lambda i: f"ds={_fmt(ds[i])} appears more than once")
    keep_rows &= ~dup  # duplicate rows are never laid out twice (the series is dropped or it is an error)

    # NaN, inf, and values float32 cannot hold (the buffer is float32): all masked or refused alike.
    non_finite = ~(np.abs(y) <= np.finfo(np.float32).max) & keep_rows
    per_series(non_finite, "non_finite", data.on_non_finite, lambda i: f"ds={_fmt(ds[i])} y={y[i]}")

    # Per-series extent on the grid, from the rows still kept (sorted by series, then time).
    kc, kt, ky = codes[keep_rows], ticks[keep_rows], y[keep_rows]
    starts = np.flatnonzero(np.r_[True, kc[1:] != kc[:-1]]) if len(kc) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(kc)] - 1
    present = np.zeros(n_ids, bool)
    present[kc[starts]] = True
    first_tick = np.zeros(n_ids, np.int64)
    first_tick[kc[starts]] = kt[starts]
    span = np.zeros(n_ids, np.int64)
    span[kc[starts]] = kt[ends] - kt[starts] + 1
    gaps = span - np.bincount(kc, minlength=n_ids)
    if (gaps > 0).any():
        # The first missing tick of each series: one step after the first row whose successor jumps.
        jump = np.flatnonzero((kt[1:] - kt[:-1] > 1) & (kc[1:] == kc[:-1]))
        gap_codes, first = np.unique(kc[jump], return_index=True)
        first_missing = grid.to_ds(kt[jump[first]] + 1)
        action = action_for(data.on_gap)
        for code, missing_ds in zip(gap_codes, first_missing):
            report.add(ids[code], "gap", gaps[code], f"first missing ds={_fmt(missing_ds)}", action)
        if data.on_gap == "drop":
            drop_series |= gaps > 0

    finite = np.abs(ky) <= np.finfo(np.float32).max  # what the float32 buffer will hold
    n_obs = np.bincount(kc[finite], minlength=n_ids)
    lo = np.full(n_ids, np.inf)
    hi = np.full(n_ids, -np.inf)
    fc, fy = kc[finite], ky[finite]
    if len(fc):
        fstarts = np.flatnonzero(np.r_[True, fc[1:] != fc[:-1]])
        lo[fc[fstarts]] = np.minimum.reduceat(fy, fstarts)
        hi[fc[fstarts]] = np.maximum.reduceat(fy, fstarts)
    constant = present & (n_obs >= 2) & (hi - lo <= 1e-12 * np.maximum(1.0, np.abs(hi)))
    for code in np.flatnonzero(constant):
        report.add(ids[code], "constant", n_obs[code], f"y={hi[code]:g} throughout", action_for(data.on_constant))
    if data.on_constant == "drop":
        drop_series |= constant

    short = present & (n_obs < min_length)
    for code in np.flatnonzero(short):
        report.add(
            ids[code], "too_short", n_obs[code],
            f"{n_obs[code]} observed points < {min_length} needed", action_for(data.on_too_short),
        )
    if data.on_too_short == "drop":
        drop_series |= short

    drop_series |= ~present
    report.raise_if_errors()
    kept_series = np.flatnonzero(~drop_series)
    report.n_series_out = len(kept_series)
    if len(kept_series) == 0:
        causes = sorted({p.problem for p in report.problems if p.action == "dropped" and p.unique_id != "*"})
        report.add("*", "no_series_left", 0, f"all {n_ids} series were dropped ({', '.join(causes) or 'empty'})", "error")
        report.raise_if_errors()

    # Lay out the kept series: slot = offsets[new_code] + tick - first_tick.
    new_code = np.full(n_ids, -1, np.int64)
    new_code[kept_series] = np.arange(len(kept_series))
    lengths = span[kept_series]
    offsets = np.zeros(len(kept_series) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    rows = keep_rows & (new_code[codes] >= 0)
    nc = new_code[codes[rows]]
    slot = offsets[nc] + ticks[rows] - first_tick[kept_series][nc]
    values = np.full(offsets[-1], np.nan, np.float32)  # [n_slots]
    ys = y[rows]
    values[slot] = np.where(np.abs(ys) <= np.finfo(np.float32).max, ys, np.nan)  # no overflow to inf
    observed = np.isfinite(values)
    values[~observed] = np.nan
    panel = Panel(
        ids=ids[kept_series].astype(str).astype(object),
        values=values,
        observed=observed,
        offsets=offsets,
        first_tick=first_tick[kept_series].astype(np.int64),
        grid=grid,
    )
    return panel, report


def _as_of_value(as_of, ds: np.ndarray):
    if np.issubdtype(ds.dtype, np.integer):
        return int(as_of)
    ts = pd.Timestamp(as_of)
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if len(str(as_of)) <= 10:  # a date: include the whole day
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return np.datetime64(ts.as_unit("ns"))


def panel_from_frame(df: pd.DataFrame, data: DataConfig | None = None, **kwargs) -> tuple[Panel, ValidationReport]:
    """Convenience for notebooks and tests: build a panel from a pandas long frame."""
    data = data or DataConfig()
    table = pa.Table.from_pandas(df[[data.id_col, data.time_col, data.target_col]], preserve_index=False)
    return build_panel(table, data, **kwargs)
