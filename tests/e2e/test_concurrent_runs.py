"""Two `rnn-forecast run` processes started at once on one store: the store lock serialises them."""

from __future__ import annotations

import json
import os
import subprocess

import pyarrow.parquet as pq

from rnn_model.registry import ModelRegistry
from rnn_model.sample import make_sample_panel

from ._support import EXE


def test_two_runs_at_once_on_one_store_stay_consistent(tmp_path):
    data = tmp_path / "data.parquet"
    make_sample_panel(n_series=3, length=24 * 7 * 3, seed=3).to_parquet(data)
    store = tmp_path / "store"
    args = [
        str(EXE),
        "run",
        "--data",
        str(data),
        "--store",
        str(store),
        "--as-of",
        "2026-02-01",
        "--horizon",
        "12",
        "--input-size",
        "24",
        "--epochs",
        "1",
        "--units",
        "8",
        "--force-promote",
    ]
    procs = [  # each process has its own temporary Prefect API; they share only the store
        subprocess.Popen(
            args,
            env={**os.environ, "PREFECT_HOME": str(tmp_path / f"prefect{i}"), "TF_CPP_MIN_LOG_LEVEL": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]

    registry = ModelRegistry(store, "default")
    assert registry.versions() == ["v0001", "v0002"]
    assert registry.champion() in ("v0001", "v0002")
    history = [json.loads(line) for line in (registry.root / "history.jsonl").read_text().splitlines()]
    assert [h["version"] for h in history] in (["v0001", "v0002"], ["v0002", "v0001"])
    assert history[-1]["version"] == registry.champion()  # the last promotion is the pointer
    for version in registry.versions():
        assert json.loads((registry.root / version / "decision.json").read_text())["promoted"] is True
    partition = store / "predictions" / "as_of=2026-02-01"
    assert [p.name for p in partition.iterdir()] == ["part-0.parquet"]
    frame = pq.read_table(partition / "part-0.parquet").to_pandas()
    assert len(frame) == 3 * 12 and not frame.duplicated(["unique_id", "ds"]).any()
