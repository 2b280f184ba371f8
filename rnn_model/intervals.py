"""Conformal prediction intervals, calibrated and applied in one place.

Calibration (at evaluation, and for the seasonal-naive fallback when there is no model): per model and
horizon step, the conformal quantile of the scaled absolute errors ``|y - y_hat| / scale`` on windows the
model never trained on, ``scale`` the series' in-sample seasonal-naive MAE (the MASE denominator), so one
quantile serves series of any level. Application (at prediction): ``y_hat +- quantile[step] x scale``,
with two per-series rules:

- a series that never varied (constant: its seasonal-naive MAE is 0) gets zero-width bounds, equal to the
  forecast: there is no error scale to widen by, and the bounds stay finite instead of NaN;
- a series whose observed history is never negative gets its bounds clipped at 0.

Where a bound cannot be given, it is NaN and the reason is recorded (``frame.attrs["intervals"]``);
levels with too few scores for the finite-sample guarantee are flagged (``"too_few"``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .baselines import baseline_forecasts, seasonal_naive_scale
from .config import ForecastConfig
from .panel import Panel, constant_series
from .windowing import make_split

__all__ = [
    "INTERVAL_LEVELS",
    "conformal_quantile",
    "too_few_scores",
    "interval_quantiles",
    "calibration_origins",
    "calibrate_intervals",
    "add_intervals",
]

INTERVAL_LEVELS = (80, 95)  # nominal coverage (%) of the prediction intervals


def _rank(n: int, level: float) -> int:
    """``ceil((n + 1) * level)``, the rank of the conformal quantile; rounded first so that float error
    (``25 * 0.56 = 14.000000000000002``) does not push an exact rank one up."""
    return math.ceil(round((n + 1) * level, 9))


def too_few_scores(n: int, level: float) -> bool:
    """True when ``n`` scores are too few for the finite-sample guarantee at ``level`` (in (0, 1)):
    ``ceil((n + 1) * level) > n``, i.e. ``n < level / (1 - level)``; the quantile is then the largest
    score and the interval may cover less than nominal."""
    return _rank(n, level) > n


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split-conformal quantile of nonconformity ``scores`` for nominal coverage ``level`` (in (0, 1)):
    the ``ceil((n + 1) * level)``-th smallest score (the largest one when there are too few scores for
    the finite-sample guarantee, see :func:`too_few_scores`); NaN without any finite score."""
    v = np.sort(np.asarray(scores, np.float64)[np.isfinite(scores)])
    if len(v) == 0:
        return float("nan")
    k = min(_rank(len(v), level), len(v))
    return float(v[max(k, 1) - 1])


def interval_quantiles(forecasts: pd.DataFrame, scales: pd.Series, levels=INTERVAL_LEVELS) -> dict:
    """Per-model, per-horizon-step conformal quantiles of the scaled absolute errors of a backtest.

    ``scales``: the error scale by unique_id (series without a finite, positive one are skipped). Returns
    ``{"levels": [80, 95], "scale": "seasonal_naive_mae", "models": {model: {"80": [q_1..q_h], ...}},
    "n": {model: [count_1..count_h]}, "too_few": {model: {"95": [steps...]}}}``; ``too_few`` lists, per
    model and level, only the steps whose count is below the finite-sample rule (empty when none is).
    """
    df = forecasts[["unique_id", "horizon_step", "model", "y", "y_hat"]]
    scale = df["unique_id"].map(scales).astype(float).to_numpy()
    err = np.abs(df["y"].to_numpy(np.float64) - df["y_hat"].to_numpy(np.float64)) / scale
    err = np.where(np.isfinite(err), err, np.nan)
    h = int(df["horizon_step"].max()) if len(df) else 0
    models: dict[str, dict[str, list[float]]] = {}
    counts: dict[str, list[int]] = {}
    for label in sorted(df["model"].unique()):
        rows = (df["model"] == label).to_numpy()
        steps = df["horizon_step"].to_numpy()[rows]
        errs = err[rows]
        by_step = [errs[steps == s] for s in range(1, h + 1)]
        models[str(label)] = {str(lv): [conformal_quantile(e, lv / 100.0) for e in by_step] for lv in levels}
        counts[str(label)] = [int(np.isfinite(e).sum()) for e in by_step]
    return {
        "levels": [int(lv) for lv in levels],
        "scale": "seasonal_naive_mae",
        "models": models,
        "n": counts,
        "too_few": _too_few(counts, levels),
    }


def _too_few(counts: dict[str, list[int]], levels) -> dict[str, dict[str, list[int]]]:
    """``{model: {level: [1-based steps]}}`` of the steps with too few scores; models/levels without any
    are left out, so an empty dict means every level is backed by enough scores."""
    out: dict[str, dict[str, list[int]]] = {}
    for label, per_step in counts.items():
        for lv in levels:
            steps = [s + 1 for s, n in enumerate(per_step) if too_few_scores(int(n), int(lv) / 100.0)]
            if steps:
                out.setdefault(label, {})[str(int(lv))] = steps
    return out


