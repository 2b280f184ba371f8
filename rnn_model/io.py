"""All file input and output: Parquet reading (only the needed columns) and atomic writes.

Atomic means: write to a temporary name in the same directory, flush to disk, then ``os.replace`` it
into place, so a reader (or a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .config import DataConfig
from .errors import DataReadError, StoreError

__all__ = [
    "read_long_table",
    "atomic_write_parquet",
    "atomic_write_json",
    "atomic_write_bytes",
    "atomic_directory",
    "read_json",
]


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    return files


def read_long_table(path: str | os.PathLike, data: DataConfig) -> pa.Table:
    """Read the id, time and target columns of a Parquet file or directory of Parquet files.

    Column names are checked against the file schema first, so a missing column is reported before any
    row is read. Extra columns are never read.
    """
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"input not found: {path}; pass --data with a Parquet file or directory")
    files = _parquet_files(path)
    if not files:
        raise DataReadError(f"no Parquet files in directory {path}; write the data as *.parquet files there")
    for f in files:
        if f.stat().st_size == 0:
            raise DataReadError(f"{f} is empty (0 bytes); re-export it as Parquet or remove it")
    wanted = [data.id_col, data.time_col, data.target_col]
    try:
        dataset = pads.dataset([str(f) for f in files], format="parquet")
        schema = dataset.schema
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a plain OSError may be transient: let it retry
        raise DataReadError(
            f"cannot read {path} as Parquet ({_first_line(exc)}); check the file is complete Parquet "
            "(not CSV, not truncated) and that all files in a directory share one schema"
        ) from None
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise DataReadError(
            f"missing column(s) {missing} in {path} (found {schema.names}); rename them, or set "
            "id_col/time_col/target_col (--id-col/--time-col/--target-col) to the names used"
        )
    try:
        return dataset.to_table(columns=wanted)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataReadError(
            f"cannot read {path} as Parquet ({_first_line(exc)}); the file may be truncated or corrupt: "
            "re-export it"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def _temp_path(final: Path) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_error(path: Path, exc: OSError) -> StoreError:
    return StoreError(
        f"cannot write {path}: {exc.strerror or exc}; check that the store directory exists, is writable "
        "and has free space (--store DIR)"
    )


def atomic_write_parquet(table: pa.Table, path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        with _temp_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as exc:
        raise _store_error(path, exc) from exc
    return path


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        with _temp_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise _store_error(path, exc) from exc
    return path


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    return atomic_write_bytes((json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode(), path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


@contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary name; on success rename it to ``final`` (which must not exist).

    On any error the temporary directory is removed and ``final`` is untouched.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    except OSError as exc:
        raise _store_error(final, exc) from exc
    try:
        yield tmp
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except OSError as exc:
        raise _store_error(final, exc) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
