"""File-based model registry: immutable versions, an atomically replaced champion pointer, promotion gate.

<store>/models/<name>/v0001/           a bundle (see bundle.py), never modified once renamed into place
<store>/models/<name>/v0001/decision.json  the promotion decision for that version (written once)
<store>/models/<name>/champion         JSON pointer {"version", "since", "reason"}; os.replace'd
<store>/models/<name>/history.jsonl    one line per champion change (promotion, force, rollback)
<store>/.lock                          held (flock) by a run while it writes to the store
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .bundle import Bundle, load_bundle
from .config import check_name
from .errors import ConfigError, RegistryError, StoreError
from .gate import PromotionDecision, decide_promotion  # noqa: F401 - re-exported: the registry records them
from .io import apply_umask, atomic_write_json, fsync_dir

__all__ = [
    "ModelRegistry",
    "PromotionDecision",
    "decide_promotion",
    "store_lock",
    "check_store",
    "lock_timeout_s",
    "LOCK_TIMEOUT_ENV",
]

_VERSION_RE = re.compile(r"v(\d{4,})")  # always fullmatch: '$' would accept a trailing newline
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
    left behind is removed (:func:`_remove_abandoned`).
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
            for models in sorted((store / "models").glob("*")):
                _remove_abandoned(models)
            yield
        finally:
            with _held_guard:
                _held.pop(store, None)
    finally:
        os.close(fd)  # closing the file releases the flock


def _open_lock_file(store: Path) -> int:
    try:
        store.mkdir(parents=True, exist_ok=True)
        return os.open(store / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
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
        record = json.loads((store / ".lock").read_text())
        since = dt.datetime.fromisoformat(record["since"])
        age = (dt.datetime.now(dt.timezone.utc) - since).total_seconds()
        return (
            f"pid {record['pid']} on {record['host']}, since {record['since']} ({age:.0f} s ago): {record['command']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


# --------------------------------------------------------------------------- incoming version directories


def _claim_incoming(root: Path) -> tuple[Path, int]:
    """A fresh ``.incoming-*`` directory under ``root``, flocked for as long as its writer lives (the fd).

    A cleaner (:func:`_remove_abandoned`) that raced us to the lock may have deleted the directory between
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


def _remove_abandoned(root: Path) -> list[Path]:
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


class ModelRegistry:
    def __init__(self, store: str | Path, name: str = "default"):
        check_name("model_name", name)
        self.store = check_store(store)
        self.name = name
        self.root = self.store / "models" / name

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.fullmatch(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def path(self, version: str) -> Path:
        if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
            raise ConfigError(f"model version {version!r} is invalid: versions look like 'v0003'")
        path = self.root / version
        if not path.is_dir():
            raise RegistryError(f"model version {version} not found in {self.root} (known: {self._known()})")
        return path

    def _known(self) -> str:
        return ", ".join(self.versions()) or "none yet"

    def _next_number(self) -> int:
        """One more than every version-like name, files included: a stray file ``v0002`` is skipped, never
        proposed again and again."""
        if not self.root.is_dir():
            return 1
        nums = [int(m.group(1)) for m in map(_VERSION_RE.fullmatch, os.listdir(self.root)) if m]
        return max(nums, default=0) + 1

    def register(self, write: Callable[[Path], None]) -> str:
        """Build a new version with ``write(tmp_dir)``, then rename it into place as the next vNNNN.

        A crash before the rename leaves only a hidden ``.incoming-*`` directory, never a partial version;
        the next registration (or store lock) removes it.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _remove_abandoned(self.root)
            tmp, fd = _claim_incoming(self.root)
        except OSError as exc:
            raise StoreError(f"cannot write to {self.root}: {exc.strerror or exc}; pass a writable --store") from exc
        try:
            write(tmp)
            version = self._rename_to_next(tmp)
            fsync_dir(self.root)
            return version
        except OSError as exc:
            raise StoreError(f"cannot write a model version under {self.root}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _rename_to_next(self, tmp: Path) -> str:
        for _ in range(1000):  # a racing writer took the number: its rename won, take the next one
            version = f"v{self._next_number():04d}"
            try:
                os.rename(tmp, self.root / version)
                return version
            except OSError as exc:
                if not os.path.lexists(self.root / version) and exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        raise StoreError(
            f"cannot claim a version number under {self.root}: 1000 renames failed; check what else writes there"
        )

    def champion(self) -> str | None:
        """The champion's version, or None when there is none yet. A pointer that cannot be read, or that
        names anything but an existing version, is a RegistryError naming the fix (``--rollback-to``)."""
        pointer = self.root / "champion"
        if not os.path.lexists(pointer):
            return None
        fix = f"set a champion with train --rollback-to VERSION (known: {self._known()})"
        try:
            version = json.loads(pointer.read_text())["version"]
        except (ValueError, KeyError, TypeError, OSError) as exc:  # TypeError: a pointer that is not an object
            raise RegistryError(f"champion pointer {pointer} is corrupt ({exc}); {fix}") from exc
        if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
            raise RegistryError(f"champion pointer {pointer} names {version!r}, which is not a version; {fix}")
        if not (self.root / version).is_dir():
            raise RegistryError(f"champion pointer {pointer} names {version}, which is not in {self.root}; {fix}")
        return version

    def previous_champion(self) -> str:
        """What the pointer says, for the record of a change: never raises (a rollback must mend any pointer)."""
        try:
            return self.champion() or "none"
        except RegistryError as exc:
            return f"an unusable pointer ({exc})"

    def set_champion(self, version: str, reason: str) -> None:
        self.path(version)
        record = {"version": version, "since": _now(), "reason": reason}
        atomic_write_json(record, self.root / "champion")
        with open(self.root / "history.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def record_decision(self, version: str, decision: dict) -> None:
        atomic_write_json({"decided_at": _now(), **decision}, self.path(version) / "decision.json")

    def decision(self, version: str) -> dict | None:
        path = self.path(version) / "decision.json"
        return json.loads(path.read_text()) if path.exists() else None

    def load(self, version: str) -> Bundle:
        return load_bundle(self.path(version))
