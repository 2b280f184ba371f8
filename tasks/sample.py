"""The embedded default data set: a deterministic synthetic panel written once into the store."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import get_run_logger, task

from rnn_model.io import atomic_write_parquet
from rnn_model.sample import make_sample_panel

from ._options import IO_RETRY

__all__ = ["sample_data_path", "write_sample_data"]


def write_sample_data(path: str | Path, **kwargs) -> Path:
    frame = make_sample_panel(**kwargs)
    return atomic_write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)


@task(name="sample-data", **IO_RETRY)
def sample_data_path(store: str) -> str:
    path = Path(store) / "sample" / "sample.parquet"
    if not path.exists():
        write_sample_data(path)
        get_run_logger().info("wrote the embedded sample panel to %s", path)
    return str(path)
