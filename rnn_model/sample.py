"""A deterministic synthetic panel: the embedded default data set, and the tests' data generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_sample_panel", "write_sample_data"]


def make_sample_panel(
    n_series: int = 8,
    length: int = 24 * 7 * 8,
    freq: str = "h",
    start: str = "2026-01-01",
    seed: int = 0,
    noise: float = 0.3,
) -> pd.DataFrame:
    """Long frame ``unique_id, ds, y``: level + trend + daily and weekly cycles + Gaussian noise.

    For hourly data the cycles are 24 and 168 steps (day and week); for other frequencies the same
    periods are used in steps, which keeps the generator simple and the seasonality learnable.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)  # [length]
    level = rng.uniform(10, 100, n_series)[:, None]  # [n_series, 1]
    trend = rng.uniform(-0.005, 0.01, n_series)[:, None]
    daily = rng.uniform(2, 8, n_series)[:, None]
    weekly = rng.uniform(1, 4, n_series)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (n_series, 2))
    y = (
        level
        + trend * t
        + daily * np.sin(2 * np.pi * t / 24 + phase[:, :1])
        + weekly * np.sin(2 * np.pi * t / 168 + phase[:, 1:])
        + noise * daily * rng.standard_normal((n_series, length))
    )  # [n_series, length]
    ds = pd.date_range(start, periods=length, freq=freq)
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"series_{i:03d}" for i in range(n_series)], length),
            "ds": np.tile(ds.values, n_series),
            "y": y.reshape(-1).astype(np.float64),  # [n_series * length]
        }
    )


def write_sample_data(path: str | Path, **kwargs) -> Path:
    """Write ``make_sample_panel(**kwargs)`` to ``path`` as Parquet, atomically (no Prefect needed)."""
    import pyarrow as pa

    from .io import atomic_write_parquet

    frame = make_sample_panel(**kwargs)
    return atomic_write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
