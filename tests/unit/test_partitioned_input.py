"""Partitioned input: series spread over files, hive-partitioned datasets, file:// URLs; and groups of
series (split, validate apart, combine) giving what one pass over all rows gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from rnn_model.config import DataConfig, ForecastConfig
from rnn_model.errors import DataReadError, DataValidationError
from rnn_model.io import read_long_table
from rnn_model.panel import build_panel
from rnn_model.partitions import (
    combine_outcomes,
    merge_panels,
    partition_of_ids,
    reconcile_freq,
    split_table,
    validate_partition,
)
from rnn_model.sample import make_sample_panel

from ._helpers import seasonal_frame, tiny_config


def _assert_same_panel(a, b):
    assert list(a.ids) == list(b.ids)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.observed, b.observed)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.first_tick, b.first_tick)
    assert a.grid == b.grid and a.fingerprint() == b.fingerprint()


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_sample_panel(n_series=3, length=60, seed=2)


def _split_series_in_time(frame: pd.DataFrame):
    """Each series' later half in the first file, its earlier half in the second (reverse time order)."""
    pos = frame.groupby("unique_id").cumcount()
    half = frame.groupby("unique_id")["ds"].transform("size") // 2
    return frame[pos >= half], frame[pos < half]


def test_a_series_split_across_two_files_is_assembled_in_time_order(tmp_path, frame):
    folder = tmp_path / "split"
    folder.mkdir()
    late, early = _split_series_in_time(frame)
    late.to_parquet(folder / "part-0.parquet", index=False)  # read first: the later rows
    early.to_parquet(folder / "part-1.parquet", index=False)
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)

    table = read_long_table(folder, DataConfig())
    first = table.column("ds").to_pandas()
    assert first.iloc[0] > first.iloc[-1]  # the files really are read in reverse time order
    split_panel, _ = build_panel(table, DataConfig())
    whole_panel, _ = build_panel(read_long_table(whole, DataConfig()), DataConfig())
    _assert_same_panel(split_panel, whole_panel)
    back = split_panel.to_frame()
    assert (back.groupby("unique_id")["ds"].diff().dropna() == pd.Timedelta(hours=1)).all()  # time order
    pd.testing.assert_frame_equal(
        back.reset_index(drop=True), frame.sort_values(["unique_id", "ds"]).reset_index(drop=True), check_dtype=False
    )


def test_hive_partitioned_dataset_by_region_and_by_series(tmp_path, frame):
    late, early = _split_series_in_time(frame)
    root = tmp_path / "hive"
    for region, part in (("eu", late), ("us", early)):  # one series spread over two partitions
        (root / f"region={region}").mkdir(parents=True)
        part.assign(region=region).to_parquet(root / f"region={region}" / "part-0.parquet", index=False)
    (root / "_SUCCESS").write_text("")
    (root / "region=eu" / ".part-9.parquet.tmp").write_text("half written")  # hidden files are skipped
    whole, _ = build_panel(pa.Table.from_pandas(frame, preserve_index=False), DataConfig())
    table = read_long_table(root, DataConfig())
    assert table.column_names == ["unique_id", "ds", "y"]  # the partition key is not read
    panel, _ = build_panel(table, DataConfig())
    _assert_same_panel(panel, whole)

    # the series id itself as the hive key: unique_id comes from the directory names
    by_id = tmp_path / "by-id"
    pads.write_dataset(
        pa.Table.from_pandas(frame, preserve_index=False),
        by_id,
        format="parquet",
        partitioning=["unique_id"],
        partitioning_flavor="hive",
    )
    assert sorted(p.name for p in by_id.iterdir()) == [f"unique_id={i}" for i in sorted(frame.unique_id.unique())]
    panel, _ = build_panel(read_long_table(by_id, DataConfig()), DataConfig())
    _assert_same_panel(panel, whole)


def test_file_url_to_a_file_and_to_a_directory(tmp_path, frame):
    folder = tmp_path / "with space"
    folder.mkdir()
    late, early = _split_series_in_time(frame)
    late.to_parquet(folder / "a.parquet", index=False)
    early.to_parquet(folder / "b.parquet", index=False)
    whole, _ = build_panel(pa.Table.from_pandas(frame, preserve_index=False), DataConfig())
    for url in (folder.as_uri(), folder.as_uri() + "/"):
        panel, _ = build_panel(read_long_table(url, DataConfig()), DataConfig())
        _assert_same_panel(panel, whole)
    table = read_long_table((folder / "a.parquet").as_uri(), DataConfig())
    assert table.num_rows == len(late) and table.column_names == ["unique_id", "ds", "y"]


