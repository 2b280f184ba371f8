"""Pipeline stages as pure functions (Kedro style). Prefect tasks wrap these one to one; a notebook or a
benchmark can chain them without Prefect:

    table = read_long_table(path, cfg.data)
    panel, report, cfg = validate(table, cfg, as_of="2026-11-01")
    result = train(panel, cfg, plan_windows(panel, cfg))
    forecasts, scores = evaluate({"challenger": result.forecaster}, panel, cfg)
    frame = prediction_frame(panel, result.forecaster, "v0001", cfg, as_of_label("2026-11-01"))
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .config import ForecastConfig, resolve
from .evaluation import Scores
from .gate import PromotionDecision, judge
from .intervals import add_intervals
from .outputs import parse_as_of
from .panel import Panel, build_panel, take_series
from .prediction import Forecaster, future_frame
from .schema import ValidationReport, action_for
from .training import min_train_length

__all__ = [
    "validate",
    "training_subset",
    "same_validation",
    "config_for_model",
    "prediction_frame",
    "promotion_decision",
    "SEASONAL_NAIVE",
]

SEASONAL_NAIVE = "seasonal_naive"


def validate(
    table: pa.Table, config: ForecastConfig, as_of=None, purpose: str = "train"
) -> tuple[Panel, ValidationReport, ForecastConfig]:
    """Validate and lay out the data; return the panel, the report and the config resolved for its freq.

    ``purpose="train"`` requires ``input_size + horizon`` points per series (one training window).
    ``purpose="predict"`` keeps every series with at least one point (short or constant ones are
    forecast by seasonal naive rather than dropped).
    """
    data = config.data
    min_length: int | Callable[[str], int]
    if purpose == "train":
        min_length = lambda freq: min_train_length(resolve(config, freq))  # noqa: E731
    else:
        min_length = 1
        data = dataclasses.replace(data, on_constant="keep" if data.on_constant == "drop" else data.on_constant)
    limit = parse_as_of(as_of)
    panel, report = build_panel(table, data, min_length=min_length, as_of=limit)
    return panel, report, resolve(config, panel.freq)


def training_subset(panel: Panel, report: ValidationReport, config: ForecastConfig) -> Panel:
    """The series a model trains on, out of a panel validated for prediction (``validate(...,
    purpose="predict")``, which keeps short and constant series because prediction forecasts them): one
    ingest serves both halves of a ``pipeline`` run. ``config`` must be resolved.

    As ``purpose="train"`` would: a series with fewer than ``input_size + horizon`` observed points is
    ``too_short`` (``on_too_short``), a constant one is left out unless ``on_constant="keep"`` (the
    report's constant rows then say ``dropped``: not trained on, still forecast, by seasonal naive).
    Errors are raised with the report; no series left to train on is ``no_series_left``."""
    data, need = config.data, min_train_length(config)
    constant_ids = {p.unique_id for p in report.problems if p.problem == "constant"}
    if data.on_constant == "drop":
        report.problems = [
            dataclasses.replace(p, action="dropped") if p.problem == "constant" else p for p in report.problems
        ]
    drop = (
        np.isin(panel.ids.astype(str), list(constant_ids))
        if data.on_constant == "drop"
        else np.zeros(panel.n_series, bool)
    )
    n_obs = np.add.reduceat(panel.observed.astype(np.int64), panel.offsets[:-1])  # [n_series]
    short = n_obs < need
    for i in np.flatnonzero(short):
        report.add(
            panel.ids[i],
            "too_short",
            n_obs[i],
            f"{n_obs[i]} observed points < {need} needed",
            action_for(data.on_too_short),
        )
    if data.on_too_short == "drop":
        drop |= short
    report.raise_if_errors()
    if drop.all():
        report.all_series_dropped(panel.n_series)
    report.n_series_train = int((~drop).sum())
    return take_series(panel, np.flatnonzero(~drop))


def same_validation(config: ForecastConfig, validated_with: ForecastConfig) -> bool:
    """Whether data validated for prediction with ``validated_with`` (resolved) is what forecasting with
    ``config`` (a model's, :func:`config_for_model`) would validate: the same data settings and horizon."""
    return config.data == validated_with.data and config.window.horizon == validated_with.window.horizon


def config_for_model(model_config: ForecastConfig, user_config: ForecastConfig) -> ForecastConfig:
    """Forecasting with a stored model: its horizon, input size, freq and policies; the user's column names."""
    columns = {k: getattr(user_config.data, k) for k in ("id_col", "time_col", "target_col")}
    return dataclasses.replace(model_config, data=dataclasses.replace(model_config.data, **columns))


def prediction_frame(
    panel: Panel,
    forecaster: Forecaster | None,
    version: str | None,
    config: ForecastConfig,
    label: str,
    created_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The predictions partition: model forecasts where the model covers a series, seasonal naive
    (``model_version="seasonal_naive"``) where there is no model or it cannot cover the series.
    ``created_at``: one time for every part of a run (default: now)."""
    if forecaster is None:
        frame = future_frame(panel, None, None, config)
    else:
        frame, _ = forecaster.forecast_future(panel)
    add_intervals(frame, panel, config, getattr(forecaster, "intervals", None))
    frame["model_version"] = np.where(frame.pop("source") == "model", version or "", SEASONAL_NAIVE)
    frame["as_of"] = label
    frame["created_at"] = created_at if created_at is not None else pd.Timestamp(dt.datetime.now(dt.timezone.utc))
    return frame


def promotion_decision(
    forecasts: pd.DataFrame, scores: Scores, margin: float, champion_through=None, notes: Sequence[str] = ()
) -> PromotionDecision:
    """Apply the promotion gate (:func:`rnn_model.gate.judge`) to a backtest of challenger, champion
    and seasonal naive; ``champion_through``: the last target the champion trained on (its meta.json);
    ``notes`` are added to the reasons (e.g. why the champion could not be compared)."""
    return judge(forecasts, scores.scales, margin, champion_through, list(notes))
