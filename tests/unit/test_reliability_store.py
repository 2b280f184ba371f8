"""Reliability v2, the store (issue 13, items 1, 2, 5, 6, 7, 14, 15, 17): each test reproduces a defect
with real files, real processes and real locks, and fails on the code before the fix."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest

from rnn_model.config import check_name
from rnn_model.errors import ConfigError, RegistryError, StoreError
from rnn_model.io import atomic_write_bytes, atomic_write_json, atomic_write_parquet, atomic_write_parquet_set
from rnn_model.registry import ModelRegistry
from rnn_model.sample import write_sample_data
from rnn_model.store import LOCK_TIMEOUT_ENV, check_store, store_lock

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _registry_with(tmp_path: Path, n: int = 1) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "store", "default")
    for _ in range(n):
        registry.register(lambda tmp: (tmp / "payload").write_text("x"))
    return registry


# --------------------------------------------------------------------------- 1: a corrupt champion pointer


@pytest.mark.parametrize(
    "pointer",
    ['{"version": "../../.."}', "{", '{"version": "v0099"}', "[]", '{"version": 3}', '{"version": "v0001\\n"}', ""],
)
def test_a_corrupt_champion_pointer_is_a_registry_error_naming_rollback(tmp_path, pointer):
    """Every unusable pointer is a RegistryError (which train reports as "champion unusable" and replaces),
    never a ConfigError that ends the run; the message names --rollback-to and the known versions."""
    registry = _registry_with(tmp_path)
    (registry.root / "champion").write_text(pointer)
    with pytest.raises(RegistryError, match=r"--rollback-to VERSION \(known: v0001\)"):
        registry.champion()
    assert registry.previous_champion().startswith("an unusable pointer")  # what a rollback records


def test_rollback_mends_any_pointer(tmp_path):
    registry = _registry_with(tmp_path, 2)
    (registry.root / "champion").write_text('{"version": "../../.."}')
    registry.set_champion("v0001", f"rollback from {registry.previous_champion()}")
    assert registry.champion() == "v0001"
    history = [json.loads(line) for line in (registry.root / "history.jsonl").read_text().splitlines()]
    assert history[-1]["version"] == "v0001" and "unusable pointer" in history[-1]["reason"]


# --------------------------------------------------------------------------- 2: a stray file named like a version

REGISTER_ONCE = """
import sys
from pathlib import Path
from rnn_model.registry import ModelRegistry
print(ModelRegistry(sys.argv[1], "default").register(lambda tmp: (Path(tmp) / "payload").write_text("x")))
"""


@pytest.mark.parametrize("stray", ["file", "symlink"])
def test_a_stray_entry_named_like_a_version_is_skipped_not_retried_for_ever(tmp_path, stray):
    registry = _registry_with(tmp_path)
    target = registry.root / "v0002"
    if stray == "file":
        target.write_text("not a model")
    else:
        target.symlink_to(tmp_path / "nowhere")
    child = _python(REGISTER_ONCE, str(registry.store))  # a subprocess: the old code loops for ever
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("register() did not return: it retried the taken number for ever")
    assert child.returncode == 0, err
    assert out.strip() == "v0003"
    assert registry.versions() == ["v0001", "v0003"]
    assert os.path.lexists(target)  # the stray entry is left alone


# --------------------------------------------------------------------------- 5: who holds the lock, --lock-timeout

HOLD_LOCK = """
import sys, time
from rnn_model.store import store_lock
with store_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_waiting_run_says_who_holds_the_lock_and_honours_the_timeout(tmp_path, caplog, monkeypatch):
    store = tmp_path / "store"
    holder = _python(HOLD_LOCK, str(store))
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv(LOCK_TIMEOUT_ENV, "1.5")  # what --lock-timeout sets
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="rnn_model.store"):
            with pytest.raises(StoreError) as caught:
                with store_lock(store):
                    pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 1.4 <= waited < 10
    message = str(caught.value)
    assert f"pid {holder.pid} on " in message and "since 20" in message and "raise --lock-timeout" in message
    waiting = [r.getMessage() for r in caplog.records if r.name == "rnn_model.store"]
    assert waiting and f"locked by another run (pid {holder.pid}" in waiting[0] and "--lock-timeout" in waiting[0]
    with store_lock(store, timeout_s=5):  # the killed holder released it
        pass


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_a_bad_lock_timeout_is_a_config_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, value)
    with pytest.raises(ConfigError, match="--lock-timeout"):
        with store_lock(tmp_path / "store"):
            pass


# --------------------------------------------------------------------------- 6: leftovers of a killed register

REGISTER_SLOWLY = """
import sys, time
from pathlib import Path
from rnn_model.registry import ModelRegistry

def write(tmp):
    (Path(tmp) / "half").write_text("x")
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
    (Path(tmp) / "payload").write_text("done")

print(ModelRegistry(sys.argv[1], "default").register(write), flush=True)
"""


def _incoming(registry: ModelRegistry) -> list[str]:
    return sorted(p.name for p in registry.root.iterdir() if p.name.startswith(".incoming-"))


