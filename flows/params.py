"""Typed flow parameters. Prefect validates them with pydantic before any task runs, so a bad value
fails the flow run at once with a message naming the field (also for deployment runs)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar
from urllib.parse import unquote, urlparse

from pydantic import AfterValidator, Field

from rnn_model.config import check_name
from rnn_model.errors import DataReadError
from rnn_model.outputs import as_of_label

__all__ = [
    "AsOf",
    "DataPath",
    "ModelName",
    "Margin",
    "Partitions",
    "Version",
    "check_data_path",
    "documented",
    "PARAMETER_DOCS",
]


def _as_of(value: Optional[str]) -> Optional[str]:
    if value is not None:
        as_of_label(value)  # raises ConfigError (a ValueError) naming the value and the fix
    return value


def _model_name(value: str) -> str:
    check_name("model_name", value)
    return value


def check_data_path(value: Optional[str]) -> Optional[str]:
    """A local input path (or ``file://`` URL) must exist; other URLs (``s3://...``) are accepted here and
    checked when read (they may need credentials or network only the run has)."""
    if value is None:
        return value
    local = value
    if "://" in value:
        url = urlparse(value)
        if url.scheme.lower() != "file" or url.netloc not in ("", "localhost"):
            return value
        local = unquote(url.path)
    if not Path(local).exists():
        raise DataReadError(f"input not found: {value}; pass --data with a Parquet file, directory or URL")
    return value


def _data_path(value: Optional[str]) -> Optional[str]:
    # pydantic names the field only for ValueErrors; a DataReadError would escape unnamed ("data: ...")
    try:
        return check_data_path(value)
    except DataReadError as exc:
        raise ValueError(str(exc)) from None


def _version(value: Optional[str]) -> Optional[str]:
    if value is not None and not (value.startswith("v") and value[1:].isdigit()):
        raise ValueError(f"model version {value!r} is invalid: versions look like 'v0003'")
    return value


DataPath = Annotated[Optional[str], AfterValidator(_data_path)]
AsOf = Annotated[Optional[str], AfterValidator(_as_of)]
ModelName = Annotated[str, AfterValidator(_model_name)]
Version = Annotated[Optional[str], AfterValidator(_version)]
Margin = Annotated[float, Field(ge=0.0, lt=1.0)]
# groups of series validated and forecast in parallel (crc32(unique_id) mod partitions); 1 = not split
Partitions = Annotated[int, Field(ge=1, le=4096)]


# What the Prefect UI's Run form says under each flow parameter (one text per name for every flow).
PARAMETER_DOCS = {
    "data": "Parquet file, directory (hive partitions too) or URL with columns unique_id, ds, y; "
    "empty: the embedded sample panel.",
    "store": "Directory for models and predictions (created if missing).",
    "config": "Data contract, windows, model and training settings; unset fields are inferred from the "
    "data's frequency.",
    "as_of": "Use rows with ds <= as_of and label the outputs with it (a date, a timestamp or an integer "
    "step); empty: now.",
    "model_name": "Name of the model in the registry (store/models/<model_name>/).",
    "margin": "Relative MASE by which a challenger must beat the champion to be promoted (0.01 = 1%).",
    "force_promote": "Make the new model champion whatever the gate decides.",
    "rollback_to": "Only point the champion back at this version (e.g. v0002); nothing is trained.",
    "model_version": "Forecast with this version (e.g. v0002) instead of the champion.",
    "partitions": "Groups of series (crc32 of the id) validated and forecast in parallel; 1: not split.",
    "task_runner": "Where the per-group tasks run: thread (this process) or dask.",
    "dask_address": "Dask scheduler address (tcp://host:8786); empty with task_runner=dask: a temporary local cluster.",
    "n_windows": "Horizons per series to backtest, the most recent ones.",
    "start": "First as_of of the backfill (a date).",
    "end": "Last as_of of the backfill (a date).",
    "every": "Step between backfill as_of dates (a pandas frequency, e.g. D or W).",
}

_F = TypeVar("_F", bound=Callable)


def documented(fn: _F) -> _F:
    """Append an ``Args:`` section from :data:`PARAMETER_DOCS` to a flow function's docstring (apply it
    under ``@flow``): Prefect parses it into the parameter descriptions of the Run form."""
    lines = [f"    {name}: {PARAMETER_DOCS[name]}" for name in inspect.signature(fn).parameters]
    summary = inspect.cleandoc(fn.__doc__ or "")
    fn.__doc__ = (summary + "\n\n" if summary else "") + "Args:\n" + "\n".join(lines) + "\n"
    return fn
