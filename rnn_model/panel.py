"""Long table -> validated panel: one contiguous float32 buffer with per-series offsets (CSR style).

Series ``i`` occupies ``values[offsets[i]:offsets[i+1]]``, one slot per grid step from its first to its
last timestamp. Slots with no usable observation (filled gaps, masked NaN/inf) hold NaN and have
``observed == False``; windows never touch them. Everything is vectorised over rows: one lexsort, then
bincount/reduceat per series; there is no Python loop over rows or series.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Callable, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import DataConfig
from .errors import ConfigError, DataValidationError
from .frequency import TimeGrid, infer_freq, same_freq
from .schema import EMPTY_INPUT, NO_ROWS_LEFT, PROBLEMS, ValidationReport, action_for

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
        for arr in (self.offsets, self.first_tick, np.nan_to_num(self.values, nan=cast(float, np.float32(-3.4e38)))):
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
    if len(rank) == 0:  # every id is null: no id to look up (each row is reported as null_id)
        return np.full(len(raw), -1, code_type), names
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


# --------------------------------------------------------------------------- the checks
#
# build_panel runs one check per PROBLEMS row with a policy, in catalogue order. A check is pure: it reads
# the rows as far as they are known (_Rows, by stage) and returns a Finding (which series or rows, how
# many, the first of each) or None. _apply_policy, the one place policies act, reports the finding and
# drops rows or series. Problems without a policy (column types, ds range, freq, grid size) are always
# fatal or information, and are reported where the data they concern is read.

_STAGES = ("table", "grid", "extent")  # what a check reads, in the order build_panel reaches them
_F32_MAX = np.finfo(np.float32).max


@dataclass(frozen=True)
class _Extent:
    """Per series, from the rows still kept (grouped by series, in time order: each series is one run)."""

    all_rows_kept: bool
    kc: np.ndarray  # [n_kept] series codes of the kept rows
    kt: np.ndarray  # [n_kept] their ticks
    counts: np.ndarray  # [n_ids] kept rows
    present: np.ndarray  # [n_ids] bool: some row kept
    first_tick: np.ndarray  # [n_ids] int64 tick of the first kept row
    span: np.ndarray  # [n_ids] int64 slots from the first to the last kept row (0 when none)
    n_obs: np.ndarray  # [n_ids] of those, values the float32 buffer holds (finite, in range)
    lo: np.ndarray  # [n_ids] their min (inf when none)
    hi: np.ndarray  # [n_ids] their max (-inf when none)


@dataclass(frozen=True)
class _Rows:
    """The rows as the checks see them. Stage "table": the columns in table order (``ds_null`` known);
    "grid": the rows left, sorted by series then time, on the grid (``grid`` .. ``all_fit`` known);
    "extent": also each series' extent (``extent``)."""

    stage: str
    ids: np.ndarray  # [n_ids] id names, sorted: code i is ids[i]
    codes: np.ndarray  # [n_rows] series code, -1 for a null id
    ds: np.ndarray  # [n_rows]
    y: np.ndarray  # [n_rows] float64
    keep: np.ndarray | None  # [n_rows] bool rows still kept; None: all (no mask in the common case)
    drop_series: np.ndarray  # [n_ids] bool series a policy dropped
    ds_null: np.ndarray | None = None  # [n_rows] bool
    grid: TimeGrid | None = None
    min_length: int = 1  # observed points a series needs
    ticks: np.ndarray | None = None  # [n_rows] int64 grid position (the one below, when off the grid)
    on_grid: np.ndarray | None = None  # [n_rows] bool
    fits: np.ndarray | None = None  # [n_rows] bool y finite and within float32
    all_fit: bool = True  # fits.all()
    extent: _Extent | None = None


@dataclass(frozen=True)
class Finding:
    """What a check found: the structured cause that the report records and the policy acts on."""

    kind: str  # its PROBLEMS row
    codes: np.ndarray | None  # [k] codes of the series affected, ascending; None: the table as a whole
    counts: np.ndarray  # [k] (or [1] for the table) rows or observed points affected
    examples: list[str]  # [k] (or [1]) the first of them, as the report shows it
    rows: np.ndarray | None = None  # [n_rows] bool the rows found, for checks that remove rows


@dataclass(frozen=True)
class Check:
    stage: str  # what it reads: one of _STAGES
    find: Callable[[_Rows], Finding | None]
    sets_aside: bool = False  # the rows found are never laid out, whatever the policy says of their series


def _per_series(rows: _Rows, kind: str, found: np.ndarray, example: Callable[[int], str]) -> Finding | None:
    """The finding of the rows ``found``: per series, how many, and the first."""
    if not found.any():
        return None
    first_idx = np.flatnonzero(found)
    codes, first_pos = np.unique(rows.codes[first_idx], return_index=True)
    counts = np.bincount(rows.codes[found], minlength=len(rows.ids))[codes]
    return Finding(kind, codes, counts, [example(i) for i in first_idx[first_pos]], found)


