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

import numpy as np
import pandas as pd
import pyarrow as pa

from .config import ForecastConfig, resolve
from .evaluation import Scores
from .gate import PromotionDecision, judge
from .intervals import add_intervals
from .outputs import parse_as_of
from .panel import Panel, build_panel
from .prediction import Forecaster, future_frame
from .schema import ValidationReport
from .training import min_train_length

__all__ = ["validate", "config_for_model", "prediction_frame", "promotion_decision", "SEASONAL_NAIVE"]

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
    if purpose == "train":
        min_length = lambda freq: min_train_length(resolve(config, freq))  # noqa: E731
    else:
        min_length = 1
        data = dataclasses.replace(data, on_constant="keep" if data.on_constant == "drop" else data.on_constant)
    limit = parse_as_of(as_of)
    panel, report = build_panel(table, data, min_length=min_length, as_of=limit)
    return panel, report, resolve(config, panel.freq)


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
    forecasts: pd.DataFrame, scores: Scores, margin: float, champion_through=None, notes: list[str] = ()
) -> PromotionDecision:
    """Apply the promotion gate (:func:`rnn_model.gate.judge`) to a backtest of challenger, champion
    and seasonal naive; ``champion_through``: the last target the champion trained on (its meta.json);
    ``notes`` are added to the reasons (e.g. why the champion could not be compared)."""
    return judge(forecasts, scores.scales, margin, champion_through, list(notes))
