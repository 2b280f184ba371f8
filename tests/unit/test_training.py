"""Training: history, early stopping with the best weights restored, batch_size=1, bitwise reproducibility,
the automatic scaler choice."""

from __future__ import annotations

import math
from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest

from rnn_model.config import DataConfig
from rnn_model.errors import DataValidationError
from rnn_model.normalization import normalise_inputs, window_transform
from rnn_model.panel import panel_from_frame
from rnn_model.training import min_train_length, plan_windows, refit, train
from rnn_model.windowing import gather_windows, make_split, window_starts

from ._helpers import run_python, seasonal_frame, tiny_config, wait_ok


def test_history_and_window_counts(tiny_trained, hourly_panel, tiny_cfg):
    h = tiny_trained.history
    assert set(h) >= {"loss", "val_loss"}
    assert len(h["loss"]) == len(h["val_loss"]) == tiny_cfg.train.epochs
    assert all(np.isfinite(v) for v in h["loss"] + h["val_loss"])
    assert tiny_trained.best_epoch == int(np.argmin(h["val_loss"])) + 1
    w = tiny_cfg.window
    # per series (all long enough for every held-out horizon): train targets end at
    # length - (val_windows + test_windows) h; windows need input_size + h slots
    held_out = (w.val_windows + w.test_windows) * w.horizon
    per_series = hourly_panel.lengths - held_out - (w.input_size + w.horizon) + 1
    assert tiny_trained.n_train_windows == int(per_series.sum())
    assert tiny_trained.n_val_windows == hourly_panel.n_series
    assert tiny_trained.seconds > 0


class _WeightsByEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


def test_early_stopping_restores_the_best_weights(hourly_panel):
    """After a good first epoch the learning rate jumps, validation loss gets worse, training stops after
    ``patience`` bad epochs and the weights of the best epoch come back."""
    cfg = tiny_config(train={"epochs": 20, "patience": 2, "batch_size": 32}, model={"learning_rate": 0.01})
    recorder = _WeightsByEpoch()
    jump = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch == 0 else 0.5)
    result = train(hourly_panel, cfg, callbacks=[jump, recorder])
    val = result.history["val_loss"]
    assert len(val) == len(result.history["loss"]) < 20  # stopped early
    best = int(np.argmin(val))
    assert result.best_epoch == best + 1
    assert len(val) == best + 1 + cfg.train.patience  # exactly `patience` epochs without improvement
    assert min(val[best + 1 :]) > val[best]
    final = result.forecaster.model.get_weights()
    for w_final, w_best in zip(final, recorder.weights[best]):
        np.testing.assert_array_equal(w_final, w_best)
    assert any(not np.array_equal(a, b) for a, b in zip(final, recorder.weights[-1]))
    # and the restored model really has the best validation loss: the configured loss (MAE) of every
    # member on the per-window normalised validation targets, averaged over members
    split = make_split(hourly_panel, cfg.window)
    starts = window_starts(
        hourly_panel, cfg.window.input_size, cfg.window.horizon, split.train_end, split.val_end, cfg.window.horizon
    )
    x, y = gather_windows(
        result.forecaster.scaler.scaled_buffer(hourly_panel), starts, cfg.window.input_size, cfg.window.horizon
    )
    x_n, y_n = (t.numpy() for t in window_transform(True, cfg.model.members)(x, y))  # y_n tiled per member
    assert y_n.shape == (len(starts), cfg.model.members * cfg.window.horizon)
    pred = result.forecaster.model.predict(x_n, verbose=0)  # [n_val, members * h]
    assert cfg.model.loss == "mae" and np.mean(np.abs(pred - y_n)) == pytest.approx(val[best], rel=1e-4)


def _refit_epochs(best_epoch: int, windows_before: int, windows_after: int, batch: int) -> int:
    """The same number of gradient steps as the early-stopped fit took to its best epoch, in whole epochs
    over the larger window set."""
    steps_before = best_epoch * math.ceil(windows_before / batch)
    return max(1, round(steps_before / math.ceil(windows_after / batch)))


