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


def _scale_free_by_hand(model, x: np.ndarray, members: int) -> np.ndarray:
    """What a scale-free forecaster computes, in NumPy: each window ``x [n, input_size]`` normalised by
    its own inputs, ``(x - x_last) / s`` with ``s`` the mean absolute step (floored at 1e-3 of the mean
    level), the model's ``members`` outputs, their median, back to the window's units. ``[n, n_out]``."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    last = x[:, -1:]
    scale = np.maximum(
        np.abs(np.diff(x, axis=1)).mean(axis=1, keepdims=True), 1e-3 * np.abs(x).mean(axis=1, keepdims=True) + 1e-8
    )
    out = model.predict(((x - last) / scale)[:, :, None].astype(np.float32), verbose=0).astype(np.float64)
    per_member = out.reshape(len(x), members, -1)  # [n, members, n_out]: member k in columns k * n_out ..
    return np.median(per_member, axis=1) * scale + last  # even count: the mean of the two middle ones


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
    # the members' median forecast from the last input window (normalised by itself), in data units
    fc = tiny_trained.forecaster
    assert fc.scale_free and fc.config.model.members == 2
    i = list(panel.ids).index("series_001")
    x = fc.scaler.scaled_buffer(panel)[panel.offsets[i + 1] - TINY_INPUT : panel.offsets[i + 1]]
    np.testing.assert_array_equal(x, panel.values[panel.offsets[i + 1] - TINY_INPUT : panel.offsets[i + 1]])  # identity
    expected = _scale_free_by_hand(fc.model, x[None], members=2)[0]
    got = frame.loc[frame["unique_id"] == "series_001", "y_hat"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_unforecastable_series_fall_back_to_seasonal_naive(hourly_frame, tiny_trained):
    fc = tiny_trained.forecaster
    m = fc.config.data.season_length
    df = hourly_frame.copy()
    short = df[df["unique_id"] == "series_000"].head(TINY_INPUT - 4).assign(unique_id="short")
    df.loc[df.index[(df["unique_id"] == "series_002")][-3], "y"] = np.nan  # masked slot in the last input window
    new = df[df["unique_id"] == "series_003"].assign(unique_id="never_seen")  # not trained on: still forecast
    df = pd.concat([df, short, new])
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    frame, fallback = fc.forecast_future(panel)
    assert sorted(fallback) == ["series_002", "short"]
    assert np.isfinite(frame["y_hat"]).all()  # never NaN
    src = frame.groupby("unique_id")["source"].unique().map(list).to_dict()
    assert src == {
        "never_seen": ["model"],
        "series_000": ["model"],
        "series_001": ["model"],
        "series_002": ["seasonal_naive"],
        "series_003": ["model"],
        "short": ["seasonal_naive"],
    }
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
    # scale-free windows: a series the model never saw is forecast like any other, from its own window
    assert "never_seen" not in set(fc.scaler.ids)
    np.testing.assert_array_equal(
        frame.loc[frame["unique_id"] == "never_seen", "y_hat"].to_numpy(),
        frame.loc[frame["unique_id"] == "series_003", "y_hat"].to_numpy(),
    )


def test_per_series_scalers_still_fall_back_for_series_they_never_saw(hourly_frame, tiny_trained):
    """scaler="standard" (and robust, mean, none): statistics per series, so a series unknown to the
    scaler cannot be scaled and gets seasonal naive; known ones are inverse-scaled with their own."""
    from rnn_model.prediction import Forecaster
    from rnn_model.scaling import fit_scaler

    cfg = tiny_trained.forecaster.config.replace(train={"scaler": "standard"})
    known = hourly_frame[hourly_frame["unique_id"] != "series_003"]
    seen, _ = panel_from_frame(known, cfg.data)
    scaler = fit_scaler(seen, seen.lengths - 4 * TINY_HORIZON, "standard")
    fc = Forecaster(tiny_trained.forecaster.model, scaler, cfg)
    assert not fc.scale_free
    panel, _ = panel_from_frame(hourly_frame, cfg.data)
    frame, fallback = fc.forecast_future(panel)
    assert fallback == ["series_003"]
    src = frame.groupby("unique_id")["source"].unique().map(list).to_dict()
    assert src == {
        "series_000": ["model"],
        "series_001": ["model"],
        "series_002": ["model"],
        "series_003": ["seasonal_naive"],
    }
    # a known series: the members' median of the scaled window, inverse-scaled with its own statistics
    i = 1
    x = scaler.scaled_buffer(panel)[panel.offsets[i + 1] - TINY_INPUT : panel.offsets[i + 1]]
    out = fc.model.predict(x[None, :, None], verbose=0)[0].astype(np.float64).reshape(2, TINY_HORIZON)
    expected = np.median(out, axis=0) * scaler.scale[i] + scaler.loc[i]
    np.testing.assert_allclose(frame.loc[frame["unique_id"] == "series_001", "y_hat"].to_numpy(), expected, rtol=1e-5)


def test_monthly_future_ds_and_recursive_head():
    cfg = tiny_config(
        "MS", window={"input_size": 12, "horizon": 4}, model={"head": "recursive", "units": 8}, train={"epochs": 1}
    )
    df = make_sample_panel(n_series=2, length=60, freq="MS", start="2020-01-01")
    df = df[~((df["unique_id"] == "series_001") & (df["ds"] > "2024-10-01"))]
    panel, _ = panel_from_frame(df, cfg.data, min_length=min_train_length(cfg))
    result = train(panel, cfg)
    assert result.forecaster.model.output_shape == (None, cfg.model.members)  # one step per member
    frame, fallback = result.forecaster.forecast_future(panel)
    assert fallback == [] and (frame["source"] == "model").all() and np.isfinite(frame["y_hat"]).all()
    assert frame.loc[frame["unique_id"] == "series_000", "ds"].tolist() == list(
        pd.date_range("2025-01-01", periods=4, freq="MS")
    )
    assert frame.loc[frame["unique_id"] == "series_001", "ds"].tolist() == list(
        pd.date_range("2024-11-01", periods=4, freq="MS")
    )
    # recursive: step k+1 is the one-step member median applied to the window shifted by step k's
    # forecast (in data units; every shifted window normalised by itself again)
    fc = result.forecaster
    buf = fc.scaler.scaled_buffer(panel)
    x = buf[panel.offsets[1] - 12 : panel.offsets[1]].astype(np.float32)
    steps = []
    for _ in range(4):
        y = float(_scale_free_by_hand(fc.model, x[None], cfg.model.members)[0, 0])
        steps.append(y)
        x = np.r_[x[1:], np.float32(y)]
    got = frame.loc[frame["unique_id"] == "series_000", "y_hat"].to_numpy()
    np.testing.assert_allclose(got, np.array(steps), rtol=1e-5)


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
    """Chunked inference (4,096 windows per call) gives the same rows as one call."""
    fc = tiny_trained.forecaster
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, TINY_INPUT, 1)).astype(np.float32)
    out = fc.predict_scaled(x)
    assert out.shape == (n, TINY_HORIZON) and out.dtype == np.float32
    if n:
        idx = [0, n - 1] if n > 1 else [0]
        want = _scale_free_by_hand(fc.model, x[idx], fc.config.model.members)
        np.testing.assert_allclose(out[idx], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("members", [2, 3])
def test_the_forecast_is_the_median_of_the_members_outputs(members):
    """Straight from ``model(x)``: the forecaster's output is the per-step median over the members'
    columns (the mean of the two middle ones for an even count), for windows normalised by themselves."""
    import tensorflow as tf

    from rnn_model.model import build_model
    from rnn_model.normalization import normalise_inputs
    from rnn_model.prediction import Forecaster
    from rnn_model.scaling import SeriesScaler

    cfg = tiny_config(model={"members": members, "anchor": "none"})  # Glorot heads: members disagree
    model = build_model(cfg.model, TINY_INPUT, TINY_HORIZON, cfg.data.season_length, seed=3, relative_channel=False)
    identity = SeriesScaler("window", np.empty(0, object), np.empty(0), np.empty(0))
    fc = Forecaster(model, identity, cfg)
    x = (50 + 5 * np.random.default_rng(members).standard_normal((7, TINY_INPUT, 1))).astype(np.float32)
    x_n, last, scale = (t.numpy().astype(np.float64) for t in normalise_inputs(tf.constant(x)))
    raw = model(x_n.astype(np.float32), training=False).numpy().astype(np.float64)  # [7, members * h]
    per_member = np.stack([raw[:, k * TINY_HORIZON : (k + 1) * TINY_HORIZON] for k in range(members)], axis=1)
    assert not np.allclose(per_member[:, 0], per_member[:, 1])  # a median of different forecasts
    ranked = np.sort(per_member, axis=1)
    mid = members // 2
    median = ranked[:, mid] if members % 2 else 0.5 * (ranked[:, mid - 1] + ranked[:, mid])
    np.testing.assert_allclose(fc.predict_scaled(x), median * scale + last, rtol=1e-5, atol=1e-5)
    # and not the mean of the members (three members: the two differ)
    if members == 3:
        assert not np.allclose(median, per_member.mean(axis=1), rtol=1e-4)


def test_stale_data_is_flagged_when_even_the_newest_series_ends_long_before_as_of():
    """Issue 15.7: data ending 2026-01-25 labelled as_of=2026-12-02 said nothing."""
    from rnn_model.prediction import stale_data

    frame = make_sample_panel(n_series=2, length=24 * 5, seed=1)  # hourly, ending 2026-01-05 23:00
    panel, _ = panel_from_frame(frame, DataConfig(freq="h"))
    last = frame["ds"].max()
    assert stale_data([panel], str((last + pd.Timedelta(hours=12)).date()), horizon=24) is None
    warning = stale_data([panel], "2026-12-02", horizon=24)
    assert warning.startswith(f"stale data: the newest observation (ds={last}) is ") and "steps of h" in warning
    assert "as_of=2026-12-02" in warning and "--as-of" in warning
    assert stale_data([panel], None, horizon=24) is not None  # the default cutoff is now (2026 or later)
    # integer ds without as_of has no clock
    ints = frame.assign(ds=frame.groupby("unique_id").cumcount())
    int_panel, _ = panel_from_frame(ints, DataConfig(freq="1"))
    assert stale_data([int_panel], None, horizon=24) is None
    assert "steps of 1" in stale_data([int_panel], "1000", horizon=24)