def test_the_next_registration_removes_what_a_killed_one_left(tmp_path):
    registry = _registry_with(tmp_path)
    child = _python(REGISTER_SLOWLY, str(registry.store), "60")
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert len(_incoming(registry)) == 1  # what the killed writer left
    assert registry.register(lambda tmp: (tmp / "payload").write_text("y")) == "v0002"
    assert _incoming(registry) == []
    assert registry.versions() == ["v0001", "v0002"]


def test_the_store_lock_removes_abandoned_incoming_directories(tmp_path):
    registry = _registry_with(tmp_path)
    child = _python(REGISTER_SLOWLY, str(registry.store), "60")
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with store_lock(registry.store):  # every run takes it first, predict-only runs too
        assert _incoming(registry) == []


def test_a_live_writers_incoming_directory_is_never_removed(tmp_path):
    registry = _registry_with(tmp_path)
    child = _python(REGISTER_SLOWLY, str(registry.store), "2")
    assert child.stdout.readline().strip() == "writing"
    assert registry.register(lambda tmp: (tmp / "payload").write_text("y")) == "v0002"  # cleans abandoned only
    with store_lock(registry.store):
        pass
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip().splitlines()[-1] == "v0003"
    assert (registry.root / "v0003" / "payload").read_text() == "done"
    assert _incoming(registry) == []


# --------------------------------------------------------------------------- 7: special files are never replaced


def _special_files(tmp_path: Path) -> dict[str, Path]:
    found = {}
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    found["FIFO"] = fifo
    link = tmp_path / "link"
    (tmp_path / "target").write_bytes(b"keep me")
    link.symlink_to(tmp_path / "target")
    found["symbolic link"] = link
    if os.geteuid() == 0:  # a character device like /dev/null (1, 3), made where replacing it is harmless
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        found["character device"] = device
    return found


@pytest.mark.parametrize("writer", ["bytes", "json", "parquet", "sample-data"])
def test_atomic_writes_refuse_to_replace_special_files(tmp_path, writer):
    table = pa.table({"a": [1, 2]})
    write = {
        "bytes": lambda path: atomic_write_bytes(b"data", path),
        "json": lambda path: atomic_write_json({"a": 1}, path),
        "parquet": lambda path: atomic_write_parquet(table, path),
        "sample-data": lambda path: write_sample_data(path, n_series=2, length=48),
    }[writer]
    for kind, path in _special_files(tmp_path).items():
        before = os.lstat(path)
        with pytest.raises(StoreError, match=f"refusing to replace {path}: it is a {kind}"):
            write(path)
        after = os.lstat(path)
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino
    assert (tmp_path / "target").read_bytes() == b"keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_prediction_partition_that_is_not_a_directory_is_not_replaced(tmp_path):
    partition = tmp_path / "as_of=2026-01-01"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    partition.symlink_to(elsewhere)
    with pytest.raises(StoreError, match="it is a symbolic link, not a directory"):
        atomic_write_parquet_set({"part-0.parquet": pa.table({"a": [1]})}, partition)
    assert partition.is_symlink() and list(elsewhere.iterdir()) == []


# --------------------------------------------------------------------------- 14, 15: names that become paths


def test_an_empty_store_is_refused_and_nothing_is_written_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for empty in ("", " "):
        with pytest.raises(ConfigError, match="store=.* is invalid: pass a directory"):
            check_store(empty)
        with pytest.raises(ConfigError):
            ModelRegistry(empty, "default")
        with pytest.raises(ConfigError):
            with store_lock(empty):
                pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["evil\n", "evil\n\n", "v1\r", "a b", "\nevil"])
def test_a_model_name_with_a_newline_or_space_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="model_name="):
        check_name("model_name", name)
    with pytest.raises(ConfigError):
        ModelRegistry(tmp_path, name)
    assert not (tmp_path / "models").exists()


def test_a_version_with_a_trailing_newline_is_invalid(tmp_path):
    registry = _registry_with(tmp_path)
    with pytest.raises(ConfigError, match="versions look like 'v0003'"):
        registry.path("v0001\n")


# --------------------------------------------------------------------------- 17: file modes honour the umask


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_mask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_and_directories_honour_the_umask(tmp_path, umask, mask):
    umask(mask)
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    registry = ModelRegistry(tmp_path / "store", "default")
    version = registry.register(lambda tmp: atomic_write_json({"a": 1}, tmp / "meta.json"))
    registry.set_champion(version, "test")
    partition = tmp_path / "store" / "predictions" / "as_of=2026-01-01"
    atomic_write_parquet_set({"part-0.parquet": pa.table({"a": [1]})}, partition)
    sample = write_sample_data(tmp_path / "sample.parquet", n_series=2, length=48)

    def mode(path: Path) -> int:
        return stat.S_IMODE(os.stat(path).st_mode)

    assert mode(registry.root / version) == dir_mode
    assert mode(partition) == dir_mode
    for path in (
        registry.root / version / "meta.json",
        registry.root / "champion",
        partition / "part-0.parquet",
        sample,
        tmp_path / "store" / ".lock" if (tmp_path / "store" / ".lock").exists() else sample,
    ):
        assert mode(path) == file_mode, path


def test_the_lock_file_honours_the_umask(tmp_path, umask):
    umask(0o002)
    with store_lock(tmp_path / "store"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "store" / ".lock").st_mode) == 0o664
