"""The panel buffer: one contiguous float32 array, CSR offsets, values checked against the input frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnn_model.config import DataConfig
from rnn_model.panel import panel_from_frame
from rnn_model.sample import make_sample_panel

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
