"""Metrics (MAE, RMSE, sMAPE, MASE), baselines on the same windows, rolling-origin backtest.

MASE divides each series' MAE by its in-sample seasonal-naive MAE (before the first evaluated target);
the overall MASE is the mean over series, as in the M4 competition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace

import numpy as np
import pandas as pd

from .baselines import baseline_forecasts, seasonal_naive_scale
from .config import ForecastConfig
from .panel import Panel

__all__ = [
    "backtest", "score", "Scores", "evaluate", "mase_scales", "conformal_quantile", "interval_quantiles",
    "calibrate_intervals", "INTERVAL_LEVELS",
]

METRICS = ["mae", "rmse", "smape", "mase"]
INTERVAL_LEVELS = (80, 95)  # nominal coverage (%) of the prediction intervals


def backtest(
    forecasters: dict,
    panel: Panel,
    config: ForecastConfig,
    n_windows: int | None = None,
) -> pd.DataFrame:
    """Rolling-origin backtest without refitting: the last ``n_windows`` horizons of every series.

    ``forecasters`` maps a label ("rnn", "champion") to a :class:`Forecaster`; naive and seasonal naive
    are always added. All models are scored on exactly the same windows; a window is kept only when
    its inputs and targets are fully observed. Where a forecaster cannot cover a window (unknown series, gap in the
    input) it falls back to seasonal naive, as it would in production.
    Returns long format ``unique_id, cutoff, ds, horizon_step, y, y_hat, model``.
    """
    w, m = config.window, config.data.season_length
    h = w.horizon
    n_windows = n_windows or w.test_windows
    lengths = panel.lengths.astype(np.int64)
    j = np.arange(n_windows)
    series_idx = np.repeat(np.arange(panel.n_series), n_windows)  # [n_series * n_windows]
    origin = (lengths[:, None] - h * (n_windows - j)[None, :]).reshape(-1)  # first target slot
    # Same windows for every model: inputs and targets fully observed, a full input before the origin.
    keep = origin >= w.input_size
    span_slots = panel.offsets[series_idx][:, None] + origin[:, None] + np.arange(-w.input_size, h)  # [n, in + h]
    keep &= panel.observed[np.clip(span_slots, 0, len(panel.values) - 1)].all(axis=1)
    target_slots = panel.offsets[series_idx][:, None] + origin[:, None] + np.arange(h)  # [n, h]
    series_idx, origin, target_slots = series_idx[keep], origin[keep], target_slots[keep]
    y = panel.values[target_slots].astype(np.float64)  # [n, h]

    preds = baseline_forecasts(panel, series_idx, origin, h, m)
    covered_by = {label: np.ones(len(series_idx), bool) for label in preds}
    for label, fc in forecasters.items():
        y_hat, covered = fc.forecast_at(panel, series_idx, origin)
        preds[label] = np.where(covered[:, None], y_hat, preds["seasonal_naive"])
        covered_by[label] = covered

    n = len(series_idx)
    steps = np.tile(np.arange(1, h + 1), n)
    rep = np.repeat(series_idx, h)
    pos = (origin[:, None] + np.arange(h)).reshape(-1)
    base = pd.DataFrame(
        {
            "unique_id": panel.ids[rep].astype(str),
            "cutoff": panel.ds_at(np.repeat(series_idx, h), np.repeat(origin - 1, h)),
            "ds": panel.ds_at(rep, pos),
            "horizon_step": steps.astype(np.int32),
            "y": y.reshape(-1),
        }
    )
    frames = [
        base.assign(y_hat=p.reshape(-1), model=label, covered=np.repeat(covered_by[label], h))
        for label, p in preds.items()
    ]
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Scores:
    overall: pd.DataFrame  # index: model; columns: mae, rmse, smape, mase
    per_series: pd.DataFrame  # columns: unique_id, model, mae, rmse, smape, mase
    per_step: pd.DataFrame  # columns: horizon_step, model, mae, rmse, smape, mase
    intervals: dict = field(default_factory=dict)  # see interval_quantiles; empty when not calibrated

    def to_dict(self) -> dict:
        out = {
            "overall": self.overall.reset_index().to_dict(orient="records"),
            "per_step": self.per_step.to_dict(orient="records"),
        }
        if self.intervals:
            out["intervals"] = self.intervals
        return out


def score(forecasts: pd.DataFrame, scales: pd.Series) -> Scores:
    """Metrics of a backtest frame. ``scales``: MASE denominator per unique_id."""
    df = forecasts.copy()
    err = df["y_hat"] - df["y"]
    df["ae"] = err.abs()
    df["se"] = err**2
    denom = df["y"].abs() + df["y_hat"].abs()
    df["sape"] = np.where(denom > 0, 200.0 * df["ae"] / denom.where(denom > 0, 1.0), 0.0)
    df["scaled_ae"] = df["ae"] / df["unique_id"].map(scales).astype(float)

    def summarise(keys: list[str], mase_by_series: bool) -> pd.DataFrame:
        g = df.groupby(keys, sort=True)
        out = pd.DataFrame(
            {"mae": g["ae"].mean(), "rmse": np.sqrt(g["se"].mean()), "smape": g["sape"].mean()}
        )
        if mase_by_series:  # mean over series of each series' MASE
            per = df.groupby(keys + ["unique_id"])["scaled_ae"].mean()
            out["mase"] = per.groupby(level=list(range(len(keys)))).mean()
        else:
            out["mase"] = g["scaled_ae"].mean()
        return out

    overall = summarise(["model"], True)
    per_series = summarise(["unique_id", "model"], False).reset_index()
    per_step = summarise(["horizon_step", "model"], True).reset_index()
    return Scores(overall=overall, per_series=per_series, per_step=per_step)


def mase_scales(panel: Panel, config: ForecastConfig, n_windows: int | None = None) -> pd.Series:
    """MASE denominators by unique_id: each series' in-sample seasonal-naive MAE before the evaluated
    horizons. Per series, so groups of series can be backtested apart and scored together."""
    n_windows = n_windows or config.window.test_windows
    upto = panel.lengths.astype(np.int64) - config.window.horizon * n_windows
    scale = seasonal_naive_scale(panel, upto, config.data.season_length)
    return pd.Series(scale, index=panel.ids.astype(str))


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split-conformal quantile of nonconformity ``scores`` for nominal coverage ``level`` (in (0, 1)):
    the ``ceil((n + 1) * level)``-th smallest score (the largest one when there are too few scores for
    the finite-sample guarantee); NaN without any finite score."""
    v = np.sort(np.asarray(scores, np.float64)[np.isfinite(scores)])
    if len(v) == 0:
        return float("nan")
    k = min(math.ceil((len(v) + 1) * level), len(v))
    return float(v[max(k, 1) - 1])


