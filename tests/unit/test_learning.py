"""The one test about learning: the SimpleRNN beats seasonal naive on held-out windows."""

from __future__ import annotations

import pytest

from rnn_model.config import ForecastConfig, ModelConfig, TrainConfig, WindowConfig, resolve
from rnn_model.evaluation import evaluate
from rnn_model.panel import panel_from_frame
from rnn_model.sample import make_sample_panel
from rnn_model.training import min_train_length, train


@pytest.mark.parametrize("anchor,vs_seasonal_naive", [("none", 0.9), ("seasonal_naive", 1.0)])
def test_simple_rnn_beats_seasonal_naive_on_held_out_windows(anchor, vs_seasonal_naive):
    """8 hourly series of 8 weeks with daily and weekly cycles and noise; the network (SimpleRNN of 128
    tanh units, two days of context, one day ahead) trained for 5 epochs.

    Seasonal naive repeats yesterday, so it carries yesterday's noise and misses the weekly cycle; the
    network can average the noise out over its context. It must do better on the test windows (never
    seen in training or early stopping), measured by MASE against the same windows. Measured when
    written: MASE 0.73 for the article's plain network (``anchor=none``), 0.98 for the default anchored
    one (it must undo yesterday's noise in its seasonal-naive baseline, which this synthetic noise makes
    hard; on the real-data benchmark it wins, see benchmarks/RESULTS.md), 1.04 for seasonal naive, 1.80
    for naive.
    """
    # two test days per series, both after the validation day that drives early stopping; 5 epochs (not
    # a budget of steps); otherwise the defaults (a 5-member ensemble on scale-free windows)
    model = ModelConfig(anchor=anchor)
    cfg = resolve(
        ForecastConfig(
            window=WindowConfig(test_windows=2, val_windows=1),
            model=model,
            train=TrainConfig(epochs=5, steps=None, seed=42),
        ),
        "h",
    )
    assert (cfg.model.cell, cfg.model.units, cfg.window.input_size, cfg.window.horizon) == ("simple_rnn", 128, 48, 24)
    panel, _ = panel_from_frame(make_sample_panel(), cfg.data, min_length=min_train_length(cfg))
    result = train(panel, cfg)
    forecasts, scores = evaluate({"rnn": result.forecaster}, panel, cfg)
    assert forecasts.groupby("unique_id")["cutoff"].nunique().tolist() == [2] * panel.n_series
    mase = scores.overall["mase"]
    # That it learnt is this check, not "a later epoch validates better than the first": on some CPUs the
    # first epoch is already the best. The anchored network starts as exactly seasonal naive (a zero head).
    assert mase["rnn"] < vs_seasonal_naive * mase["seasonal_naive"], scores.overall
    assert mase["rnn"] < mase["naive"], scores.overall
