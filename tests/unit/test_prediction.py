"""Forecasting the future: ds from the frequency, long frame, seasonal-naive fallback, never NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnn_model.config import DataConfig
from rnn_model.panel import panel_from_frame
from rnn_model.prediction import future_frame
from rnn_model.sample import make_sample_panel
from rnn_model.training import min_train_length, train

from ._helpers import TINY_HORIZON, TINY_INPUT, tiny_config

FUTURE_COLUMNS = ["unique_id", "ds", "horizon_step", "y_hat", "source"]


def test_hourly_future_after_each_series_end(hourly_frame, hourly_panel, tiny_trained):
    # series_001 ends 5 hours earlier than the others: its horizon starts after its own last observation
    df = hourly_frame[~((hourly_frame["unique_id"] == "series_001") & (hourly_frame["ds"] > "2026-01-10 18:00"))]
    panel, _ = panel_from_frame(df, tiny_trained.forecaster.config.data)
    frame, fallback = tiny_trained.forecaster.forecast_future(panel)
    assert list(frame.columns) == FUTURE_COLUMNS and fallback == []
    assert len(frame) == 4 * TINY_HORIZON
    assert (frame["source"] == "model").all() and np.isfinite(frame["y_hat"]).all()
    for uid, g in frame.groupby("unique_id"):
        last = df.loc[df["unique_id"] == uid, "ds"].max()
        assert g["ds"].tolist() == list(pd.date_range(last, periods=TINY_HORIZON + 1, freq="h")[1:])
        assert g["horizon_step"].tolist() == list(range(1, TINY_HORIZON + 1))
    # the model's forecast from the last input window, inverse-scaled to data units
    fc = tiny_trained.forecaster
    i = list(panel.ids).index("series_001")
    x = fc.scaler.scaled_buffer(panel)[panel.offsets[i + 1] - TINY_INPUT : panel.offsets[i + 1]]
    expected = fc.model.predict(x[None, :, None], verbose=0)[0] * fc.scaler.scale[i] + fc.scaler.loc[i]
    got = frame.loc[frame["unique_id"] == "series_001", "y_hat"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_unforecastable_series_fall_back_to_seasonal_naive(hourly_frame, tiny_trained):
    fc = tiny_trained.forecaster
    m = fc.config.data.season_length
    df = hourly_frame.copy()
    short = df[df["unique_id"] == "series_000"].head(TINY_INPUT - 4).assign(unique_id="short")
    df.loc[df.index[(df["unique_id"] == "series_002")][-3], "y"] = np.nan  # masked slot in the last input window
    new = df[df["unique_id"] == "series_003"].assign(unique_id="never_seen")  # unknown to the scaler
    df = pd.concat([df, short, new])
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    frame, fallback = fc.forecast_future(panel)
    assert sorted(fallback) == ["never_seen", "series_002", "short"]
    assert np.isfinite(frame["y_hat"]).all()  # never NaN
    src = frame.groupby("unique_id")["source"].unique().map(list).to_dict()
    assert src == {"never_seen": ["seasonal_naive"], "series_000": ["model"], "series_001": ["model"],
                   "series_002": ["seasonal_naive"], "series_003": ["model"], "short": ["seasonal_naive"]}
    # seasonal naive: the value one season before each target (t - m for t = n .. n + h - 1)
    i = list(panel.ids).index("series_002")
    series = panel.series(i).astype(np.float64)
    n = len(series)
    expected = series[n - m : n - m + TINY_HORIZON]
    got = frame.loc[frame["unique_id"] == "series_002", "y_hat"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    # less than a season of history: naive (the last value)
    short_vals = frame.loc[frame["unique_id"] == "short", "y_hat"].to_numpy()
    assert (short_vals == np.float32(short["y"].iloc[-1])).all()
    # the same series is forecast by the model once it is long enough
    assert (frame.loc[frame["unique_id"] == "series_003", "y_hat"].to_numpy()
            != frame.loc[frame["unique_id"] == "never_seen", "y_hat"].to_numpy()).any()


def test_monthly_future_ds_and_recursive_head():
    cfg = tiny_config("MS", window={"input_size": 12, "horizon": 4}, model={"head": "recursive", "units": 8},
                      train={"epochs": 1})
    df = make_sample_panel(n_series=2, length=60, freq="MS", start="2020-01-01")
    df = df[~((df["unique_id"] == "series_001") & (df["ds"] > "2024-10-01"))]
    panel, _ = panel_from_frame(df, cfg.data, min_length=min_train_length(cfg))
    result = train(panel, cfg)
    assert result.forecaster.model.output_shape == (None, 1)
    frame, fallback = result.forecaster.forecast_future(panel)
    assert fallback == [] and (frame["source"] == "model").all() and np.isfinite(frame["y_hat"]).all()
    assert frame.loc[frame["unique_id"] == "series_000", "ds"].tolist() == list(
        pd.date_range("2025-01-01", periods=4, freq="MS"))
    assert frame.loc[frame["unique_id"] == "series_001", "ds"].tolist() == list(
        pd.date_range("2024-11-01", periods=4, freq="MS"))
    # recursive: step k+1 is the one-step model applied to the window shifted by step k's forecast
    fc = result.forecaster
    buf = fc.scaler.scaled_buffer(panel)
    x = buf[panel.offsets[1] - 12 : panel.offsets[1]].astype(np.float32)
    steps = []
    for _ in range(4):
        y = float(fc.model.predict(x[None, :, None], verbose=0)[0, 0])
        steps.append(y)
        x = np.r_[x[1:], np.float32(y)]
    got = frame.loc[frame["unique_id"] == "series_000", "y_hat"].to_numpy()
    np.testing.assert_allclose(got, np.array(steps) * fc.scaler.scale[0] + fc.scaler.loc[0], rtol=1e-5)


def test_integer_ds_future_and_no_model_at_all():
    df = pd.DataFrame({"unique_id": "a", "ds": np.arange(100, 140, 5), "y": np.arange(8.0) % 4})
    cfg = tiny_config("5", window={"horizon": 3}, data={"season_length": 4})
    panel, _ = panel_from_frame(df, cfg.data)
    frame = future_frame(panel, None, None, cfg)
    assert frame["ds"].tolist() == [140, 145, 150]
    assert frame["y_hat"].tolist() == [0.0, 1.0, 2.0]  # one season (4 steps) back
    assert (frame["source"] == "seasonal_naive").all()


@pytest.mark.parametrize("n", [0, 1, 20_000])
def test_predict_scaled_handles_any_number_of_windows(tiny_trained, n):
    """Chunked inference (16384 windows per call) gives the same rows as one call."""
    fc = tiny_trained.forecaster
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, TINY_INPUT, 1)).astype(np.float32)
    out = fc.predict_scaled(x)
    assert out.shape == (n, TINY_HORIZON) and out.dtype == np.float32
    if n:
        idx = [0, n - 1] if n > 1 else [0]
        np.testing.assert_allclose(out[idx], fc.model.predict(x[idx], verbose=0), rtol=1e-5, atol=1e-6)
