"""Helpers shared by the unit tests (imported explicitly; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rnn_model.config import ForecastConfig, ModelConfig, TrainConfig, WindowConfig, resolve

REPO_ROOT = Path(__file__).resolve().parents[2]

# The tiny model every non-learning test shares: one day of context, six hours ahead.
TINY_INPUT, TINY_HORIZON = 24, 6


def tiny_config(freq: str = "h", **sections) -> ForecastConfig:
    """A resolved config for a tiny, fast model; ``sections`` override fields per section."""
    cfg = ForecastConfig(
        # one validation horizon per series: the tests of early stopping and of validation need one
        window=WindowConfig(input_size=TINY_INPUT, horizon=TINY_HORIZON, val_windows=1),
        model=ModelConfig(units=16, members=2),  # an ensemble, the smallest: the default code path, cheaply
        train=TrainConfig(epochs=2, steps=None, batch_size=64, seed=7),  # 2 epochs, not a budget of steps
    )
    if sections:
        cfg = cfg.replace(**sections)
    return resolve(cfg, freq)


def seasonal_frame(
    n_series: int = 3,
    length: int = 120,
    freq: str = "h",
    start: str = "2026-01-01",
    seed: int = 0,
    period: int = 24,
    noise: float = 0.1,
) -> pd.DataFrame:
    """A seeded long frame: level + trend + one sine of ``period`` steps + Gaussian noise per series."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    rows = []
    ds = pd.date_range(start, periods=length, freq=freq) if freq != "int" else np.arange(length)
    for i in range(n_series):
        y = 20 + 5 * i + 0.01 * t + 3 * np.sin(2 * np.pi * t / period + i) + noise * rng.standard_normal(length)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


def run_python(script: str, *args: str) -> subprocess.Popen:
    """Start ``script`` in a fresh interpreter (this venv's python), from the repository root.

    The environment is inherited, so the child sees the same devices as the test process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ok(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{err[-4000:]}"
    return out