def test_url_errors_are_clear(tmp_path):
    with pytest.raises(DataReadError, match="input not found: file://"):
        read_long_table((tmp_path / "nope").as_uri(), DataConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataReadError, match="no Parquet files"):
        read_long_table((tmp_path / "empty").as_uri(), DataConfig())
    (tmp_path / "bad.parquet").write_text("unique_id,ds,y\na,2026-01-01,1\n")
    with pytest.raises(DataReadError, match="not CSV"):
        read_long_table((tmp_path / "bad.parquet").as_uri(), DataConfig())
    with pytest.raises(DataReadError, match=r"cannot open nosuchscheme://bucket/x.*install"):
        read_long_table("nosuchscheme://bucket/x", DataConfig())


def test_only_the_needed_columns_are_read_from_a_url(tmp_path):
    df = make_sample_panel(n_series=2, length=20)
    table = pa.Table.from_pandas(df, preserve_index=False).append_column(
        "payload", pa.array([[1, 2]] * len(df), pa.list_(pa.int64()))
    )
    pq.write_table(table, tmp_path / "p.parquet")
    assert read_long_table((tmp_path / "p.parquet").as_uri(), DataConfig()).column_names == ["unique_id", "ds", "y"]


# ----------------------------------------------------------------------------------- groups of series


def test_groups_are_stable_whole_series_and_cover_every_row():
    ids = [f"s{i}" for i in range(200)]
    groups = partition_of_ids(ids, 8)
    np.testing.assert_array_equal(groups, partition_of_ids(ids, 8))  # no per-process hash salt
    assert set(groups) == set(range(8))
    import zlib

    assert groups[17] == zlib.crc32(b"s17") % 8  # documented: crc32(utf8(id)) mod N
    assert (partition_of_ids(ids, 1) == 0).all()

    df = seasonal_frame(n_series=30, length=20).sample(frac=1.0, random_state=0)
    table = pa.Table.from_pandas(df, preserve_index=False)
    parts = split_table(table, "unique_id", 4)
    assert [k for k, _ in parts] == sorted(k for k, _ in parts)
    assert sum(t.num_rows for _, t in parts) == table.num_rows
    seen = [set(t.column("unique_id").to_pylist()) for _, t in parts]
    assert sum(len(s) for s in seen) == 30 and len(set.union(*seen)) == 30  # each series in one group
    assert split_table(table, "unique_id", 1)[0][1] is table  # one group: not copied


def test_validating_groups_apart_gives_the_single_pass_panel_and_report():
    df = seasonal_frame(n_series=12, length=100)
    df = df[~((df.unique_id == "s3") & (df.index % 7 == 0))]  # gaps in one series
    df.loc[df.unique_id == "s5", "y"] = 1.0  # a constant series (dropped for training)
    df = pd.concat([df, seasonal_frame(n_series=1, length=30).assign(unique_id="short")])  # too short
    table = pa.Table.from_pandas(df.sample(frac=1.0, random_state=1), preserve_index=False)
    cfg = tiny_config().replace(data={"freq": None, "season_length": None})
    single, single_report, single_cfg = combine_outcomes([validate_partition(0, table, cfg)])
    outcomes = [validate_partition(k, t, cfg) for k, t in split_table(table, "unique_id", 5)]
    assert reconcile_freq(outcomes, cfg) == (None, [])
    kept, report, resolved = combine_outcomes(outcomes)
    assert resolved == single_cfg
    _assert_same_panel(merge_panels([o.panel for o in kept]), single[0].panel)
    key = lambda p: (p.problem, p.unique_id, p.action)  # noqa: E731
    assert sorted(report.problems, key=key) == sorted(single_report.problems, key=key)
    assert (report.n_rows_in, report.n_series_in, report.n_series_out) == (
        single_report.n_rows_in,
        single_report.n_series_in,
        single_report.n_series_out,
    )


def test_errors_of_every_group_are_reported_at_once():
    df = seasonal_frame(n_series=8, length=80)
    dup_ids = ["s1", "s6"]
    df = pd.concat([df, df[df.unique_id.isin(dup_ids)].head(3), df[df.unique_id == "s6"].tail(1)])
    table = pa.Table.from_pandas(df, preserve_index=False)
    cfg = tiny_config()
    groups = split_table(table, "unique_id", 4)
    assert len({k for k, t in groups if set(t.column("unique_id").to_pylist()) & set(dup_ids)}) == 2
    with pytest.raises(DataValidationError) as info:
        combine_outcomes([validate_partition(k, t, cfg) for k, t in groups])
    assert "duplicate in s1, s6" in str(info.value)
    assert {p.unique_id for p in info.value.report.errors} == set(dup_ids)


