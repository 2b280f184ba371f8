"""Conformal prediction intervals: quantiles of scaled backtest errors per horizon step, stored with the
model's metrics, turned into ``y_lo_80, y_hi_80, y_lo_95, y_hi_95`` in the predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rnn_model.evaluation import evaluate
from rnn_model.intervals import add_intervals, conformal_quantile, interval_quantiles, too_few_scores
from rnn_model.panel import panel_from_frame
from rnn_model.prediction import future_frame
from rnn_model.stages import prediction_frame

from ._helpers import TINY_HORIZON, TINY_INPUT, seasonal_frame, tiny_config

BOUNDS = ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    scores = np.arange(1.0, 11.0)  # 1..10
    assert conformal_quantile(scores, 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(scores, 0.5) == 6.0  # ceil(5.5) = 6
    assert conformal_quantile(scores, 0.95) == 10.0  # ceil(10.45) = 11 > n: the largest
    assert conformal_quantile(np.arange(1.0, 25.0), 0.56) == 14.0  # 25 * 0.56 is 14.000000000000002 in floats
    assert conformal_quantile(np.array([np.nan, 3.0, np.inf, 1.0]), 0.5) == 3.0  # non-finite ignored
    assert math.isnan(conformal_quantile(np.array([np.nan]), 0.8))
    assert math.isnan(conformal_quantile(np.array([]), 0.8))


def test_conformal_quantile_covers_exchangeable_data():
    rng = np.random.default_rng(0)
    cal, fresh = np.abs(rng.standard_normal(2000)), np.abs(rng.standard_normal(20000))
    for level in (0.8, 0.95):
        cover = (fresh <= conformal_quantile(cal, level)).mean()
        assert abs(cover - level) < 0.02


def _backtest_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Two series (scales 1 and 10), two steps, two models; errors chosen so scaled errors are 1..4."""
    rows = []
    for uid, s in (("a", 1.0), ("b", 10.0)):
        for step in (1, 2):
            for model, err in (("challenger", step), ("seasonal_naive", 2 * step)):
                for k in (0, 1):  # two windows
                    rows.append(
                        {
                            "unique_id": uid,
                            "horizon_step": step,
                            "model": model,
                            "y": 100.0,
                            "y_hat": 100.0 + (err + k) * s * (-1) ** k,
                        }
                    )
    return pd.DataFrame(rows), pd.Series({"a": 1.0, "b": 10.0})


def test_interval_quantiles_per_model_and_step_on_the_scaled_errors():
    frame, scales = _backtest_frame()
    q = interval_quantiles(frame, scales, levels=(50, 80))
    assert q["levels"] == [50, 80] and q["scale"] == "seasonal_naive_mae"
    # challenger step 1: scaled errors {1, 2} for each series -> [1, 1, 2, 2]; 50 %: ceil(2.5)=3rd -> 2
    assert q["models"]["challenger"]["50"] == [2.0, 3.0]
    assert q["models"]["challenger"]["80"] == [2.0, 3.0]  # ceil(4) = 4th = largest
    assert q["models"]["seasonal_naive"]["50"] == [3.0, 5.0]
    assert q["n"]["challenger"] == [4, 4]


def test_interval_quantiles_skip_series_without_a_scale():
    frame, _ = _backtest_frame()
    q = interval_quantiles(frame, pd.Series({"a": np.nan, "b": 10.0}), levels=(80,))
    assert q["n"]["challenger"] == [2, 2]


def _panel(freq: str = "h"):
    cfg = tiny_config(freq)
    panel, _ = panel_from_frame(seasonal_frame(n_series=3, length=120, freq=freq), cfg.data)
    return panel, cfg


