"""Frequencies: parse, infer, and map timestamps to integer grid positions ("ticks") and back.

A tick is the index of a timestamp on the regular grid ``anchor, anchor + freq, anchor + 2 freq, ...``.
Fixed frequencies (hours, days, minutes) use integer arithmetic on nanoseconds; calendar frequencies
(weeks, month/quarter/year starts or ends, business days) use a generated grid and ``searchsorted``.
Both are vectorised. Integer ``ds`` uses an integer step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from .errors import ConfigError

__all__ = ["parse_freq", "same_freq", "freq_unit", "infer_freq", "TimeGrid", "MAX_INT_STEP"]

_UNIT_BY_PREFIX = {"MS": "M", "ME": "M", "QS": "Q", "QE": "Q", "YS": "Y", "YE": "Y", "BMS": "M", "BME": "M"}


def _is_int_freq(freq: str) -> bool:
    return isinstance(freq, str) and freq.isascii() and freq.isdigit() and int(freq) > 0


# The longest step a grid may have. Longer steps are typos ('1000000000000D') whose arithmetic overflows
# int64 nanoseconds; the integer bound leaves int64 room for the grid positions of a few steps.
_MAX_STEP = pd.Timedelta(days=366 * 100)
MAX_INT_STEP = 2**62

_FREQ_HELP = (
    "Use a pandas alias such as 'h', 'D', 'W', 'MS', 'ME', 'QS', 'YS', '30min', or a positive "
    "integer step (e.g. '1') for integer ds"
)


def _bad_freq(freq, why: str) -> ConfigError:
    return ConfigError(f"freq={freq!r} is invalid: {why}. {_FREQ_HELP}")


def parse_freq(freq: str):
    """A pandas offset for a frequency alias, or the integer step for integer ``ds``.

    Refused: non-positive multiples ('0D', '-1D') and steps longer than a century ('1000000000000D'),
    whose grid arithmetic divides by zero, runs backwards or overflows.
    """
    if not isinstance(freq, str) or not freq.strip():
        raise _bad_freq(freq, "it must be a non-empty string")
    if _is_int_freq(freq):
        if int(freq) > MAX_INT_STEP:
            raise _bad_freq(freq, f"an integer step must be at most 2**62 ({MAX_INT_STEP})")
        return int(freq)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            off = to_offset(freq)
    except (ValueError, TypeError, OverflowError):
        raise _bad_freq(freq, "it is not a pandas frequency alias") from None
    if off.n < 1:
        raise _bad_freq(freq, f"the step must be positive (got {off.n} x {off.rule_code})")
    if _step_length(off) > _MAX_STEP:
        raise _bad_freq(freq, "the step is longer than a century")
    return off


def _step_length(off) -> pd.Timedelta:
    """The length of one step (its first step after 2000-01-01 for calendar offsets); a step too long for
    the arithmetic counts as infinite."""
    try:
        if _is_tick(off):
            return pd.Timedelta(off)
        start = pd.Timestamp("2000-01-01")
        return (start + off) - start
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
        return pd.Timedelta.max


def same_freq(a: str, b: str) -> bool:
    """Whether two aliases name one grid step ('W' and 'W-SUN', 'D' and '1D', '24h' and 'D')."""
    fa, fb = parse_freq(a), parse_freq(b)
    if isinstance(fa, int) or isinstance(fb, int):
        return fa == fb
    if fa == fb:
        return True
    try:
        return pd.Timedelta(fa) == pd.Timedelta(fb)
    except (ValueError, TypeError):
        return False


def freq_unit(freq: str) -> tuple[str, int]:
    """(base unit, multiple): '30min' -> ('min', 30); 'MS' -> ('M', 1); '1' -> ('int', 1)."""
    off = parse_freq(freq)
    if isinstance(off, int):
        return "int", off
    prefix = off._prefix  # noqa: SLF001 - the stable short code of the offset class
    return _UNIT_BY_PREFIX.get(prefix, prefix), off.n


def infer_freq(ds: pd.Series | np.ndarray, codes: np.ndarray) -> str:
    """Infer the frequency from the most common step within series (``ds`` sorted by (code, ds)).

    Daily data never dated on a weekend whose skipped days are mostly weekends is business days, ``B``.
    """
    values = np.asarray(ds)
    same = codes[1:] == codes[:-1]
    if np.issubdtype(values.dtype, np.integer):
        diffs = np.diff(values)[same]
        diffs = diffs[diffs > 0]
        if diffs.size == 0:
            raise ConfigError("freq cannot be inferred: no series has two distinct ds values; pass freq")
        return str(int(np.gcd.reduce(diffs)))
    ns = _as_ns(values)
    steps = np.diff(ns)
    step = _one_step(steps, same)
    if step is None:  # irregular: the most common positive step
        diffs = steps[same]
        diffs = diffs[diffs > 0]
        if diffs.size == 0:
            raise ConfigError("freq cannot be inferred: no series has two distinct timestamps; pass freq")
        step = _most_common(diffs)
    step = pd.Timedelta(step)
    day = pd.Timedelta(days=1)
    if step == day and _business_days(ns, steps, same):
        # As 'D', every weekend would be a two-slot gap, no training window fully observed, and
        # forecasts dated on Saturdays.
        return "B"
    if step < pd.Timedelta(days=28) and step != 7 * day:
        if step % day == pd.Timedelta(0):
            # to_offset(1 day).freqstr is '24h' in pandas 3, which would make daily data look sub-daily
            # (season_length 1 and horizon 1 instead of 7 and 14): name whole days as days.
            return "D" if step == day else f"{step // day}D"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return to_offset(step).freqstr
    # Calendar frequencies: let pandas name the rule from the longest gap-free run of one series.
    # A run, not a whole series: one missing month anywhere must not make the inference fail.
    breaks = ~same | (steps <= 0) | (steps > 1.5 * step.value)  # new series, duplicate or gap
    first = np.flatnonzero(np.r_[True, breaks])
    lengths = np.diff(np.r_[first, len(values)])
    i = int(np.argmax(lengths))
    run = pd.DatetimeIndex(values[first[i] : first[i] + min(lengths[i], 200)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = pd.infer_freq(run) if len(run) >= 3 else None
    if name is None:
        raise ConfigError(
            f"freq cannot be inferred (most common step {step}, irregular calendar spacing); pass freq, "
            "e.g. 'W', 'MS' or 'QS'"
        )
    return name if isinstance(name, str) else name.freqstr


@dataclass(frozen=True)
class TimeGrid:
    """The regular grid ``anchor + k * freq`` that every series of a panel lives on."""

    freq: str
    anchor: Any  # pd.Timestamp, or int for integer ds

    @property
    def is_integer(self) -> bool:
        return _is_int_freq(self.freq)

    @classmethod
    def for_values(cls, freq: str, ds_min, ds=None) -> "TimeGrid":
        off = parse_freq(freq)
        if isinstance(off, int):
            rel = None if ds is None else np.asarray(ds, np.int64) - int(ds_min)
            return cls(freq, int(ds_min) - _phase_shift(rel, off, in_place=True))
        ts = pd.Timestamp(ds_min)
        if not _is_tick(off):
            return cls(freq, off.rollback(ts))
        if ds is not None:
            rel = np.subtract(_as_ns(ds), ts.value)  # one temporary, reused for the phase below
            ts = ts - pd.Timedelta(_phase_shift(rel, pd.Timedelta(off).value, in_place=True), "ns")
        return cls(freq, ts)

    def to_ticks(self, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ticks int64, on_grid bool) for every ``ds``. Off-grid values get the tick just below."""
        off = parse_freq(self.freq)
        if isinstance(off, int):
            rel = np.asarray(ds, dtype=np.int64) - self.anchor
            return rel // off, rel % off == 0
        ns = _as_ns(ds)
        if _is_tick(off):
            step = pd.Timedelta(off).value
            rel = ns - pd.Timestamp(self.anchor).value
            ticks, phase = np.divmod(rel, step, out=(np.empty_like(rel), rel))  # the phase overwrites rel
            return ticks, phase == 0
        end = pd.Timestamp(ns.max()) if ns.size else pd.Timestamp(self.anchor)
        grid = pd.date_range(self.anchor, end + off, freq=off).asi8  # [n_grid]
        ticks = np.searchsorted(grid, ns, side="right") - 1
        on_grid = grid[np.clip(ticks, 0, len(grid) - 1)] == ns
        return ticks.astype(np.int64), on_grid

    def has_room(self, last_tick: int, steps: int) -> bool:
        """Whether the grid positions up to ``last_tick + steps`` have representable ``ds`` (int64 for
        integer ds, datetime64[ns] up to 2262-04-11 for timestamps): a forecast after ``last_tick`` fits."""
        off = parse_freq(self.freq)
        end = int(last_tick) + int(steps)
        if isinstance(off, int):
            return _I64_MIN <= int(self.anchor) + end * off <= _I64_MAX
        if _is_tick(off):
            return _I64_MIN < pd.Timestamp(self.anchor).value + end * pd.Timedelta(off).value <= _I64_MAX
        try:
            (pd.Timestamp(self.anchor) + end * off).as_unit("ns")
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            return False
        return True

    def to_ds(self, ticks: np.ndarray):
        """The ``ds`` values at grid positions ``ticks`` (numpy datetime64[ns] or int64).

        Raises DataValidationError where a position has no representable ``ds`` (int64 wrap-around would
        write wrong timestamps silently)."""
        ticks = np.asarray(ticks, dtype=np.int64)
        if ticks.size and not self.has_room(int(ticks.max()), 0):
            from .errors import DataValidationError

            raise DataValidationError(
                f"invalid input data: no_room: ds at grid position {int(ticks.max())} of freq {self.freq} after "
                f"{self.anchor} is beyond the representable range; renumber or shift ds"
            )
        off = parse_freq(self.freq)
        if isinstance(off, int):
            return self.anchor + ticks * off
        if _is_tick(off):
            step = pd.Timedelta(off).value
            return (pd.Timestamp(self.anchor).value + ticks * step).astype("datetime64[ns]")
        n = int(ticks.max()) + 1 if ticks.size else 1
        grid = pd.date_range(self.anchor, periods=n, freq=off).asi8
        return grid[ticks].astype("datetime64[ns]")


