"""Faults at the store level, injected for real: SIGKILL during a write, concurrent writers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from rnn_model.errors import StoreError
from rnn_model.outputs import prediction_path, write_predictions
from rnn_model.registry import ModelRegistry
from rnn_model.store import store_lock

ROOT = Path(__file__).resolve().parents[2]


def _frame(n: int, value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(n // 10)], 10),
            "ds": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.tile(np.arange(10), n // 10), "h"),
            "horizon_step": np.tile(np.arange(1, 11), n // 10).astype(np.int32),
            "y_hat": np.full(n, value),
            "model_version": "v0001",
            "as_of": "2026-01-01",
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.unit.test_faults_store import _frame
    from rnn_model.outputs import write_predictions
    frame = _frame({n}, 2.0)
    print("ready", flush=True)
    while True:
        write_predictions(frame, {store!r}, "2026-01-01")
    """
)


@pytest.mark.parametrize("delay", [0.1, 0.5, 1.0])
def test_sigkill_while_writing_predictions_leaves_old_or_new_partition(tmp_path, delay):
    n = 600_000
    store = tmp_path / "store"
    write_predictions(_frame(n, 1.0), store, "2026-01-01")  # yesterday's complete partition
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), n=n, store=str(store))],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    table = pq.read_table(prediction_path(store, "2026-01-01"))  # never corrupt
    y = table.column("y_hat").to_numpy()
    assert len(y) == n and (np.all(y == 1.0) or np.all(y == 2.0))  # old or new, never a mix
    # Readers of the partition directory see only complete files (temporary names start with '.').
    visible = pads.dataset(store / "predictions", format="parquet", partitioning="hive")
    assert visible.count_rows() == n
    # The next successful write removes what the killed writer left behind.
    write_predictions(_frame(n, 3.0), store, "2026-01-01")
    assert [p.name for p in prediction_path(store, "2026-01-01").parent.iterdir()] == ["part-0.parquet"]


LOCKER = textwrap.dedent(
    """
    import sys, time, json
    sys.path.insert(0, {root!r})
    from rnn_model.store import store_lock
    with store_lock({store!r}, timeout_s={timeout}):
        print(json.dumps({{"got": time.time()}}), flush=True)
        time.sleep({hold})
    print(json.dumps({{"released": time.time()}}), flush=True)
    """
)


def _locker(store: Path, hold: float, timeout: float) -> subprocess.Popen:
    code = LOCKER.format(root=str(ROOT), store=str(store), hold=hold, timeout=timeout)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_store_lock_serialises_processes_and_times_out_clearly(tmp_path):
    store = tmp_path / "store"
    first = _locker(store, hold=1.5, timeout=30)
    got_first = json.loads(first.stdout.readline())["got"]
    second = _locker(store, hold=0.0, timeout=30)  # waits for the first
    got_second = json.loads(second.stdout.readline())["got"]
    released_first = json.loads(first.stdout.readline())["released"]
    assert got_second >= released_first - 0.05 and got_second > got_first
    first.wait(), second.wait()

    holder = _locker(store, hold=5.0, timeout=30)
    holder.stdout.readline()
    with pytest.raises(StoreError, match="locked by another run"):
        with store_lock(store, timeout_s=0.5):
            pass
    holder.kill()  # a killed holder releases the lock (flock dies with the process)
    holder.wait()
    with store_lock(store, timeout_s=5):
        pass


def test_store_lock_is_reentrant_in_one_process(tmp_path):
    with store_lock(tmp_path):
        with store_lock(tmp_path, timeout_s=0.1):  # a pipeline's subflows share the lock
            pass


REGISTER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from rnn_model.registry import ModelRegistry
    reg = ModelRegistry({store!r}, "m")
    for _ in range(5):
        reg.register(lambda tmp: (Path(tmp) / "payload").write_text("{tag}"))
    """
)


def test_concurrent_registration_never_shares_or_loses_a_version(tmp_path):
    store = str(tmp_path / "store")
    procs = [
        subprocess.Popen([sys.executable, "-c", REGISTER.format(root=str(ROOT), store=store, tag=tag)])
        for tag in ("a", "b", "c")
    ]
    assert all(p.wait() == 0 for p in procs)
    reg = ModelRegistry(store, "m")
    versions = reg.versions()
    assert versions == [f"v{i:04d}" for i in range(1, 16)]
    payloads = [(reg.root / v / "payload").read_text() for v in versions]
    assert sorted(payloads) == sorted("a" * 5 + "b" * 5 + "c" * 5)
    assert not [p for p in reg.root.iterdir() if p.name.startswith(".incoming")]


def test_write_error_is_a_clear_store_error_and_keeps_the_partition(tmp_path, monkeypatch):
    store = tmp_path / "store"
    write_predictions(_frame(100, 1.0), store, "2026-01-01")

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")  # EROFS, as from a read-only mount

    monkeypatch.setattr("rnn_model.io.os.replace", read_only)
    with pytest.raises(StoreError, match="Read-only file system.*writable"):
        write_predictions(_frame(100, 2.0), store, "2026-01-01")
    monkeypatch.undo()
    y = pq.read_table(prediction_path(store, "2026-01-01")).column("y_hat").to_numpy()
    assert np.all(y == 1.0)
    assert [p.name for p in prediction_path(store, "2026-01-01").parent.iterdir()] == ["part-0.parquet"]


def test_nonfinite_predictions_are_refused_before_writing(tmp_path):
    store = tmp_path / "store"
    write_predictions(_frame(100, 1.0), store, "2026-01-01")
    bad = _frame(100, 2.0)
    bad.loc[5, "y_hat"] = np.nan
    with pytest.raises(StoreError, match="NaN"):
        write_predictions(bad, store, "2026-01-01")
    assert np.all(pq.read_table(prediction_path(store, "2026-01-01")).column("y_hat").to_numpy() == 1.0)


def test_paths_cannot_escape_the_store(tmp_path):
    from rnn_model.errors import ConfigError
    from rnn_model.outputs import as_of_label

    for bad in ("../x", "2026/01/01", "..", "a/../../b"):
        with pytest.raises(ConfigError):
            as_of_label(bad)
    for bad in ("../evil", "a/b", "..", ""):
        with pytest.raises(ConfigError):
            ModelRegistry(tmp_path, bad)
