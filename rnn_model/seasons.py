"""The second, longer season of sub-daily data (the week), and the data-driven choice to use it.

Sub-daily data has two seasons: the day (``data.season_length``, the anchor's lag) and the week. With
``model.long_season = None`` (the default) the week is used where the training data say it matters: its
in-sample seasonal-naive error, lag one week, is clearly below the daily one (:data:`WEEK_MUST_WIN`). It
then becomes ``model.long_season`` (the head also reads the value one week before each output step), the
input window grows to hold it, and the recurrent layers keep reading the window they read without it
(``model.rnn_steps``). Why a rule and not always: a week-long window needs two weeks of history per series
and data without a weekly pattern gains nothing from it. Measured (``benchmarks/RESULTS.md``, "A weekly lag
for sub-daily data"): on half-hourly electricity demand (taylor) the week cut the test MASE from 1.07 to
0.17; on hourly electricity prices (epf) it lost on four test days in the week after Christmas, where the
week before misleads any weekly method, and won on origins a week apart.

Only the part of each series before its validation and test horizons is read (``make_split``), so the
choice never sees a window that scores the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ForecastConfig, week_length_for
from .panel import Panel
from .windowing import make_split

__all__ = ["WEEK_MUST_WIN", "LongSeasonChoice", "week_length", "choose_long_season", "describe_choice"]

# The week is used when the median over series of (weekly-naive MAE / daily-naive MAE) on the training
# part is below this: a clear win, as a week-long window costs longer inputs and drops shorter series.
WEEK_MUST_WIN = 0.9
# A series takes part in the choice with at least this many weeks of training part (one to look back
# over, one to score); the week is not used unless at least half of the series take part.
MIN_WEEKS = 2


@dataclass(frozen=True)
class LongSeasonChoice:
    """What :func:`choose_long_season` decided, and on what (``ratio``: the median MAE ratio; NaN when
    it was not measured)."""

    long_season: int
    ratio: float
    series_measured: int
    reason: str


def week_length(config: ForecastConfig) -> int:
    """Steps in a week for sub-daily data whose season is the day (0 otherwise: no second season)."""
    freq, m = config.data.freq, config.data.season_length
    return week_length_for(freq, m) if freq is not None and m is not None else 0


def choose_long_season(panel: Panel, config: ForecastConfig) -> tuple[ForecastConfig, LongSeasonChoice]:
    """Resolve ``model.long_season = None`` for ``panel`` (``config`` resolved for its freq); a config
    with ``long_season`` set is returned as it is. With the week chosen, ``input_size`` becomes at least
    a week and ``rnn_steps`` the input size it had (unless set). An ``input_size`` set by hand shorter
    than a week has already turned the week off (``config.resolve``): it is never widened."""
    model, window = config.model, config.window
    if model.long_season is not None:
        return config, LongSeasonChoice(model.long_season, float("nan"), 0, "model.long_season set")
    week = week_length(config)
    off = config.replace(model={"long_season": 0})
    if not week:
        return off, LongSeasonChoice(0, float("nan"), 0, "no weekly season (not sub-daily data with a daily season)")
    if model.anchor == "none":
        return off, LongSeasonChoice(0, float("nan"), 0, "anchor 'none' (the long-season lag needs an anchor)")
    m = config.data.season_length
    assert m is not None  # week_length returned 0 otherwise
    upto = make_split(panel, window).train_end  # [n_series] the part before the held-out horizons
    ratios = _naive_mae_ratios(panel, upto, m, week)  # [n_series] NaN where not measured
    measured = np.isfinite(ratios)
    n = int(measured.sum())
    if n == 0 or 2 * n < panel.n_series:
        why = f"{n} of {panel.n_series} series have {MIN_WEEKS} weeks ({MIN_WEEKS * week} steps) before their held-out horizons"
        return off, LongSeasonChoice(0, float("nan"), n, why)
    ratio = float(np.median(ratios[measured]))
    if ratio >= WEEK_MUST_WIN:
        why = f"weekly naive / daily naive MAE = {ratio:.3f} >= {WEEK_MUST_WIN} (median of {n} series)"
        return off, LongSeasonChoice(0, ratio, n, why)
    input_size = window.input_size
    assert input_size is not None  # filled in by config.resolve
    chosen = config.replace(
        model={"long_season": week, "rnn_steps": model.rnn_steps or input_size},
        window={"input_size": max(input_size, week)},
    )
    why = f"weekly naive / daily naive MAE = {ratio:.3f} < {WEEK_MUST_WIN} (median of {n} series)"
    return chosen, LongSeasonChoice(week, ratio, n, why)


def _naive_mae_ratios(panel: Panel, upto: np.ndarray, m: int, week: int) -> np.ndarray:
    """Per series, on the same targets ``t`` in ``[week, upto)`` (both lags observed): MAE of ``y[t - week]``
    over MAE of ``y[t - m]``. NaN for a series with under ``MIN_WEEKS`` weeks before ``upto`` or a zero
    daily error."""
    per_slot = np.repeat(np.arange(panel.n_series), panel.lengths)  # [n_slots] series of each slot
    slot = np.arange(len(panel.values))
    rel = slot - panel.offsets[per_slot]  # [n_slots] position within its series
    ok = (rel >= week) & (rel < upto[per_slot]) & panel.observed
    ok[ok] &= panel.observed[slot[ok] - week] & panel.observed[slot[ok] - m]
    t = slot[ok]
    y = panel.values.astype(np.float64)
    series = per_slot[ok]
    weekly = np.bincount(series, weights=np.abs(y[t] - y[t - week]), minlength=panel.n_series)
    daily = np.bincount(series, weights=np.abs(y[t] - y[t - m]), minlength=panel.n_series)
    enough = upto >= MIN_WEEKS * week
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(enough & (daily > 0), weekly / daily, np.nan)


def describe_choice(choice: LongSeasonChoice) -> str:
    """One line for the data-quality report and the log ("" when the config set no second season)."""
    if choice.reason == "model.long_season set":
        return f"model.long_season = {choice.long_season} (configured)" if choice.long_season else ""
    used = f"the week ({choice.long_season} steps) used" if choice.long_season else "the week not used"
    return f"{used}: {choice.reason}"
