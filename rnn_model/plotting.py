"""Forecast plot as PNG bytes (history + forecast for a few series), for reports and the Prefect UI."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from .panel import Panel

__all__ = ["forecast_plot_png", "plotted_series"]


def plotted_series(forecasts: pd.DataFrame, n_series: int = 4) -> list[str]:
    """Which series the plot shows: the ``n_series`` with the largest mean forecast (the ones that matter
    most in data units), ties by id; sorted by that level, largest first."""
    level = forecasts.groupby("unique_id", sort=True)["y_hat"].mean()
    return [str(i) for i in level.sort_values(ascending=False, kind="stable").index[:n_series]]


def forecast_plot_png(
    panel: Panel,
    forecasts: pd.DataFrame,
    n_series: int = 4,
    history: int | None = None,
    as_of: str | None = None,
    dpi: int = 120,
) -> bytes:
    """One panel per series: the last ``history`` points (default 3 horizons), the forecast, its 80 %
    and 95 % intervals where present, and a line at the last observation (the forecast origin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    ids = plotted_series(forecasts, n_series)
    horizon = int(forecasts["horizon_step"].max())
    history = history or 3 * horizon
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.6 * len(ids) + 0.6), squeeze=False)
    lookup = {str(k): i for i, k in enumerate(panel.ids)}
    shown = "" if len(ids) == forecasts["unique_id"].nunique() else f" of {forecasts['unique_id'].nunique()}"
    cutoff = None
    if as_of is not None:
        cutoff = int(as_of) if panel.grid.is_integer else pd.Timestamp(as_of).tz_localize(None)
    late = cutoff is not None and cutoff > forecasts["ds"].max()
    fig.suptitle(
        f"Forecasts of {len(ids)}{shown} series (the largest by forecast level)"
        + (f", as_of {as_of}" if as_of else "")
        + (" (after every forecast: stale data)" if late else ""),
        fontsize=11,
        x=0.01,
        ha="left",
    )
    for ax, uid in zip(axes[:, 0], ids):
        i = lookup[uid]
        start = max(0, int(panel.lengths[i]) - history)
        pos = np.arange(start, int(panel.lengths[i]))
        ds = panel.ds_at(np.full(len(pos), i), pos)
        ax.plot(ds, panel.series(i)[start:], color="0.3", lw=1, label="history")
        f = forecasts[forecasts["unique_id"].astype(str) == uid]
        for level, alpha in ((95, 0.12), (80, 0.25)):
            if f"y_lo_{level}" in f and f[f"y_lo_{level}"].notna().any():
                ax.fill_between(
                    f["ds"],
                    f[f"y_lo_{level}"],
                    f[f"y_hi_{level}"],
                    color="tab:blue",
                    alpha=alpha,
                    lw=0,
                    label=f"{level} % interval",
                )
        ax.plot(f["ds"], f["y_hat"], color="tab:blue", lw=1.5, label=f"forecast ({f['model_version'].iloc[0]})")
        ax.axvline(ds[-1], color="0.5", lw=0.8, ls=":", label="last observation")
        if cutoff is not None and cutoff <= f["ds"].max():  # a stale run's as_of lies beyond the plot
            ax.axvline(cutoff, color="tab:red", lw=1, ls="--", label=f"as_of {as_of}")
        ax.set_title(str(uid), fontsize=9, loc="left")
        ax.set_ylabel("y", fontsize=8)
        ax.tick_params(labelsize=7)
        if not panel.grid.is_integer:
            locator = mdates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # the year shows on the axis
        ax.legend(fontsize=7, loc="upper left", ncol=5, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
