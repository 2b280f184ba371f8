"""Metrics (MAE, RMSE, sMAPE, MASE), baselines on the same windows, rolling-origin backtest.

MASE divides each series' MAE by its in-sample seasonal-naive MAE (before the first evaluated target);
the overall MASE is the mean over series, as in the M4 competition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace

import numpy as np
import pandas as pd

from .baselines import baseline_forecasts, seasonal_naive_scale
from .config import ForecastConfig
from .intervals import calibrate_intervals
from .panel import Panel
from .windowing import heldout_test_origins, make_split

__all__ = ["backtest", "score", "Scores", "evaluate", "mase_scales", "heldout_origins"]


def backtest(
    forecasters: dict,
    panel: Panel,
    config: ForecastConfig,
    n_windows: int | None = None,
    origins: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Rolling-origin backtest without refitting: the last ``n_windows`` horizons of every series, or
    the given ``origins`` = ``(series_idx [n], first target slot [n])`` (e.g. :func:`heldout_origins`).

    ``forecasters`` maps a label ("rnn", "champion") to a :class:`Forecaster`; naive and seasonal naive
    are always added. All models are scored on exactly the same windows; a window is kept only when
    its inputs and targets are fully observed. Where a forecaster cannot cover a window (unknown series, gap in the
    input) it falls back to seasonal naive, as it would in production.
    Returns long format ``unique_id, cutoff, ds, horizon_step, y, y_hat, model, covered``.
    """
    w, m = config.window, config.data.season_length
    h = w.horizon
    assert w.input_size is not None and h is not None and m is not None  # filled in by config.resolve
    if origins is None:
        n_windows = n_windows or w.test_windows
        lengths = panel.lengths.astype(np.int64)
        j = np.arange(n_windows)
        series_idx = np.repeat(np.arange(panel.n_series), n_windows)  # [n_series * n_windows]
        origin = (lengths[:, None] - h * (n_windows - j)[None, :]).reshape(-1)  # first target slot
    else:
        series_idx, origin = (np.asarray(a, np.int64) for a in origins)
    # Same windows for every model: inputs and targets fully observed, a full input before the origin.
    keep = (origin >= w.input_size) & (origin + h <= panel.lengths[series_idx])
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
    intervals: dict = field(default_factory=dict)  # see intervals.interval_quantiles; empty when not calibrated
    scales: pd.Series | None = None  # MASE denominator by unique_id (what the gate pairs windows with)

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
        out = pd.DataFrame({"mae": g["ae"].mean(), "rmse": np.sqrt(g["se"].mean()), "smape": g["sape"].mean()})
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


def mase_scales(
    panel: Panel, config: ForecastConfig, n_windows: int | None = None, upto: np.ndarray | None = None
) -> pd.Series:
    """MASE denominators by unique_id: each series' in-sample seasonal-naive MAE before the evaluated
    horizons (the last ``n_windows``, or slots ``[0, upto[i])``). Per series, so groups of series can be
    backtested apart and scored together."""
    if upto is None:
        n_windows = n_windows or config.window.test_windows
        assert config.window.horizon is not None  # filled in by config.resolve
        upto = panel.lengths.astype(np.int64) - config.window.horizon * n_windows
    assert config.data.season_length is not None  # filled in by config.resolve
    scale = seasonal_naive_scale(panel, upto, config.data.season_length)
    return pd.Series(scale, index=panel.ids.astype(str))


def heldout_origins(panel: Panel, config: ForecastConfig) -> tuple[np.ndarray, np.ndarray]:
    """The test horizons of :func:`rnn_model.windowing.make_split`: up to ``test_windows`` per series,
    fewer where a series is short (never a window the model trained or early-stopped on)."""
    assert config.window.horizon is not None  # filled in by config.resolve
    return heldout_test_origins(make_split(panel, config.window), config.window.horizon)


def evaluate(forecasters: dict, panel: Panel, config: ForecastConfig):
    """Backtest + scores on the held-out test horizons (:func:`heldout_origins`), with the conformal
    interval quantiles of every model (see :func:`rnn_model.intervals.calibrate_intervals`)."""
    split = make_split(panel, config.window)
    assert config.window.horizon is not None  # filled in by config.resolve
    forecasts = backtest(forecasters, panel, config, origins=heldout_test_origins(split, config.window.horizon))
    scales = mase_scales(panel, config, upto=split.val_end)
    scores = dataclasses_replace(score(forecasts, scales), scales=scales)
    # Too little history is not an error there (no window: no quantiles, and the bounds say why); any
    # other failure is a bug and fails the evaluation instead of silently dropping the intervals.
    intervals = calibrate_intervals(forecasters, panel, config)
    return forecasts, dataclasses_replace(scores, intervals=intervals)
