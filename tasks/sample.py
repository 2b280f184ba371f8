"""The embedded default data set: a deterministic synthetic panel written once into the store."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from rnn_model.sample import write_sample_data

from ._options import IO_RETRY

__all__ = ["sample_data_path", "write_sample_data"]


@task(name="sample-data", **IO_RETRY)
def sample_data_path(store: str) -> str:
    path = Path(store) / "sample" / "sample.parquet"
    if not path.exists():
        write_sample_data(path)
        get_run_logger().info("wrote the embedded sample panel to %s", path)
    return str(path)