def test_refit_trains_on_every_window(tiny_trained, hourly_panel, tiny_cfg):
    result = refit(hourly_panel, tiny_cfg, tiny_trained)
    w = tiny_cfg.window
    # per series: every slot, the held-out validation and test horizons included
    per_series = hourly_panel.lengths - (w.input_size + w.horizon) + 1
    held_out = (w.val_windows + w.test_windows) * w.horizon
    assert (
        result.n_train_windows
        == int(per_series.sum())
        == tiny_trained.n_train_windows + held_out * hourly_panel.n_series
    )
    info = result.extra["refit"]
    assert info["epochs"] == _refit_epochs(
        tiny_trained.best_epoch, tiny_trained.n_train_windows, result.n_train_windows, tiny_cfg.train.batch_size
    )
    assert info["windows_before"] == tiny_trained.n_train_windows
    # trained through the end of the data now (the early-stopped model: through its validation horizons)
    last = hourly_panel.ds_at(np.arange(hourly_panel.n_series), hourly_panel.lengths - 1)
    assert result.extra["trained_through"] == pd.Timestamp(np.max(last)).isoformat()
    assert tiny_trained.extra["trained_through"] < result.extra["trained_through"]
    assert result.forecaster.config == tiny_cfg  # the configured epochs, not the refit's count
    assert result.history == tiny_trained.history and result.best_epoch == tiny_trained.best_epoch
    before, _ = tiny_trained.forecaster.forecast_future(hourly_panel)
    after, _ = result.forecaster.forecast_future(hourly_panel)
    assert np.isfinite(after.y_hat).all() and not np.allclose(after.y_hat, before.y_hat)  # a different model
    again, _ = refit(hourly_panel, tiny_cfg, tiny_trained).forecaster.forecast_future(hourly_panel)
    np.testing.assert_array_equal(again.y_hat.to_numpy(), after.y_hat.to_numpy())  # seeded: bit for bit


class _Batches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = self.epochs = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def test_refit_trains_about_the_same_gradient_steps_not_the_same_epochs(tiny_trained, hourly_panel, tiny_cfg):
    """An early-stopped fit whose best epoch was 10: the refit, on more windows per epoch, trains
    round(10 x 12 / 14) = 9 epochs of 14 batches (126 steps, about the 120 of before), not 10 epochs."""
    stopped = replace(tiny_trained, best_epoch=10)
    counter = _Batches()
    result = refit(hourly_panel, tiny_cfg, stopped, callbacks=[counter])
    batch = tiny_cfg.train.batch_size
    before, after = math.ceil(stopped.n_train_windows / batch), math.ceil(result.n_train_windows / batch)
    assert after > before  # the held-out horizons make every epoch longer
    epochs = _refit_epochs(10, stopped.n_train_windows, result.n_train_windows, batch)
    assert epochs != 10  # the rule is visible here: the same epoch count would train 14 steps more
    assert result.extra["refit"]["epochs"] == counter.epochs == epochs
    assert counter.batches == epochs * after
    assert abs(counter.batches - 10 * before) <= after / 2  # the same steps, to within half an epoch
    assert result.best_epoch == 10 and result.forecaster.config == tiny_cfg
    # under a budget of steps too: the refit trains its computed epochs, not the configured budget again
    budget = tiny_cfg.replace(train={"steps": 30})
    counter = _Batches()
    again = refit(hourly_panel, budget, stopped, callbacks=[counter])
    assert again.extra["refit"]["epochs"] == counter.epochs == epochs and counter.batches == epochs * after
    assert again.forecaster.config == budget


