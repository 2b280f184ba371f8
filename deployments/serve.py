"""Scheduled deployments, served by one long-running process:

    prefect server start                      # in another terminal (UI on http://127.0.0.1:4200)
    PREFECT_API_URL=http://127.0.0.1:4200/api python deployments/serve.py

Every deployment allows one run at a time; a run that comes due while the previous one still runs is
cancelled rather than queued (CANCEL_NEW), so late runs never pile up.
Settings come from the environment: RNN_FORECAST_STORE (default ./store), RNN_FORECAST_DATA (default:
the embedded sample panel), RNN_FORECAST_MODEL (default "default"), and the cron expressions
RNN_FORECAST_TRAIN_CRON / RNN_FORECAST_PREDICT_CRON (UTC). Scale-out (docs/scaling.md):
RNN_FORECAST_PARTITIONS (groups of series validated and forecast in parallel), RNN_FORECAST_TASK_RUNNER
(thread | dask) and RNN_FORECAST_DASK_ADDRESS (tcp://host:8786; unset: a temporary local cluster per run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# Runnable as a script from anywhere: make the project importable and quiet.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for _key, _value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}.items():
    os.environ.setdefault(_key, _value)

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy  # noqa: E402
from prefect.schedules import Cron  # noqa: E402

from flows.predict import predict  # noqa: E402
from flows.runners import with_task_runner  # noqa: E402
from flows.train import train  # noqa: E402

__all__ = ["build_deployments", "served_flows", "TRAIN_DEPLOYMENT", "PREDICT_DEPLOYMENT"]

TRAIN_DEPLOYMENT = "daily-retrain"
PREDICT_DEPLOYMENT = "daily-predict"


def code_version() -> str:
    """The deployment version the UI shows: the package version, and the git commit when run from a
    checkout (``0.1.0+75edd00``, ``+...-dirty`` with uncommitted changes)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        base = version("rnn-forecast-pipeline")
    except PackageNotFoundError:
        base = "0+unknown"
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=7"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{base}+{commit}" if commit else base


def _one_at_a_time() -> ConcurrencyLimitConfig:
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def served_flows(env: dict[str, str] | None = None) -> tuple:
    """``(train, predict)`` with the task runner the environment asks for, so served runs need no nested
    subflow to switch runners."""
    env = dict(os.environ if env is None else env)
    runner, address = env.get("RNN_FORECAST_TASK_RUNNER", "thread"), env.get("RNN_FORECAST_DASK_ADDRESS") or None
    if runner == "thread" and not address:
        return train, predict
    return with_task_runner(train, runner, address), with_task_runner(predict, runner, address)


def build_deployments(env: dict[str, str] | None = None) -> list:
    """The deployments with their schedules and parameters (no server needed to build them)."""
    env = dict(os.environ if env is None else env)
    store = env.get("RNN_FORECAST_STORE", str(Path.cwd() / "store"))
    common: dict[str, Any] = {
        "store": store,
        "data": env.get("RNN_FORECAST_DATA"),
        "model_name": env.get("RNN_FORECAST_MODEL", "default"),
    }
    if env.get("RNN_FORECAST_PARTITIONS"):
        common["partitions"] = int(env["RNN_FORECAST_PARTITIONS"])
    runner, address = env.get("RNN_FORECAST_TASK_RUNNER", "thread"), env.get("RNN_FORECAST_DASK_ADDRESS") or None
    if runner != "thread" or address:
        common.update(task_runner=runner, dask_address=address)
    train_flow, predict_flow = served_flows(env)
    version = code_version()
    return [
        train_flow.to_deployment(
            name=TRAIN_DEPLOYMENT,
            schedule=Cron(env.get("RNN_FORECAST_TRAIN_CRON", "0 2 * * *"), timezone="UTC"),  # 02:00 UTC daily
            version=version,
            parameters={**common, "margin": 0.01},
            concurrency_limit=_one_at_a_time(),
            tags=["rnn-forecast", "retrain"],
            description="Retrain on the latest data; promote the challenger only if it wins on held-out windows.",
        ),
        predict_flow.to_deployment(
            name=PREDICT_DEPLOYMENT,
            schedule=Cron(env.get("RNN_FORECAST_PREDICT_CRON", "30 3 * * *"), timezone="UTC"),  # after retraining
            version=version,
            parameters=common,
            concurrency_limit=_one_at_a_time(),
            tags=["rnn-forecast", "predict"],
            description="Forecast with the champion and write predictions/as_of=<date>/.",
        ),
    ]


if __name__ == "__main__":
    from prefect import serve

    serve(*build_deployments())
