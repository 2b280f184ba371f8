"""File-based model registry: immutable versions, an atomically replaced champion pointer, promotion gate.

<store>/models/<name>/v0001/           a bundle (see bundle.py), never modified once renamed into place
<store>/models/<name>/v0001/decision.json  the promotion decision for that version (written once)
<store>/models/<name>/champion         JSON pointer {"version", "since", "reason"}; os.replace'd
<store>/models/<name>/history.jsonl    one line per champion change (promotion, force, rollback)

The store directory itself, its lock and the hidden ``.incoming-*`` directories are store.py's.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

from .bundle import Bundle, load_bundle
from .config import check_name
from .errors import ConfigError, RegistryError, StoreError
from .gate import PromotionDecision, decide_promotion  # noqa: F401 - re-exported: the registry records them
from .io import atomic_write_json, fsync_dir
from .store import check_store, claim_incoming, models_root, remove_abandoned

__all__ = ["ModelRegistry", "PromotionDecision", "decide_promotion"]

_VERSION_RE = re.compile(r"v(\d{4,})")  # always fullmatch: '$' would accept a trailing newline


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class ModelRegistry:
    def __init__(self, store: str | Path, name: str = "default"):
        check_name("model_name", name)
        self.store = check_store(store)
        self.name = name
        self.root = models_root(self.store) / name

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

    def register(self, write: Callable[[Path], object]) -> str:
        """Build a new version with ``write(tmp_dir)``, then rename it into place as the next vNNNN.

        A crash before the rename leaves only a hidden ``.incoming-*`` directory, never a partial version;
        the next registration (or store lock) removes it.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            remove_abandoned(self.root)
            tmp, fd = claim_incoming(self.root)
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