def test_batch_size_one_on_tiny_data():
    cfg = tiny_config(
        window={"input_size": 6, "horizon": 2},
        train={"batch_size": 1, "epochs": 1},
        model={"units": 4},
        data={"season_length": 3},
    )
    df = seasonal_frame(n_series=2, length=16, period=3)
    panel, _ = panel_from_frame(df, cfg.data, min_length=min_train_length(cfg))
    result = train(panel, cfg)
    # per series: (16 - 8) // 2 = 4 horizons fit after one training window: 3 test + 1 validation held
    # out, 16 - 8 = 8 training slots -> 8 - 8 + 1 = 1 window
    assert result.n_train_windows == 2 and result.n_val_windows == 2
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])
    frame, fallback = result.forecaster.forecast_future(panel)
    assert len(frame) == 4 and fallback == [] and np.isfinite(frame["y_hat"]).all()


def test_without_validation_windows_the_whole_budget_is_trained(hourly_panel):
    """val_windows=0: no early stopping (on the training loss it would only measure the noise of its last
    batches): every epoch runs, even where the loss gets worse, and the last weights are kept."""
    cfg = tiny_config(window={"val_windows": 0}, train={"epochs": 3, "patience": 0}, model={"learning_rate": 0.01})
    jump = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch == 0 else 0.5)
    recorder = _WeightsByEpoch()
    result = train(hourly_panel, cfg, callbacks=[jump, recorder])
    assert "val_loss" not in result.history and result.n_val_windows == 0  # (the scheduler logs learning_rate)
    assert len(result.history["loss"]) == 3 and result.best_epoch == 3
    assert min(result.history["loss"][1:]) > result.history["loss"][0]  # worse after the jump, yet not stopped
    for got, last in zip(result.forecaster.model.get_weights(), recorder.weights[-1]):
        np.testing.assert_array_equal(got, last)


def test_a_budget_of_steps_sets_the_epochs(hourly_panel, tiny_cfg):
    """TrainConfig.steps: ceil(steps / batches per epoch) epochs, whatever ``epochs`` says."""
    counter = _Batches()
    result = train(hourly_panel, tiny_cfg.replace(train={"steps": 30, "epochs": 1}), callbacks=[counter])
    per_epoch = math.ceil(result.n_train_windows / tiny_cfg.train.batch_size)
    assert per_epoch < 30 and counter.epochs == math.ceil(30 / per_epoch) == len(result.history["loss"])
    assert counter.batches == counter.epochs * per_epoch >= 30


def test_no_training_window_is_a_clear_error():
    cfg = tiny_config()
    df = seasonal_frame(n_series=2, length=min_train_length(cfg) - 1)
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    with pytest.raises(DataValidationError, match=f"no training windows.*{min_train_length(cfg)} points"):
        train(panel, cfg)


def test_seed_changes_the_model(hourly_panel, tiny_cfg, tiny_trained):
    other = train(hourly_panel, tiny_cfg.replace(train={"seed": tiny_cfg.train.seed + 1}))
    a, _ = tiny_trained.forecaster.forecast_future(hourly_panel)
    b, _ = other.forecaster.forecast_future(hourly_panel)
    assert not np.array_equal(a["y_hat"].to_numpy(), b["y_hat"].to_numpy())


TRAIN_AND_PREDICT = """
import sys
from rnn_model.config import ForecastConfig, ModelConfig, TrainConfig, WindowConfig, resolve
from rnn_model.io import read_long_table
from rnn_model.panel import build_panel
from rnn_model.training import min_train_length, refit, train

data, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = resolve(ForecastConfig(window=WindowConfig(input_size=24, horizon=6, max_windows_per_series=150,
                                                 sampling="uniform", val_windows=1),
                             model=ModelConfig(cell="gru", units=16, dropout=0.1, members=3),
                             train=TrainConfig(epochs=2, steps=None, batch_size=32, seed=seed)), "h")
panel, _ = build_panel(read_long_table(data, cfg.data), cfg.data, min_length=min_train_length(cfg))
result = train(panel, cfg)
assert result.forecaster.model.output_shape == (None, 3 * 6)  # three members, their median forecast
frame, _ = result.forecaster.forecast_future(panel)
with open(out, "wb") as fh:
    fh.write(frame["y_hat"].to_numpy().tobytes())
print(repr(result.history))
"""