def _null_id(rows: _Rows) -> Finding | None:
    """Rows with a null id or ds (after the as_of cutoff too: a null id is counted whatever its ds)."""
    assert rows.ds_null is not None  # set at stage "table"
    if not (rows.codes.min() < 0 or rows.ds_null.any()):
        return None
    null_rows = (rows.codes < 0) | rows.ds_null
    first = int(np.flatnonzero(null_rows)[0])
    return Finding("null_id", None, np.array([null_rows.sum()]), [f"row {first} has a null id or ds"], null_rows)


def _off_grid(rows: _Rows) -> Finding | None:
    assert rows.grid is not None and rows.on_grid is not None  # set from stage "grid" on
    ds, freq = rows.ds, rows.grid.freq
    return _per_series(rows, "off_grid", ~rows.on_grid, lambda i: f"ds={_fmt(ds[i])} not on freq {freq}")


def _duplicate(rows: _Rows) -> Finding | None:
    """Kept rows with the series and ds of the row before."""
    codes, ds = rows.codes, rows.ds
    dup = np.zeros(len(codes), bool)  # [n_rows]
    np.logical_and(codes[1:] == codes[:-1], ds[1:] == ds[:-1], out=dup[1:])
    dup &= rows.keep
    return _per_series(rows, "duplicate", dup, lambda i: f"ds={_fmt(ds[i])} appears more than once")


def _non_finite(rows: _Rows) -> Finding | None:
    """Kept rows with NaN, inf, or a value float32 cannot hold (the buffer is float32): all alike."""
    if rows.all_fit:
        return None
    assert rows.fits is not None  # set from stage "grid" on
    ds, y = rows.ds, rows.y
    return _per_series(rows, "non_finite", ~rows.fits & rows.keep, lambda i: f"ds={_fmt(ds[i])} y={y[i]}")


def _gap(rows: _Rows) -> Finding | None:
    """Series with grid steps missing between their first and last kept row."""
    e = rows.extent
    assert e is not None and rows.grid is not None  # set at stage "extent"
    gaps = e.span - e.counts  # [n_ids]
    if not (gaps > 0).any():
        return None
    # The first missing tick of each series: one step after the first row whose successor jumps.
    jump = np.flatnonzero((e.kt[1:] - e.kt[:-1] > 1) & (e.kc[1:] == e.kc[:-1]))
    codes, first = np.unique(e.kc[jump], return_index=True)
    first_missing = rows.grid.to_ds(e.kt[jump[first]] + 1)
    return Finding("gap", codes, gaps[codes], [f"first missing ds={_fmt(d)}" for d in first_missing])


def _constant(rows: _Rows) -> Finding | None:
    """Series with two or more observed values, all equal (to 1e-12, relative)."""
    e = rows.extent
    assert e is not None  # set at stage "extent"
    constant = e.present & (e.n_obs >= 2) & (e.hi - e.lo <= 1e-12 * np.maximum(1.0, np.abs(e.hi)))
    codes = np.flatnonzero(constant)
    if not len(codes):
        return None
    return Finding("constant", codes, e.n_obs[codes], [f"y={e.hi[c]:g} throughout" for c in codes])


def _too_short(rows: _Rows) -> Finding | None:
    """Series with fewer observed values than ``min_length``."""
    e, need = rows.extent, rows.min_length
    assert e is not None  # set at stage "extent"
    codes = np.flatnonzero(e.present & (e.n_obs < need))
    if not len(codes):
        return None
    return Finding("too_short", codes, e.n_obs[codes], [f"{e.n_obs[c]} observed points < {need} needed" for c in codes])


# The check of each PROBLEMS row with a policy (build_panel runs them in the catalogue's order).
CHECKS: dict[str, Check] = {
    "null_id": Check("table", _null_id, sets_aside=True),  # no series, or no place on the grid
    "off_grid": Check("grid", _off_grid),
    "duplicate": Check("grid", _duplicate, sets_aside=True),  # a row is never laid out twice
    "non_finite": Check("grid", _non_finite),
    "gap": Check("extent", _gap),
    "constant": Check("extent", _constant),
    "too_short": Check("extent", _too_short),
}