_NS_PER_DAY = 86_400 * 10**9
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _business_days(ns: np.ndarray, steps: np.ndarray, same: np.ndarray) -> bool:
    """Daily timestamps that look like a business-day calendar: none falls on a Saturday or Sunday, and
    most steps that skip days (within a series) are Friday -> Monday ones; the others are holidays or gaps.

    ``ns``: int64 nanoseconds sorted by (series, ds); ``steps = diff(ns)``; ``same``: step within a series.
    """
    weekday = (ns // _NS_PER_DAY + 3) % 7  # [n] Monday = 0: 1970-01-01 was a Thursday
    if (weekday >= 5).any():
        return False
    skips = same & (steps > _NS_PER_DAY)  # [n - 1]
    weekends = np.count_nonzero(skips & (steps == 3 * _NS_PER_DAY) & (weekday[:-1] == 4))
    return bool(weekends > 0 and 2 * weekends > np.count_nonzero(skips))  # already a bool: typed np.bool


def _as_ns(values) -> np.ndarray:
    """int64 nanoseconds of timestamps, without a copy when they are datetime64[ns] already."""
    return np.asarray(values).astype("datetime64[ns]", copy=False).view(np.int64)


def _one_step(steps: np.ndarray, same: np.ndarray) -> int | None:
    """The step when every step within a series is one and the same positive value (regular data: a
    few passes, no sort), else None."""
    n_same = int(np.count_nonzero(same))
    if n_same == 0:
        return None
    first = steps[int(np.argmax(same))]
    if first <= 0 or np.count_nonzero(same & (steps == first)) != n_same:
        return None
    return int(first)


def _most_common(values: np.ndarray) -> int:
    """The most frequent value (the smallest of equally frequent ones), as ``np.unique`` + ``argmax``.

    Regular data has one value throughout (one step, one phase): checked in one pass, without the sort.
    """
    first = values[0]
    if (values == first).all():
        return int(first)
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[np.argmax(counts)])


def _phase_shift(rel: np.ndarray | None, step: int, in_place: bool = False) -> int:
    """How far below ``ds_min`` the grid anchor lies so that the most common phase is on the grid.

    Not ``ds_min`` itself: one off-grid earliest timestamp (e.g. 00:30 in hourly data) would shift the
    whole grid and flag every other row as off-grid (and drop them with 'drop').
    ``rel`` is ``ds - ds_min`` (>= 0) in grid units; the result is in ``[0, step)``. ``in_place``: ``rel`` is
    a temporary of the caller's and may be overwritten (saves one array the size of the data).
    """
    if rel is None or len(rel) == 0:
        return 0
    phase = _most_common(np.remainder(rel, step, out=rel if in_place else None))
    return (step - phase) % step


def _is_tick(off) -> bool:
    """Fixed-length steps (ns arithmetic). ``Day`` is not a Tick in pandas 3, but ds is tz-naive here."""
    return isinstance(off, (pd.offsets.Tick, pd.offsets.Day))
