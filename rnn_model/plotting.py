"""Forecast plot as PNG bytes (history + forecast for a few series), for reports and the Prefect UI."""

from __future__ import annotations

import io

import pandas as pd

from .panel import Panel

__all__ = ["forecast_plot_png"]


def forecast_plot_png(panel: Panel, forecasts: pd.DataFrame, n_series: int = 4, history: int | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = list(pd.unique(forecasts["unique_id"]))[:n_series]
    horizon = int(forecasts["horizon_step"].max())
    history = history or 3 * horizon
    fig, axes = plt.subplots(len(ids), 1, figsize=(9, 2.2 * len(ids)), squeeze=False)
    lookup = {str(k): i for i, k in enumerate(panel.ids)}
    for ax, uid in zip(axes[:, 0], ids):
        i = lookup[str(uid)]
        start = max(0, int(panel.lengths[i]) - history)
        pos = pd.RangeIndex(start, int(panel.lengths[i])).to_numpy()
        ax.plot(panel.ds_at(pos * 0 + i, pos), panel.series(i)[start:], color="0.3", lw=1, label="history")
        f = forecasts[forecasts["unique_id"] == uid]
        ax.plot(f["ds"], f["y_hat"], color="tab:blue", lw=1.5, label=f"forecast ({f['model_version'].iloc[0]})")
        if "y_lo_80" in f:
            ax.fill_between(f["ds"], f["y_lo_80"], f["y_hi_80"], color="tab:blue", alpha=0.2, lw=0)
        ax.set_title(str(uid), fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
