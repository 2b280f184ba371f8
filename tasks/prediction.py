"""Prediction tasks: forecast with the champion (seasonal naive where it cannot), write the partition."""

from __future__ import annotations

import base64

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact

from rnn_model.bundle import Bundle
from rnn_model.config import ForecastConfig
from rnn_model.outputs import write_predictions
from rnn_model.panel import Panel
from rnn_model.plotting import forecast_plot_png
from rnn_model.stages import SEASONAL_NAIVE, prediction_frame

from ._options import COMPUTE, IO_RETRY, artifact_key

__all__ = ["forecast", "write_partition", "publish_plot"]


@task(name="forecast", **COMPUTE)
def forecast(panel: Panel, bundle: Bundle | None, version: str | None, config: ForecastConfig,
             label: str, model_name: str) -> pd.DataFrame:
    logger = get_run_logger()
    frame = prediction_frame(panel, bundle.forecaster if bundle else None, version, config, label)
    fallback = sorted(frame.loc[frame.model_version == SEASONAL_NAIVE, "unique_id"].unique())
    if fallback:
        why = "there is no champion model yet" if bundle is None else "the model cannot cover them (too short, gaps, or new)"
        shown = ", ".join(fallback[:20]) + (f" (+{len(fallback) - 20} more)" if len(fallback) > 20 else "")
        logger.warning("%d series forecast by seasonal naive because %s: %s", len(fallback), why, shown)
        create_markdown_artifact(
            f"### Seasonal-naive fallback\n\n{len(fallback)} of {panel.n_series} series are forecast by seasonal "
            f"naive (`model_version=seasonal_naive`) because {why}:\n\n{shown}",
            key=artifact_key(model_name, "fallback"), description="Series not forecast by the model")
    return frame


@task(name="write-predictions", **IO_RETRY)
def write_partition(frame: pd.DataFrame, store: str, label: str) -> str:
    path = write_predictions(frame, store, label)
    get_run_logger().info("wrote %d predictions to %s", len(frame), path)
    return str(path)


@task(name="forecast-plot", **COMPUTE)
def publish_plot(panel: Panel, frame: pd.DataFrame, model_name: str) -> None:
    png = forecast_plot_png(panel, frame)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    create_image_artifact(url, key=artifact_key(model_name, "forecast-plot"), description="History and forecast")
