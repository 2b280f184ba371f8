"""Small, real inputs for the flow tests: a sine panel the model learns in a few epochs, its configs,
and readers for what the flows leave in the store and in the Prefect API.

The panel's cycle is 16 hours while the season length is 24 (hourly data), so seasonal naive is poor
(MASE about 1) and an ensemble of two 16-unit SimpleRNNs trained for 8 epochs wins clearly (MASE well
under 0.2; measured 0.04): the promotion tests do not depend on a lucky seed. (On scale-free windows 3
epochs were too few: MASE 0.38, and forecasts after as_of off by 1.9 on an amplitude of 4.)
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pandas as pd

from rnn_model.config import ForecastConfig

N_SERIES = 4
HORIZON = 12
INPUT_SIZE = 24
PERIOD = 16
START = "2026-01-01"
LENGTH = 24 * 15  # 2026-01-01 00:00 .. 2026-01-15 23:00 hourly
AS_OF = "2026-01-15"  # cuts every series at 2026-01-15 00:00: 23 points per series lie after as_of
LAST_INPUT = pd.Timestamp("2026-01-15 00:00")

# A clearly worse model: 2 units, one epoch at a tiny learning rate (it stays near the series mean).
WORSE = {"model": {"units": 2, "learning_rate": 1e-5}, "train": {"epochs": 1}}


def sine_frame(
    n_series: int = N_SERIES, length: int = LENGTH, start: str = START, seed: int = 0, prefix: str = "s"
) -> pd.DataFrame:
    """Long ``unique_id, ds, y``: level + a 16-hour sine (amplitude 4) + noise (sd 0.1), per series."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=length, freq="h")
    t = np.arange(length, dtype=np.float64)
    parts = []
    for i in range(n_series):
        y = 10 + 3 * i + 4 * np.sin(2 * np.pi * t / PERIOD + i) + 0.1 * rng.standard_normal(length)
        parts.append(pd.DataFrame({"unique_id": f"{prefix}{i}", "ds": ds, "y": y}))
    return pd.concat(parts, ignore_index=True)


def small_config(**sections) -> ForecastConfig:
    """16 units, an ensemble of 2 (the smallest), 8 epochs (not a budget of steps), 24 h of input, 12 h
    ahead: a few seconds of training on two cores."""
    cfg = ForecastConfig().replace(
        window={"horizon": HORIZON, "input_size": INPUT_SIZE},
        model={"units": 16, "learning_rate": 1e-2, "members": 2},
        train={"epochs": 8, "steps": None, "batch_size": 64, "seed": 1},
    )
    return cfg.replace(**sections) if sections else cfg


def champion_of(store: Path, model_name: str = "default") -> str | None:
    pointer = Path(store) / "models" / model_name / "champion"
    return json.loads(pointer.read_text())["version"] if pointer.exists() else None


def decision_of(store: Path, version: str, model_name: str = "default") -> dict:
    return json.loads((Path(store) / "models" / model_name / version / "decision.json").read_text())


def prediction_file(store: Path, as_of: str = AS_OF) -> Path:
    return Path(store) / "predictions" / f"as_of={as_of}" / "part-0.parquet"


def run_api(coro_fn, *args):
    """Run an async Prefect client call against the harness API and return its result."""

    async def call():
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return await coro_fn(client, *args)

    return asyncio.run(call())


async def read_flow_run(client, flow_run_id):
    return await client.read_flow_run(flow_run_id)


async def task_runs_of(client, flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


async def child_flow_runs(client, flow_run_id) -> list:
    """The subflow runs of a flow run."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    return await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )


async def artifacts_of_run_tree(client, flow_run_id) -> list:
    """Artifacts of a flow run and of its subflow runs (a flow asked for another task runner runs itself
    once more as a subflow on it)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    children = await child_flow_runs(client, flow_run_id)
    ids = [flow_run_id, *[c.id for c in children]]
    return await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
