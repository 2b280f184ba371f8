"""Typed flow parameters. Prefect validates them with pydantic before any task runs, so a bad value
fails the flow run at once with a message naming the field (also for deployment runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import unquote, urlparse

from pydantic import AfterValidator, Field

from rnn_model.config import check_name
from rnn_model.errors import DataReadError
from rnn_model.outputs import as_of_label

__all__ = ["AsOf", "DataPath", "ModelName", "Margin", "Partitions", "Version", "check_data_path"]


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
