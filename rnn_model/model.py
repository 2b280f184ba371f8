"""The Keras model factory: an Elman RNN (or LSTM/GRU) and a linear head.

h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h) is ``SimpleRNN``; y = W_hy h_T + b_y is the ``Dense`` head.
LSTM and GRU are the usual cure for vanishing gradients over long inputs.

``anchor`` (default ``seasonal_naive``, chosen on benchmarks/accuracy.py): the network predicts a
correction to a baseline forecast, ``y = baseline(x) + W_hy h_T + b_y``, and reads two channels per
step: the scaled value and the value relative to the window's last one. Why: a per-series scaler fit on
the training part cannot bound a trending series, whose recent windows leave the range the network was
trained on; the relative channel stays near zero, the absolute one keeps the level (where in a cycle or
a day the series is), and the zero-initialised head starts training at exactly the baseline (seasonal
naive, or the last value for ``naive``). Baseline and relative channel are fixed linear maps of the
window, built from stock Keras layers (frozen bias-free ``Dense`` with 0/±1 kernels), so the model saves
and loads in Keras safe mode with no custom code.
"""

from __future__ import annotations

import random

import numpy as np

from .config import ModelConfig

__all__ = ["anchor_lags", "build_model", "output_size"]


def output_size(cfg: ModelConfig, horizon: int) -> int:
    """Direct: all ``horizon`` steps at once. Recursive: one step, fed back ``horizon`` times."""
    return horizon if cfg.head == "direct" else 1


def anchor_lags(cfg: ModelConfig, input_size: int, horizon: int, season_length: int) -> np.ndarray:
    """Input position each output step copies as its baseline: ``[output_size]`` int.

    Seasonal naive: step k (0-based) repeats the value one season before it, ``x[input_size - m + k % m]``.
    A season longer than the window (or ``naive``) falls back to the last value."""
    m = season_length if cfg.anchor == "seasonal_naive" and season_length <= input_size else 1
    k = np.arange(output_size(cfg, horizon))
    return input_size - m + k % m


def build_model(
    cfg: ModelConfig,
    input_size: int,
    horizon: int,
    season_length: int = 1,
    seed: int = 0,
    relative_channel: bool = True,
):
    """The compiled model; its initial weights (and dropout masks) depend on ``seed`` alone.

    ``cfg.members`` networks side by side in one graph (one ``fit`` trains all; each has its own initial
    weights), sharing the input and the baseline: output ``[batch, members * n_out]`` (see
    normalization.py). ``relative_channel=False`` drops the second input channel (``x - x_last``), which
    is the input itself when windows are already normalised by their last value (``scaler="window"``).

    Keras's default initialisers draw their seeds from the process-global ``random`` module, which any
    other thread (Prefect's event and log workers, a second flow) may draw from at the same moment, so
    ``keras.utils.set_random_seed`` alone does not make the weights reproducible. Every seed is given
    explicitly instead, drawn from a private ``random.Random(seed)`` in the order Keras's defaults would
    draw them right after ``set_random_seed(seed)``: same weights as before, now whatever else runs."""
    import keras

    seeds = random.Random(seed)

    def draw() -> int:
        return seeds.randint(1, int(1e9))  # as keras.random.make_default_seed

    cell = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.cell]
    n_out = output_size(cfg, horizon)
    inputs = keras.Input(shape=(input_size, 1), name="history")  # [batch, input_size, 1]
    x = inputs
    if cfg.anchor != "none":
        flat = keras.layers.Flatten(name="window")(inputs)  # [batch, input_size]
        if relative_channel:
            to_relative = np.eye(input_size, dtype=np.float32)
            to_relative[-1, :] -= 1.0  # column t: x_t - x_last
            relative = _fixed_linear(keras, flat, to_relative, "relative", draw())  # [batch, input_size]
            relative = keras.layers.Reshape((input_size, 1), name="relative_window")(relative)  # [batch, input_size, 1]
            x = keras.layers.Concatenate(axis=-1, name="channels")([inputs, relative])  # [batch, input_size, 2]
        select = np.zeros((input_size, n_out), np.float32)
        select[anchor_lags(cfg, input_size, horizon, season_length), np.arange(n_out)] = 1.0
        baseline = _fixed_linear(keras, flat, select, "baseline", draw())  # [batch, n_out]
    member_outputs = []
    for k in range(cfg.members):
        prefix = f"m{k}_" if cfg.members > 1 else ""  # one member keeps the names of the single model
        h = x
        for i in range(cfg.layers):
            last = i == cfg.layers - 1
            if cfg.cell == "simple_rnn":  # Keras's own order of draws differs between the cells
                dropout_seed, kernel_seed, recurrent_seed = draw(), draw(), draw()
            else:
                kernel_seed, recurrent_seed, dropout_seed = draw(), draw(), draw()
            h = cell(
                cfg.units,
                activation="tanh",
                dropout=cfg.dropout,
                return_sequences=not last,
                name=f"{prefix}{cfg.cell}_{i}",
                kernel_initializer=keras.initializers.GlorotUniform(kernel_seed),
                recurrent_initializer=keras.initializers.Orthogonal(seed=recurrent_seed),
                seed=dropout_seed,
            )(h)
        init = "zeros" if cfg.anchor != "none" else keras.initializers.GlorotUniform(draw())
        out = keras.layers.Dense(n_out, kernel_initializer=init, name=f"{prefix}head")(h)  # [batch, n_out]
        if cfg.anchor != "none":
            out = keras.layers.Add(name=f"{prefix}anchored")([baseline, out])  # [batch, n_out]
        member_outputs.append(out)
    outputs = member_outputs[0]
    if cfg.members > 1:
        outputs = keras.layers.Concatenate(axis=-1, name="members")(member_outputs)  # [batch, members * n_out]
    model = keras.Model(inputs, outputs, name=f"{cfg.cell}_{cfg.head}")
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    model.compile(optimizer=optimizer[cfg.optimizer](learning_rate=cfg.learning_rate), loss=cfg.loss)
    return model


def _fixed_linear(keras, x, kernel: np.ndarray, name: str, seed: int):
    """``x @ kernel`` as a frozen bias-free Dense layer (saved with the model like any weight)."""
    init = keras.initializers.GlorotUniform(seed)  # overwritten below; seeded only to keep the order of draws
    layer = keras.layers.Dense(kernel.shape[1], use_bias=False, trainable=False, kernel_initializer=init, name=name)
    out = layer(x)
    layer.set_weights([kernel])
    return out