def _apply_policy(rows: _Rows, found: Finding, policy: str, report: ValidationReport) -> _Rows:
    """Report ``found`` with the action of its ``policy``, and take it: 'drop' removes the rows found
    (row-level problems) or their series; rows a check sets aside go whatever the policy. 'error' is
    raised once every check has run; 'fill' and 'keep' leave the rows to the layout, which masks
    non-finite values and gaps."""
    action = action_for(policy)
    if found.codes is None:
        report.add("*", found.kind, found.counts[0], found.examples[0], action)
    else:
        for code, count, example in zip(found.codes, found.counts, found.examples):
            report.add(rows.ids[code], found.kind, count, example, action)
    keep, drop_series = rows.keep, rows.drop_series
    row_level = PROBLEMS[found.kind].row_level
    if CHECKS[found.kind].sets_aside or (policy == "drop" and row_level):
        assert found.rows is not None  # such checks find rows
        keep = ~found.rows if keep is None else keep & ~found.rows
    if policy == "drop" and not row_level:
        drop_series = drop_series.copy()
        drop_series[found.codes] = True
    return dataclasses.replace(rows, keep=keep, drop_series=drop_series)


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
        report.add("*", "no_series_left", 0, "the input has zero rows", "error", EMPTY_INPUT)
        raise DataValidationError("invalid input data: the input has zero rows; supply at least one series", report)
    rows = _read_columns(table, data, report)
    rows = dataclasses.replace(rows, keep=_as_of_keep(as_of, rows, data.time_col, report))
    for kind, spec in PROBLEMS.items():  # in the catalogue's order, which is the order checks must run in
        if spec.policy is None:
            continue  # always fatal, or information: reported where the data it concerns is read
        check = CHECKS[kind]
        rows = _advance(rows, check.stage, data, min_length, report)
        found = check.find(rows)
        if found is not None:
            rows = _apply_policy(rows, found, getattr(data, spec.policy), report)
    rows = _advance(rows, "extent", data, min_length, report)
    report.raise_if_errors()
    assert rows.extent is not None  # set at stage "extent"
    kept_series = np.flatnonzero(~(rows.drop_series | ~rows.extent.present))
    report.n_series_out = len(kept_series)
    if len(kept_series) == 0:
        report.all_series_dropped(len(rows.ids))
    return _lay_out(rows, kept_series), report


def _read_columns(table: pa.Table, data: DataConfig, report: ValidationReport) -> _Rows:
    """The three columns as arrays (stage "table"); wrong column types are raised."""
    codes, ids = _id_codes(table.column(data.id_col), report)
    ds, ds_null = _time_values(table.column(data.time_col), data.time_col, report)
    y = _target_values(table.column(data.target_col), data.target_col, report)
    report.n_series_in = len(ids)
    if report.errors:  # wrong column types: nothing below can be checked meaningfully
        report.raise_if_errors()
    assert y is not None  # None only with a column_type error, raised above
    return _Rows("table", ids, codes, ds, y, keep=None, drop_series=np.zeros(len(ids), bool), ds_null=ds_null)


def _as_of_keep(as_of, rows: _Rows, name: str, report: ValidationReport) -> np.ndarray | None:
    """[n_rows] rows with ``ds <= as_of`` (None: all), reporting the others: dropped as future rows under
    the default cutoff 'now', information under a cutoff given."""
    if as_of is None:
        return None
    limit, is_now = _as_of_limit(as_of, rows.ds, name, report)
    assert rows.ds_null is not None  # set at stage "table"
    after = None if limit is None else (rows.ds > limit) & ~rows.ds_null
    if after is None or not after.any():
        return None
    if is_now:  # the default cutoff: rows dated in the future are typos or plans, not history
        first = rows.ds[int(np.flatnonzero(after)[0])]
        report.add(
            "*",
            "future_rows",
            int(after.sum()),
            f"ds={_fmt(first)} after now ({_fmt(limit)}); pass --as-of to choose the cutoff",
            "dropped",
        )
    else:
        report.add("*", "rows_after_as_of", int(after.sum()), f"ds > {_fmt(limit)}", "info")
    return ~after


def _advance(rows: _Rows, stage: str, data: DataConfig, min_length, report: ValidationReport) -> _Rows:
    """``rows`` at ``stage`` (or a later one): put on the grid once the table-order checks have run, then
    measured per series once the row checks have. Either step may raise (no rows, the freq, the grid)."""
    if rows.stage == "table" and stage != "table":
        rows = _onto_grid(rows, data, min_length, report)
    if rows.stage == "grid" and stage == "extent":
        rows = _measure(rows, data, report)
    return rows


