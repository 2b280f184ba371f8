"""Metrics, baselines and the backtest, checked against hand computations on tiny panels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rnn_model.baselines import baseline_forecasts, seasonal_naive_scale
from rnn_model.config import DataConfig, ForecastConfig, WindowConfig, resolve
from rnn_model.evaluation import backtest, evaluate, score
from rnn_model.panel import panel_from_frame

BACKTEST_COLUMNS = ["unique_id", "cutoff", "ds", "horizon_step", "y", "y_hat", "model"]

# Season 3: y = [1,5,9, 2,6,10, 3,7,11, 4,8,12] -> seasonal naive is off by exactly 1 at every step.
SEASONAL = [1.0, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12]


@pytest.fixture(scope="module")
def season3():
    df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2026-03-01", periods=12, freq="D"), "y": SEASONAL})
    panel, _ = panel_from_frame(df, DataConfig(freq="D"))
    cfg = resolve(
        ForecastConfig(data=DataConfig(season_length=3), window=WindowConfig(input_size=3, horizon=3, test_windows=2)),
        "D",
    )
    return panel, cfg


def test_naive_and_seasonal_naive_by_hand(season3):
    panel, _ = season3
    out = baseline_forecasts(panel, np.array([0, 0]), np.array([6, 9]), horizon=5, season_length=3)
    # origin 6: last value y[5] = 10; one season back: y[3], y[4], y[5], then again y[3], y[4]
    np.testing.assert_array_equal(out["naive"], [[10] * 5, [11] * 5])
    np.testing.assert_array_equal(out["seasonal_naive"], [[2, 6, 10, 2, 6], [3, 7, 11, 3, 7]])


def test_seasonal_naive_never_reads_the_targets():
    """Regression: the source slot was base - m + 2k, i.e. targets (k >= m/2) were copied into forecasts."""
    df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2026-01-01", periods=30, freq="h"), "y": np.arange(30.0)})
    panel, _ = panel_from_frame(df, DataConfig())
    out = baseline_forecasts(panel, np.array([0]), np.array([24]), horizon=6, season_length=24)
    np.testing.assert_array_equal(out["seasonal_naive"][0], [0, 1, 2, 3, 4, 5])  # y[t - 24] for t = 24..29
    assert (out["seasonal_naive"] < 24).all()


def test_baselines_fall_back_to_naive_and_skip_masked_values():
    df = pd.DataFrame(
        {
            "unique_id": "a",
            "ds": pd.date_range("2026-01-01", periods=8, freq="h"),
            "y": [1.0, 2, 3, 4, np.nan, 6, 7, np.nan],
        }
    )
    panel, _ = panel_from_frame(df, DataConfig())
    out = baseline_forecasts(panel, np.array([0, 0]), np.array([2, 8]), horizon=2, season_length=4)
    np.testing.assert_array_equal(out["naive"], [[2, 2], [7, 7]])  # origin 8: y[7] is masked -> last seen 7
    # origin 2: less than a season of history -> naive; origin 8: y[4] masked -> carried y[3]=4, y[5]=6
    np.testing.assert_array_equal(out["seasonal_naive"], [[2, 2], [4, 6]])


def test_mase_scale_by_hand(season3):
    panel, _ = season3
    # in-sample seasonal differences on [0, 6): |2-1|, |6-5|, |10-9| -> 1
    assert seasonal_naive_scale(panel, np.array([6]), 3).tolist() == [1.0]
    # lag-1 fallback when there is not one season: |5-1|, |9-5| on [0, 3) with m = 4 -> 4
    assert seasonal_naive_scale(panel, np.array([3]), 4).tolist() == [4.0]
    flat = pd.DataFrame({"unique_id": "f", "ds": pd.date_range("2026-01-01", periods=6, freq="h"), "y": 2.0})
    fp, _ = panel_from_frame(flat, DataConfig(on_constant="keep"))
    assert np.isnan(seasonal_naive_scale(fp, np.array([6]), 2)).all()  # zero scale is undefined, not inf


def test_backtest_long_format_with_n_windows_cutoffs(season3):
    panel, cfg = season3
    bt = backtest({}, panel, cfg)
    assert list(bt.columns[: len(BACKTEST_COLUMNS)]) == BACKTEST_COLUMNS
    assert sorted(bt["model"].unique()) == ["naive", "seasonal_naive"]
    sn = bt[bt["model"] == "seasonal_naive"].reset_index(drop=True)
    assert list(sn["cutoff"].unique()) == [pd.Timestamp("2026-03-06"), pd.Timestamp("2026-03-09")]  # 2 windows
    assert sn["ds"].tolist() == list(pd.date_range("2026-03-07", periods=6, freq="D"))
    assert sn["horizon_step"].tolist() == [1, 2, 3, 1, 2, 3]
    assert sn["y"].tolist() == [3, 7, 11, 4, 8, 12]
    assert sn["y_hat"].tolist() == [2, 6, 10, 3, 7, 11]
    naive = bt[bt["model"] == "naive"]
    assert naive["y_hat"].tolist() == [10, 10, 10, 11, 11, 11]
    assert (naive["cutoff"].to_numpy() == sn["cutoff"].to_numpy()).all()  # same windows for every model
    one = backtest({}, panel, cfg, n_windows=1)
    assert one["cutoff"].nunique() == 1 and len(one) == 2 * 3


def test_evaluate_scores_by_hand(season3):
    panel, cfg = season3
    _, scores = evaluate({}, panel, cfg)
    o = scores.overall
    # seasonal naive: every error is 1; scale is 1
    assert o.loc["seasonal_naive", "mae"] == pytest.approx(1.0)
    assert o.loc["seasonal_naive", "rmse"] == pytest.approx(1.0)
    assert o.loc["seasonal_naive", "mase"] == pytest.approx(1.0)
    smape = np.mean([200 / (3 + 2), 200 / 13, 200 / 21, 200 / 7, 200 / 15, 200 / 23])
    assert o.loc["seasonal_naive", "smape"] == pytest.approx(smape)
    # naive: errors 7, 3, 1 in both windows
    assert o.loc["naive", "mae"] == pytest.approx(11 / 3)
    assert o.loc["naive", "rmse"] == pytest.approx(math.sqrt((49 + 9 + 1) / 3))
    assert o.loc["naive", "mase"] == pytest.approx(11 / 3)
    step = scores.per_step.set_index(["horizon_step", "model"])
    assert step.loc[(1, "naive"), "mae"] == pytest.approx(7.0)
    assert step.loc[(3, "naive"), "mae"] == pytest.approx(1.0)
    assert step.loc[(2, "seasonal_naive"), "mase"] == pytest.approx(1.0)


def test_score_per_series_and_overall_mase_is_the_mean_over_series():
    frame = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "horizon_step": [1, 2, 1, 2],
            "y": [1.0, 2.0, 10.0, 10.0],
            "y_hat": [2.0, 4.0, 10.0, 14.0],
            "model": "m",
        }
    )
    scales = pd.Series({"a": 0.5, "b": 4.0})
    s = score(frame, scales)
    per = s.per_series.set_index("unique_id")
    assert per.loc["a", "mae"] == pytest.approx(1.5)
    assert per.loc["a", "rmse"] == pytest.approx(math.sqrt(2.5))
    assert per.loc["a", "smape"] == pytest.approx((200 / 3 + 200 * 2 / 6) / 2)
    assert per.loc["a", "mase"] == pytest.approx(3.0)  # 1.5 / 0.5
    assert per.loc["b", "mase"] == pytest.approx(0.5)  # 2 / 4
    assert per.loc["b", "smape"] == pytest.approx((0 + 200 * 4 / 24) / 2)
    assert s.overall.loc["m", "mae"] == pytest.approx(7 / 4)
    assert s.overall.loc["m", "rmse"] == pytest.approx(math.sqrt(21 / 4))
    assert s.overall.loc["m", "mase"] == pytest.approx((3.0 + 0.5) / 2)  # not the pooled 7/4 / mean scale
    step = s.per_step.set_index("horizon_step")
    assert step.loc[2, "mae"] == pytest.approx(3.0)
    assert step.loc[2, "mase"] == pytest.approx((2 / 0.5 + 4 / 4) / 2)
    d = s.to_dict()
    assert d["overall"][0]["model"] == "m" and len(d["per_step"]) == 2


def test_smape_of_two_zeros_is_zero():
    frame = pd.DataFrame({"unique_id": ["a"], "horizon_step": [1], "y": [0.0], "y_hat": [0.0], "model": "m"})
    assert score(frame, pd.Series({"a": 1.0})).overall.loc["m", "smape"] == 0.0


def test_backtest_model_scored_on_the_same_windows_as_the_baselines(hourly_panel, tiny_cfg, tiny_trained):
    forecasts, scores = evaluate({"rnn": tiny_trained.forecaster}, hourly_panel, tiny_cfg)
    h = tiny_cfg.window.horizon
    assert set(forecasts["model"]) == {"rnn", "naive", "seasonal_naive"}
    keys = ["unique_id", "cutoff", "ds", "horizon_step", "y"]
    by_model = {m: g[keys].reset_index(drop=True) for m, g in forecasts.groupby("model")}
    pd.testing.assert_frame_equal(by_model["rnn"], by_model["naive"])
    pd.testing.assert_frame_equal(by_model["rnn"], by_model["seasonal_naive"])
    n_test = tiny_cfg.window.test_windows
    assert len(by_model["rnn"]) == hourly_panel.n_series * h * n_test
    assert np.isfinite(forecasts["y_hat"]).all()
    # the model's rows are its own forecasts at the test origins (the last test_windows horizons of these
    # long series, oldest first), in data units
    series = np.repeat(np.arange(hourly_panel.n_series), n_test)
    origin = (hourly_panel.lengths[:, None] - h * np.arange(n_test, 0, -1)[None, :]).reshape(-1)
    y_hat, covered = tiny_trained.forecaster.forecast_at(hourly_panel, series, origin)
    assert covered.all()
    np.testing.assert_allclose(forecasts.loc[forecasts["model"] == "rnn", "y_hat"].to_numpy(), y_hat.reshape(-1))
    assert set(scores.overall.columns) == {"mae", "rmse", "smape", "mase"}
    assert len(scores.per_series) == 3 * hourly_panel.n_series and len(scores.per_step) == 3 * h
    # MASE scales: the seasonal-naive MAE of each series before its test horizons, kept for the gate
    upto = hourly_panel.lengths - h * n_test
    want = seasonal_naive_scale(hourly_panel, upto.astype(np.int64), tiny_cfg.data.season_length)
    np.testing.assert_allclose(scores.scales.loc[hourly_panel.ids.astype(str)].to_numpy(), want)


def test_short_series_are_scored_on_the_test_horizons_they_have():
    """evaluate scores make_split's test horizons: as many as fit per series (never one the model trained
    on), each series' MASE scaled by its seasonal-naive MAE before them."""
    cfg = resolve(
        ForecastConfig(
            data=DataConfig(season_length=3),
            window=WindowConfig(input_size=3, horizon=3, val_windows=1, test_windows=3),
        ),
        "D",
    )
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame(
            {
                "unique_id": uid,
                "ds": pd.date_range("2026-03-01", periods=n, freq="D"),
                "y": np.tile(SEASONAL[:3], n)[:n] + rng.standard_normal(n),
            }
        )
        for uid, n in (("long", 24), ("mid", 12), ("short", 9), ("one", 6))
    ]
    panel, _ = panel_from_frame(pd.concat(frames, ignore_index=True), DataConfig(freq="D"))
    forecasts, scores = evaluate({}, panel, cfg)
    sn = forecasts[forecasts["model"] == "seasonal_naive"]
    # fit = (n - 6) // 3 horizons after one training window: 6, 2, 1 and 0 -> 3, 2, 1 and 0 test horizons
    windows = sn.groupby("unique_id")["cutoff"].nunique().to_dict()
    assert windows == {"long": 3, "mid": 2, "short": 1}
    last = {uid: g["ds"].max() for uid, g in sn.groupby("unique_id")}
    assert last == {
        uid: pd.Timestamp("2026-03-01") + pd.Timedelta(days=n - 1)
        for uid, n in (("long", 24), ("mid", 12), ("short", 9))
    }
    first = sn.groupby("unique_id")["ds"].min().to_dict()  # the first test target: val_end
    assert first == {
        "long": pd.Timestamp("2026-03-16"),
        "mid": pd.Timestamp("2026-03-07"),
        "short": pd.Timestamp("2026-03-07"),
    }
    for uid, test_start in (("long", 15), ("mid", 6), ("short", 6), ("one", 6)):
        i = list(panel.ids).index(uid)
        y = panel.series(i).astype(np.float64)[:test_start]
        assert scores.scales[uid] == pytest.approx(np.abs(y[3:] - y[:-3]).mean())
