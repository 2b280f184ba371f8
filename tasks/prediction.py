"""Prediction tasks: forecast each group of series with the champion (seasonal naive where it cannot) as
a mapped task, write the groups' parts of the partition as one unit, report fallbacks, plot. Also the plain
steps around them, no task runs of their own: the settings to forecast with (``model_settings``) and the
series that fell back (``fallback_series``)."""

from __future__ import annotations

import base64

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from rnn_model.bundle import Bundle
from rnn_model.config import ForecastConfig
from rnn_model.outputs import write_prediction_parts
from rnn_model.panel import Panel
from rnn_model.partitions import PartitionOutcome
from rnn_model.plotting import forecast_plot_png, plotted_series
from rnn_model.prediction import check_settings_match, settings_clashes
from rnn_model.schema import escape_markdown
from rnn_model.stages import SEASONAL_NAIVE, config_for_model, prediction_frame

from ._options import COMPUTE, IO_RETRY, artifact_key

__all__ = ["model_settings", "forecast_group", "write_partitions", "report_fallback", "fallback_series", "publish_plot"]


def model_settings(
    bundle: Bundle | None, version: str | None, config: ForecastConfig, strict: bool
) -> tuple[ForecastConfig, list[str]]:
    """The configuration to forecast with: the model's horizon, input size, freq and policies, the user's
    column names (the user's own without a model), and warnings.

    ``strict``: a setting the user passed that the model would ignore (freq, horizon, input size, season
    length) is an error; otherwise (``pipeline``, whose settings were for training, and whose challenger
    may not have been promoted) it is a warning in the log and in the result's ``warnings``.

    A plain function, not a task: it runs in the flow, before the data is read, in microseconds."""
    if bundle is None:
        return config, []
    if strict:
        check_settings_match(bundle.forecaster.config, config, version)  # a flag it would ignore: refused
    warnings = [
        f"{c}: forecasting with the model's" for c in settings_clashes(bundle.forecaster.config, config, version)
    ]
    for line in warnings:
        get_run_logger().warning(line)
    return config_for_model(bundle.forecaster.config, config), warnings


@task(name="forecast", **COMPUTE)
def forecast_group(
    group: PartitionOutcome,
    bundle: Bundle | None,
    version: str | None,
    config: ForecastConfig,
    label: str,
    created_at: pd.Timestamp,
) -> tuple[int, pd.DataFrame]:
    """The prediction rows of one group of series: ``(group index, frame)``."""
    assert group.panel is not None  # only groups with series left are predicted
    frame = prediction_frame(group.panel, bundle.forecaster if bundle else None, version, config, label, created_at)
    get_run_logger().info("group %d: %d series, %d forecasts", group.index, group.panel.n_series, len(frame))
    return group.index, frame


@task(name="write-predictions", **IO_RETRY)
def write_partitions(parts: dict[int, pd.DataFrame], store: str, label: str) -> list[str]:
    """``predictions/as_of=<label>/part-<k>.parquet`` for every group k, replacing the previous run's set."""
    paths = write_prediction_parts(parts, store, label)
    rows = sum(len(f) for f in parts.values())
    where = paths[0] if len(paths) == 1 else f"{paths[0].parent} ({len(paths)} parts)"
    get_run_logger().info("wrote %d predictions to %s", rows, where)
    return [str(p) for p in paths]


@task(name="fallback-report", **COMPUTE)
def report_fallback(fallback: list[str], n_series: int, has_model: bool, model_name: str) -> None:
    """The ``fallback`` artifact, written by every prediction run (with 0 series when none fell back), so
    the latest one never describes an older run."""
    key = artifact_key(model_name, "predict", "fallback")
    if not fallback:
        create_markdown_artifact(
            f"### Seasonal-naive fallback\n\n0 of {n_series} series: every series is forecast by the model.",
            key=key,
            description="Series not forecast by the model",
        )
        return
    why = "there is no champion model yet" if not has_model else "the model cannot cover them (too short, gaps, or new)"
    shown = ", ".join(fallback[:20]) + (f" (+{len(fallback) - 20} more)" if len(fallback) > 20 else "")
    get_run_logger().warning("%d series forecast by seasonal naive because %s: %s", len(fallback), why, shown)
    escaped = ", ".join(escape_markdown(i) for i in fallback[:20]) + shown[len(", ".join(fallback[:20])) :]
    create_markdown_artifact(
        f"### Seasonal-naive fallback\n\n{len(fallback)} of {n_series} series are forecast by seasonal "
        f"naive (`model_version=seasonal_naive`) because {why}:\n\n{escaped}",
        key=key,
        description="Series not forecast by the model",
    )


def fallback_series(frames) -> list[str]:
    """Series labelled ``seasonal_naive`` in any of the frames, sorted."""
    ids: set[str] = set()
    for frame in frames:
        ids.update(frame.loc[frame.model_version == SEASONAL_NAIVE, "unique_id"].unique())
    return sorted(ids)


@task(name="forecast-plot", **COMPUTE)
def publish_plot(panel: Panel, frame: pd.DataFrame, model_name: str, as_of: str) -> None:
    """The plot as a markdown artifact holding the PNG inline: an image artifact would print its whole
    ``data:`` URL as the caption under the picture."""
    png = forecast_plot_png(panel, frame, as_of=as_of)
    ids = plotted_series(frame)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    create_markdown_artifact(
        f"### Forecasts, as_of {as_of}\n\nShown: {', '.join(escape_markdown(i) for i in ids)} (the largest of "
        f"{frame['unique_id'].nunique()} series by forecast level); shaded: 80 % and 95 % intervals.\n\n"
        f"![forecast plot]({url})",
        key=artifact_key(model_name, "predict", "forecast-plot"),
        description="History and forecast",
    )