def _onto_grid(rows: _Rows, data: DataConfig, min_length, report: ValidationReport) -> _Rows:
    """The rows kept, sorted by series then time, on the grid of the declared (or inferred) freq."""
    codes, ds, y, keep = rows.codes, rows.ds, rows.y, rows.keep
    if keep is not None and not keep.all():
        codes, ds, y = codes[keep], ds[keep], y[keep]
    codes, ds, y = _sort_rows(codes, ds, y)  # by series, then time; stable for equal keys
    if len(codes) == 0:
        report.add("*", "no_series_left", 0, "no rows left after as_of/null filtering", "error", NO_ROWS_LEFT)
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

    lo_y, hi_y = (y.min(), y.max()) if len(y) else (0.0, 0.0)  # NaN if any y is NaN
    all_fit = bool(-_F32_MAX <= lo_y and hi_y <= _F32_MAX)  # every value finite and within float32
    fits = np.ones(len(y), bool) if all_fit else np.abs(y) <= _F32_MAX  # [n_rows] False for NaN, inf, overflow
    return dataclasses.replace(
        rows,
        stage="grid",
        codes=codes,
        ds=ds,
        y=y,
        keep=np.ones(len(codes), bool),
        ds_null=None,
        grid=grid,
        min_length=min_length,
        ticks=ticks,
        on_grid=on_grid,
        fits=fits,
        all_fit=all_fit,
    )


def _measure(rows: _Rows, data: DataConfig, report: ValidationReport) -> _Rows:
    """Each series' extent on the grid, from the rows still kept, and what of it the float32 buffer will
    hold; a grid too large for its rows is refused."""
    keep, n_ids = rows.keep, len(rows.ids)
    assert keep is not None and rows.ticks is not None  # set from stage "grid" on
    assert rows.fits is not None and rows.grid is not None
    all_rows_kept = bool(keep.all())
    if all_rows_kept:  # the common case: no copies
        kc, kt, ky, finite = rows.codes, rows.ticks, rows.y, rows.fits
    else:
        kc, kt, ky, finite = rows.codes[keep], rows.ticks[keep], rows.y[keep], rows.fits[keep]
    # Rows are grouped by series, so each series' rows are one run: counts give the run boundaries.
    counts = np.bincount(kc, minlength=n_ids)  # [n_ids] kept rows per series
    present = counts > 0
    bounds = np.r_[0, np.cumsum(counts)]
    starts, ends = bounds[:-1][present], bounds[1:][present] - 1  # first and last row of each run
    first_tick = np.zeros(n_ids, np.int64)
    first_tick[present] = kt[starts]
    span = np.zeros(n_ids, np.int64)
    span[present] = kt[ends] - kt[starts] + 1
    kept_ds = rows.ds if all_rows_kept else rows.ds[keep]
    _check_grid_size(report, rows.ids, kc, kt, kept_ds, span, counts, present, rows.grid, bool(data.freq))

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
    extent = _Extent(all_rows_kept, kc, kt, counts, present, first_tick, span, n_obs, lo, hi)
    return dataclasses.replace(rows, stage="extent", extent=extent)


def _lay_out(rows: _Rows, kept_series: np.ndarray) -> Panel:
    """The series ``kept_series`` in one float32 buffer: slot = offsets[new_code] + tick - first_tick."""
    e, n_ids, codes, ticks, y = rows.extent, len(rows.ids), rows.codes, rows.ticks, rows.y
    assert e is not None and rows.grid is not None and ticks is not None  # set at stage "extent"
    assert rows.keep is not None and rows.fits is not None  # set from stage "grid" on
    new_code = np.full(n_ids, -1, np.int64)
    new_code[kept_series] = np.arange(len(kept_series))
    lengths = e.span[kept_series]
    offsets = np.zeros(len(kept_series) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if e.all_rows_kept and len(kept_series) == n_ids and offsets[-1] == len(codes):
        # Every row kept, distinct on-grid ticks, no gap: row i is slot i (the scatter is the identity).
        if rows.all_fit:
            values = y.astype(np.float32)  # [n_slots]
        else:
            values = np.where(rows.fits, y, np.nan).astype(np.float32)  # [n_slots] no overflow to inf
    else:
        base = np.zeros(n_ids, np.int64)  # slot of tick 0 of each kept series
        base[kept_series] = offsets[:-1] - e.first_tick[kept_series]
        laid = rows.keep if len(kept_series) == n_ids else rows.keep & (new_code[codes] >= 0)  # [n_rows]
        slot = base[codes[laid]] + ticks[laid]
        values = np.full(offsets[-1], np.nan, np.float32)  # [n_slots]
        ys = y[laid]
        values[slot] = np.where(np.abs(ys) <= _F32_MAX, ys, np.nan)  # no overflow to inf
    observed = np.isfinite(values)  # [n_slots]
    if not observed.all():
        values[~observed] = np.nan
    return Panel(
        ids=rows.ids[kept_series].astype(str).astype(object),
        values=values,
        observed=observed,
        offsets=offsets,
        first_tick=e.first_tick[kept_series].astype(np.int64),
        grid=rows.grid,
    )


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
    assert value is not None and not isinstance(value, str)  # as_of is not None; a str only for NOW
    if integer_ds:
        return np.int64(value), False
    assert not isinstance(value, int)  # an int against timestamps was raised above
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