def test_a_group_with_every_series_dropped_is_not_an_error_but_all_groups_empty_is():
    cfg = tiny_config()
    long = seasonal_frame(n_series=1, length=100, seed=1)
    short = seasonal_frame(n_series=6, length=20).assign(unique_id=lambda d: "short-" + d.unique_id)
    table = pa.Table.from_pandas(pd.concat([long, short]), preserve_index=False)
    outcomes = [validate_partition(k, t, cfg) for k, t in split_table(table, "unique_id", 4)]
    assert any(o.panel is None for o in outcomes)
    kept, report, _ = combine_outcomes(outcomes)
    assert [list(o.panel.ids) for o in kept] == [["s0"]]
    assert sorted(report.dropped_ids) == sorted(short.unique_id.unique())

    only_short = pa.Table.from_pandas(short, preserve_index=False)
    single = [validate_partition(0, only_short, cfg)]
    with pytest.raises(DataValidationError) as one:
        combine_outcomes(single)
    outcomes = [validate_partition(k, t, cfg) for k, t in split_table(only_short, "unique_id", 3)]
    with pytest.raises(DataValidationError) as many:
        combine_outcomes(outcomes)
    assert "all 6 series were dropped (too_short)" in str(one.value)
    assert "all 6 series were dropped (too_short)" in str(many.value)


def test_groups_that_disagree_on_the_frequency_are_validated_again_with_the_majority():
    hourly = seasonal_frame(n_series=6, length=50, freq="h")
    two_hourly = seasonal_frame(n_series=1, length=50, freq="2h").assign(unique_id="odd")
    table = pa.Table.from_pandas(pd.concat([hourly, two_hourly]), preserve_index=False)
    cfg = ForecastConfig().replace(window={"horizon": 4, "input_size": 8})
    groups = split_table(table, "unique_id", 8)
    outcomes = [validate_partition(k, t, cfg) for k, t in groups]
    freq, redo = reconcile_freq(outcomes, cfg)
    assert freq == "h" and [outcomes[i].panel.ids.tolist() for i in redo] == [["odd"]]
    fixed = cfg.replace(data={"freq": freq})
    for i in redo:
        outcomes[i] = validate_partition(groups[i][0], groups[i][1], fixed)
    kept, report, resolved = combine_outcomes(outcomes)
    assert resolved.data.freq == "h" and sum(o.panel.n_series for o in kept) == 7
    assert "odd" in {p.unique_id for p in report.problems if p.problem == "gap"}  # every other hour missing


# ------------------------------------------------------------------------ replacing a set of part files


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_set_of_parts_is_replaced_whole(tmp_path, exchange):
    from rnn_model.io import atomic_write_parquet_set

    folder = tmp_path / "predictions" / "as_of=2026-01-01"
    part = lambda v: pa.table({"v": [v]})  # noqa: E731
    atomic_write_parquet_set({f"part-{k}.parquet": part(1) for k in range(4)}, folder, exchange=exchange)
    atomic_write_parquet_set({"part-0.parquet": part(2)}, folder, exchange=exchange)
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]  # no stale part-1..3
    assert [p.name for p in folder.parent.iterdir()] == ["as_of=2026-01-01"]  # no temporaries
    rows = pads.dataset(folder.parent, format="parquet", partitioning="hive").to_table()
    assert rows.column("v").to_pylist() == [2]


def test_a_writer_killed_between_the_two_renames_is_recovered_by_the_next_write(tmp_path):
    from rnn_model.io import atomic_write_parquet_set

    folder = tmp_path / "predictions" / "as_of=2026-01-01"
    atomic_write_parquet_set({"part-0.parquet": pa.table({"v": [1]})}, folder)
    # what a writer killed after the first rename leaves: the old set hidden, no partition, a new set
    folder.rename(folder.parent / ".as_of=2026-01-01.abc.old")
    (folder.parent / ".as_of=2026-01-01.def.tmp").mkdir()
    (folder.parent / ".as_of=2026-01-01.def.tmp" / "part-0.parquet").write_text("half")
    assert pads.dataset(folder.parent, format="parquet", partitioning="hive").count_rows() == 0  # never a mix

    def failing_write():  # the next write fails too: the old set must be back in place
        atomic_write_parquet_set({"part-0.parquet": "not a table"}, folder)

    with pytest.raises(AttributeError):
        failing_write()
    assert pq.read_table(folder / "part-0.parquet").column("v").to_pylist() == [1]
    atomic_write_parquet_set({"part-3.parquet": pa.table({"v": [3]})}, folder)
    assert [p.name for p in folder.parent.iterdir()] == ["as_of=2026-01-01"]
    assert [p.name for p in folder.iterdir()] == ["part-3.parquet"]
