"""Reliability v2, the input contract (issue 13, items 8-13, 16, 18-24): each defect found by the attack,
reproduced on real Parquet files and the library's ingest path. Every error is a ForecastError with one
line naming the problem and the fix, raised before anything expensive runs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnn_model.config import DataConfig, ForecastConfig
from rnn_model.errors import ConfigError, DataReadError, DataValidationError, ForecastError
from rnn_model.frequency import TimeGrid, parse_freq
from rnn_model.io import read_long_table
from rnn_model.outputs import as_of_label, parse_as_of, write_backtest_report
from rnn_model.panel import panel_from_frame
from rnn_model.partitions import combine_outcomes, validate_partition
from rnn_model.prediction import check_settings_match, settings_clashes
from rnn_model.sample import make_sample_panel, write_sample_data
from rnn_model.schema import ValidationReport


def _write(df: pd.DataFrame | pa.Table, path: Path) -> Path:
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path)
    return path


def _ingest(path: Path, config: ForecastConfig = ForecastConfig(), as_of=None, purpose: str = "predict"):
    """Read + validate as the flows do: validate_partition (the default as_of, the forecast-room check),
    then combine_outcomes (the report of every group; checks over all groups)."""
    outcome = validate_partition(0, read_long_table(path, config.data), config, as_of=as_of, purpose=purpose)
    kept, _, _ = combine_outcomes([outcome])
    return kept[0]


def _one_line_error(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def _int_frame(ds: np.ndarray, n_series: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i}" for i in range(n_series)], len(ds)),
            "ds": np.tile(ds, n_series),
            "y": rng.normal(10, 1, len(ds) * n_series),
        }
    )


# --------------------------------------------------------------------------- item 8: the default as_of


def test_default_as_of_drops_future_rows_and_reports_them(tmp_path):
    df = make_sample_panel(n_series=3, length=48)
    future = pd.DataFrame(
        {"unique_id": ["series_000", "series_002"], "ds": pd.to_datetime(["2099-01-01", "2099-01-02"]), "y": [1.0, 2.0]}
    )
    path = _write(pd.concat([df, future], ignore_index=True), tmp_path / "future.parquet")
    outcome = _ingest(path)
    frame = outcome.panel.to_frame()
    assert frame["ds"].max() < pd.Timestamp("2027-01-01")  # nothing forecast from 2099
    assert outcome.panel.lengths.tolist() == [48, 48, 48]
    rows = [p for p in outcome.report.problems if p.problem == "future_rows"]
    assert len(rows) == 1 and rows[0].count == 2 and rows[0].action == "dropped"
    assert "2099-01-01" in rows[0].example and "--as-of" in rows[0].example
    assert "future_rows" in outcome.report.to_markdown()


def test_an_explicit_as_of_after_the_future_rows_keeps_them(tmp_path):
    df = make_sample_panel(n_series=1, length=48, start="2099-01-01")
    outcome = _ingest(_write(df, tmp_path / "later.parquet"), as_of="2099-12-31")
    assert outcome.panel.lengths.tolist() == [48]


def test_integer_ds_have_no_clock_so_the_default_keeps_every_row(tmp_path):
    outcome = _ingest(_write(_int_frame(np.arange(50)), tmp_path / "int.parquet"))
    assert outcome.panel.lengths.tolist() == [50, 50]


# --------------------------------------------------------------------------- item 9: integer overflow


@pytest.mark.parametrize("start", [np.iinfo(np.int64).max - 100, np.iinfo(np.int64).min + 1])
def test_integer_ds_near_the_int64_limits_is_refused(tmp_path, start):
    ds = start + np.arange(50) if start > 0 else start + np.arange(50)
    path = _write(_int_frame(ds.astype(np.int64)), tmp_path / "edge.parquet")
    with pytest.raises(DataValidationError, match=r"ds_out_of_range .*beyond \+-2\*\*61") as info:
        _ingest(path)
    _one_line_error(info.value)


def test_uint64_ds_above_2_63_is_refused_not_wrapped_to_negative(tmp_path):
    ds = np.arange(50, dtype=np.uint64) + np.uint64(2**63 + 10)
    table = pa.table({"unique_id": ["a"] * 50, "ds": pa.array(ds, pa.uint64()), "y": np.arange(50, dtype=float)})
    with pytest.raises(DataValidationError, match="9223372036854775818 beyond"):
        _ingest(_write(table, tmp_path / "u64.parquet"))


def test_forecast_steps_that_would_overflow_are_refused_before_forecasting(tmp_path):
    # in range, but the step is 2**61: the first future step after 2**61 does not fit in int64
    path = _write(_int_frame(np.array([-(2**61), 0, 2**61], np.int64)), tmp_path / "wide.parquet")
    with pytest.raises(DataValidationError, match=r"no_room .*overflow"):
        _ingest(path)


def test_grid_positions_without_a_representable_ds_raise_instead_of_wrapping():
    grid = TimeGrid("1", 2**63 - 10)
    assert grid.to_ds(np.array([0, 9])).tolist() == [2**63 - 10, 2**63 - 1]
    with pytest.raises(DataValidationError, match="no_room"):
        grid.to_ds(np.array([10]))
    daily = TimeGrid("D", pd.Timestamp("2262-04-01"))
    with pytest.raises(DataValidationError, match="no_room"):
        daily.to_ds(np.array([30]))


# --------------------------------------------------------------------------- item 10: schema drift


def test_a_file_without_the_target_column_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    df = make_sample_panel(n_series=4, length=30)
    _write(df[df.unique_id <= "series_001"], folder / "part-0.parquet")
    _write(df[df.unique_id > "series_001"].rename(columns={"y": "value"}), folder / "part-1.parquet")
    with pytest.raises(DataReadError, match=r"missing column 'y' in .*part-1\.parquet \(found .*'value'") as info:
        read_long_table(folder, DataConfig())
    _one_line_error(info.value)


def test_the_first_file_without_the_target_column_is_named_too(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    df = make_sample_panel(n_series=2, length=30)
    _write(df.iloc[:30].rename(columns={"y": "value"}), folder / "part-0.parquet")
    _write(df.iloc[30:], folder / "part-1.parquet")
    with pytest.raises(DataReadError, match=r"missing column 'y' in .*part-0\.parquet"):
        read_long_table(folder, DataConfig())


def test_files_with_incompatible_types_are_an_error_naming_both(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    df = make_sample_panel(n_series=2, length=30)
    _write(df.iloc[:30], folder / "part-0.parquet")
    _write(df.iloc[30:].assign(y=df.y.iloc[30:].astype(str)), folder / "part-1.parquet")
    with pytest.raises(DataReadError, match=r"column 'y' has type double in .*part-0.* but large_string in .*part-1"):
        read_long_table(folder, DataConfig())


def test_integer_and_float_files_are_read_as_one_float_column(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    df = make_sample_panel(n_series=2, length=30)
    _write(df.iloc[:30].assign(y=np.arange(30)), folder / "part-0.parquet")
    _write(df.iloc[30:], folder / "part-1.parquet")
    table = read_long_table(folder, DataConfig())
    assert table.num_rows == 60 and pa.types.is_floating(table.schema.field("y").type)
    assert table.column("y").null_count == 0


# --------------------------------------------------------------------------- item 11: freq of data vs declared


def _daily(freq: str | None = "D") -> ForecastConfig:
    return ForecastConfig().replace(data={"freq": freq}, window={"horizon": 4, "input_size": 8})


def test_weekly_data_with_a_daily_freq_is_a_mismatch_naming_both(tmp_path):
    path = _write(make_sample_panel(n_series=2, length=60, freq="W"), tmp_path / "weekly.parquet")
    with pytest.raises(DataValidationError, match=r"freq_mismatch .*freq W-SUN, not freq=D") as info:
        _ingest(path, _daily(), as_of="2027-06-01")
    _one_line_error(info.value)


def test_the_coarser_check_spans_groups_as_one_pass_does(tmp_path):
    """One 2-hourly series among hourly ones is gaps on the hourly grid (one pass infers 'h'), also when
    it is alone in its group of series: only a freq no series of any group steps by is a mismatch."""
    hourly = make_sample_panel(n_series=3, length=50, freq="h")
    odd = make_sample_panel(n_series=1, length=50, freq="2h").assign(unique_id="odd")
    cfg = ForecastConfig().replace(data={"freq": "h"}, window={"horizon": 4, "input_size": 8})
    outcomes = [
        validate_partition(0, pa.Table.from_pandas(hourly), cfg, as_of="2026-06-01", purpose="predict"),
        validate_partition(1, pa.Table.from_pandas(odd), cfg, as_of="2026-06-01", purpose="predict"),
    ]
    kept, report, _ = combine_outcomes(outcomes)
    assert len(kept) == 2 and "odd" in {p.unique_id for p in report.problems if p.problem == "gap"}


def test_hourly_data_with_a_daily_freq_is_a_mismatch_not_an_off_grid_list():
    df = make_sample_panel(n_series=2, length=24 * 10, freq="h")
    with pytest.raises(DataValidationError, match=r"freq_mismatch .*freq h, not freq=D"):
        panel_from_frame(df, DataConfig(freq="D"))


def test_a_few_off_grid_rows_are_still_off_grid():
    df = make_sample_panel(n_series=2, length=100, freq="h")
    df.loc[[5, 6], "ds"] += pd.Timedelta(minutes=17)
    with pytest.raises(DataValidationError, match="off_grid in series_000"):
        panel_from_frame(df, DataConfig(freq="h"))


def test_daily_data_with_gaps_is_not_a_mismatch():
    df = make_sample_panel(n_series=2, length=60, freq="D").drop(index=[10, 11, 12, 40]).reset_index(drop=True)
    panel, report = panel_from_frame(df, DataConfig(freq="D"))
    assert panel.lengths.tolist() == [60, 60]


def test_explicit_settings_the_model_would_ignore_are_refused_naming_both():
    model = ForecastConfig().replace(data={"freq": "D", "season_length": 7}, window={"horizon": 7, "input_size": 28})
    user = ForecastConfig().replace(data={"freq": "W"}, window={"horizon": 14})
    assert len(settings_clashes(model, user, "v0001")) == 2
    with pytest.raises(
        ConfigError,
        match=r"--freq W but model v0001 has freq D; --horizon 14 but model v0001 has "
        r"horizon 7.*drop the flag",
    ):
        check_settings_match(model, user, "v0001")
    check_settings_match(model, ForecastConfig(), "v0001")  # nothing passed: the model's settings, silently
    check_settings_match(model, ForecastConfig().replace(data={"freq": "1D"}, window={"horizon": 7}), "v0001")


# --------------------------------------------------------------------------- item 12: one cutoff per label


def test_one_as_of_label_has_one_cutoff(tmp_path):
    df = make_sample_panel(n_series=2, length=24 * 30)
    path = _write(df, tmp_path / "h.parquet")
    spellings = ["2026-01-16", "2026-01-16T00:00", "2026-01-16 00:00:00", "2026-01-16T05:30+05:30"]
    labels = {as_of_label(a) for a in spellings}
    lengths = {tuple(_ingest(path, as_of=a).panel.lengths) for a in spellings}
    lengths |= {tuple(panel_from_frame(df, as_of=a)[0].lengths) for a in spellings}  # the library path too
    assert labels == {"2026-01-16"} and lengths == {(361, 361)}  # midnight: ds <= 2026-01-16 00:00
    assert as_of_label("2026-01-16T06:00") == "2026-01-16T06-00-00"
    with pytest.raises(ConfigError, match="fraction of a second"):  # its label could not tell it from 06:00:00
        as_of_label("2026-01-16T06:00:00.5")


# --------------------------------------------------------------------------- item 13: strict metrics JSON


def test_backtest_metrics_with_nan_are_written_as_strict_json(tmp_path):
    class Scores:
        def to_dict(self):
            return {"overall": [{"model": "naive", "mase": float("nan"), "mae": 1.0}], "scale": np.float64(np.inf)}

    folder = write_backtest_report(pd.DataFrame({"a": [1]}), Scores(), tmp_path, "backtest-v0001-20260101T000000")
    text = (folder / "metrics.json").read_text()

    def no_constants(name):
        raise AssertionError(f"bare {name} in metrics.json")

    data = json.loads(text, parse_constant=no_constants)
    assert data["overall"][0]["mase"] is None and data["scale"] is None and data["overall"][0]["mae"] == 1.0


# --------------------------------------------------------------------------- item 16: markdown escaping


def test_series_ids_cannot_add_rows_or_markup_to_the_report():
    report = ValidationReport()
    evil = ["a | b |\n| fake | row | 1 | x | kept |", "<script>alert(1)</script>", "[click](http://evil)", "`x`"]
    for i, uid in enumerate(evil):
        report.add(uid, "gap", 1, f"ds=<b>{i}</b>", "filled (masked)")
    text = report.to_markdown()
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + len(evil)  # header, rule, one row per problem
    assert all(ln.count("|") - ln.count("\\|") == 6 for ln in table)  # five cells each
    assert "<script>" not in text and "<b>" not in text and "[click](" not in text, text


# --------------------------------------------------------------------------- item 18: out-of-range timestamps


@pytest.mark.parametrize("kind", ["timestamp_us", "date32", "string"])
@pytest.mark.parametrize("year", [3000, 1500])
def test_timestamps_beyond_datetime64_ns_are_one_line_errors(tmp_path, kind, year):
    df = make_sample_panel(n_series=2, length=30, freq="D")
    ds = df["ds"].astype("datetime64[us]").tolist()
    ds[7] = pd.Timestamp(f"{year}-06-01").as_unit("us")
    if kind == "timestamp_us":
        col = pa.array(ds, pa.timestamp("us"))
    elif kind == "date32":
        col = pa.array([d.date() for d in ds], pa.date32())
    else:
        col = pa.array([d.isoformat() for d in ds])
    table = pa.table({"unique_id": df["unique_id"], "ds": col, "y": df["y"]})
    with pytest.raises(DataValidationError, match=rf"ds_out_of_range .*{year}-06-01.*1678-2261") as info:
        _ingest(_write(table, tmp_path / "far.parquet"))
    _one_line_error(info.value)


@pytest.mark.parametrize("as_of", ["9999-12-31", "1000-01-01", "2262-06-01"])
def test_as_of_beyond_the_supported_years_is_a_config_error(as_of):
    with pytest.raises(ConfigError, match="outside the supported years"):
        as_of_label(as_of)


# --------------------------------------------------------------------------- item 19: huge integer targets


@pytest.mark.parametrize("arrow_type, base", [(pa.int64(), 2**60), (pa.uint64(), 2**63 + 2**62)])
def test_integer_targets_beyond_2_53_are_read_as_floats(tmp_path, arrow_type, base):
    n = 60
    y = pa.array([base + (i % 7) * 2**55 for i in range(n)], arrow_type)
    table = pa.table({"unique_id": ["a"] * n, "ds": pa.array(np.arange(n)), "y": y})
    outcome = _ingest(_write(table, tmp_path / "big.parquet"))
    assert np.isfinite(outcome.panel.values).all()
    assert math.isclose(float(outcome.panel.values.max()), base + 6 * 2**55, rel_tol=1e-6)


# --------------------------------------------------------------------------- item 20: the grid is bounded


def test_one_integer_outlier_is_named_not_allocated(tmp_path):
    ds = np.arange(100, dtype=np.int64)
    ds[-1] = 10**13
    path = _write(_int_frame(ds, n_series=1), tmp_path / "outlier.parquet")
    started = time.perf_counter()
    with pytest.raises(
        DataValidationError,
        match=r"grid_too_large in s0 .*ds=10000000000000 is 9999999999902 steps "
        r"from ds=98",
    ) as info:
        _ingest(path)
    assert time.perf_counter() - started < 5
    _one_line_error(info.value)


def test_a_timestamp_outlier_is_named(tmp_path):
    df = make_sample_panel(n_series=2, length=200, freq="h")
    df.loc[0, "ds"] = pd.Timestamp("1990-01-01")  # years of hourly slots for 200 rows
    with pytest.raises(DataValidationError, match=r"grid_too_large in series_000 .*ds=1990-01-01 00:00:00"):
        _ingest(_write(df, tmp_path / "ts_outlier.parquet"), as_of="2026-02-01")


def test_sparse_series_with_ordinary_gaps_are_within_the_bound():
    df = make_sample_panel(n_series=2, length=2000, freq="h")
    rng = np.random.default_rng(1)
    df = df[(rng.random(len(df)) < 0.1) | (df.index % 1000 == 0) | (df.index % 1000 == 999)]  # ~1 row in 10
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    assert panel.lengths.tolist() == [2000, 2000]


# --------------------------------------------------------------------------- item 21: bad freq strings


@pytest.mark.parametrize(
    "freq", ["0D", "-1D", "1000000000000D", "0h", "-2MS", "1000000MS", "99999999999999999999", "", "²"]
)
def test_freq_strings_that_crash_the_grid_are_config_errors(freq):
    with pytest.raises(ConfigError, match=r"freq=.* is invalid: .*Use a pandas alias") as info:
        parse_freq(freq)
    _one_line_error(info.value)
    with pytest.raises(ConfigError):
        DataConfig(freq=freq)


# --------------------------------------------------------------------------- item 22: as_of of the wrong kind


def test_a_date_as_of_on_integer_ds_names_both_kinds(tmp_path):
    path = _write(_int_frame(np.arange(50)), tmp_path / "int.parquet")
    with pytest.raises(DataValidationError, match=r"as_of=2026-11-16 is a date but ds holds integer steps"):
        _ingest(path, as_of="2026-11-16")


def test_an_integer_as_of_on_timestamps_names_both_kinds(tmp_path):
    path = _write(make_sample_panel(n_series=1, length=50), tmp_path / "ts.parquet")
    with pytest.raises(DataValidationError, match=r"as_of=5 is an integer step but ds holds timestamps"):
        _ingest(path, as_of="5")


@pytest.mark.parametrize("as_of", ["²", "١٢", "yesterday-ish", "NaT"])
def test_as_of_that_is_no_date_nor_step_names_the_fix(as_of):
    with pytest.raises(ConfigError, match="use a date like 2026-11-01") as info:
        parse_as_of(as_of)
    _one_line_error(info.value)


# --------------------------------------------------------------------------- item 24: sample-data arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"length": -5}, r"length=-5 is invalid"),
        ({"n_series": 0}, r"n_series=0 is invalid"),
        ({"freq": "0D"}, r"freq='0D' is invalid"),
        ({"n_series": 100_000, "length": 100_000}, r"too large for sample data"),
        ({"seed": -1}, r"seed=-1 is invalid"),
        ({"freq": "1"}, r"sample data, which is dated"),
        ({"freq": "100YS", "length": 10}, r"past the year 2262"),
    ],
)
def test_sample_data_arguments_are_checked_before_allocating(tmp_path, kwargs, match):
    out = tmp_path / "sample.parquet"
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=match):
        write_sample_data(out, **kwargs)
    assert time.perf_counter() - started < 2 and not out.exists()


def test_errors_are_forecast_errors():
    assert issubclass(DataValidationError, ForecastError) and issubclass(ConfigError, ForecastError)


# --------------------------------------------------------------------------- item 23: inconsistent bundles


@pytest.fixture(scope="module")
def saved_bundle(tiny_trained, hourly_panel, tmp_path_factory):
    from rnn_model.bundle import save_bundle

    path = tmp_path_factory.mktemp("bundle") / "v0001"
    save_bundle(
        path, tiny_trained.forecaster, {"mase": 0.9, "intervals": None}, {"fingerprint": hourly_panel.fingerprint()}
    )
    return path


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _strings_scaler(path: Path) -> None:
    table = pq.read_table(path)
    n = table.num_rows
    pq.write_table(table.set_column(table.schema.get_field_index("loc"), "loc", pa.array(["x"] * n)), path)


@pytest.mark.parametrize(
    "name, damage, match",
    [
        (
            "horizon",
            lambda d: _edit_json(d / "config.json", lambda c: c["window"].update(horizon=14)),
            r"model.keras does not fit config.json's input_size 24 and horizon 14",
        ),
        (
            "intervals",
            lambda d: _edit_json(d / "metrics.json", lambda m: m.update(intervals="garbage")),
            r"'intervals' is not a calibration",
        ),
        (
            "intervals_levels",
            lambda d: _edit_json(d / "metrics.json", lambda m: m.update(intervals={"levels": ["x"]})),
            r"'intervals' is not a calibration",
        ),
        ("scaler_strings", lambda d: _strings_scaler(d / "scaler.parquet"), r"scaler.parquet does not hold"),
        (
            "freq_0D",
            lambda d: _edit_json(d / "config.json", lambda c: c["data"].update(freq="0D")),
            r"freq='0D' is invalid",
        ),
        ("metrics_list", lambda d: (d / "metrics.json").write_text("[1, 2]"), r"must hold JSON objects"),
    ],
)
def test_inconsistent_bundle_files_are_model_load_errors(saved_bundle, tmp_path, name, damage, match):
    import shutil

    from rnn_model.bundle import load_bundle
    from rnn_model.errors import ModelLoadError

    copy = tmp_path / "v0001"
    shutil.copytree(saved_bundle, copy)
    damage(copy)
    with pytest.raises(ModelLoadError, match=match) as info:
        load_bundle(copy)
    _one_line_error(info.value)


def test_an_intact_bundle_still_loads(saved_bundle, tiny_trained, hourly_panel):
    from rnn_model.bundle import load_bundle

    a, _ = load_bundle(saved_bundle).forecaster.forecast_future(hourly_panel)
    b, _ = tiny_trained.forecaster.forecast_future(hourly_panel)
    assert a.equals(b)


# --------------------------------------------------------------------------- found by the fuzz test


def test_a_group_holding_only_null_id_rows_is_reported_not_a_crash(tmp_path):
    """Null-id rows go to group 0; when no series hashes there, its id column is a dictionary with no
    used entry, and the code remap indexed an empty array (IndexError)."""
    from rnn_model.partitions import split_table

    n = 40
    ids = pa.array(["s0"] * n + [None])
    table = pa.table(
        {"unique_id": ids, "ds": pa.array(list(range(n)) + [n]), "y": [float(i % 7) for i in range(n + 1)]}
    )
    table = read_long_table(_write(table, tmp_path / "nulls.parquet"), DataConfig())
    config = ForecastConfig().replace(window={"horizon": 2, "input_size": 4})
    groups = split_table(table, "unique_id", 3)
    assert any(t.column("unique_id").null_count == t.num_rows for _, t in groups)  # the group of nulls alone
    kept, report, _ = combine_outcomes([validate_partition(k, t, config, purpose="predict") for k, t in groups])
    assert [o.panel.ids.tolist() for o in kept] == [["s0"]]
    assert [p.count for p in report.problems if p.problem == "null_id"] == [1]


def test_ids_with_newlines_keep_the_error_message_on_one_line():
    """Found by the fuzz test: an id holding a newline split the error message over lines."""
    df = pd.DataFrame(
        {
            "unique_id": ["a\nb"] * 3 + [""] * 3,
            "ds": pd.to_datetime(["2026-01-01"] * 2 + ["2026-01-02"]).tolist() * 2,
            "y": [1.0, 2.0, 3.0] * 2,
        }
    )
    with pytest.raises(DataValidationError, match=r"duplicate in '', 'a\\nb'") as info:
        panel_from_frame(df, DataConfig(freq="D"))
    _one_line_error(info.value)
