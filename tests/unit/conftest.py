"""Shared fixtures of the unit suite: small synthetic panels, Parquet files and one tiny trained model.

Everything trained here is deliberately tiny (16 units, 2 epochs) and shared through session-scoped
fixtures, so the suite stays fast on two CPU cores. Only the learning test trains a full-size model.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd
import pytest

from rnn_model.config import ForecastConfig
from rnn_model.panel import panel_from_frame
from rnn_model.sample import make_sample_panel
from rnn_model.training import min_train_length

from ._helpers import tiny_config


@pytest.fixture(scope="session")
def hourly_frame() -> pd.DataFrame:
    """4 hourly series of 10 days (240 points) with daily and weekly cycles."""
    return make_sample_panel(n_series=4, length=240, seed=3)


@pytest.fixture(scope="session")
def hourly_parquet(hourly_frame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "hourly.parquet"
    hourly_frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def tiny_cfg() -> ForecastConfig:
    return tiny_config()


@pytest.fixture(scope="session")
def hourly_panel(hourly_frame, tiny_cfg):
    panel, _ = panel_from_frame(hourly_frame, tiny_cfg.data, min_length=min_train_length(tiny_cfg))
    return panel


@pytest.fixture(scope="session")
def tiny_trained(hourly_panel, tiny_cfg):
    """One tiny SimpleRNN trained on ``hourly_panel``, shared by prediction, bundle and evaluation tests."""
    from rnn_model.training import train

    return train(hourly_panel, tiny_cfg)
