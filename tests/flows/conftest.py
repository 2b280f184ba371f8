"""One Prefect test harness (a temporary API on SQLite) for the whole flow test session, and the small
real inputs the flow tests share: a Parquet panel and a store trained once by the ``pipeline`` flow."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Offline, quiet and patient; set before Prefect or TensorFlow are imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only: small models, stable numbers


@pytest.fixture(autouse=True, scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def panel_file(tmp_path_factory) -> Path:
    """4 hourly series, 2026-01-01 .. 2026-01-15 23:00, as one real Parquet file."""
    from ._support import sine_frame

    path = tmp_path_factory.mktemp("flow-data") / "panel.parquet"
    sine_frame().to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, panel_file, prefect_harness) -> dict:
    """One real ``pipeline`` run (train, promote, predict) into a fresh store; tests that write copy it."""
    from flows.pipeline import pipeline

    from ._support import AS_OF, small_config

    store = tmp_path_factory.mktemp("trained") / "store"
    state = pipeline(data=str(panel_file), store=str(store), config=small_config(), as_of=AS_OF, return_state=True)
    assert state.is_completed(), state.message
    return {"store": store, "result": state.result(), "flow_run_id": state.state_details.flow_run_id}


@pytest.fixture
def store_copy(trained, tmp_path) -> Path:
    """A private copy of the trained store (champion v0001, predictions for AS_OF)."""
    copy = tmp_path / "store"
    shutil.copytree(trained["store"], copy)
    return copy