def test_training_is_bitwise_reproducible_in_fresh_processes(hourly_parquet, tmp_path):
    """Same data file + same seed in two fresh interpreters: the same bytes, forecast for forecast, for
    an ensemble of three members (each from its own initial weights) forecasting their median.

    Shuffling, uniform window sampling, weight initialisation and dropout all draw from the seed."""
    procs = [run_python(TRAIN_AND_PREDICT, str(hourly_parquet), str(tmp_path / f"run{i}.bin"), "5") for i in (0, 1)]
    histories = [wait_ok(p) for p in procs]
    a, b = (tmp_path / "run0.bin").read_bytes(), (tmp_path / "run1.bin").read_bytes()
    assert len(a) == 4 * 6 * 8  # 4 series x 6 steps of float64
    assert np.isfinite(np.frombuffer(a)).all()
    assert a == b
    assert histories[0] == histories[1]


def test_weights_do_not_depend_on_other_threads_drawing_from_global_random(hourly_panel, tiny_cfg, tiny_trained):
    """Prefect's background workers share the process with training. Keras's default initialisers seed
    themselves from the global ``random`` module, so a thread drawing from it while the model is built
    changed the weights (a CI failure: in-process loss off by 7e-4 after the flow tests). With every
    seed explicit, training beside such a thread gives the same bits as ``tiny_trained``."""
    import random
    import threading

    stop = threading.Event()

    def draw_forever():
        while not stop.is_set():
            random.random()

    thread = threading.Thread(target=draw_forever, daemon=True)
    thread.start()
    try:
        result = train(hourly_panel, tiny_cfg)
    finally:
        stop.set()
        thread.join()
    for got, want in zip(result.forecaster.model.get_weights(), tiny_trained.forecaster.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert result.history == tiny_trained.history


def _validation_mase_by_hand(forecaster, panel, plan, cfg) -> float:
    """One validation window per series here: its MAE in data units over the series' in-sample
    seasonal-naive MAE on the training part, averaged over series."""
    w, m = cfg.window, cfg.data.season_length
    per_series = []
    for start in plan.val_starts:
        i = int(np.searchsorted(panel.offsets, start, side="right")) - 1
        target = int(start - panel.offsets[i]) + w.input_size
        y_hat, covered = forecaster.forecast_at(panel, np.array([i]), np.array([target]))
        truth = panel.series(i)[target : target + w.horizon].astype(np.float64)
        train_part = panel.series(i)[: plan.train_end[i]].astype(np.float64)
        scale = np.abs(train_part[m:] - train_part[:-m]).mean()
        assert covered[0]
        per_series.append(np.abs(truth - y_hat[0]).mean() / scale)
    return float(np.mean(per_series))


def test_auto_scaler_keeps_the_model_with_the_lower_validation_mase(hourly_panel, tiny_cfg, tiny_trained):
    cfg = tiny_cfg.replace(train={"scaler": "auto"})
    result = train(hourly_panel, cfg)
    choice = result.extra["scaler"]
    scores = choice["validation_mase"]
    assert set(scores) == {"standard", "none"} and all(np.isfinite(v) for v in scores.values())
    assert scores["standard"] != scores["none"] and choice["chosen"] == min(scores, key=scores.get)
    assert result.forecaster.scaler.kind == choice["chosen"] and result.forecaster.config == cfg
    # the "standard" candidate is the model trained with scaler="standard" (same data, seed and
    # windows): its score, by hand
    fixed = tiny_cfg.replace(train={"scaler": "standard"})
    standard = train(hourly_panel, fixed)
    assert standard.forecaster.scaler.kind == "standard"
    plan = plan_windows(hourly_panel, fixed)
    assert len(plan.val_starts) == hourly_panel.n_series
    want = _validation_mase_by_hand(standard.forecaster, hourly_panel, plan, fixed)
    assert scores["standard"] == pytest.approx(want, rel=1e-5)
    if choice["chosen"] == "standard":  # the kept model is that very model
        for got, ref in zip(result.forecaster.model.get_weights(), standard.forecaster.model.get_weights()):
            np.testing.assert_array_equal(got, ref)
    # a refit trains with the scaler that was chosen, not a second choice
    refitted = refit(hourly_panel, cfg, result)
    assert refitted.forecaster.scaler.kind == choice["chosen"] and refitted.forecaster.config == cfg
    assert refitted.extra["scaler"] == choice


def test_auto_scaler_without_validation_windows_keeps_standard(hourly_panel, tiny_cfg):
    """Nothing to choose on (val_windows=0): one run, with the standard scaler, said so in ``extra``."""
    cfg = tiny_cfg.replace(window={"val_windows": 0}, train={"scaler": "auto", "epochs": 1})
    result = train(hourly_panel, cfg)
    assert result.extra["scaler"] == {"chosen": "standard", "validation_mase": {}}
    assert result.forecaster.scaler.kind == "standard" and result.forecaster.config == cfg
    assert result.n_val_windows == 0


def test_trained_through_is_the_last_validation_target(tiny_trained, hourly_panel, tiny_cfg):
    """The early-stopped fit saw targets up to the end of its validation horizons (not the test ones)."""
    w = tiny_cfg.window
    last_seen = hourly_panel.lengths - w.test_windows * w.horizon - 1  # [n_series] every series is long here
    ds = hourly_panel.ds_at(np.arange(hourly_panel.n_series), last_seen)
    assert tiny_trained.extra["trained_through"] == pd.Timestamp(np.max(ds)).isoformat()
    plan = plan_windows(hourly_panel, tiny_cfg)
    assert (plan.val_end == last_seen + 1).all()


@pytest.mark.parametrize("scaler", ["window", "standard"])
def test_recursive_head_early_stops_on_whole_horizon_forecasts(hourly_panel, scaler):
    """Recursive head: val_loss is the MAE of the fed-back h-step forecasts on whole validation horizons
    (per window normalised units with scaler="window", scaled units otherwise), and the restored model
    is the one with the lowest such loss."""
    cfg = tiny_config(model={"head": "recursive"}, train={"epochs": 3, "scaler": scaler})
    result = train(hourly_panel, cfg)
    val = result.history["val_loss"]
    assert len(val) == len(result.history["loss"]) and all(np.isfinite(val))
    assert result.best_epoch == int(np.argmin(val)) + 1
    w = cfg.window
    plan = plan_windows(hourly_panel, cfg)
    # whole horizons for the recursive head too: the same validation windows as the direct head's
    np.testing.assert_array_equal(plan.val_starts, plan_windows(hourly_panel, tiny_config()).val_starts)
    x, y = gather_windows(
        result.forecaster.scaler.scaled_buffer(hourly_panel), plan.val_starts, w.input_size, w.horizon
    )  # [n_val, in, 1], [n_val, h]
    assert y.shape == (hourly_panel.n_series, w.horizon)
    pred = result.forecaster.predict_scaled(x).astype(np.float64)  # [n_val, h] fed back step by step
    unit = normalise_inputs(x)[2].numpy().astype(np.float64) if scaler == "window" else 1.0  # [n_val, 1]
    whole = float(np.mean(np.abs(pred - y) / unit))
    assert min(val) == pytest.approx(whole, rel=1e-5)
    one_step = float(np.mean(np.abs(pred[:, 0] - y[:, 0]) / np.ravel(unit)))
    assert whole != pytest.approx(one_step, rel=1e-3)  # not Keras's own one-step validation


def test_short_series_hold_out_fewer_horizons_and_still_train():
    """input 24 + horizon 6: a series of 30 points keeps its one training window and holds out nothing;
    36 and 42 points hold out 1 and 2 test horizons (no validation); 120 points all 3 + 1."""
    cfg = tiny_config(train={"epochs": 1})
    w = cfg.window
    assert min_train_length(cfg) == w.input_size + w.horizon == 30
    lengths = [120, 42, 36, 30]
    df = pd.concat(
        [seasonal_frame(n_series=1, length=n, seed=k).assign(unique_id=f"{k}_{n}") for k, n in enumerate(lengths)],
        ignore_index=True,
    )
    panel, _ = panel_from_frame(df, cfg.data, min_length=min_train_length(cfg))
    assert panel.lengths.tolist() == lengths
    split = make_split(panel, w)
    assert split.n_test.tolist() == [3, 2, 1, 0]
    assert split.val_end.tolist() == [120 - 18, 42 - 12, 36 - 6, 30]
    assert split.train_end.tolist() == [120 - 24, 30, 30, 30]  # validation only where it fits too
    plan = plan_windows(panel, cfg)
    per_series = np.bincount(np.searchsorted(panel.offsets, plan.train_starts, side="right") - 1, minlength=4)
    assert per_series.tolist() == [96 - 30 + 1, 1, 1, 1]  # every series trains
    result = train(panel, cfg)
    assert result.n_train_windows == int(per_series.sum()) and result.n_val_windows == 1
    frame, fallback = result.forecaster.forecast_future(panel)
    assert fallback == [] and np.isfinite(frame["y_hat"]).all()


def test_own_member_windows_split_each_batch_between_the_members():
    """window_transform(own=True): member k gets windows k*b .. (k+1)*b of the batch as its channel k, and
    their targets in its columns k*h .. (k+1)*h."""
    members, b, steps, h = 3, 2, 5, 2
    x = np.arange(members * b * steps, dtype=np.float32).reshape(members * b, steps, 1)  # [6, 5, 1]
    y = 1000 + np.arange(members * b * h, dtype=np.float32).reshape(members * b, h)  # [6, 2]
    x_own, y_own = (t.numpy() for t in window_transform(False, members, own=True)(x, y))
    assert x_own.shape == (b, steps, members) and y_own.shape == (b, members * h)
    for k in range(members):
        for i in range(b):
            np.testing.assert_array_equal(x_own[i, :, k], x[k * b + i, :, 0])
            np.testing.assert_array_equal(y_own[i, k * h : (k + 1) * h], y[k * b + i])
    # normalised, each window by its own inputs, as in the shared layout
    x_n, y_n = (t.numpy() for t in window_transform(True, members, own=True)(x, y))
    x_s, y_s = (t.numpy() for t in window_transform(True, 1)(x, y))
    np.testing.assert_array_equal(x_n[1, :, 2], x_s[2 * b + 1, :, 0])
    np.testing.assert_array_equal(y_n[1, 2 * h :], y_s[2 * b + 1])


def test_members_on_their_own_windows_train_reproducibly_and_differ_from_shared(hourly_panel, tiny_cfg):
    own_cfg = tiny_cfg.replace(train={"member_windows": "own"})
    first, again = train(hourly_panel, own_cfg), train(hourly_panel, own_cfg)
    for a, b in zip(first.forecaster.model.get_weights(), again.forecaster.model.get_weights()):
        np.testing.assert_array_equal(a, b)  # same data + seed = same bits
    future, _ = first.forecaster.forecast_future(hourly_panel)
    assert np.isfinite(future["y_hat"]).all() and len(future) == hourly_panel.n_series * tiny_cfg.window.horizon
    shared = train(hourly_panel, tiny_cfg)
    assert not np.array_equal(shared.forecaster.model.get_weights()[-1], first.forecaster.model.get_weights()[-1])
    # the saved model reads one window like any other: the trainer is not what is kept
    assert first.forecaster.model.input_shape == (None, tiny_cfg.window.input_size, 1)


def test_fewer_windows_than_members_of_their_own_is_a_clear_error(hourly_panel, tiny_cfg):
    cfg = tiny_cfg.replace(model={"members": 64}, train={"member_windows": "own"})
    plan = plan_windows(hourly_panel, cfg)
    few = replace(plan, train_starts=plan.train_starts[:10])
    with pytest.raises(DataValidationError, match="member_windows='shared'"):
        train(hourly_panel, cfg, few)
