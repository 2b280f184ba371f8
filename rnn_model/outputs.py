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

__all__ = [
    "NOW",
    "as_of_label",
    "as_of_range",
    "parse_as_of",
    "prediction_dir",
    "prediction_path",
    "write_predictions",
    "write_prediction_parts",
    "write_backtest_report",
    "PREDICTION_COLUMNS",
]

PREDICTION_COLUMNS = ["unique_id", "ds", "horizon_step", "y_hat", "model_version", "as_of", "created_at"]
_LABEL_RE = re.compile(r"^[0-9A-Za-z:T\-_]+$")


NOW = "now"  # the default as_of: timestamp ds after the moment of the run are dropped (and reported)

# ASCII only ('²'.isdigit() is True but int('²') fails); 8 digits are a date (20261116), other lengths a step
_INT_STEP_RE = re.compile(r"-?([0-9]{1,7}|[0-9]{9,19})")
_AS_OF_HELP = "use a date like 2026-11-01, a timestamp 2026-11-01T06:00 (whole seconds), or an integer step"


def _bad_as_of(as_of, why: str = "") -> ConfigError:
    return ConfigError(f"as_of={as_of!r} is invalid{': ' + why if why else ''}; {_AS_OF_HELP}")


def parse_as_of(as_of: str | int | None) -> pd.Timestamp | int | str | None:
    """The canonical cutoff of an ``as_of`` value: rows with ``ds <= cutoff`` are used.

    A date means its midnight (``2026-11-16`` and ``2026-11-16T00:00`` are one cutoff and one label); a
    tz-aware timestamp is converted to UTC; sub-second precision is refused (the label keeps seconds, so
    it could not tell two cutoffs apart); a short ASCII integer is a step for integer ``ds``. ``None``
    stays None; ``"now"`` is :data:`NOW` (the moment of the run, resolved against the data's ``ds``).
    """
    if as_of is None or (isinstance(as_of, str) and as_of == NOW):
        return as_of
    if isinstance(as_of, bool):
        raise _bad_as_of(as_of)
    if isinstance(as_of, (int, np.integer)):
        return int(as_of)
    stamp = isinstance(as_of, (pd.Timestamp, dt.datetime, dt.date, np.datetime64))
    if not stamp and (not isinstance(as_of, str) or "/" in as_of or ".." in as_of):
        raise _bad_as_of(as_of)
    if not stamp and _INT_STEP_RE.fullmatch(as_of):
        if not -(2**63) <= int(as_of) < 2**63:
            raise _bad_as_of(as_of, "an integer step must fit in int64")
        return int(as_of)
    try:
        ts = pd.Timestamp(as_of)
        if ts is pd.NaT:
            raise ValueError("not a time")
        if ts.tz is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        ts = ts.as_unit("ns")  # ds are datetime64[ns]: 1677-09-21 .. 2262-04-11
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise _bad_as_of(as_of, "it is outside the supported years 1678-2261") from None
    except (ValueError, TypeError):
        raise _bad_as_of(as_of) from None
    if ts != ts.floor("s"):
        raise _bad_as_of(as_of, "it has a fraction of a second")
    return ts


def as_of_label(as_of: str | int | None) -> str:
    """The partition label, one per cutoff: ``2026-11-01`` for midnight, ``2026-11-01T06-00-00`` for other
    times, ``42`` for steps. The default (``None`` or ``"now"``) is labelled with today's UTC date."""
    value = parse_as_of(as_of)
    if value is None or value == NOW:
        value = pd.Timestamp(dt.datetime.now(dt.timezone.utc).date())
    assert not isinstance(value, str)  # parse_as_of returns a str only for NOW
    if isinstance(value, int):
        label = str(value)
    elif value == value.normalize():
        label = value.strftime("%Y-%m-%d")
    else:
        label = value.strftime("%Y-%m-%dT%H-%M-%S")
    if not _LABEL_RE.fullmatch(label):
        raise ConfigError(f"as_of={as_of!r} gives an unsafe partition name {label!r}")
    return label


def as_of_range(start: str, end: str, every: str = "D") -> list[str]:
    """The ``as_of`` values of a backfill, oldest first: dates (or timestamps) from start to end."""
    first, last = parse_as_of(start), parse_as_of(end)
    if not isinstance(first, pd.Timestamp) or not isinstance(last, pd.Timestamp):
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
    return table.cast(
        pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema])
    )


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
    if not _LABEL_RE.fullmatch(run_name):
        raise ConfigError(f"report name {run_name!r} is unsafe: use letters, digits, '-', '_', 'T', ':'")
    folder = Path(store) / "reports" / run_name
    atomic_write_parquet(pa.Table.from_pandas(forecasts, preserve_index=False), folder / "backtest.parquet")
    atomic_write_json(_strict_json(scores.to_dict()), folder / "metrics.json")
    return folder


def _strict_json(obj):
    """NaN and inf (a metric over no window, a MASE scale of 0) as null: a bare NaN is not JSON."""
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj
