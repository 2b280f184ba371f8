"""The data contract: every problem is reported at once, with the action its policy took."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rnn_model.config import DataConfig
from rnn_model.errors import ConfigError, DataValidationError
from rnn_model.io import read_long_table
from rnn_model.panel import build_panel, panel_from_frame
from rnn_model.sample import make_sample_panel
from rnn_model.schema import PROBLEMS

REPORT_COLUMNS = ["unique_id", "problem", "count", "example", "action"]
STRICT = dict(
    on_null_id="error",
    on_duplicate="error",
    on_non_finite="error",
    on_off_grid="error",
    on_gap="error",
    on_too_short="error",
    on_constant="error",
)


def _rows(report, problem):
    df = report.to_frame()
    return df[df["problem"] == problem]


def broken_frame() -> pd.DataFrame:
    """Eight series; series k has exactly one kind of problem (s0 and s7 are clean), rows shuffled."""
    df = make_sample_panel(n_series=8, length=60, seed=5)
    df["unique_id"] = df["unique_id"].str.replace("series_00", "s")
    at = lambda uid, i: df.index[df["unique_id"] == uid][i]  # noqa: E731
    extra = []
    df.loc[at("s1", 10), "unique_id"] = None  # null id
    extra.append(df.loc[[at("s2", 5)]])  # duplicate (s2, ds[5])
    df.loc[at("s3", 7), "y"] = np.nan  # non-finite
    df.loc[at("s3", 8), "y"] = np.inf
    df.loc[at("s4", 20), "ds"] += pd.Timedelta(minutes=30)  # off grid
    df = df.drop([at("s5", 30), at("s5", 31), at("s5", 32)])  # gap of 3 steps
    df.loc[df["unique_id"] == "s6", "y"] = 4.25  # constant
    short = pd.DataFrame(
        {"unique_id": "s8", "ds": pd.date_range("2026-01-01", periods=5, freq="h"), "y": 1.0 + np.arange(5)}
    )
    return pd.concat([df, *extra, short]).sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_every_problem_is_reported_at_once_in_one_error(tmp_path):
    broken_frame().to_parquet(tmp_path / "broken.parquet", index=False)
    table = read_long_table(tmp_path / "broken.parquet", DataConfig())
    with pytest.raises(DataValidationError) as info:
        build_panel(table, DataConfig(freq="h", **STRICT), min_length=20)
    report = info.value.report
    df = report.to_frame()
    assert list(df.columns) == REPORT_COLUMNS
    got = {(r.unique_id, r.problem, r.count, r.action) for r in df.itertuples()}
    # s1: the null-id row leaves a one-step hole in s1 as well.
    assert got == {
        ("*", "null_id", 1, "error"),
        ("s1", "gap", 1, "error"),
        ("s2", "duplicate", 1, "error"),
        ("s3", "non_finite", 2, "error"),
        ("s4", "off_grid", 1, "error"),
        ("s5", "gap", 3, "error"),
        ("s6", "constant", 60, "error"),
        ("s8", "too_short", 5, "error"),
    }
    msg = str(info.value)
    for problem in ("null_id", "duplicate", "non_finite", "off_grid", "gap", "constant", "too_short"):
        assert problem in msg and PROBLEMS[problem][1] in msg  # the problem and how to fix it
    ex = df.set_index(["unique_id", "problem"])["example"]
    assert ex[("s5", "gap")] == "first missing ds=2026-01-02 06:00:00"
    assert ex[("s4", "off_grid")] == "ds=2026-01-01 20:30:00 not on freq h"
    assert ex[("s3", "non_finite")] == "ds=2026-01-01 07:00:00 y=nan"


def test_default_policies_drop_fill_and_report(tmp_path):
    df = broken_frame()
    df = df[df["unique_id"] != "s4"]  # off-grid and duplicates are errors by default
    df = df[df["unique_id"] != "s2"]
    panel, report = panel_from_frame(df, DataConfig(freq="h"), min_length=20)
    actions = {(r.unique_id, r.problem): r.action for r in report.to_frame().itertuples()}
    assert actions == {
        ("*", "null_id"): "dropped",
        ("s1", "gap"): "filled (masked)",
        ("s3", "non_finite"): "filled (masked)",
        ("s5", "gap"): "filled (masked)",
        ("s6", "constant"): "dropped",
        ("s8", "too_short"): "dropped",
    }
    assert list(panel.ids) == ["s0", "s1", "s3", "s5", "s7"]
    assert report.dropped_ids == ["s6", "s8"]
    assert (report.n_series_in, report.n_series_out) == (7, 5)  # s2 and s4 were left out
    # Filled slots exist in the layout but are masked: NaN and not observed.
    s5 = list(panel.ids).index("s5")
    lo = panel.offsets[s5]
    assert panel.lengths[s5] == 60
    assert not panel.observed[lo + 30 : lo + 33].any() and np.isnan(panel.values[lo + 30 : lo + 33]).all()
    s3 = list(panel.ids).index("s3")
    assert panel.observed[panel.offsets[s3] : panel.offsets[s3 + 1]].sum() == 58


def test_drop_policies_remove_rows_or_series():
    df = broken_frame()
    cfg = DataConfig(
        freq="h", on_duplicate="drop", on_off_grid="drop", on_non_finite="drop", on_gap="drop", on_constant="keep"
    )
    panel, report = panel_from_frame(df, cfg, min_length=20)
    # off-grid drops the row, which leaves a gap in s4 that is then dropped (on_gap="drop") with s1 and s5
    assert set(_rows(report, "gap")["unique_id"]) == {"s1", "s4", "s5"}
    assert list(panel.ids) == ["s0", "s6", "s7"]
    assert panel.observed.all()
    assert _rows(report, "constant")["action"].tolist() == ["kept"]


def test_off_grid_rows_dropped_keep_their_series():
    df = broken_frame()
    df = df[df["unique_id"].isin(["s0", "s4"])]
    panel, report = panel_from_frame(df, DataConfig(freq="h", on_off_grid="drop", on_gap="fill"))
    s4 = list(panel.ids).index("s4")
    lo = panel.offsets[s4]
    assert panel.lengths[s4] == 60 and not panel.observed[lo + 20] and panel.observed[lo + 19]
    assert _rows(report, "off_grid")["action"].tolist() == ["dropped"]  # the row was dropped...
    assert report.dropped_ids == [] and report.n_series_out == 2  # ...but no series was


def test_off_grid_earliest_timestamp_does_not_shift_the_grid():
    """One off-grid row that happens to be the earliest of the panel is the only one flagged.

    Regression: the grid used to be anchored on the earliest timestamp, so every other row was off-grid.
    """
    df = make_sample_panel(n_series=2, length=30, start="2026-01-01 01:00")
    early = pd.DataFrame({"unique_id": ["series_000"], "ds": [pd.Timestamp("2026-01-01 00:30")], "y": [1.0]})
    df = pd.concat([early, df])
    with pytest.raises(DataValidationError) as info:
        panel_from_frame(df, DataConfig(freq="h"))
    assert info.value.report.to_frame()[["unique_id", "problem", "count"]].values.tolist() == [
        ["series_000", "off_grid", 1]
    ]
    panel, _ = panel_from_frame(df, DataConfig(freq="h", on_off_grid="drop"))
    assert panel.lengths.tolist() == [30, 30]
    assert pd.Timestamp(panel.to_frame()["ds"].min()) == pd.Timestamp("2026-01-01 01:00")


def test_wrong_column_types_are_all_reported():
    table = pa.table({"unique_id": pa.array([1.5] * 4), "ds": pa.array([0.0, 1.0, 2.0, 3.0]), "y": pa.array(["a"] * 4)})
    with pytest.raises(DataValidationError) as info:
        build_panel(table, DataConfig())
    df = info.value.report.to_frame()
    assert df["problem"].tolist() == ["column_type"] * 3
    assert [e.split(" ")[0] for e in df["example"]] == ["unique_id", "ds", "y"]
    assert "cast the column" in str(info.value)


def test_unparseable_string_timestamps_are_named():
    table = pa.table({"unique_id": ["a", "a"], "ds": ["2026-01-01", "yesterday"], "y": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match="yesterday"):
        build_panel(table, DataConfig())


def test_integer_ids_and_iso_strings_are_accepted():
    table = pa.table(
        {
            "unique_id": [7, 7, 7, 3, 3, 3],
            "ds": ["2026-01-01T00:00", "2026-01-01T01:00", "2026-01-01T02:00"] * 2,
            "y": [1.0, 2.0, 4.0, 1.0, 3.0, 2.0],
        }
    )
    panel, report = build_panel(table, DataConfig())
    assert list(panel.ids) == ["3", "7"] and report.freq == "h"


@pytest.mark.parametrize(
    "freq,ds,message",
    [
        ("1", pd.date_range("2026-01-01", periods=20, freq="h"), "ds is timestamp but freq='1'"),
        ("h", np.arange(20), "ds is integer but freq='h'"),
    ],
)
def test_freq_of_the_wrong_kind_is_a_clear_error(freq, ds, message):
    """Regression: an integer step with timestamps used to allocate one slot per nanosecond (MemoryError)."""
    df = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(20.0)})
    with pytest.raises(DataValidationError, match=message):
        panel_from_frame(df, DataConfig(freq=freq))


@pytest.mark.parametrize(
    "freq,expected",
    [("h", "h"), ("30min", "30min"), ("D", "D"), ("B", "B"), ("W-WED", "W-WED"), ("MS", "MS"), ("QS", "QS-JAN")],
)
def test_freq_is_inferred_and_reported_when_not_given(freq, expected):
    df = make_sample_panel(n_series=2, length=30, freq=freq)
    df = df.drop(df.index[[4, 40]])  # gaps do not confuse the inference
    panel, report = panel_from_frame(df, DataConfig())
    assert report.freq == expected == panel.freq
    info = _rows(report, "freq_inferred")
    assert info[["unique_id", "example", "action"]].values.tolist() == [["*", f"freq={expected}", "info"]]
    assert _rows(report, "gap")["count"].tolist() == [1, 1]
    given, given_report = panel_from_frame(df, DataConfig(freq=freq))
    assert _rows(given_report, "freq_inferred").empty


def _business_days(n_series: int = 2, length: int = 80) -> pd.DataFrame:
    """Weekdays only (a trading calendar), starting on a Monday; series_001 misses one Monday (a holiday)."""
    df = make_sample_panel(n_series=n_series, length=length, freq="B", start="2026-01-05")
    holiday = df.index[(df["unique_id"] == "series_001") & (df["ds"] == pd.Timestamp("2026-02-16"))]
    return df.drop(holiday)


def test_business_day_data_from_parquet_is_inferred_as_b_and_trains(tmp_path):
    """Weekends were gaps under an inferred 'D': two masked slots a week, no training window, forecasts
    dated on Saturdays."""
    from rnn_model.config import ForecastConfig
    from rnn_model.prediction import future_frame
    from rnn_model.stages import validate
    from rnn_model.training import plan_windows

    path = tmp_path / "trading.parquet"
    _business_days().to_parquet(path, index=False)
    panel, report, cfg = validate(read_long_table(path, DataConfig()), ForecastConfig())
    assert report.freq == panel.freq == cfg.data.freq == "B"
    assert (cfg.data.season_length, cfg.window.horizon) == (5, 10)
    assert _rows(report, "gap")[["unique_id", "count"]].values.tolist() == [["series_001", 1]]  # the holiday only
    assert len(plan_windows(panel, cfg).train_starts) > 0
    future = future_frame(panel, None, None, cfg)
    assert (pd.DatetimeIndex(future["ds"]).dayofweek < 5).all()
    assert future["ds"].min() == pd.Timestamp("2026-04-27")  # the Monday after the last Friday


@pytest.mark.parametrize("weekday", [5, 6])
def test_daily_data_with_any_weekend_day_stays_daily(weekday):
    """One Saturday or Sunday anywhere: the weekends are real gaps in daily data, not a calendar."""
    df = _business_days()
    weekend = pd.DataFrame(
        {"unique_id": ["series_000"], "ds": [pd.Timestamp("2026-01-05") + pd.Timedelta(days=weekday)], "y": [1.0]}
    )
    _, report = panel_from_frame(pd.concat([df, weekend], ignore_index=True), DataConfig())
    assert report.freq == "D"


def test_monthly_data_validation_and_layout():
    df = make_sample_panel(n_series=2, length=36, freq="MS", start="2024-01-01")
    df = df.drop(df.index[[10]])  # 2024-11-01 of series_000 missing
    off = pd.DataFrame({"unique_id": ["series_001"], "ds": [pd.Timestamp("2024-03-15")], "y": [1.0]})
    with pytest.raises(DataValidationError) as info:
        panel_from_frame(pd.concat([df, off]), DataConfig(freq="MS", on_gap="error"))
    got = info.value.report.to_frame().set_index("problem")["example"].to_dict()
    assert got == {"off_grid": "ds=2024-03-15 00:00:00 not on freq MS", "gap": "first missing ds=2024-11-01 00:00:00"}
    panel, _ = panel_from_frame(df, DataConfig())
    assert panel.freq == "MS" and panel.lengths.tolist() == [36, 36]
    assert not panel.observed[10] and panel.observed.sum() == 71
    assert panel.to_frame()["ds"].iloc[-1] == pd.Timestamp("2026-12-01")


def test_integer_ds_with_a_step():
    df = pd.DataFrame(
        {
            "unique_id": ["a"] * 6 + ["b"] * 4,
            "ds": [10, 12, 14, 18, 20, 22, 3, 5, 7, 9],
            "y": [1.0, 2.0, 3.0, 5.0, 4.0, 2.0, 1.0, 3.0, 2.0, 1.0],
        }
    )
    with pytest.raises(DataValidationError) as info:
        panel_from_frame(df, DataConfig())
    report = info.value.report
    assert report.freq == "2"
    # The grid follows the majority phase (even numbers, 6 rows of 10): b's odd values are all off grid.
    assert _rows(report, "off_grid")[["unique_id", "count"]].values.tolist() == [["b", 4]]
    panel, report = panel_from_frame(df[df["unique_id"] == "a"], DataConfig())
    assert panel.lengths.tolist() == [7] and panel.observed.tolist() == [True] * 3 + [False] + [True] * 3
    assert _rows(report, "gap")["example"].tolist() == ["first missing ds=16"]
    np.testing.assert_array_equal(panel.to_frame()["ds"].to_numpy(), [10, 12, 14, 18, 20, 22])


def test_too_short_counts_observed_points_only():
    df = make_sample_panel(n_series=2, length=12)
    df.loc[[0, 1, 2], "y"] = np.nan  # filled, masked: 9 observed points remain in series_000
    panel, report = panel_from_frame(df, DataConfig(), min_length=10)
    assert _rows(report, "too_short")[["unique_id", "count", "example"]].values.tolist() == [
        ["series_000", 9, "9 observed points < 10 needed"]
    ]
    assert list(panel.ids) == ["series_001"]
    panel, report = panel_from_frame(df, DataConfig(), min_length=9)
    assert _rows(report, "too_short").empty and panel.n_series == 2


def test_all_series_dropped_is_an_error():
    df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2026-01-01", periods=5, freq="h"), "y": 1.0})
    with pytest.raises(DataValidationError, match="no_series_left"):
        panel_from_frame(df, DataConfig())  # constant -> dropped


def test_empty_table_is_an_error():
    table = pa.table(
        {
            "unique_id": pa.array([], pa.string()),
            "ds": pa.array([], pa.timestamp("ns")),
            "y": pa.array([], pa.float64()),
        }
    )
    with pytest.raises(DataValidationError, match="zero rows"):
        build_panel(table, DataConfig())


def test_as_of_keeps_only_rows_up_to_it():
    df = make_sample_panel(n_series=2, length=72)
    panel, report = panel_from_frame(df, DataConfig(), as_of="2026-01-02")
    assert panel.lengths.tolist() == [25, 25]  # a date is its midnight: the flows' cutoff for that label
    assert _rows(report, "rows_after_as_of")["count"].tolist() == [94]


def test_freq_cannot_be_inferred_from_single_points():
    df = pd.DataFrame({"unique_id": ["a", "b"], "ds": pd.to_datetime(["2026-01-01", "2026-01-02"]), "y": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="pass freq"):
        panel_from_frame(df, DataConfig())


def test_report_markdown_lists_every_problem():
    df = broken_frame()
    df = df[~df["unique_id"].isin(["s2", "s4"])]
    _, report = panel_from_frame(df, DataConfig(freq="h"), min_length=20)
    md = report.to_markdown()
    assert md.count("\n| ") == len(report.problems) + 1  # header row + one row per problem
    assert "series used: 5" in md


# --------------------------------------------------------------------------- one ingest (pipeline)


def _validated(df: pd.DataFrame, purpose: str, **data):
    from rnn_model.config import ForecastConfig
    from rnn_model.stages import validate

    cfg = ForecastConfig().replace(
        data={"freq": "h", "on_duplicate": "drop", "on_off_grid": "drop", **data},
        window={"horizon": 6, "input_size": 24},
    )
    table = pa.Table.from_pandas(df, preserve_index=False)
    return validate(table, cfg, as_of="2026-02-01", purpose=purpose)


def test_the_training_subset_of_one_prediction_ingest_is_what_training_validation_gives():
    """A pipeline run validates once (for prediction: short and constant series kept) and trains on the
    subset: the same panel, bit for bit, and the same problems as a validation for training."""
    from rnn_model.stages import training_subset

    df = broken_frame()
    train_panel, train_report, _ = _validated(df, "train")
    panel, report, resolved = _validated(df, "predict")
    assert {"s6", "s8"} <= set(panel.ids) and not {"s6", "s8"} & set(train_panel.ids)
    subset = training_subset(panel, report, resolved)
    assert subset.fingerprint() == train_panel.fingerprint()
    assert list(subset.ids) == list(train_panel.ids)
    rows = lambda r: {(p.unique_id, p.problem, p.action) for p in r.problems}  # noqa: E731
    assert rows(report) == rows(train_report)  # constant s6 and too_short s8: dropped (from training)
    assert report.n_series_train == subset.n_series and "trained on" in report.to_markdown()


def test_the_training_subset_raises_what_training_validation_raises():
    from rnn_model.stages import training_subset

    df = broken_frame()
    panel, report, resolved = _validated(df, "predict", on_too_short="error")
    with pytest.raises(DataValidationError, match=r"too_short in s8"):
        training_subset(panel, report, resolved)
    only_short = df[df["unique_id"] == "s8"]
    panel, report, resolved = _validated(only_short, "predict")
    with pytest.raises(DataValidationError, match=r"no_series_left.*all 1 series were dropped \(too_short\)"):
        training_subset(panel, report, resolved)