def calibration_origins(panel: Panel, config: ForecastConfig, first: np.ndarray, min_scores: int):
    """Origins (relative slot of the first target) from ``first[i]`` to the last full horizon of every
    series: the non-overlapping horizons counted back from the end, plus intermediate origins (stride 1
    at most) until every horizon step has about ``min_scores`` errors over the panel, so a panel of one
    or a few series gets enough scores too. Only windows whose input and targets are fully observed
    are kept. Returns ``(series_idx [n], origin [n])``.
    """
    w, h = config.window, config.window.horizon
    assert w.input_size is not None and h is not None  # filled in by config.resolve
    lengths = panel.lengths.astype(np.int64)
    last = lengths - h  # [n_series] origin of the last full horizon
    span = int(max(0, (last - first).max())) if panel.n_series else 0
    per_series = math.ceil(min_scores / max(panel.n_series, 1))
    shifts = np.unique(np.round(np.linspace(0, span, min(span + 1, max(per_series, 1)))).astype(np.int64))
    shifts = np.union1d(shifts, np.arange(0, span + 1, h))  # always the non-overlapping horizons
    series_idx = np.repeat(np.arange(panel.n_series), len(shifts))  # [n_series * n_shifts]
    origin = (last[:, None] - shifts[None, :]).reshape(-1)  # [n_series * n_shifts]
    keep = (origin >= w.input_size) & (origin >= first[series_idx])
    span_slots = panel.offsets[series_idx][:, None] + origin[:, None] + np.arange(-w.input_size, h)  # [n, in + h]
    keep &= panel.observed[np.clip(span_slots, 0, len(panel.values) - 1)].all(axis=1)
    return series_idx[keep], origin[keep]


def calibrate_intervals(forecasters: dict, panel: Panel, config: ForecastConfig, min_scores: int = 200) -> dict:
    """Conformal interval quantiles from windows the models never saw: dense origins (see
    :func:`calibration_origins`) in the held-out test horizons of every series (``make_split``: not the
    validation horizons, which chose the stopping epoch). Without a model (``forecasters`` empty: the
    seasonal-naive fallback) every window of the history may calibrate. Naive and seasonal naive are
    always calibrated.

    Too little history is not an error: without any window, ``"windows"`` is 0 and ``"models"`` empty,
    and :func:`add_intervals` says so for the rows it cannot bound.
    """
    m, h = config.data.season_length, config.window.horizon
    assert m is not None and h is not None  # filled in by config.resolve
    lengths = panel.lengths.astype(np.int64)
    first = make_split(panel, config.window).val_end if forecasters else np.zeros_like(lengths)
    series_idx, origin = calibration_origins(panel, config, first, min_scores)
    target_slots = panel.offsets[series_idx][:, None] + origin[:, None] + np.arange(h)  # [n, h]
    y = panel.values[target_slots].astype(np.float64)  # [n, h]
    preds = baseline_forecasts(panel, series_idx, origin, h, m)
    for label, fc in forecasters.items():
        y_hat, covered = fc.forecast_at(panel, series_idx, origin)
        preds[label] = np.where(covered[:, None], y_hat, preds["seasonal_naive"])
    ids = np.repeat(panel.ids[series_idx].astype(str), h)  # [n * h]
    steps = np.tile(np.arange(1, h + 1), len(series_idx))  # [n * h]
    frame = pd.concat(
        [
            pd.DataFrame(
                {"unique_id": ids, "horizon_step": steps, "model": label, "y": y.reshape(-1), "y_hat": p.reshape(-1)}
            )
            for label, p in preds.items()
        ],
        ignore_index=True,
    )
    # The scale of the scores: the seasonal-naive MAE before the calibrated horizons (evaluation.mase_scales);
    # the fallback's, like the bounds it is applied with, over the whole history.
    upto = first if forecasters else lengths
    scales = pd.Series(seasonal_naive_scale(panel, upto, m), index=panel.ids.astype(str))
    return {**interval_quantiles(frame, scales), "windows": int(len(series_idx))}


