"""The second season of sub-daily data (rnn_model.seasons): when the week is used, and what it changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnn_model.config import DataConfig, ForecastConfig, resolve
from rnn_model.panel import panel_from_frame
from rnn_model.seasons import WEEK_MUST_WIN, choose_long_season, describe_choice, week_length
from rnn_model.windowing import make_split


def _frame(weekly: float, weeks: int = 6, n_series: int = 3, freq: str = "h", seed: int = 0) -> pd.DataFrame:
    """Hourly series: a daily cycle, a weekly one of amplitude ``weekly`` (weekdays vs weekend), noise."""
    steps_per_day = {"h": 24, "30min": 48}[freq]
    n = weeks * 7 * steps_per_day
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        weekend = ((t // steps_per_day) % 7 >= 5).astype(float)
        y = 50 + 10 * np.sin(2 * np.pi * t / steps_per_day) + weekly * weekend + rng.normal(0, 1, n)
        ds = pd.date_range("2026-01-05", periods=n, freq=freq)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def _resolved(frame: pd.DataFrame, **model) -> tuple:
    panel, _ = panel_from_frame(frame, DataConfig())
    cfg = resolve(ForecastConfig().replace(model=model) if model else ForecastConfig(), panel.freq)
    return panel, cfg


def test_week_length_is_seven_daily_seasons_for_sub_daily_data_only():
    def week(freq, m=None):
        return week_length(resolve(ForecastConfig().replace(data={"season_length": m}), freq))

    assert (week("h"), week("30min"), week("15min")) == (168, 336, 672)
    assert (week("D"), week("W-SUN"), week("MS"), week("1")) == (0, 0, 0, 0)
    assert week("h", m=12) == 0  # a season the user chose is not the day: no week derived from it


def test_a_strong_weekly_pattern_turns_the_week_on_and_widens_the_window_only():
    panel, cfg = _resolved(_frame(weekly=20.0))
    chosen, choice = choose_long_season(panel, cfg)
    assert choice.long_season == 168 and choice.ratio < WEEK_MUST_WIN and choice.series_measured == 3
    assert chosen.model.long_season == 168
    assert chosen.window.input_size == 168 and chosen.model.rnn_steps == cfg.window.input_size == 48
    assert chosen.window.horizon == cfg.window.horizon and chosen.train == cfg.train
    assert describe_choice(choice).startswith("the week (168 steps) used: weekly naive / daily naive MAE = ")


def test_no_weekly_pattern_keeps_the_window_and_says_why():
    panel, cfg = _resolved(_frame(weekly=0.0))
    chosen, choice = choose_long_season(panel, cfg)
    assert choice.long_season == 0 and choice.ratio >= WEEK_MUST_WIN
    assert chosen.model.long_season == 0 and chosen.window == cfg.window and chosen.model.rnn_steps is None
    assert describe_choice(choice).startswith("the week not used: weekly naive / daily naive MAE = ")


def test_series_too_short_for_two_weeks_of_training_part_leave_the_week_off():
    panel, cfg = _resolved(_frame(weekly=20.0, weeks=2))  # two weeks in all: less before the held-out horizons
    chosen, choice = choose_long_season(panel, cfg)
    assert chosen.model.long_season == 0 and np.isnan(choice.ratio)
    assert "0 of 3 series have 2 weeks (336 steps) before their held-out horizons" in describe_choice(choice)


def test_a_configured_long_season_and_data_without_a_week_are_left_alone():
    panel, cfg = _resolved(_frame(weekly=20.0), long_season=0)
    assert choose_long_season(panel, cfg)[0] is cfg  # 0: off, as configured
    assert describe_choice(choose_long_season(panel, cfg)[1]) == ""
    panel, cfg = _resolved(_frame(weekly=20.0), long_season=24, anchor="naive")
    assert choose_long_season(panel, cfg)[0] is cfg
    daily, _ = panel_from_frame(
        _frame(weekly=20.0).assign(ds=lambda f: f["ds"].dt.floor("D")).drop_duplicates(["unique_id", "ds"])
    )
    cfg = resolve(ForecastConfig(), daily.freq)
    assert choose_long_season(daily, cfg)[0].model.long_season == 0  # daily data: the week is its season already
    _, plain = _resolved(_frame(weekly=20.0), anchor="none")
    assert choose_long_season(panel, plain)[0].model.long_season == 0  # the lag needs an anchor


def test_the_choice_never_reads_the_held_out_horizons():
    frame = _frame(weekly=20.0)
    panel, cfg = _resolved(frame)
    upto = make_split(panel, cfg.window).train_end  # [n_series]
    changed = frame.copy()
    pos = changed.groupby("unique_id").cumcount().to_numpy()
    after = pos >= np.repeat(upto, panel.lengths)  # the validation and test horizons of every series
    assert after.any()
    changed.loc[after, "y"] = 1e6 * np.random.default_rng(1).standard_normal(int(after.sum()))
    other, _ = panel_from_frame(changed, DataConfig())
    assert choose_long_season(other, cfg)[1] == choose_long_season(panel, cfg)[1]


@pytest.mark.parametrize("weekly", [0.0, 20.0])
def test_the_chosen_config_builds_a_model_with_the_long_season_input_only_when_chosen(weekly):
    from rnn_model.model import build_model

    panel, cfg = _resolved(_frame(weekly=weekly))
    chosen = choose_long_season(panel, cfg)[0].replace(model={"units": 4, "members": 1})
    w = chosen.window
    model = build_model(chosen.model, w.input_size, w.horizon, chosen.data.season_length)
    assert model.output_shape == (None, w.horizon)
    assert ("long_season" in {layer.name for layer in model.layers}) == (weekly > 0)


def test_an_input_window_set_by_hand_is_never_widened_for_the_week():
    frame = _frame(weekly=20.0)
    panel, _ = panel_from_frame(frame, DataConfig())
    short = resolve(ForecastConfig().replace(window={"input_size": 24}), panel.freq)
    assert short.model.long_season == 0  # decided by resolve: the week does not fit in 24 steps
    assert choose_long_season(panel, short)[0] is short
    wide = resolve(ForecastConfig().replace(window={"input_size": 200}), panel.freq)
    chosen, choice = choose_long_season(panel, wide)
    assert choice.long_season == 168 and chosen.window.input_size == 200 and chosen.model.rnn_steps == 200
