"""All file input and output: Parquet reading (only the needed columns) and atomic writes.

Atomic means: write to a temporary name in the same directory, flush to disk, then ``os.replace`` it
into place, so a reader (or a crash) sees the old file or the new one, never half of one. A *set* of
files (the parts of a predictions partition) is replaced as one unit by building it in a temporary
sibling directory and swapping the two directories (:func:`atomic_write_parquet_set`).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import sys
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
    "atomic_write_parquet_set",
    "read_json",
    "apply_umask",
    "fsync_dir",
]


def _is_url(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and "://" in path


def _hidden(relative: str) -> bool:
    """Hidden or bookkeeping entries (``.tmp`` files, ``_SUCCESS``, ``_temporary/``), at any depth, are
    skipped, as ``pyarrow.dataset`` discovery does."""
    return any(part.startswith((".", "_")) for part in relative.replace("\\", "/").split("/") if part)


def _filesystem(url: str):
    """(pyarrow FileSystem, path inside it) for a URL.

    ``file://`` and schemes pyarrow knows natively (``s3://``, ``gs://``, ``hdfs://``) use pyarrow's own
    filesystems; a scheme with an installed fsspec implementation (``s3fs``, ``gcsfs``, ``adlfs``...) uses
    that one (wrapped for pyarrow), which takes precedence so its credentials and options apply.
    """
    import pyarrow.fs as pafs

    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("file", "local"):
        try:
            import fsspec
            from pyarrow.fs import FSSpecHandler, PyFileSystem

            fs, inner = fsspec.core.url_to_fs(url)
            return PyFileSystem(FSSpecHandler(fs)), inner
        except (ImportError, ValueError):  # no fsspec implementation installed for the scheme
            pass
    try:
        return pafs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataReadError(
            f"cannot open {url} ({_first_line(exc)}); use a local path, a file:// URL, or install the "
            f"fsspec filesystem for {scheme}:// (e.g. pip install s3fs for s3://)"
        ) from None


def _list_files(path: str | os.PathLike):
    """(filesystem or None for local, root, [files]) of a file, directory or URL; raises DataReadError."""
    import pyarrow.fs as pafs

    if not _is_url(path):
        local = Path(path)
        if not local.exists():
            raise DataReadError(f"input not found: {local}; pass --data with a Parquet file or directory")
        if local.is_file():
            return None, str(local), [(str(local), local.stat().st_size)]
        files = sorted(
            (str(p), p.stat().st_size)
            for p in local.rglob("*")
            if p.is_file() and not _hidden(str(p.relative_to(local)))
        )
        return None, str(local), files
    fs, root = _filesystem(str(path))
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise DataReadError(f"input not found: {path}; pass --data with a Parquet file or directory")
    if info.type == pafs.FileType.File:
        return fs, root, [(root, info.size)]
    base = root.rstrip("/")
    found = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    files = sorted(
        (f.path, f.size) for f in found if f.type == pafs.FileType.File and not _hidden(f.path[len(base) :].lstrip("/"))
    )
    return fs, base, files


def read_long_table(path: str | os.PathLike, data: DataConfig) -> pa.Table:
    """Read the id, time and target columns of a Parquet file, a directory of Parquet files (hive
    partitions such as ``region=eu/`` included, at any depth), or a URL (``file://``, ``s3://``, ...).

    Rows of one series may be spread over several files, in any order: :func:`rnn_model.panel.build_panel`
    sorts them by series and time. Column names are checked against the dataset schema first, so a
    missing column is reported before any row is read. Extra columns (hive partition keys included) are
    never read.
    """
    fs, root, files = _list_files(path)
    shown = path if _is_url(path) else Path(path)
    if not files:
        raise DataReadError(f"no Parquet files in directory {shown}; write the data as *.parquet files there")
    for f, size in files:
        if size == 0:
            raise DataReadError(f"{f} is empty (0 bytes); re-export it as Parquet or remove it")
    wanted = [data.id_col, data.time_col, data.target_col]
    paths = [f for f, _ in files]
    try:
        dataset = pads.dataset(paths, filesystem=fs, format="parquet")
        schema = dataset.schema
        hive = False
        if any(c not in schema.names for c in wanted) and any("=" in p[len(root) :] for p in paths):
            # hive partitioning: key=value directories become columns (e.g. unique_id=s1/part-0.parquet).
            # Only when the files lack a needed column: partition keys are otherwise never read.
            dataset = pads.dataset(paths, filesystem=fs, format="parquet", partitioning="hive", partition_base_dir=root)
            schema = dataset.schema
            hive = True
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a plain OSError may be transient: let it retry
        raise DataReadError(
            f"cannot read {shown} as Parquet ({_first_line(exc)}); check the file is complete Parquet "
            "(not CSV, not truncated) and that all files in a directory share one schema"
        ) from None
    unified = _file_schemas(dataset, root, wanted, shown) if len(paths) > 1 else None
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise DataReadError(
            f"missing column(s) {missing} in {shown} (found {schema.names}); rename them, or set "
            "id_col/time_col/target_col (--id-col/--time-col/--target-col) to the names used"
        )
    if unified is not None:  # the files disagree on a column's type: read every file as one schema
        try:
            return pads.dataset(
                paths,
                filesystem=fs,
                format="parquet",
                schema=unified,
                partitioning="hive" if hive else None,
                partition_base_dir=root if hive else None,
            ).to_table(columns=wanted)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise DataReadError(
                f"cannot read {shown} as one table ({_first_line(exc)}); write every file with the same column types"
            ) from None
    id_type = schema.field(data.id_col).type
    try:
        if (pa.types.is_string(id_type) or pa.types.is_large_string(id_type)) and not hive:
            # String ids are read as a dictionary column (Parquet stores them as dictionary pages): the
            # panel gets the codes without hashing every row's string again (benchmarks/RESULTS.md, "Ingest").
            fmt = pads.ParquetFileFormat(read_options=pads.ParquetReadOptions(dictionary_columns=[data.id_col]))
            dataset = pads.dataset(paths, filesystem=fs, format=fmt)
        return dataset.to_table(columns=wanted)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataReadError(
            f"cannot read {shown} as Parquet ({_first_line(exc)}); a file may be truncated or corrupt, or the "
            "files differ in column types: re-export it"
        ) from None


def _file_schemas(dataset: pads.Dataset, root: str, wanted: list[str], shown) -> pa.Schema | None:
    """Check every file of a multi-file dataset, not only the first (which alone gives the dataset's
    schema): a file that lacks a needed column would otherwise read as nulls, and its series vanish.

    Raises DataReadError naming the first file that lacks a column or has an incompatible type. Returns
    None when all files agree, else the schema (needed columns, promoted types) to read them with.
    """
    types: dict[str, dict[pa.DataType, str]] = {c: {} for c in wanted}  # column -> type -> first file
    lacking: dict[str, tuple[str, list[str]]] = {}  # column -> (first file without it, its columns)
    for fragment in dataset.get_fragments():
        relative = fragment.path[len(root) :]
        try:
            physical = fragment.physical_schema
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # an OSError may be transient: it is retried
            raise DataReadError(
                f"cannot read {fragment.path} as Parquet ({_first_line(exc)}); check the file is complete Parquet "
                "(not CSV, not truncated), or remove it"
            ) from None
        for column in wanted:
            if column in physical.names:
                types[column].setdefault(physical.field(column).type, fragment.path)
            elif f"{column}=" not in relative:  # a hive partition key supplies it otherwise
                lacking.setdefault(column, (fragment.path, physical.names))
    for column, (path, names) in lacking.items():
        if types[column]:  # some files have it (none: the caller reports the column missing everywhere)
            raise DataReadError(
                f"missing column {column!r} in {path} (found {names}), while other files of {shown} have it; "
                f"write every file with the columns {wanted}, or remove that file"
            )
    if all(len(found) <= 1 for found in types.values()):
        return None
    fields = []
    for column in wanted:
        found = types[column]
        if not found:  # only from hive partition keys
            continue
        fields.append(pa.field(column, _promoted(column, found)))
    return pa.schema(fields)


def _promoted(column: str, found: dict[pa.DataType, str]) -> pa.DataType:
    """One type for a column whose files disagree: numbers widen (to int64 when all are integers, else
    float64), timestamp units to the finest, strings to large_string; anything else is an error."""
    kinds = list(found)
    if len(kinds) == 1:
        return kinds[0]
    base = [t.value_type if pa.types.is_dictionary(t) else t for t in kinds]
    if all(pa.types.is_integer(t) for t in base):
        return pa.int64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in base):
        return pa.float64()
    if all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in base):
        return pa.large_string()
    if all(pa.types.is_timestamp(t) or pa.types.is_date(t) for t in base):
        zones = {getattr(t, "tz", None) for t in base if pa.types.is_timestamp(t)}
        if len(zones) == 1 and not any(pa.types.is_date(t) for t in base if zones != {None}):
            units = [t.unit for t in base if pa.types.is_timestamp(t)]
            finest = max(units, key=["s", "ms", "us", "ns"].index) if units else "s"
            return pa.timestamp(finest, tz=zones.pop())
    (t1, f1), (t2, f2) = list(found.items())[:2]
    raise DataReadError(
        f"column {column!r} has type {t1} in {f1} but {t2} in {f2}; write every file with the same column types"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only be read by setting it, which
    would race with other threads creating files): ``/proc/self/status`` on Linux, else the set-and-restore."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike) -> None:
    """Give a ``tempfile`` file (0600) or directory (0700) the mode ``open``/``mkdir`` would have given
    it (0666/0777 less the umask), so readers under other accounts can read what is renamed into place."""
    full = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, full & ~_umask())


def _refuse_special(final: Path, want_dir: bool = False) -> None:
    """Atomic replacement would turn a device node, FIFO, socket or symlink into a plain file (as root,
    ``/dev/null`` too): only regular files (or, for sets of files, real directories) are replaced."""
    try:
        mode = os.lstat(final).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode):
        return
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    wanted = "a directory" if want_dir else "a regular file"
    raise StoreError(f"refusing to replace {final}: it is {kind}, not {wanted}; write to a new path or to {wanted}")


_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a directory",
    stat.S_IFREG: "a regular file",
}


@contextmanager
def _temp_path(final: Path) -> Iterator[Path]:
    _refuse_special(final)  # before any work; checked again just before the rename
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        apply_umask(tmp_path)
        yield tmp_path
        _fsync(tmp_path)
        _refuse_special(final)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = _fsync_dir  # public: the registry makes its renames durable with it


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
        apply_umask(tmp)
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


# --------------------------------------------------------------------------- replacing a set of files

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_renameat2: Any = None  # None: not looked up yet; False: unavailable; else the ctypes function


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries atomically (Linux ``renameat2(RENAME_EXCHANGE)``, ext4/xfs/btrfs/tmpfs).

    Returns False where the platform or file system cannot (the caller falls back to two renames).
    """
    global _renameat2
    if not sys.platform.startswith("linux"):
        return False
    if _renameat2 is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
        except (AttributeError, OSError):
            _renameat2 = False
            return False
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        _renameat2 = fn
    if _renameat2 is False:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_into_place(new: Path, final: Path, exchange: bool = True) -> None:
    """Make ``new`` (a complete directory) be ``final``; what ``final`` held ends up under ``new``'s name
    or a ``.old`` sibling, for the caller to delete.

    With ``exchange`` (and a file system that supports it) one atomic swap: readers see the old set or
    the new one. Otherwise two renames: between them (microseconds) ``final`` does not exist, so a reader
    sees no rows for it, never a mix; a crash exactly there leaves the old set in ``.<name>.*.old``,
    which the next write restores first (:func:`_recover`).
    """
    if not final.exists():
        os.replace(new, final)
        return
    if exchange and _exchange(new, final):
        return
    old = new.with_name(new.name.removesuffix(".tmp") + ".old")
    os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        os.replace(old, final)  # put the old set back
        raise
    os.replace(old, new)  # the caller removes ``new``: now the old set


def _leftovers(final: Path) -> list[Path]:
    return sorted(final.parent.glob(f".{final.name}.*.tmp")) + sorted(final.parent.glob(f".{final.name}.*.old"))


def _recover(final: Path) -> None:
    """A writer killed between the two renames of :func:`_swap_into_place` left no ``final`` and the old
    set in a ``.old`` sibling: put it back (runs hold the store lock, so no writer is active now)."""
    if final.exists():
        return
    olds = sorted(final.parent.glob(f".{final.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], final)


def atomic_write_parquet_set(
    tables: dict[str, pa.Table], directory: str | os.PathLike, exchange: bool = True
) -> list[Path]:
    """Replace ``directory`` by exactly these Parquet files (name -> table), as one unit.

    The files are written (and fsynced) into a temporary hidden sibling directory, which is then swapped
    with ``directory`` (see :func:`_swap_into_place`); the previous set is deleted afterwards. Hidden
    names (``.…tmp``/``.…old``) are ignored by ``pyarrow.dataset`` discovery, so readers of the parent never
    see a partial set or two sets. On any error ``directory`` keeps its previous files. Leftovers of a
    killed writer are removed by the next successful call. Callers serialise writers (the store lock).
    """
    final = Path(directory)
    tmp = None
    try:
        _refuse_special(final, want_dir=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        _recover(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        apply_umask(tmp)
        for name, table in tables.items():
            with _temp_path(tmp / name) as part:
                pq.write_table(table, part)
        _fsync_dir(tmp)
        _refuse_special(final, want_dir=True)
        _swap_into_place(tmp, final, exchange)
        _fsync_dir(final.parent)
    except OSError as exc:
        raise _store_error(final, exc) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for stale in _leftovers(final):
        shutil.rmtree(stale, ignore_errors=True)
    return [final / name for name in tables]
