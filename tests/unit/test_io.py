"""Reading the long table from Parquet (a file or a directory), and the atomic writers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnn_model.config import DataConfig
from rnn_model.errors import DataReadError, StoreError
from rnn_model.io import atomic_directory, atomic_write_json, atomic_write_parquet, read_json, read_long_table
from rnn_model.panel import build_panel
from rnn_model.sample import make_sample_panel


def test_read_a_file_only_the_needed_columns(tmp_path):
    df = make_sample_panel(n_series=3, length=50)
    df["extra_text"] = "ignored"
    df["extra_num"] = np.arange(len(df))
    path = tmp_path / "panel.parquet"
    df.to_parquet(path, index=False)
    table = read_long_table(path, DataConfig())
    assert table.column_names == ["unique_id", "ds", "y"]
    assert table.num_rows == len(df)
    np.testing.assert_array_equal(table.column("y").to_numpy(), df["y"].to_numpy())


def test_extra_columns_are_never_read_even_when_unreadable(tmp_path):
    """A column with a type the pipeline cannot use (nested lists) is not touched."""
    df = make_sample_panel(n_series=2, length=30)
    table = pa.Table.from_pandas(df, preserve_index=False).append_column(
        "payload", pa.array([[1, 2]] * len(df), pa.list_(pa.int64()))
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    out = read_long_table(path, DataConfig())
    assert out.column_names == ["unique_id", "ds", "y"]


def test_read_a_directory_of_files_with_custom_column_names(tmp_path):
    df = make_sample_panel(n_series=4, length=40).rename(columns={"unique_id": "store", "ds": "when", "y": "sales"})
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, (_, part) in enumerate(df.groupby("store")):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")  # marker files from Spark/Hive writers are skipped
    cfg = DataConfig(id_col="store", time_col="when", target_col="sales")
    table = read_long_table(folder, cfg)
    assert table.column_names == ["store", "when", "sales"]
    assert table.num_rows == len(df)
    panel, report = build_panel(table, cfg)
    assert list(panel.ids) == sorted(df["store"].unique())
    assert panel.n_series == 4 and (panel.lengths == 40).all()


def test_unsorted_input_gives_the_same_panel(tmp_path):
    df = make_sample_panel(n_series=3, length=60)
    df.to_parquet(tmp_path / "sorted.parquet", index=False)
    df.sample(frac=1.0, random_state=1).to_parquet(tmp_path / "shuffled.parquet", index=False)
    a, _ = build_panel(read_long_table(tmp_path / "sorted.parquet", DataConfig()), DataConfig())
    b, _ = build_panel(read_long_table(tmp_path / "shuffled.parquet", DataConfig()), DataConfig())
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert a.fingerprint() == b.fingerprint()


def test_missing_column_names_it_and_the_fix(tmp_path):
    df = make_sample_panel(n_series=1, length=10).rename(columns={"y": "value"})
    df.to_parquet(tmp_path / "p.parquet", index=False)
    with pytest.raises(DataReadError) as info:
        read_long_table(tmp_path / "p.parquet", DataConfig())
    msg = str(info.value)
    assert "missing column(s) ['y']" in msg and "value" in msg and "target_col" in msg


@pytest.mark.parametrize(
    "setup,words",
    [
        (lambda p: p, "input not found"),
        (lambda p: (p.mkdir(), p)[1], "no Parquet files"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty (0 bytes)"),
        (lambda p: (p.write_text("unique_id,ds,y\na,2026-01-01,1\n"), p)[1], "not CSV"),
    ],
    ids=["missing", "empty-dir", "zero-bytes", "csv"],
)
def test_unreadable_inputs_raise_data_read_error(tmp_path, setup, words):
    path = setup(tmp_path / "input.parquet")
    with pytest.raises(DataReadError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_long_table(path, DataConfig())


def test_truncated_parquet_is_a_data_read_error(tmp_path):
    make_sample_panel(n_series=2, length=100).to_parquet(tmp_path / "full.parquet", index=False)
    raw = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataReadError, match="cannot read"):
        read_long_table(tmp_path / "cut.parquet", DataConfig())


def test_atomic_writers_replace_whole_files_and_leave_no_temporaries(tmp_path):
    table = pa.table({"a": [1, 2, 3]})
    path = atomic_write_parquet(table, tmp_path / "sub" / "t.parquet")
    assert pq.read_table(path).equals(table)
    atomic_write_parquet(pa.table({"a": [9]}), path)
    assert pq.read_table(path).column("a").to_pylist() == [9]
    atomic_write_json({"b": 1}, tmp_path / "x.json")
    assert read_json(tmp_path / "x.json") == {"b": 1}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "t.parquet", "x.json"]


def test_atomic_directory_is_all_or_nothing(tmp_path):
    with atomic_directory(tmp_path / "done") as tmp:
        (tmp / "f.txt").write_text("x")
    assert (tmp_path / "done" / "f.txt").read_text() == "x"
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "failed") as tmp:
            (tmp / "f.txt").write_text("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done"]


def test_write_into_a_read_only_location_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot write"):
        atomic_write_json({}, blocker / "x.json")


def test_integer_and_date_ds_columns_are_read(tmp_path):
    df = pd.DataFrame({"unique_id": ["a"] * 5, "ds": np.arange(5, dtype=np.int32), "y": np.arange(5.0)})
    df.to_parquet(tmp_path / "int.parquet", index=False)
    panel, report = build_panel(read_long_table(tmp_path / "int.parquet", DataConfig()), DataConfig())
    assert panel.freq == "1" and panel.lengths.tolist() == [5]
    dates = pa.table(
        {"unique_id": ["a"] * 4, "ds": pa.array(pd.date_range("2026-01-01", periods=4).date), "y": [1.0, 2.0, 3.0, 5.0]}
    )
    pq.write_table(dates, tmp_path / "date.parquet")
    panel, report = build_panel(read_long_table(tmp_path / "date.parquet", DataConfig()), DataConfig())
    assert panel.freq == "D" and panel.lengths.tolist() == [4]
