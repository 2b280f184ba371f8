"""The panel buffer: one contiguous float32 array, CSR offsets, values checked against the input frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rnn_model.config import DataConfig, ForecastConfig
from rnn_model.errors import DataValidationError
from rnn_model.panel import _STAGES, CHECKS, panel_from_frame
from rnn_model.partitions import check_forecast_room, combine_outcomes, split_table, validate_partition
from rnn_model.sample import make_sample_panel
from rnn_model.schema import ALL_DROPPED, EMPTY_INPUT, NO_ROWS_LEFT, PROBLEMS

from ._helpers import seasonal_frame


def test_buffer_layout_matches_the_input_frame():
    df = seasonal_frame(n_series=3, length=50)
    df = df[~((df["unique_id"] == "s1") & (df.index % 50 >= 45))]  # s1 is shorter: 45 points
    df = df.sample(frac=1.0, random_state=3)
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    assert panel.values.dtype == np.float32 and panel.values.flags["C_CONTIGUOUS"]
    assert panel.values.base is None or panel.values.base.size == panel.values.size  # one buffer, not views
    assert panel.offsets.tolist() == [0, 50, 95, 145]
    assert panel.lengths.tolist() == [50, 45, 50]
    assert list(panel.ids) == ["s0", "s1", "s2"]
    for i, uid in enumerate(panel.ids):
        expected = df[df["unique_id"] == uid].sort_values("ds")["y"].to_numpy(np.float32)
        np.testing.assert_array_equal(panel.values[panel.offsets[i] : panel.offsets[i + 1]], expected)
        np.testing.assert_array_equal(panel.series(i), expected)
    assert panel.observed.all()


def test_series_with_different_starts_get_their_own_first_tick():
    a = seasonal_frame(n_series=1, length=30)
    b = seasonal_frame(n_series=1, length=20, start="2026-01-01 10:00").assign(unique_id="late")
    panel, _ = panel_from_frame(pd.concat([a, b]), DataConfig(freq="h"))
    assert list(panel.ids) == ["late", "s0"]
    assert panel.first_tick.tolist() == [10, 0]
    ds = panel.ds_at(np.array([0, 1]), np.array([0, 0]))
    assert list(pd.DatetimeIndex(ds)) == [pd.Timestamp("2026-01-01 10:00"), pd.Timestamp("2026-01-01 00:00")]


def test_to_frame_round_trip_with_masked_slots():
    df = make_sample_panel(n_series=3, length=40, seed=2)
    df = df.drop(df.index[[5, 6, 47]])  # gaps in series_000 (2) and series_001 (1)
    df.loc[df.index[60], "y"] = np.nan  # a masked value in series_001
    panel, _ = panel_from_frame(df, DataConfig())
    assert panel.lengths.tolist() == [40, 40, 40]
    assert (~panel.observed).sum() == 4
    back = panel.to_frame()
    expected = df.dropna(subset=["y"]).sort_values(["unique_id", "ds"]).reset_index(drop=True)
    assert list(back.columns) == ["unique_id", "ds", "y"]
    assert back["unique_id"].tolist() == expected["unique_id"].tolist()
    np.testing.assert_array_equal(back["ds"].to_numpy(), expected["ds"].to_numpy("datetime64[ns]"))
    np.testing.assert_array_equal(back["y"].to_numpy(), expected["y"].to_numpy(np.float32))


def test_integer_and_monthly_round_trips():
    df = seasonal_frame(n_series=2, length=24, freq="int")
    panel, _ = panel_from_frame(df, DataConfig(freq="1"))
    back = panel.to_frame()
    np.testing.assert_array_equal(back["ds"].to_numpy(), df["ds"].to_numpy())
    df = make_sample_panel(n_series=2, length=30, freq="MS", start="2023-01-01")
    panel, _ = panel_from_frame(df, DataConfig(freq="MS"))
    np.testing.assert_array_equal(panel.to_frame()["ds"].to_numpy(), df["ds"].to_numpy("datetime64[ns]"))


def test_fingerprint_changes_with_any_value():
    df = make_sample_panel(n_series=2, length=30)
    a, _ = panel_from_frame(df, DataConfig())
    changed = df.copy()
    changed.loc[17, "y"] += 1e-3
    b, _ = panel_from_frame(changed, DataConfig())
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == panel_from_frame(df.iloc[::-1], DataConfig())[0].fingerprint()


# --------------------------------------------------------------------------- the problem catalogue


def _hourly(**changes) -> pd.DataFrame:
    """Two hourly series of 30 points, ``changes`` applied: column -> (row labels, value)."""
    df = seasonal_frame(n_series=2, length=30)
    for col, (rows, value) in changes.items():
        df.loc[rows, col] = value
    return df


def _off_grid():
    df = _hourly()
    df.loc[5, "ds"] += pd.Timedelta("17min")
    return panel_from_frame(df, DataConfig(freq="h", on_off_grid="drop"))


def _outlying_ds():
    df = _hourly()
    far = df.iloc[[0]].assign(ds=pd.Timestamp("2036-01-01"))  # ten years of hourly slots for 31 rows
    return panel_from_frame(pd.concat([df, far]), DataConfig(freq="h"))


def _no_room():
    df = seasonal_frame(n_series=1, length=30, freq="D", start="2261-11-01")
    panel, report = panel_from_frame(df, DataConfig(freq="D"))
    check_forecast_room(panel, report, horizon=200)  # 200 days after 2261-11-30 is past 2262-04-11


# PROBLEMS row -> inputs that exhibit it: (build, the cause the report records, "" for any)
_EXHIBITS = {
    "column_type": [(lambda: panel_from_frame(_hourly().astype({"y": str}), DataConfig(freq="h")), "")],
    "null_id": [(lambda: panel_from_frame(_hourly(unique_id=(3, None)), DataConfig(freq="h")), "")],
    "off_grid": [(_off_grid, "")],
    "duplicate": [(lambda: panel_from_frame(pd.concat([_hourly(), _hourly().iloc[[4]]]), DataConfig(freq="h")), "")],
    "non_finite": [(lambda: panel_from_frame(_hourly(y=(3, np.nan)), DataConfig(freq="h")), "")],
    "gap": [(lambda: panel_from_frame(_hourly().drop(index=5), DataConfig(freq="h")), "")],
    "constant": [(lambda: panel_from_frame(_hourly().assign(y=1.0), DataConfig(freq="h", on_constant="keep")), "")],
    "too_short": [(lambda: panel_from_frame(_hourly(), DataConfig(freq="h"), min_length=100), "")],
    "no_series_left": [
        (lambda: panel_from_frame(_hourly().iloc[:0], DataConfig(freq="h")), EMPTY_INPUT),
        (lambda: panel_from_frame(_hourly(ds=(slice(None), pd.NaT)), DataConfig(freq="h")), NO_ROWS_LEFT),
        (lambda: panel_from_frame(_hourly(), DataConfig(freq="h"), min_length=100), ALL_DROPPED),
    ],
    "ds_out_of_range": [
        (lambda: panel_from_frame(seasonal_frame(1, 30, freq="int").assign(ds=2**62), DataConfig(freq="1")), "")
    ],
    "future_rows": [
        (lambda: panel_from_frame(_hourly(ds=(4, pd.Timestamp("2099-01-01"))), DataConfig(freq="h"), as_of="now"), "")
    ],
    "as_of_type": [
        (lambda: panel_from_frame(seasonal_frame(1, 30, freq="int"), DataConfig(freq="1"), as_of="2026-01-01"), "")
    ],
    "grid_too_large": [(_outlying_ds, "")],
    "freq_mismatch": [(lambda: panel_from_frame(_hourly(), DataConfig(freq="D")), "")],
    "no_room": [(_no_room, "")],
    "freq_inferred": [(lambda: panel_from_frame(_hourly(), DataConfig()), "")],
    "rows_after_as_of": [(lambda: panel_from_frame(_hourly(), DataConfig(freq="h"), as_of="2026-01-01 12:00"), "")],
    "tz_converted": [
        (lambda: panel_from_frame(_hourly().assign(ds=_hourly()["ds"].dt.tz_localize("UTC")), DataConfig(freq="h")), "")
    ],
}


def test_each_catalogue_row_with_a_policy_has_its_check_in_catalogue_order():
    with_policy = [kind for kind, spec in PROBLEMS.items() if spec.policy is not None]
    assert list(CHECKS) == with_policy  # build_panel runs CHECKS[kind] for each, in the catalogue's order
    stages = [_STAGES.index(CHECKS[kind].stage) for kind in with_policy]
    assert stages == sorted(stages)  # the rows are sorted, then measured, once: a check cannot go back
    for kind, spec in PROBLEMS.items():
        assert spec.fix.startswith(spec.remedy) and (spec.policy is None or spec.policy in spec.fix), kind


@pytest.mark.parametrize("kind", list(PROBLEMS))
def test_each_catalogue_row_is_reported_with_its_kind(kind):
    assert kind in _EXHIBITS, f"add an input exhibiting {kind} (and a check, if it has a policy)"
    for build, cause in _EXHIBITS[kind]:
        try:
            report = build()[1]
        except DataValidationError as exc:
            report = exc.report
        found = [p for p in report.problems if p.problem == kind]
        assert found, f"{kind} not reported: {report.to_frame()}"
        assert not cause or [p.cause for p in found] == [cause]


def test_combine_outcomes_tells_no_rows_left_by_its_cause():
    table = pa.Table.from_pandas(seasonal_frame(n_series=6, length=30), preserve_index=False)
    groups = split_table(table, "unique_id", 2)
    config = ForecastConfig().replace(data={"freq": "h"})
    outcomes = [validate_partition(k, t, config, as_of="2025-12-31") for k, t in groups]  # every row after
    assert len(outcomes) == 2 and all(o.error is not None for o in outcomes)
    with pytest.raises(DataValidationError, match=r"no_series_left in \* \(e.g. no rows left after as_of") as exc:
        combine_outcomes(outcomes)
    assert [p.cause for p in exc.value.report.problems if p.problem == "no_series_left"] == [NO_ROWS_LEFT]


@pytest.mark.parametrize("policy", ["error", "drop"])
def test_an_id_column_of_only_nulls_is_reported_as_null_ids(policy):
    # a plain string column with no id at all: the dictionary of ids is empty, nothing to look up
    from rnn_model.panel import build_panel

    table = pa.table(
        {
            "unique_id": pa.array([None] * 3, pa.string()),
            "ds": pa.array(pd.date_range("2026-01-01", periods=3, freq="h")),
            "y": [1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(DataValidationError) as info:
        build_panel(table, DataConfig(on_null_id=policy), min_length=1)
    found = {p.problem: p.action for p in info.value.report.problems}
    assert found == {"null_id": "error" if policy == "error" else "dropped", "no_series_left": "error"}
    assert "fill or remove rows with a null id/ds" in str(info.value)
