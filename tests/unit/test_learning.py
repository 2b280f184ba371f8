"""The one test about learning: a small SimpleRNN beats seasonal naive on held-out windows."""

from __future__ import annotations

from rnn_model.config import ForecastConfig, TrainConfig, WindowConfig, resolve
from rnn_model.evaluation import evaluate
from rnn_model.panel import panel_from_frame
from rnn_model.sample import make_sample_panel
from rnn_model.training import min_train_length, train


def test_simple_rnn_beats_seasonal_naive_on_held_out_windows():
    """8 hourly series of 8 weeks with daily and weekly cycles and noise; the default network (SimpleRNN
    of 128 tanh units, two days of context, one day ahead) trained for 5 epochs.

    Seasonal naive repeats yesterday, so it carries yesterday's noise and misses the weekly cycle; the
    network can average the noise out over its context. It must do clearly better on the test windows
    (never seen in training or early stopping), measured by MASE against the same windows. Measured when
    written: MASE 0.73 for the network, 1.04 for seasonal naive, 1.80 for naive.
    """
    # two test days per series, both after the validation day that drives early stopping
    cfg = resolve(ForecastConfig(window=WindowConfig(test_windows=2), train=TrainConfig(epochs=5, seed=42)), "h")
    assert (cfg.model.cell, cfg.model.units, cfg.window.input_size, cfg.window.horizon) == ("simple_rnn", 128, 48, 24)
    panel, _ = panel_from_frame(make_sample_panel(), cfg.data, min_length=min_train_length(cfg))
    result = train(panel, cfg)
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]  # it learnt during training
    forecasts, scores = evaluate({"rnn": result.forecaster}, panel, cfg)
    assert forecasts.groupby("unique_id")["cutoff"].nunique().tolist() == [2] * panel.n_series
    mase = scores.overall["mase"]
    assert mase["rnn"] < 0.9 * mase["seasonal_naive"], scores.overall
    assert mase["rnn"] < mase["naive"], scores.overall
