"""Chaos (issue 13): SIGKILL and SIGTERM at random moments, also during register, promote and write.

After each kill: no process of the killed run is left (the temporary Prefect server and its watchdog
included), the store is consistent (a champion that loads, complete versions, complete partitions), the
next run leaves no ``.incoming-*``, and the final state has no duplicated or missing rows.

CI runs 30 kills of a store-writing loop (real registry and output code, no TensorFlow) and 3 kills of
real ``rnn-forecast run`` processes; ``RNN_CHAOS_CLI_RUNS=N`` kills N CLI runs instead (see
docs/reliability.md for a recorded long run); ``CHAOS_REPORT=DIR`` writes what each kill interrupted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from rnn_model.registry import ModelRegistry
from rnn_model.sample import make_sample_panel

from ._support import EXE, cli_env, still_running

ROOT = Path(__file__).resolve().parents[2]
N_SERIES, HORIZON = 5, 6

LOOP = (
    textwrap.dedent(
        """
    import sys
    import numpy as np, pandas as pd
    from pathlib import Path
    from rnn_model.outputs import write_predictions
    from rnn_model.registry import ModelRegistry
    from rnn_model.store import store_lock

    store = sys.argv[1]
    frame = pd.DataFrame({
        "unique_id": np.repeat([f"s{i}" for i in range({n})], {h}),
        "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.tile(np.arange({h}), {n}), "h"),
        "horizon_step": np.tile(np.arange(1, {h} + 1), {n}).astype(np.int32),
        "y_hat": 1.0, "model_version": "v", "as_of": "2026-01-01",
        "created_at": pd.Timestamp("2026-01-01", tz="UTC")})

    def bundle(tmp):
        for name in ("model.keras", "scaler.parquet", "config.json", "metrics.json", "meta.json"):
            (Path(tmp) / name).write_bytes(b"x" * 200_000)
        (Path(tmp) / "decision.json").write_text('{"promoted": false, "status": "pending"}')

    once = len(sys.argv) > 2  # "once": one clean iteration, then exit
    print("ready", flush=True)
    while True:
        with store_lock(store):
            reg = ModelRegistry(store, "default")
            version = reg.register(bundle)
            reg.set_champion(version, "chaos")
            reg.record_decision(version, {"promoted": True})
            write_predictions(frame.assign(model_version=version), store, "2026-01-01")
        if once:
            break
    """
    )
    .replace("{n}", str(N_SERIES))
    .replace("{h}", str(HORIZON))
)


def _check_store(
    store: Path, bundle_files=("model.keras", "meta.json", "decision.json"), label: str = "2026-01-01"
) -> None:
    """Consistent: the pointer names a complete version, every version is complete, the partition has
    every (series, step) exactly once."""
    registry = ModelRegistry(store, "default")
    champion = registry.champion()  # a RegistryError here is an inconsistent store
    for version in registry.versions():
        for name in bundle_files:
            assert (registry.root / version / name).is_file(), (version, name)
    if champion is not None:
        assert champion in registry.versions()
    partition = store / "predictions" / f"as_of={label}"
    if partition.exists():
        parts = sorted(partition.iterdir())
        assert [p.name for p in parts] == ["part-0.parquet"]
        frame = pq.read_table(parts[0]).to_pandas()
        assert not frame.duplicated(["unique_id", "ds"]).any()
        assert len(frame) == frame["unique_id"].nunique() * frame["horizon_step"].nunique()


def _incoming(store: Path) -> list[Path]:
    return list((store / "models").glob("*/.incoming-*"))


def _interrupted_step(store: Path) -> str:
    """Where a kill of the loop landed, read from what it left: a half-written version (``register``), a
    complete version the pointer does not name yet (``promote``), a champion whose decision is still
    pending (``decision``), a partition from the previous champion (``write``), or none of these."""
    if _incoming(store):
        return "register"
    registry = ModelRegistry(store, "default")
    versions, champion = registry.versions(), registry.champion()
    if not versions:
        return "before the first register"
    if champion != versions[-1]:
        return "promote"
    if registry.decision(champion).get("status") == "pending":
        return "decision"
    partition = store / "predictions" / "as_of=2026-01-01" / "part-0.parquet"
    if not partition.exists() or set(pq.read_table(partition).column("model_version").to_pylist()) != {champion}:
        return "write"
    return "between iterations"


def _report(name: str, report: dict) -> None:
    if os.environ.get("CHAOS_REPORT"):  # a directory: one JSON file per test
        folder = Path(os.environ["CHAOS_REPORT"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")


def test_store_stays_consistent_under_30_random_kills_during_register_promote_write(tmp_path):
    rng = random.Random(13)
    store = tmp_path / "store"
    kills = []
    for _ in range(30):
        child = subprocess.Popen([sys.executable, "-c", LOOP, str(store)], cwd=ROOT, stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        child.send_signal(sig)
        child.wait(timeout=30)
        step = _interrupted_step(store)
        _check_store(store)
        # a killed registration leaves at most its own .incoming-*: the next run's lock removed the older ones
        assert len(_incoming(store)) <= 1, _incoming(store)
        kills.append({"signal": sig.name, "step": step})
    # one clean iteration (no kill, so it cannot leave its own): its register cleans what the killed ones left
    subprocess.run(
        [sys.executable, "-c", LOOP, str(store), "once"], cwd=ROOT, check=True, timeout=120, stdout=subprocess.DEVNULL
    )
    _check_store(store)
    assert _incoming(store) == []
    assert {k["signal"] for k in kills} == {"SIGKILL", "SIGTERM"}
    _report("loop", {"kills": kills})


def _state(store: Path) -> dict:
    """What a kill may have changed: the versions, the champion, the partition, ``.incoming-*`` left."""
    registry = ModelRegistry(store, "default")
    partition = store / "predictions" / "as_of=2026-01-15" / "part-0.parquet"
    return {
        "versions": len(registry.versions()) if registry.root.exists() else 0,
        "champion": registry.champion() if registry.root.exists() else None,
        "partition": partition.stat().st_mtime_ns if partition.exists() else None,
        "incoming": len(_incoming(store)),
    }


def test_cli_runs_killed_at_random_moments_leave_no_process_and_a_consistent_store(tmp_path):
    runs = int(os.environ.get("RNN_CHAOS_CLI_RUNS", "3"))
    rng = random.Random(25)
    data = tmp_path / "data.parquet"
    make_sample_panel(n_series=N_SERIES, length=24 * 14, seed=3).to_parquet(data)
    store = tmp_path / "store"
    env = cli_env(tmp_path / "prefect-home")
    args = [
        str(EXE),
        "run",
        "--data",
        str(data),
        "--store",
        str(store),
        "--as-of",
        "2026-01-15",
        "--horizon",
        str(HORIZON),
        "--input-size",
        "24",
        "--epochs",
        "1",
        "--units",
        "8",
        "--members",
        "1",
        "--force-promote",
    ]
    bundle_files = ("model.keras", "config.json", "meta.json", "decision.json")
    kills, before, started = [], _state(store), time.monotonic()
    for _ in range(runs):
        proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 25.0))
        family = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)] if proc.poll() is None else []
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        proc.send_signal(sig)
        proc.wait(timeout=60)
        left = still_running(family)
        assert left == [], "processes of the killed run were left"
        _check_store(store, bundle_files=bundle_files, label="2026-01-15")
        after = _state(store)
        kills.append(
            {
                "signal": sig.name,
                "exit": proc.returncode,
                "processes": len(family),
                "left": len(left),
                "registered": after["versions"] > before["versions"],
                "promoted": after["champion"] != before["champion"],
                "wrote": after["partition"] != before["partition"],
                "incoming": after["incoming"],
            }
        )
        before = after
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_store(store, bundle_files=bundle_files, label="2026-01-15")
    assert _incoming(store) == []
    frame = pq.read_table(store / "predictions" / "as_of=2026-01-15" / "part-0.parquet").to_pandas()
    assert len(frame) == N_SERIES * HORIZON and not frame.duplicated(["unique_id", "ds"]).any()
    assert json.loads((store / "models" / "default" / "champion").read_text())["version"]
    _report("cli", {"runs": runs, "seconds": round(time.monotonic() - started, 1), "kills": kills})
