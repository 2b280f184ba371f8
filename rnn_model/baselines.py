"""Naive and seasonal-naive forecasts: the yardsticks and the fallback when no model can forecast."""

from __future__ import annotations

import numpy as np

from .panel import Panel

__all__ = ["baseline_forecasts", "seasonal_naive_scale"]


def _ffilled(panel: Panel) -> np.ndarray:
    """Values with unobserved slots replaced by the previous observed value of the same series."""
    idx = np.where(panel.observed, np.arange(len(panel.values)), -1)
    idx = np.maximum.accumulate(idx)  # [n_slots] last observed slot at or before each slot
    per_slot = np.repeat(np.arange(panel.n_series), panel.lengths)
    ok = idx >= panel.offsets[per_slot]  # it belongs to the same series
    out = np.where(ok, panel.values[np.maximum(idx, 0)], np.nan)
    return out.astype(np.float64)


def baseline_forecasts(
    panel: Panel, series_idx: np.ndarray, target_start: np.ndarray, horizon: int, season_length: int
) -> dict[str, np.ndarray]:
    """Forecasts of ``horizon`` steps from origin ``target_start`` (relative slot) for each window.

    naive: the last value before the origin. seasonal_naive: the value one season earlier
    (``y[t - m + (k mod m)]``); where the series has less than one season of history it is naive.
    Returns ``{"naive": [n, horizon], "seasonal_naive": [n, horizon]}``.
    """
    filled = _ffilled(panel)
    base = panel.offsets[series_idx] + target_start  # [n] buffer slot of the first target
    last = filled[np.maximum(base - 1, 0)]  # [n]
    naive = np.repeat(last[:, None], horizon, axis=1)  # [n, horizon]
    k = np.arange(horizon)
    # Step k copies the value one season before its own phase, slot base - m + (k mod m): always before
    # the origin (no leakage), in the right phase for every k, also k >= m.
    src = base[:, None] - season_length + (k % season_length)[None, :]  # [n, horizon]; always < base
    has_season = (target_start >= season_length)[:, None]
    seasonal = np.where(has_season, filled[np.clip(src, 0, len(filled) - 1)], naive)
    seasonal = np.where(np.isnan(seasonal), naive, seasonal)
    return {"naive": naive, "seasonal_naive": seasonal}


def seasonal_naive_scale(panel: Panel, upto: np.ndarray, season_length: int) -> np.ndarray:
    """MASE denominator per series: in-sample MAE of the seasonal-naive forecast on ``[0, upto[i])``.

    Falls back to lag 1 where a series has less than one season, and is NaN where it is still zero.
    """
    per_slot = np.repeat(np.arange(panel.n_series), panel.lengths)
    rel = np.arange(len(panel.values)) - panel.offsets[per_slot]
    out = np.full(panel.n_series, np.nan)
    for lag in (season_length, 1):
        cur = np.arange(len(panel.values))
        ok = (rel >= lag) & (rel < upto[per_slot]) & panel.observed
        ok[ok] &= panel.observed[cur[ok] - lag]
        diff = np.abs(panel.values[cur[ok]].astype(np.float64) - panel.values[cur[ok] - lag])
        count = np.bincount(per_slot[ok], minlength=panel.n_series)
        mae = np.bincount(per_slot[ok], weights=diff, minlength=panel.n_series) / np.maximum(count, 1)
        fill = np.isnan(out) & (count > 0) & (mae > 0)
        out[fill] = mae[fill]
    return out