def interval_quantiles(forecasts: pd.DataFrame, scales: pd.Series, levels=INTERVAL_LEVELS) -> dict:
    """Per-model, per-horizon-step conformal quantiles of the scaled absolute errors of a backtest.

    Scores are ``|y - y_hat| / scale`` with ``scale`` the series' in-sample seasonal-naive MAE (the MASE
    denominator), so one quantile serves series of any level; an interval is then
    ``y_hat +- quantile[step] * scale(series)``. Returns
    ``{"levels": [80, 95], "scale": "seasonal_naive_mae", "models": {model: {"80": [q_1..q_h], ...}},
    "n": {model: [count_1..count_h]}}``.
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
        models[str(label)] = {
            str(lv): [conformal_quantile(e, lv / 100.0) for e in by_step] for lv in levels
        }
        counts[str(label)] = [int(np.isfinite(e).sum()) for e in by_step]
    return {"levels": [int(lv) for lv in levels], "scale": "seasonal_naive_mae", "models": models, "n": counts}


def calibrate_intervals(forecasters: dict, panel: Panel, config: ForecastConfig, min_scores: int = 200) -> dict:
    """Conformal interval quantiles from the windows the model never trained on: origins in the last
    ``val_windows + test_windows`` horizons of every series (validation windows only stop training).

    Besides the non-overlapping horizons, intermediate origins (stride 1 at most) are added until every
    horizon step has about ``min_scores`` errors over the panel, so one long series is calibrated too.
    """
    w, m, h = config.window, config.data.season_length, config.window.horizon
    n_windows = max(1, w.val_windows + w.test_windows)
    span_last = h * (n_windows - 1)  # the first target of the last window, relative to the first one
    k = max(n_windows, min(span_last + 1, math.ceil(min_scores / max(panel.n_series, 1))))
    shifts = np.unique(np.round(np.linspace(0, span_last, k)).astype(np.int64))
    shifts = np.union1d(shifts, np.arange(n_windows) * h)  # always the non-overlapping horizons
    lengths = panel.lengths.astype(np.int64)
    series_idx = np.repeat(np.arange(panel.n_series), len(shifts))  # [n]
    origin = (lengths[:, None] - h * n_windows + shifts[None, :]).reshape(-1)  # first target slot
    keep = origin >= w.input_size
    span_slots = panel.offsets[series_idx][:, None] + origin[:, None] + np.arange(-w.input_size, h)
    keep &= panel.observed[np.clip(span_slots, 0, len(panel.values) - 1)].all(axis=1)
    series_idx, origin = series_idx[keep], origin[keep]
    target_slots = panel.offsets[series_idx][:, None] + origin[:, None] + np.arange(h)  # [n, h]
    y = panel.values[target_slots].astype(np.float64)
    preds = baseline_forecasts(panel, series_idx, origin, h, m)
    for label, fc in forecasters.items():
        y_hat, covered = fc.forecast_at(panel, series_idx, origin)
        preds[label] = np.where(covered[:, None], y_hat, preds["seasonal_naive"])
    ids = np.repeat(panel.ids[series_idx].astype(str), h)
    steps = np.tile(np.arange(1, h + 1), len(series_idx))
    frame = pd.concat(
        [pd.DataFrame({"unique_id": ids, "horizon_step": steps, "model": label, "y": y.reshape(-1),
                       "y_hat": p.reshape(-1)}) for label, p in preds.items()],
        ignore_index=True,
    )
    return interval_quantiles(frame, mase_scales(panel, config, n_windows))


def evaluate(forecasters: dict, panel: Panel, config: ForecastConfig, n_windows: int | None = None):
    """Backtest + scores on the held-out test windows (the last ``test_windows`` horizons), with the
    conformal interval quantiles of every model (see :func:`calibrate_intervals`)."""
    n_windows = n_windows or config.window.test_windows
    forecasts = backtest(forecasters, panel, config, n_windows)
    scores = score(forecasts, mase_scales(panel, config, n_windows))
    try:
        intervals = calibrate_intervals(forecasters, panel, config)
    except Exception:  # noqa: BLE001 - intervals are an extra; never fail an evaluation for them
        intervals = {}
    return forecasts, dataclasses_replace(scores, intervals=intervals)
