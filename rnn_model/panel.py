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
from .errors import ConfigError, DataValidationError
from .frequency import TimeGrid, infer_freq, same_freq
from .schema import ValidationReport, action_for

__all__ = ["Panel", "build_panel", "panel_from_frame", "freq_mismatch", "constant_series", "data_span", "take_series"]


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


def constant_series(panel: Panel) -> np.ndarray:
    """``[n_series]`` bool: at least two observed values, all equal (the series never varied)."""
    starts = panel.offsets[:-1]
    if not panel.n_series:
        return np.zeros(0, bool)
    lo = np.minimum.reduceat(np.where(panel.observed, panel.values, np.inf), starts)  # [n_series]
    hi = np.maximum.reduceat(np.where(panel.observed, panel.values, -np.inf), starts)
    n_obs = np.add.reduceat(panel.observed.astype(np.int64), starts)
    return (n_obs >= 2) & (lo == hi)


def take_series(panel: Panel, series_idx: np.ndarray) -> Panel:
    """The panel of the series ``series_idx`` (ascending), with the same grid: the arrays
    :func:`build_panel` gives when it keeps only those series."""
    series_idx = np.asarray(series_idx, np.int64)
    if len(series_idx) == panel.n_series:
        return panel
    lengths = panel.lengths[series_idx]  # [n_kept]
    offsets = np.zeros(len(series_idx) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    slots = np.repeat(panel.offsets[series_idx] - offsets[:-1], lengths) + np.arange(offsets[-1])  # [n_kept_slots]
    return Panel(
        ids=panel.ids[series_idx],
        values=panel.values[slots],
        observed=panel.observed[slots],
        offsets=offsets,
        first_tick=panel.first_tick[series_idx],
        grid=panel.grid,
    )


def data_span(panels: list[Panel]) -> dict:
    """What the data covers, for run summaries: the oldest and newest ``ds`` over all series (ISO text,
    or int for integer steps), the number of series and of observed values."""
    panels = [p for p in panels if p.n_series]
    if not panels:
        return {"first": None, "last": None, "series": 0, "observations": 0}
    first = min(int(p.first_tick.min()) for p in panels)
    last = max(int((p.first_tick + p.lengths - 1).max()) for p in panels)
    grid = panels[0].grid
    shown = [v if grid.is_integer else pd.Timestamp(v).isoformat() for v in grid.to_ds(np.array([first, last]))]
    return {
        "first": int(shown[0]) if grid.is_integer else shown[0],
        "last": int(shown[1]) if grid.is_integer else shown[1],
        "series": sum(p.n_series for p in panels),
        "observations": sum(int(p.observed.sum()) for p in panels),
    }


def _id_codes(col: pa.ChunkedArray, report: ValidationReport) -> tuple[np.ndarray, np.ndarray]:
    """(codes with -1 for null, dictionary of unique ids as str).

    Codes are the smallest signed integer type that holds them (int16 for up to 32,767 series), which
    makes the series sort in :func:`_sort_rows` a radix sort.
    """
    encoded = _string_dictionary(col) if pa.types.is_dictionary(col.type) else None
    if encoded is None:
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            if pa.types.is_integer(col.type) or pa.types.is_dictionary(col.type):
                col = col.cast(pa.string())
            else:
                report.add("*", "column_type", len(col), f"unique_id has type {col.type}", "error")
                return np.zeros(0, np.int64), np.zeros(0, object)
        encoded = pc.dictionary_encode(col).combine_chunks()
    indices, dictionary = encoded.indices, encoded.dictionary
    has_nulls = indices.null_count > 0
    raw = indices.to_numpy(zero_copy_only=False)  # [n_rows] (float with NaN at nulls)
    if has_nulls:
        nulls = pc.is_null(indices).to_numpy(zero_copy_only=False)
        raw = np.where(nulls, 0, raw).astype(np.int64)
    # A dictionary read from Parquet may hold ids no row uses: keep the used ones, as encoding would.
    used = np.bincount(raw[~nulls] if has_nulls else raw, minlength=len(dictionary)) > 0
    remap = None
    if not used.all():
        keep = np.flatnonzero(used)
        remap = np.full(len(dictionary), -1, np.int64)
        remap[keep] = np.arange(len(keep))
        dictionary = dictionary.take(pa.array(keep))
    names = np.asarray(dictionary.to_pylist(), dtype=object)
    # Codes in sorted id order, so panels (and their fingerprints) do not depend on row order.
    order = np.argsort(names.astype(str), kind="stable")
    code_type = np.int16 if len(order) < 2**15 else np.int32 if len(order) < 2**31 else np.int64
    rank = np.empty(len(order), code_type)
    rank[order] = np.arange(len(order), dtype=code_type)
    if remap is not None and len(rank) == 0:  # every id is null (a group of only null-id rows)
        rank = np.full(len(remap), -1, code_type)
    elif remap is not None:
        rank = np.where(remap >= 0, rank[np.maximum(remap, 0)], -1).astype(code_type)
    codes = rank[raw]  # [n_rows]
    if has_nulls:
        codes[nulls] = -1
    return codes, names[order]


def _string_dictionary(col: pa.ChunkedArray) -> pa.DictionaryArray | None:
    """A dictionary column of strings (ids read as Parquet dictionary pages) as one array with one
    dictionary, or None when it needs the general path (other value types, null or repeated entries)."""
    value_type = col.type.value_type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)) or col.num_chunks == 0:
        return None
    arr = col.unify_dictionaries().combine_chunks()
    if arr.dictionary.null_count or len(pc.unique(arr.dictionary)) != len(arr.dictionary):
        return None
    return arr