def test_add_intervals_uses_model_quantiles_for_model_rows_and_seasonal_naive_for_fallback():
    panel, cfg = _panel()
    frame = future_frame(panel, None, None, cfg)
    frame.loc[frame["unique_id"] == "s0", "source"] = "model"  # pretend the model covered s0
    h = TINY_HORIZON
    intervals = {
        "levels": [80, 95],
        "models": {
            "challenger": {"80": [1.0] * h, "95": [2.0] * h},
            "seasonal_naive": {"80": [3.0] * h, "95": [4.0] * h},
        },
    }
    add_intervals(frame, panel, cfg, intervals)
    from rnn_model.baselines import seasonal_naive_scale

    scale = dict(
        zip(panel.ids.astype(str), seasonal_naive_scale(panel, panel.lengths.astype(np.int64), cfg.data.season_length))
    )
    for row in frame.itertuples():
        q80, q95 = (1.0, 2.0) if row.unique_id == "s0" else (3.0, 4.0)
        assert row.y_hi_80 - row.y_hat == pytest.approx(q80 * scale[row.unique_id])
        assert row.y_hat - row.y_lo_95 == pytest.approx(q95 * scale[row.unique_id])
    assert (frame["y_lo_95"] <= frame["y_lo_80"]).all() and (frame["y_hi_80"] <= frame["y_hi_95"]).all()


def test_add_intervals_repeats_the_last_step_and_tolerates_missing_levels():
    panel, cfg = _panel()
    frame = future_frame(panel, None, None, cfg)
    add_intervals(frame, panel, cfg, {"levels": [80, 95], "models": {"seasonal_naive": {"80": [1.0, 2.0]}}})
    last = frame[frame["horizon_step"] == TINY_HORIZON]
    first = frame[frame["horizon_step"] == 1]
    wide = (last["y_hi_80"] - last["y_hat"]).to_numpy()
    narrow = (first["y_hi_80"] - first["y_hat"]).to_numpy()
    np.testing.assert_allclose(wide, 2 * narrow)  # steps 3.. use the last stored quantile (2 vs 1)
    assert frame["y_lo_95"].isna().all()  # no 95 % quantiles stored: NaN bounds, forecasts untouched
    assert frame["y_hat"].notna().all()


def test_prediction_frame_without_a_model_calibrates_seasonal_naive_on_the_panel():
    panel, cfg = _panel()
    frame = prediction_frame(panel, None, None, cfg, "2026-01-06")
    for col in BOUNDS:
        assert col in frame and np.isfinite(frame[col]).all()
    assert (frame["y_lo_80"] <= frame["y_hat"]).all() and (frame["y_hat"] <= frame["y_hi_80"]).all()
    assert (frame["model_version"] == "seasonal_naive").all()


def test_evaluate_stores_intervals_and_the_bundle_brings_them_back(hourly_panel, tiny_trained, tmp_path):
    from rnn_model.bundle import load_bundle, save_bundle

    cfg = tiny_trained.forecaster.config
    _, scores = evaluate({"challenger": tiny_trained.forecaster}, hourly_panel, cfg)
    q = scores.intervals
    assert set(q["models"]) >= {"challenger", "seasonal_naive", "naive"}
    h = cfg.window.horizon
    for model in ("challenger", "seasonal_naive"):
        lo, hi = np.array(q["models"][model]["80"]), np.array(q["models"][model]["95"])
        assert len(lo) == h and np.isfinite(lo).all() and (lo <= hi).all()
    assert scores.to_dict()["intervals"] == q

    directory = save_bundle(tmp_path / "v0001", tiny_trained.forecaster, scores.to_dict(), {})
    bundle = load_bundle(directory)
    assert bundle.forecaster.intervals["models"]["challenger"]["80"] == pytest.approx(q["models"]["challenger"]["80"])
    frame = prediction_frame(hourly_panel, bundle.forecaster, "v0001", cfg, "2026-01-11")
    covered = frame["model_version"] == "v0001"
    assert covered.any() and np.isfinite(frame.loc[covered, BOUNDS]).all().all()
    assert (frame["y_lo_95"] <= frame["y_hat"]).all() and (frame["y_hat"] <= frame["y_hi_95"]).all()