def _series_facts(panel: Panel, season_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per series over its whole observed history: the error scale (seasonal-naive MAE; 0 for a constant
    series, NaN without two consecutive observed values), whether it is constant, and whether it is never
    negative. Returns three ``[n_series]`` arrays."""
    scale = seasonal_naive_scale(panel, panel.lengths.astype(np.int64), season_length)  # [n_series]
    starts = panel.offsets[:-1]
    lo = np.minimum.reduceat(np.where(panel.observed, panel.values, np.inf), starts)  # [n_series]
    n_obs = np.add.reduceat(panel.observed.astype(np.int64), starts)
    constant = constant_series(panel)
    scale = np.where(constant, 0.0, scale)
    return scale, constant, (n_obs > 0) & (lo >= 0)


def _stored_quantiles(qs, h: int) -> np.ndarray:
    """Stored per-step quantiles as ``[h]`` floats (JSON null -> NaN); a calibration shorter than the
    horizon repeats its last step."""
    qs = np.asarray([np.nan if v is None else v for v in qs], np.float64)
    if len(qs) < h:
        qs = np.r_[qs, np.full(h - len(qs), qs[-1] if len(qs) else np.nan)]
    return qs[:h]


def _too_few_of(intervals: dict, label: str, levels) -> dict[str, list[int]]:
    """The ``too_few`` steps of one model: stored ones, else derived from the stored counts ``n``."""
    stored = intervals.get("too_few")
    if isinstance(stored, dict):
        return {str(k): list(v) for k, v in stored.get(label, {}).items()}
    counts = intervals.get("n", {}).get(label)
    return _too_few({label: counts}, levels).get(label, {}) if counts else {}


def add_intervals(
    frame: pd.DataFrame,
    panel: Panel,
    config: ForecastConfig,
    intervals: dict | None,
    model_label: str = "challenger",
    min_scores: int = 200,
) -> pd.DataFrame:
    """Add ``y_lo_<L>, y_hi_<L>`` (L in 80, 95) to a :func:`prediction.future_frame` (it still has ``source``).

    ``y_hat +- q[step] * scale(series)``, ``q`` the stored per-step quantiles of the model (rows with
    ``source == "model"``) or of seasonal naive (fallback rows), ``scale`` the series' in-sample
    seasonal-naive MAE; constant series get zero width, never-negative series are clipped at 0. Without
    stored seasonal-naive quantiles (no model yet) they are calibrated on the panel itself, on dense
    origins (:func:`calibrate_intervals` with ``min_scores``).

    ``frame.attrs["intervals"]`` records ``{"missing": {reason: {"series": count, "examples": [unique_id,
    ...]}}, "too_few": {model: {level: [steps]}}}``: why some rows have NaN bounds (too little history to
    calibrate, no stored quantile for a level, no error scale), and which applied levels lack the
    finite-sample guarantee.
    """
    h, m = config.window.horizon, config.data.season_length
    assert h is not None and m is not None  # filled in by config.resolve
    intervals = intervals or {}
    models = dict(intervals.get("models", {}))
    levels = [int(lv) for lv in intervals.get("levels", INTERVAL_LEVELS)]
    is_model = (frame["source"] == "model").to_numpy()
    used = [(label, mask) for label, mask in ((model_label, is_model), ("seasonal_naive", ~is_model)) if mask.any()]
    too_few = {label: _too_few_of(intervals, label, levels) for label, _ in used if label in models}
    why_none = {label: f"no {{lv}} % quantile for {label}" for label, _ in used}  # per label; {lv} filled below
    if "seasonal_naive" not in models and (~is_model).any():
        own = calibrate_intervals({}, panel, config, min_scores)
        if own["windows"] == 0:  # the expected failure: every series too short (or gappy) to calibrate on
            w = config.window
            assert w.input_size is not None  # filled in by config.resolve
            need = w.input_size + h  # the fallback calibrates on any window of the history
            why_none["seasonal_naive"] = (
                f"no calibration window for seasonal_naive: no series has input_size + "
                f"horizon = {need} fully observed points"
            )
        else:
            models["seasonal_naive"] = own["models"]["seasonal_naive"]
            too_few["seasonal_naive"] = own["too_few"].get("seasonal_naive", {})

    scale, constant, non_negative = _series_facts(panel, m)  # [n_series] each
    idx = pd.Index(panel.ids.astype(str)).get_indexer(frame["unique_id"].astype(str))  # [rows], -1 if unknown
    known = idx >= 0
    row_scale = np.where(known, scale[np.clip(idx, 0, None)], np.nan)
    row_constant = known & constant[np.clip(idx, 0, None)]
    row_clip = known & non_negative[np.clip(idx, 0, None)]
    steps = np.clip(frame["horizon_step"].to_numpy(np.int64) - 1, 0, h - 1)
    y_hat = frame["y_hat"].to_numpy(np.float64)
    ids = frame["unique_id"].astype(str).to_numpy()
    missing: dict[str, set] = {}

    def note(reason: str, rows: np.ndarray) -> None:
        if rows.any():
            missing.setdefault(reason, set()).update(ids[rows])

    for lv in levels:
        q = np.full(len(frame), np.nan)
        for label, mask in used:
            qs = models.get(label, {}).get(str(lv))
            if qs is None:
                note(why_none[label].format(lv=lv), mask & ~row_constant)
                continue
            q[mask] = _stored_quantiles(qs, h)[steps[mask]]
            note(
                f"{lv} % quantile of {label} is NaN at some steps (no finite score)", mask & ~row_constant & np.isnan(q)
            )
        width = np.where(row_constant, 0.0, q * row_scale)  # a constant series: the forecast itself
        note("no error scale: no two consecutive observed values that differ", np.isfinite(q) & ~np.isfinite(width))
        lo, hi = y_hat - width, y_hat + width
        frame[f"y_lo_{lv}"] = np.where(row_clip, np.maximum(lo, 0.0), lo)  # NaN stays NaN
        frame[f"y_hi_{lv}"] = np.where(row_clip, np.maximum(hi, 0.0), hi)
    # Counts and a few examples, not every id: pandas copies attrs along with the frame.
    frame.attrs["intervals"] = {
        "missing": {reason: {"series": len(v), "examples": sorted(v)[:5]} for reason, v in missing.items()},
        "too_few": {label: v for label, v in too_few.items() if v},
    }
    return frame