def _sort_rows(codes: np.ndarray, ds: np.ndarray, y: np.ndarray):
    """``codes, ds, y`` in (series, ds) order, stable for equal keys: what ``np.lexsort((ds, codes))``
    gives, at a fraction of its cost for the usual row orders.

    Rows usually arrive grouped by series (one file or block per series: nothing to do) or in time order
    (a scheduler appends all series at each step). In both, ds is already non-decreasing within each
    series, so a stable sort by the series code alone (a radix sort for int16 codes) gives the same
    permutation as the two-key lexsort. Any other order falls back to the lexsort.
    """
    if _rows_sorted(codes, ds):
        return codes, ds, y
    time_major = _time_major(codes, ds)
    if time_major is not None:  # every series has len / n rows: the sorted codes are a repeat
        n = int(codes.max()) + 1
        return np.repeat(np.arange(n, dtype=codes.dtype), len(codes) // n), time_major(ds), time_major(y)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    sorted_codes = np.repeat(np.arange(len(counts), dtype=codes.dtype), counts)  # == codes[order]
    sorted_ds = ds[order]
    down = np.flatnonzero(sorted_ds[1:] < sorted_ds[:-1])  # ds decreases: only allowed between series
    if not (sorted_codes[down + 1] == sorted_codes[down]).any():
        return sorted_codes, sorted_ds, y[order]
    order = np.lexsort((ds, codes))
    return codes[order], ds[order], y[order]


def _time_major(codes: np.ndarray, ds: np.ndarray):
    """For rows laid out step by step -- every step lists all ``n`` series in one fixed order, and ds
    never decreases within a series -- the function that reorders a row array by series: a transpose of
    its ``[steps, n]`` view, the same permutation as the stable sort. None for any other layout."""
    n = int(codes.max()) + 1
    if n < 2 or len(codes) % n:
        return None
    first = codes[:n]  # [n] the series order within one step
    if (np.bincount(first, minlength=n) != 1).any() or not (codes.reshape(-1, n) == first).all():
        return None
    grid = ds.reshape(-1, n)  # [steps, n]
    if (grid[1:] < grid[:-1]).any():
        return None
    identity = bool((first == np.arange(n)).all())
    column_of = np.argsort(first)  # [n] column holding series c

    def reorder(a: np.ndarray) -> np.ndarray:
        by_series = a.reshape(-1, n).T  # [n, steps] a view
        return np.ascontiguousarray(by_series if identity else by_series[column_of]).reshape(-1)

    return reorder


def _rows_sorted(codes: np.ndarray, ds: np.ndarray, block: int = 1 << 16) -> bool:
    """Whether rows are in (series, ds) order already; checked block by block, stopping at the first
    block out of order (time-ordered input fails in the first block)."""
    for lo in range(0, len(codes) - 1, block):
        c, d = codes[lo : lo + block + 1], ds[lo : lo + block + 1]
        if (c[1:] < c[:-1]).any() or ((c[1:] == c[:-1]) & (d[1:] < d[:-1])).any():
            return False
    return True


# Timestamps are laid out as datetime64[ns]; a margin inside its limits (1677-09-21 .. 2262-04-11) keeps
# the grid's anchor (rolled back to a period start) and a horizon of steps after the data representable.
_TS_MIN, _TS_MAX = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31 23:59:59")
# Integer ds are grid positions in int64: within +-2**61 the difference of any two fits.
_INT_MAX = 2**61


def _out_of_range(report: ValidationReport, name: str, n_bad: int, example: str) -> None:
    report.add("*", "ds_out_of_range", n_bad, f"{name}={example}", "error")


def _integer_time(col: pa.ChunkedArray, name: str, report: ValidationReport) -> np.ndarray | None:
    """int64 ds; values beyond +-2**61 (uint64 above 2**63 included, which int64 wraps to negatives)
    are refused, naming the first."""
    values = pc.fill_null(col, 0).to_numpy()  # [n_rows] in the column's own integer type
    if np.issubdtype(values.dtype, np.unsignedinteger):
        bad = values > np.uint64(_INT_MAX)
    else:
        bad = (values < -_INT_MAX) | (values > _INT_MAX)
    if bad.any():
        first = values[int(np.argmax(bad))]
        _out_of_range(report, name, int(bad.sum()), f"{first} beyond +-2**61")
        return None
    return values.astype(np.int64, copy=False)


def _timestamp_range_ok(col: pa.ChunkedArray, name: str, report: ValidationReport) -> bool:
    """Whether every timestamp lies in 1678..2261 (datetime64[ns] with margins); else report the first."""
    unit = col.type.unit
    per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    lo, hi = _TS_MIN.value // per, _TS_MAX.value // per
    raw = pc.fill_null(col.cast(pa.int64()), lo)  # [n_rows] in the column's unit
    mn, mx = pc.min_max(raw).values()
    if mn.as_py() is None or (lo <= mn.as_py() and mx.as_py() <= hi):
        return True
    bad = pc.or_(pc.less(raw, lo), pc.greater(raw, hi))
    first = pc.filter(raw, bad)[0].as_py()
    shown = str(pa.scalar(first, pa.timestamp(unit)))
    _out_of_range(report, name, pc.sum(bad).as_py(), f"{shown} outside the years 1678-2261")
    return False


def _time_values(col: pa.ChunkedArray, name: str, report: ValidationReport):
    """ds as datetime64[ns] (tz-naive, UTC when zoned) or int64, plus a null mask."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    t = col.type
    if col.null_count:
        nulls = pc.is_null(col).to_numpy(zero_copy_only=False)
    else:
        nulls = np.zeros(len(col), bool)
    if pa.types.is_integer(t):
        return _integer_time(col, name, report), nulls
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_date(t):
            col = col.cast(pa.timestamp("s"))
        if not _timestamp_range_ok(col, name, report):
            return None, nulls
        if getattr(col.type, "tz", None):
            report.add("*", "tz_converted", 1, f"{name} in time zone {col.type.tz}", "converted to UTC")
        values = pc.fill_null(col.cast(pa.timestamp("ns", tz=col.type.tz)), 0)
        return values.to_numpy().astype("datetime64[ns]", copy=False), nulls
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        raw = col.to_pandas()
        try:
            parsed = pd.to_datetime(raw, format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            if _parses_as_utc(raw):  # every value is a timestamp, but with different UTC offsets
                report.add("*", "column_type", len(raw), f"{name} mixes time zones (convert ds to UTC)", "error")
            else:
                bad = _first_unparseable(raw)
                report.add("*", "column_type", len(raw), f"{name} has non-timestamp text {bad!r}", "error")
            return None, nulls
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
            report.add("*", "tz_converted", 1, f"{name} strings with offsets", "converted to UTC")
        nulls = nulls | parsed.isna().to_numpy()  # '' and 'NaT' are missing timestamps, not 1970-01-01
        stamps = pa.chunked_array([pa.array(parsed.to_numpy(), from_pandas=True)])
        if not _timestamp_range_ok(stamps, name, report):
            return None, nulls
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
        except (ValueError, TypeError, OverflowError):
            return str(v)[:100]
    return str(raw.iloc[0])[:100]


def _target_values(col: pa.ChunkedArray, name: str, report: ValidationReport) -> np.ndarray | None:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        # safe=False: integers beyond 2**53 (and wide decimals) become the nearest float64; y is a float.
        return pc.fill_null(pc.cast(col, pa.float64(), safe=False), float("nan")).to_numpy()
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

    keep = None  # rows kept so far; None: all of them (no mask is built in the common case)
    if as_of is not None:
        limit, is_now = _as_of_limit(as_of, ds, data.time_col, report)
        after = None if limit is None else (ds > limit) & ~ds_null
        if after is not None and after.any():
            if is_now:  # the default cutoff: rows dated in the future are typos or plans, not history
                first = ds[int(np.flatnonzero(after)[0])]
                report.add(
                    "*",
                    "future_rows",
                    int(after.sum()),
                    f"ds={_fmt(first)} after now ({_fmt(limit)}); pass --as-of to choose the cutoff",
                    "dropped",
                )
            else:
                report.add("*", "rows_after_as_of", int(after.sum()), f"ds > {_fmt(limit)}", "info")
            keep = ~after

    if codes.min() < 0 or ds_null.any():
        null_rows = (codes < 0) | ds_null
        policy = data.on_null_id
        first = int(np.flatnonzero(null_rows)[0])
        report.add("*", "null_id", int(null_rows.sum()), f"row {first} has a null id or ds", action_for(policy))
        keep = ~null_rows if keep is None else keep & ~null_rows

    if keep is not None and not keep.all():
        codes, ds, y = codes[keep], ds[keep], y[keep]
    codes, ds, y = _sort_rows(codes, ds, y)  # by series, then time; stable for equal keys
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
        # An integer step with timestamp ds would lay out one slot per nanosecond (MemoryError), and a
        # calendar freq with integer ds would flag every row off-grid: name the mismatch instead.
        kind = "integer" if np.issubdtype(ds.dtype, np.integer) else "timestamp"
        fix = (
            "pass a pandas alias such as freq='h' or 'D'"
            if kind == "timestamp"
            else "pass an integer step such as freq='1'"
        )
        report.add("*", "column_type", len(ds), f"{data.time_col} is {kind} but freq={freq!r}; {fix}", "error")
        report.raise_if_errors()
    try:
        grid = TimeGrid.for_values(freq, ds.min(), ds)  # ds: anchor the grid on the most common phase
        ticks, on_grid = grid.to_ticks(ds)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):  # a grid period start before 1677 or after 2262
        _out_of_range_grid(report, data.time_col, ds, freq)
    if data.freq and len(ds) > 2 and 2 * int(np.count_nonzero(on_grid)) < len(ds):
        freq_mismatch(report, ds, codes, freq, "most rows are off its grid")

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

    dup = np.zeros(len(codes), bool)  # [n_rows] same series and same ds as the row before
    np.logical_and(codes[1:] == codes[:-1], ds[1:] == ds[:-1], out=dup[1:])
    dup &= keep_rows
    per_series(dup, "duplicate", data.on_duplicate, lambda i: f"ds={_fmt(ds[i])} appears more than once")
    keep_rows &= ~dup  # duplicate rows are never laid out twice (the series is dropped or it is an error)

    # NaN, inf, and values float32 cannot hold (the buffer is float32): all masked or refused alike.
    f32max = np.finfo(np.float32).max
    lo_y, hi_y = (y.min(), y.max()) if len(y) else (0.0, 0.0)  # NaN if any y is NaN
    all_fit = bool(-f32max <= lo_y and hi_y <= f32max)  # every value finite and within float32
    fits = np.ones(len(y), bool) if all_fit else np.abs(y) <= f32max  # [n_rows] False for NaN, inf, overflow
    if not all_fit:
        non_finite = ~fits & keep_rows
        per_series(non_finite, "non_finite", data.on_non_finite, lambda i: f"ds={_fmt(ds[i])} y={y[i]}")

    # Per-series extent on the grid, from the rows still kept (sorted by series, then time). Rows are
    # grouped by series, so each series' rows are one run: counts give the run boundaries.
    all_rows_kept = bool(keep_rows.all())
    if all_rows_kept:  # the common case: no copies
        kc, kt, ky, finite = codes, ticks, y, fits
    else:
        kc, kt, ky, finite = codes[keep_rows], ticks[keep_rows], y[keep_rows], fits[keep_rows]
    counts = np.bincount(kc, minlength=n_ids)  # [n_ids] kept rows per series
    present = counts > 0
    bounds = np.r_[0, np.cumsum(counts)]
    starts, ends = bounds[:-1][present], bounds[1:][present] - 1  # first and last row of each run
    first_tick = np.zeros(n_ids, np.int64)
    first_tick[present] = kt[starts]
    span = np.zeros(n_ids, np.int64)
    span[present] = kt[ends] - kt[starts] + 1
    _check_grid_size(
        report, ids, kc, kt, ds if all_rows_kept else ds[keep_rows], span, counts, present, grid, bool(data.freq)
    )
    gaps = span - counts
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

    # What the float32 buffer will hold: per-series count, min and max of the finite values.
    all_finite = bool(finite.all())
    fy = ky if all_finite else ky[finite]
    n_obs = counts if all_finite else np.bincount(kc[finite], minlength=n_ids)
    lo = np.full(n_ids, np.inf)
    hi = np.full(n_ids, -np.inf)
    if len(fy):
        has_obs = n_obs > 0
        fstarts = np.r_[0, np.cumsum(n_obs)][:-1][has_obs]
        lo[has_obs] = np.minimum.reduceat(fy, fstarts)
        hi[has_obs] = np.maximum.reduceat(fy, fstarts)
    constant = present & (n_obs >= 2) & (hi - lo <= 1e-12 * np.maximum(1.0, np.abs(hi)))
    for code in np.flatnonzero(constant):
        report.add(ids[code], "constant", n_obs[code], f"y={hi[code]:g} throughout", action_for(data.on_constant))
    if data.on_constant == "drop":
        drop_series |= constant

    short = present & (n_obs < min_length)
    for code in np.flatnonzero(short):
        report.add(
            ids[code],
            "too_short",
            n_obs[code],
            f"{n_obs[code]} observed points < {min_length} needed",
            action_for(data.on_too_short),
        )
    if data.on_too_short == "drop":
        drop_series |= short

    drop_series |= ~present
    report.raise_if_errors()
    kept_series = np.flatnonzero(~drop_series)
    report.n_series_out = len(kept_series)
    if len(kept_series) == 0:
        report.all_series_dropped(n_ids)

    # Lay out the kept series: slot = offsets[new_code] + tick - first_tick.
    new_code = np.full(n_ids, -1, np.int64)
    new_code[kept_series] = np.arange(len(kept_series))
    lengths = span[kept_series]
    offsets = np.zeros(len(kept_series) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if all_rows_kept and len(kept_series) == n_ids and offsets[-1] == len(codes):
        # Every row kept, distinct on-grid ticks, no gap: row i is slot i (the scatter is the identity).
        if all_fit:
            values = y.astype(np.float32)  # [n_slots]
        else:
            values = np.where(fits, y, np.nan).astype(np.float32)  # [n_slots] no overflow to inf
    else:
        base = np.zeros(n_ids, np.int64)  # slot of tick 0 of each kept series
        base[kept_series] = offsets[:-1] - first_tick[kept_series]
        rows = keep_rows if len(kept_series) == n_ids else keep_rows & (new_code[codes] >= 0)
        slot = base[codes[rows]] + ticks[rows]
        values = np.full(offsets[-1], np.nan, np.float32)  # [n_slots]
        ys = y[rows]
        values[slot] = np.where(np.abs(ys) <= f32max, ys, np.nan)  # no overflow to inf
    observed = np.isfinite(values)  # [n_slots]
    if not observed.all():
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


def _as_of_limit(as_of, ds: np.ndarray, name: str, report: ValidationReport):
    """(cutoff in ds's type or None for no cutoff, whether it is the default 'now').

    ``as_of`` is canonicalised by :func:`rnn_model.outputs.parse_as_of` (a date is its midnight, like the
    partition label it gives). Its kind must match ds: a date against integer steps (or a step against
    timestamps) is an error naming both, not a TypeError or a cutoff in nanoseconds since 1970.
    """
    from .outputs import NOW, parse_as_of

    value = parse_as_of(as_of)
    integer_ds = np.issubdtype(ds.dtype, np.integer)
    if isinstance(value, str) and value == NOW:
        if integer_ds:  # integer steps have no clock: every row is used
            return None, False
        now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
        return np.datetime64(now.as_unit("ns")), True
    if isinstance(value, int) != integer_ds:
        kinds = ("an integer step", "timestamps") if isinstance(value, int) else ("a date", "integer steps")
        shown = value if isinstance(value, int) else _fmt_stamp(value)
        report.add("*", "as_of_type", 1, f"as_of={shown} is {kinds[0]} but {name} holds {kinds[1]}", "error")
        report.raise_if_errors()
    if integer_ds:
        return np.int64(value), False
    return np.datetime64(value.as_unit("ns")), False


def _fmt_stamp(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def _out_of_range_grid(report: ValidationReport, name: str, ds: np.ndarray, freq: str) -> None:
    shown = f"{_fmt(ds.min())} .. {_fmt(ds.max())}"
    report.add(
        "*", "ds_out_of_range", len(ds), f"{name} spans {shown}: its grid of freq {freq} leaves 1677-2262", "error"
    )
    report.raise_if_errors()


def freq_mismatch(report: ValidationReport, ds: np.ndarray, codes: np.ndarray, freq: str, why: str) -> None:
    """The data's own freq differs from the declared (or the stored model's) one: one error naming both."""
    try:
        inferred = infer_freq(ds, codes)
    except ConfigError:
        return
    if same_freq(inferred, freq):
        return
    report.add("*", "freq_mismatch", len(ds), f"ds looks like freq {inferred}, not freq={freq} ({why})", "error")
    report.raise_if_errors()


# A series' grid (one slot per step from its first to its last ds) may hold at most this many slots per
# observed row, plus a constant: gaps are masked slots, but one outlying ds (a typo, seconds read as
# nanoseconds) must not allocate terabytes.
_SLOTS_PER_ROW, _SLOTS_EXTRA, _TOTAL_EXTRA = 100, 1_000, 10_000_000


def _check_coarser(report: ValidationReport, kc: np.ndarray, kt: np.ndarray, ds: np.ndarray, freq: str) -> None:
    """No two rows of a series one step apart, every step a multiple of k > 1: a freq mismatch (the same
    rule as :func:`rnn_model.partitions.check_not_coarser`, which sees all groups of series)."""
    same = kc[1:] == kc[:-1]  # [n_rows - 1] consecutive rows of one series
    steps = kt[1:] - kt[:-1]
    moving = steps[same & (steps > 0)]
    if len(moving) and not (moving == 1).any() and int(np.gcd.reduce(moving)) > 1:
        freq_mismatch(report, ds, kc, freq, f"every step is a multiple of {int(np.gcd.reduce(moving))} x {freq}")


def _check_grid_size(
    report: ValidationReport,
    ids: np.ndarray,
    kc: np.ndarray,
    kt: np.ndarray,
    ds: np.ndarray,
    span: np.ndarray,
    counts: np.ndarray,
    present: np.ndarray,
    grid: TimeGrid,
    freq_given: bool,
) -> None:
    """Refuse a grid too large for the rows it holds, naming the series and its outlying ds (the row on
    the smaller side of its largest jump). ``kt``: ticks of the kept rows, grouped by series and sorted."""
    limit = _SLOTS_PER_ROW * counts + _SLOTS_EXTRA
    excess = np.where(present, span - limit, 0)  # [n_ids] slots beyond the bound
    total_ok = int(span.sum()) <= _SLOTS_PER_ROW * int(counts.sum()) + _TOTAL_EXTRA
    if (excess <= 0).all() and total_ok:
        return
    if freq_given:  # weekly data on an hourly grid is too large too: name the freq, not an outlier
        _check_coarser(report, kc, kt, ds, grid.freq)
    code = int(np.argmax(excess)) if (excess > 0).any() else int(np.argmax(span))
    lo, hi = int(np.r_[0, np.cumsum(counts)][code]), int(np.r_[0, np.cumsum(counts)][code + 1])
    rows = kt[lo:hi]  # [count] sorted ticks of the series
    if len(rows) < 2:  # too many series for the panel's rows, none with an outlier of its own
        report.add(
            "*",
            "grid_too_large",
            int(span.sum()),
            f"{int(span.sum())} slots of freq {grid.freq} for {int(counts.sum())} rows",
            "error",
        )
        report.raise_if_errors()
    jumps = np.diff(rows)
    j = int(np.argmax(jumps)) if len(jumps) else 0
    before, after = j + 1, len(rows) - j - 1  # rows on each side of the largest jump
    outlier, other = (rows[j + 1], rows[j]) if after <= before else (rows[j], rows[j + 1])
    out_ds, other_ds = grid.to_ds(np.array([outlier, other]))
    report.add(
        ids[code],
        "grid_too_large",
        int(span[code]),
        f"{int(span[code])} slots of freq {grid.freq} for {int(counts[code])} rows: ds={_fmt(out_ds)} is "
        f"{abs(int(outlier) - int(other))} steps from ds={_fmt(other_ds)}",
        "error",
    )
    report.raise_if_errors()


def panel_from_frame(df: pd.DataFrame, data: DataConfig | None = None, **kwargs) -> tuple[Panel, ValidationReport]:
    """Convenience for notebooks and tests: build a panel from a pandas long frame."""
    data = data or DataConfig()
    table = pa.Table.from_pandas(df[[data.id_col, data.time_col, data.target_col]], preserve_index=False)
    return build_panel(table, data, **kwargs)