def test_the_fallback_calibrates_on_dense_origins_over_the_whole_history():
    """Without a model (seasonal naive only, nothing was trained): any window of the history calibrates,
    every origin from input_size to the last full horizon when scores are scarce."""
    from rnn_model.intervals import calibrate_intervals

    cfg = tiny_config()
    panel, _ = panel_from_frame(seasonal_frame(n_series=1, length=120), cfg.data)
    q = calibrate_intervals({}, panel, cfg)
    h, w = cfg.window.horizon, cfg.window
    every = 120 - h - w.input_size + 1  # origins input_size .. length - h
    assert q["windows"] == every and q["n"]["seasonal_naive"] == [every] * h
    few = calibrate_intervals({}, panel, cfg, min_scores=1)  # only the non-overlapping horizons from the end
    assert few["n"]["seasonal_naive"] == [(120 - h - w.input_size) // h + 1] * h


def test_with_a_model_only_the_test_horizons_calibrate(tiny_trained):
    """Not the validation horizons (they chose the stopping epoch) nor any training window: dense origins
    from each series' val_end (make_split) to its last full horizon."""
    from rnn_model.intervals import calibrate_intervals, calibration_origins
    from rnn_model.windowing import make_split

    fc = tiny_trained.forecaster
    cfg = fc.config
    h, w = cfg.window.horizon, cfg.window
    panel, _ = panel_from_frame(seasonal_frame(n_series=1, length=120), cfg.data)
    val_end = make_split(panel, w).val_end
    assert val_end.tolist() == [120 - h * w.test_windows]
    q = calibrate_intervals({"challenger": fc}, panel, cfg)
    test_only = h * (w.test_windows - 1) + 1  # every origin in the test horizons of the one series
    assert q["windows"] == test_only
    assert q["n"]["challenger"] == q["n"]["seasonal_naive"] == [test_only] * h
    series, origin = calibration_origins(panel, cfg, val_end, 200)
    assert origin.min() == val_end[0] and origin.max() == 120 - h and len(origin) == test_only
    assert (series == 0).all()
    # with min_scores=1: the non-overlapping test horizons only
    series, origin = calibration_origins(panel, cfg, val_end, 1)
    assert sorted(origin.tolist()) == [int(val_end[0]) + j * h for j in range(w.test_windows)]


# --- issue 12: the fallback's quantiles, constant and non-negative series, too few scores, no silent failures


def _short_frame(n_series: int = 2, length: int = 60, **kwargs) -> pd.DataFrame:
    return seasonal_frame(n_series=n_series, length=length, noise=1.0, **kwargs)


def test_fallback_without_a_model_uses_dense_origins_so_95_is_wider_than_80():
    # Two series and two held-out horizons gave 4 scores per step: both levels took the largest one,
    # so the 80 % and 95 % bounds were equal. Every origin in those horizons gives 2 x 7 = 14 scores.
    cfg = tiny_config()
    panel, _ = panel_from_frame(_short_frame(), cfg.data)
    frame = prediction_frame(panel, None, None, cfg, "2026-01-06")
    width80 = (frame["y_hi_80"] - frame["y_lo_80"]).to_numpy()
    width95 = (frame["y_hi_95"] - frame["y_lo_95"]).to_numpy()
    assert np.isfinite(width80).all() and (width95 > width80).all()


def test_constant_series_get_finite_zero_width_bounds():
    cfg = tiny_config(data={"on_constant": "keep"})
    df = _short_frame()
    flat = pd.DataFrame({"unique_id": "flat", "ds": df["ds"].iloc[:60].to_numpy(), "y": 4.25})
    panel, _ = panel_from_frame(pd.concat([df, flat], ignore_index=True), cfg.data)
    frame = prediction_frame(panel, None, None, cfg, "2026-01-06")
    rows = frame[frame["unique_id"] == "flat"]
    assert np.isfinite(frame[BOUNDS]).all().all()
    for col in BOUNDS:  # no variation ever seen: the interval is the constant forecast itself
        np.testing.assert_array_equal(rows[col].to_numpy(), rows["y_hat"].to_numpy())


def test_lower_bounds_are_clipped_at_zero_for_series_that_are_never_negative():
    cfg = tiny_config()
    rng = np.random.default_rng(1)
    ds = pd.date_range("2026-01-01", periods=80, freq="h")
    counts = pd.DataFrame({"unique_id": "counts", "ds": ds, "y": rng.poisson(0.7, 80).astype(float)})
    signed = pd.DataFrame({"unique_id": "signed", "ds": ds, "y": rng.standard_normal(80)})
    panel, _ = panel_from_frame(pd.concat([counts, signed], ignore_index=True), cfg.data)
    frame = prediction_frame(panel, None, None, cfg, "2026-01-06")
    mine, other = frame[frame["unique_id"] == "counts"], frame[frame["unique_id"] == "signed"]
    assert (mine[BOUNDS] >= 0).all().all() and (mine["y_lo_95"] == 0).any()  # clipped, not just wide
    assert (other["y_lo_95"] < 0).any()  # per series: data with negative values is not clipped


def test_levels_with_too_few_scores_for_the_finite_sample_guarantee_are_flagged():
    assert [too_few_scores(n, 0.8) for n in (0, 3, 4)] == [True, True, False]  # n >= 0.8 / 0.2 = 4
    assert [too_few_scores(n, 0.95) for n in (18, 19)] == [True, False]  # n >= 0.95 / 0.05 = 19
    frame, scales = _backtest_frame()  # 4 scores per model and step
    q = interval_quantiles(frame, scales, levels=(50, 80, 95))
    # ceil((n + 1) * level) > n: 80 % needs n >= 4, 95 % needs n >= 19
    assert q["too_few"] == {"challenger": {"95": [1, 2]}, "seasonal_naive": {"95": [1, 2]}}
    q = interval_quantiles(frame[frame["unique_id"] == "a"], scales, levels=(50, 80))  # 2 scores
    assert q["too_few"] == {"challenger": {"80": [1, 2]}, "seasonal_naive": {"80": [1, 2]}}


def test_the_fallback_reports_too_few_scores_and_why_bounds_are_missing():
    cfg = tiny_config()
    panel, _ = panel_from_frame(_short_frame(n_series=1, length=40), cfg.data)
    frame = future_frame(panel, None, None, cfg)
    add_intervals(frame, panel, cfg, None)
    notes = frame.attrs["intervals"]
    # origins 24 .. 34: 11 scores per step, enough for 80 % (4), too few for 95 % (19)
    assert notes["too_few"] == {"seasonal_naive": {"95": list(range(1, TINY_HORIZON + 1))}}
    assert notes["missing"] == {}

    frame = future_frame(panel, None, None, cfg)
    add_intervals(frame, panel, cfg, {"levels": [80, 95], "models": {"seasonal_naive": {"80": [1.0] * 6}}})
    assert frame["y_lo_95"].isna().all()
    assert frame.attrs["intervals"]["missing"] == {
        "no 95 % quantile for seasonal_naive": {"series": 1, "examples": ["s0"]}
    }


def test_too_little_history_gives_missing_bounds_with_the_reason_not_an_error():
    cfg = tiny_config()
    panel, _ = panel_from_frame(_short_frame(length=28), cfg.data)  # 28 < input_size + 1 horizon
    frame = future_frame(panel, None, None, cfg)
    add_intervals(frame, panel, cfg, None)
    assert frame["y_hat"].notna().all() and frame[BOUNDS].isna().all().all()
    ((reason, which),) = frame.attrs["intervals"]["missing"].items()
    assert "no calibration window" in reason and which == {"series": 2, "examples": ["s0", "s1"]}
    need = TINY_INPUT + TINY_HORIZON
    assert f"input_size + horizon = {need} fully observed points" in reason, reason
    # and that is exactly what it takes: that many points give the fallback one window, finite bounds
    panel, _ = panel_from_frame(_short_frame(length=need), cfg.data)
    frame = future_frame(panel, None, None, cfg)
    add_intervals(frame, panel, cfg, None)
    assert np.isfinite(frame[BOUNDS]).all().all() and frame.attrs["intervals"]["missing"] == {}


def test_unexpected_calibration_failures_are_not_swallowed(monkeypatch):
    import rnn_model.evaluation as evaluation

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not a lack of history")

    monkeypatch.setattr(evaluation, "calibrate_intervals", broken)
    cfg = tiny_config()
    panel, _ = panel_from_frame(_short_frame(), cfg.data)
    with pytest.raises(RuntimeError, match="a bug"):
        evaluate({}, panel, cfg)
