"""The store directory: its layout, its lock, and the hidden directories writers fill before a rename.

<store>/.lock                          held (flock) by a run while it writes to the store; holds the
                                       holder's pid, host, command and start time
<store>/models/<name>/                 the model registry (registry.py)
<store>/models/<name>/.incoming-*      a version being written, flocked by its writer; removed once the
                                       writer is gone (it died before its rename)
<store>/predictions/, <store>/reports/ outputs (outputs.py)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import ConfigError, StoreError
from .io import apply_umask

__all__ = [
    "store_lock",
    "check_store",
    "lock_timeout_s",
    "lock_path",
    "models_root",
    "claim_incoming",
    "remove_abandoned",
    "LOCK_TIMEOUT_ENV",
]

_INCOMING = ".incoming-"
LOCK_TIMEOUT_ENV = "RNN_FORECAST_LOCK_TIMEOUT"  # seconds a run waits for the store lock (CLI: --lock-timeout)
_DEFAULT_LOCK_TIMEOUT_S = 600.0
_WAIT_LOG_EVERY_S = 30.0

_log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def check_store(store: str | Path) -> Path:
    """The store directory as a Path; an empty name is refused (``Path('')`` is the current directory)."""
    if store is None or not str(store).strip():
        raise ConfigError(f"store={str(store)!r} is invalid: pass a directory for the outputs, e.g. --store store")
    return Path(store)


def lock_path(store: Path) -> Path:
    """``<store>/.lock``: the file every writing run flocks."""
    return store / ".lock"


def models_root(store: Path) -> Path:
    """``<store>/models``: one registry directory per model name below it."""
    return store / "models"


def lock_timeout_s() -> float:
    """Seconds to wait for the store lock: ``$RNN_FORECAST_LOCK_TIMEOUT``, else 600."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None or raw == "":
        return _DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{LOCK_TIMEOUT_ENV}={raw!r} is invalid: must be a number of seconds >= 0 (--lock-timeout)")
    return value


_held: dict[Path, int] = {}  # store -> nesting depth held by this process (a pipeline nests flows)
_held_guard = threading.Lock()


def _enter_nested(store: Path) -> bool:
    with _held_guard:
        if _held.get(store):
            _held[store] += 1
            return True
    return False


def _leave_nested(store: Path) -> None:
    with _held_guard:
        _held[store] -= 1


@contextmanager
def store_lock(store: str | Path, timeout_s: float | None = None) -> Iterator[None]:
    """Exclusive lock on the store, one writing run at a time; re-entrant within a process.

    Another process waits up to ``timeout_s`` (default :func:`lock_timeout_s`), saying every 30 s who holds
    the lock and since when, and then fails with a clear StoreError. The lock is an ``flock`` on
    ``<store>/.lock``, so it is released by the OS if the holder is killed. On entry, what killed runs
    left behind is removed (:func:`remove_abandoned`).
    """
    store = check_store(store).resolve()
    timeout_s = lock_timeout_s() if timeout_s is None else timeout_s
    if _enter_nested(store):
        try:
            yield
        finally:
            _leave_nested(store)
        return
    fd = _open_lock_file(store)
    try:
        _acquire(fd, store, timeout_s)
        _write_holder(fd)
        with _held_guard:
            _held[store] = 1
        try:
            for models in sorted(models_root(store).glob("*")):
                remove_abandoned(models)
            yield
        finally:
            with _held_guard:
                _held.pop(store, None)
    finally:
        os.close(fd)  # closing the file releases the flock


def _open_lock_file(store: Path) -> int:
    try:
        store.mkdir(parents=True, exist_ok=True)
        return os.open(lock_path(store), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise StoreError(f"cannot use store {store}: {exc.strerror or exc}; pass a writable --store DIR") from exc


def _acquire(fd: int, store: Path, timeout_s: float) -> None:
    start = time.monotonic()
    next_log = start
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - start
            if waited >= timeout_s:
                raise StoreError(
                    f"store {store} is locked by another run ({_holder(store)}) for more than {timeout_s:.0f}s; "
                    "wait for it to finish, raise --lock-timeout, or use another --store"
                ) from None
            if time.monotonic() >= next_log:  # say why the run is not progressing, at once and every 30 s
                _log.warning(
                    "store %s is locked by another run (%s); waited %.0f s of at most %.0f s (--lock-timeout)",
                    store,
                    _holder(store),
                    waited,
                    timeout_s,
                )
                next_log += _WAIT_LOG_EVERY_S
            time.sleep(0.2)


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the runs that wait: pid, host, command and since when (best effort)."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": _now(),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except OSError:
        pass  # the lock holds without the note


def _holder(store: Path) -> str:
    try:
        record = json.loads(lock_path(store).read_text())
        since = dt.datetime.fromisoformat(record["since"])
        age = (dt.datetime.now(dt.timezone.utc) - since).total_seconds()
        return (
            f"pid {record['pid']} on {record['host']}, since {record['since']} ({age:.0f} s ago): {record['command']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


# --------------------------------------------------------------------------- incoming version directories


def claim_incoming(root: Path) -> tuple[Path, int]:
    """A fresh ``.incoming-*`` directory under ``root``, flocked for as long as its writer lives (the fd).

    A cleaner (:func:`remove_abandoned`) that raced us to the lock may have deleted the directory between
    its creation and our lock: then it no longer is the path we hold, and we start again.
    """
    while True:
        tmp = Path(tempfile.mkdtemp(prefix=_INCOMING, dir=root))
        apply_umask(tmp)
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a cleaner deletes it
        try:
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return tmp, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_abandoned(root: Path) -> list[Path]:
    """Delete the ``.incoming-*`` directories of writers that died (their flock is free); live ones stay."""
    removed = []
    for path in sorted(root.glob(_INCOMING + "*")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a writer is filling it
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed
