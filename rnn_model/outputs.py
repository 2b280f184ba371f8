"""What a run writes besides models: prediction partitions and reports, atomically, inside the store.

    <store>/predictions/as_of=<label>/part-<k>.parquet  unique_id, ds, horizon_step, y_hat, model_version,
                                                       as_of, created_at   (k: series group, 0 when
                                                       the run is not partitioned)
    <store>/reports/<run>/...                          backtests, metrics, plots

Re-running the same ``as_of`` replaces that partition's whole set of part files as one unit (a directory
swap, see :func:`rnn_model.io.atomic_write_parquet_set`): readers see the old rows or the new ones, never
both, never half, and never a part left over from a run with another number of partitions.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ConfigError, StoreError
from .io import atomic_write_json, atomic_write_parquet, atomic_write_parquet_set

__all__ = ["as_of_label", "as_of_range", "parse_as_of", "prediction_dir", "prediction_path", "write_predictions",
           "write_prediction_parts", "write_backtest_report", "PREDICTION_COLUMNS"]

PREDICTION_COLUMNS = ["unique_id", "ds", "horizon_step", "y_hat", "model_version", "as_of", "created_at"]
_LABEL_RE = re.compile(r"^[0-9A-Za-z:T\-_]+$")


def parse_as_of(as_of: str | int | None) -> pd.Timestamp | int | None:
    """Validate an ``as_of`` value: a date/timestamp string (tz-aware is converted to UTC), or an integer
    step for integer ``ds``. ``None`` means now."""
    if as_of is None:
        return None
    if isinstance(as_of, int) or (isinstance(as_of, str) and as_of.lstrip("-").isdigit() and len(as_of) < 8):
        return int(as_of)
    if not isinstance(as_of, str) or "/" in as_of or ".." in as_of:
        raise ConfigError(f"as_of={as_of!r} is invalid: use a date like 2026-11-01 or a timestamp 2026-11-01T06:00")
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ConfigError(f"as_of={as_of!r} is invalid: use a date like 2026-11-01 or a timestamp 2026-11-01T06:00") from None
    if ts is pd.NaT:
        raise ConfigError(f"as_of={as_of!r} is invalid: use a date like 2026-11-01")
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def as_of_label(as_of: str | int | None) -> str:
    """The partition label: ``2026-11-01`` for dates, ``2026-11-01T06-00-00`` for times, ``42`` for steps."""
    value = parse_as_of(as_of)
    if value is None:
        value = pd.Timestamp(dt.datetime.now(dt.timezone.utc).date())
    if isinstance(value, int):
        label = str(value)
    elif value == value.normalize():
        label = value.strftime("%Y-%m-%d")
    else:
        label = value.strftime("%Y-%m-%dT%H-%M-%S")
    if not _LABEL_RE.match(label):
        raise ConfigError(f"as_of={as_of!r} gives an unsafe partition name {label!r}")
    return label


def as_of_range(start: str, end: str, every: str = "D") -> list[str]:
    """The ``as_of`` values of a backfill, oldest first: dates (or timestamps) from start to end."""
    first, last = parse_as_of(start), parse_as_of(end)
    if first is None or last is None or isinstance(first, int) or isinstance(last, int):
        raise ConfigError(f"backfill needs dates for start and end, got {start!r} and {end!r}")
    if last < first:
        raise ConfigError(f"backfill end {end} is before start {start}; swap them")
    stamps = pd.date_range(first, last, freq=every)
    return [s.strftime("%Y-%m-%d") if s == s.normalize() else s.isoformat() for s in stamps]


def prediction_dir(store: str | Path, label: str) -> Path:
    path = Path(store) / "predictions" / f"as_of={label}"
    root = (Path(store) / "predictions").resolve()
    if root not in path.resolve().parents:
        raise StoreError(f"prediction path {path} escapes the store {store}")
    return path


def prediction_path(store: str | Path, label: str, part: int = 0) -> Path:
    return prediction_dir(store, label) / f"part-{int(part)}.parquet"


def _prediction_table(frame: pd.DataFrame) -> pa.Table:
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"prediction frame lacks columns {missing}")
    # Forecasts must be finite; interval bounds may be missing (NaN) where no calibration was possible.
    if not np.isfinite(frame["y_hat"].to_numpy(dtype=float)).all():
        raise StoreError("refusing to write predictions with NaN/inf values; the previous partition is kept")
    ordered = PREDICTION_COLUMNS + [c for c in frame.columns if c not in PREDICTION_COLUMNS]  # contract first
    table = pa.Table.from_pandas(frame[ordered].reset_index(drop=True), preserve_index=False)
    # pandas 3 strings become large_string; plain string matches the hive partition key ``as_of``, so
    # ``pyarrow.dataset(<store>/predictions, partitioning="hive")`` reads all partitions as one table.
    return table.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]))


def write_prediction_parts(parts: dict[int, pd.DataFrame], store: str | Path, label: str) -> list[Path]:
    """Write one as_of partition as ``part-<k>.parquet`` files, replacing every file a previous run wrote
    for it in one swap. Refuses non-finite values (before anything is written)."""
    if not parts:
        raise ValueError("no prediction parts to write")
    tables = {f"part-{int(k)}.parquet": _prediction_table(frame) for k, frame in sorted(parts.items())}
    return atomic_write_parquet_set(tables, prediction_dir(store, label))


def write_predictions(frame: pd.DataFrame, store: str | Path, label: str) -> Path:
    """Write one as_of partition (a single ``part-0.parquet``) atomically, replacing a previous run's files."""
    return write_prediction_parts({0: frame}, store, label)[0]


def write_backtest_report(forecasts: pd.DataFrame, scores, store: str | Path, run_name: str) -> Path:
    """``reports/<run_name>/backtest.parquet`` (long forecasts) and ``metrics.json``; returns the folder."""
    if not _LABEL_RE.match(run_name):
        raise ConfigError(f"report name {run_name!r} is unsafe: use letters, digits, '-', '_', 'T', ':'")
    folder = Path(store) / "reports" / run_name
    atomic_write_parquet(pa.Table.from_pandas(forecasts, preserve_index=False), folder / "backtest.parquet")
    atomic_write_json(scores.to_dict(), folder / "metrics.json")
    return folder
