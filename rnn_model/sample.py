"""A deterministic synthetic panel: the embedded default data set, and the tests' data generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_sample_panel", "write_sample_data", "check_sample_args", "MAX_SAMPLE_ROWS"]

# About 10 float64 arrays of this many values are alive while the panel is made: ~800 MB at the cap.
MAX_SAMPLE_ROWS = 10_000_000


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
    check_sample_args(n_series, length, freq, seed, start)
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


def check_sample_args(n_series: int, length: int, freq: str = "h", seed: int = 0, start: str = "2026-01-01") -> None:
    """Refuse arguments that would crash, write an empty file, or allocate gigabytes before failing
    (ConfigError naming the argument), before anything is allocated."""
    from .errors import ConfigError
    from .frequency import parse_freq

    for name, value, lo in (("n_series", n_series, 1), ("length", length, 2), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ConfigError(f"{name}={value!r} is invalid: must be an integer >= {lo} (--{name.replace('_', '-')})")
    if n_series * length > MAX_SAMPLE_ROWS:
        raise ConfigError(
            f"n_series x length = {n_series * length:,} rows is too large for sample data: at most "
            f"{MAX_SAMPLE_ROWS:,}; lower --n-series or --length"
        )
    if seed >= 2**63:
        raise ConfigError(f"seed={seed} is invalid: must be below 2**63")
    step = parse_freq(freq)  # ConfigError naming the freq
    if isinstance(step, int):
        raise ConfigError(
            f"freq={freq!r} is invalid for sample data, which is dated: use a pandas alias such as 'h' or 'D'"
        )
    try:
        (pd.Timestamp(start) + (length - 1) * step).as_unit("ns")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        raise ConfigError(
            f"length={length} steps of freq {freq} after {start} run past the year 2262; lower "
            "--length or use a shorter freq"
        ) from None


def write_sample_data(path: str | Path, **kwargs) -> Path:
    """Write ``make_sample_panel(**kwargs)`` to ``path`` as Parquet, atomically (no Prefect needed)."""
    import pyarrow as pa

    from .io import atomic_write_parquet

    frame = make_sample_panel(**kwargs)
    return atomic_write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
