"""File-based model registry: immutable versions, an atomically replaced champion pointer, promotion gate.

    <store>/models/<name>/v0001/           a bundle (see bundle.py), never modified once renamed into place
    <store>/models/<name>/v0001/decision.json  the promotion decision for that version (written once)
    <store>/models/<name>/champion         JSON pointer {"version", "since", "reason"}; os.replace'd
    <store>/models/<name>/history.jsonl    one line per champion change (promotion, force, rollback)
    <store>/.lock                          held (flock) by a run while it writes to the store
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .bundle import Bundle, load_bundle
from .config import check_name
from .gate import PromotionDecision, decide_promotion  # noqa: F401 - re-exported: the registry records them
from .errors import ConfigError, RegistryError, StoreError
from .io import atomic_write_json

__all__ = ["ModelRegistry", "PromotionDecision", "decide_promotion", "store_lock"]

_VERSION_RE = re.compile(r"^v(\d{4,})$")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


_held: dict[Path, int] = {}  # store -> nesting depth held by this process (a pipeline nests flows)
_held_guard = threading.Lock()


@contextmanager
def store_lock(store: str | Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Exclusive lock on the store, one writing run at a time; re-entrant within a process.

    Another process waits up to ``timeout_s`` and then fails with a clear StoreError. The lock is an
    ``flock`` on ``<store>/.lock``, so it is released by the OS if the holder is killed.
    """
    store = Path(store).resolve()
    with _held_guard:
        if _held.get(store):
            _held[store] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[store] -= 1
        return
    try:
        store.mkdir(parents=True, exist_ok=True)
        fh = open(store / ".lock", "a+")
    except OSError as exc:
        raise StoreError(f"cannot use store {store}: {exc.strerror or exc}; pass a writable --store DIR") from exc
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"store {store} is locked by another run for more than {timeout_s:.0f}s; wait for it "
                        "to finish, or use another --store"
                    ) from None
                time.sleep(0.2)
        with _held_guard:
            _held[store] = 1
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(store, None)
    finally:
        fh.close()  # closing the file releases the flock


class ModelRegistry:
    def __init__(self, store: str | Path, name: str = "default"):
        check_name("model_name", name)
        self.store = Path(store)
        self.name = name
        self.root = self.store / "models" / name

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def path(self, version: str) -> Path:
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise ConfigError(f"model version {version!r} is invalid: versions look like 'v0003'")
        path = self.root / version
        if not path.is_dir():
            known = ", ".join(self.versions()) or "none yet"
            raise RegistryError(f"model version {version} not found in {self.root} (known: {known})")
        return path

    def register(self, write: Callable[[Path], None]) -> str:
        """Build a new version with ``write(tmp_dir)``, then rename it into place as the next vNNNN.

        A crash before the rename leaves only a hidden ``.incoming-*`` directory, never a partial version.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        except OSError as exc:
            raise StoreError(f"cannot write to {self.root}: {exc.strerror or exc}; pass a writable --store") from exc
        try:
            write(tmp)
            while True:  # claim the next free number; if a racing writer took it, the rename fails: retry
                nums = [int(v[1:]) for v in self.versions()]
                version = f"v{(max(nums) + 1 if nums else 1):04d}"
                try:
                    os.rename(tmp, self.root / version)
                    return version
                except OSError:
                    if not (self.root / version).exists():
                        raise
        except OSError as exc:
            raise StoreError(f"cannot write a model version under {self.root}: {exc.strerror or exc}") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def champion(self) -> str | None:
        pointer = self.root / "champion"
        if not pointer.exists():
            return None
        try:
            version = json.loads(pointer.read_text())["version"]
        except (ValueError, KeyError, TypeError, OSError) as exc:  # Fix: TypeError for a non-object pointer
            raise RegistryError(
                f"champion pointer {pointer} is corrupt ({exc}); set one with --rollback-to VERSION"
            ) from exc
        self.path(version)  # raises when the version it names is gone
        return version

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
