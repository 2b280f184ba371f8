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
from typing import NamedTuple

import numpy as np

from .config import ModelConfig
from .errors import ConfigError

__all__ = ["Ensemble", "anchor_lags", "build_ensemble", "build_model", "output_size"]


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


class Ensemble(NamedTuple):
    """The two graphs of one set of weights. ``model``: ``[batch, input_size, 1]`` -> ``[batch, members *
    n_out]``, every member reading the same window (what forecasts and is saved). ``trainer``: ``[batch,
    input_size, members]`` -> the same output, member k reading its own window, channel k (what ``fit``
    trains when each member draws its own windows, ``TrainConfig.member_windows="own"``). One member:
    both are the single model."""

    model: object
    trainer: object


def build_model(
    cfg: ModelConfig,
    input_size: int,
    horizon: int,
    season_length: int = 1,
    seed: int = 0,
    relative_channel: bool = True,
):
    """The compiled forecasting model (:attr:`Ensemble.model` of :func:`build_ensemble`)."""
    return build_ensemble(cfg, input_size, horizon, season_length, seed, relative_channel).model


def build_ensemble(
    cfg: ModelConfig,
    input_size: int,
    horizon: int,
    season_length: int = 1,
    seed: int = 0,
    relative_channel: bool = True,
) -> Ensemble:
    """The compiled model and its trainer; the initial weights (and dropout masks) depend on ``seed`` alone.

    ``cfg.members`` networks side by side in one graph (one ``fit`` trains all; each has its own initial
    weights), sharing the baseline: output ``[batch, members * n_out]`` (see normalization.py).
    ``relative_channel=False`` drops the second input channel (``x - x_last``), which is the input itself
    when windows are already normalised by their last value (``scaler="window"``).

    Keras's default initialisers draw their seeds from the process-global ``random`` module, which any
    other thread (Prefect's event and log workers, a second flow) may draw from at the same moment, so
    ``keras.utils.set_random_seed`` alone does not make the weights reproducible. Every seed is given
    explicitly instead, drawn from a private ``random.Random(seed)`` in the order Keras's defaults would
    draw them right after ``set_random_seed(seed)``: same weights as before, now whatever else runs."""
    import keras

    seeds = random.Random(seed)

    def draw() -> int:
        return seeds.randint(1, int(1e9))  # as keras.random.make_default_seed

    n_out = output_size(cfg, horizon)
    # layers first, then two graphs over them: the fixed maps, shared by the members
    relative = baseline = None
    if cfg.anchor != "none":
        if relative_channel:
            to_relative = np.eye(input_size, dtype=np.float32)
            to_relative[-1, :] -= 1.0  # column t: x_t - x_last
            relative = _fixed_linear(keras, to_relative, "relative", draw())
        select = np.zeros((input_size, n_out), np.float32)
        select[anchor_lags(cfg, input_size, horizon, season_length), np.arange(n_out)] = 1.0
        baseline = _fixed_linear(keras, select, "baseline", draw())
    long_season = None
    if cfg.long_season and cfg.anchor != "none":
        if cfg.long_season > input_size:
            raise ConfigError(
                f"model.long_season = {cfg.long_season} is longer than the input window (input_size = {input_size}); "
                "raise input_size to at least long_season (model.rnn_steps keeps the recurrent steps as they are)"
            )
        step = np.arange(n_out)
        to_long = np.zeros((input_size, n_out), np.float32)
        to_long[input_size - cfg.long_season + step % cfg.long_season, step] += 1.0  # one long season before
        to_long[anchor_lags(cfg, input_size, horizon, season_length), step] -= 1.0  # minus the anchor's lag
        long_season = _fixed_linear(keras, to_long, "long_season", draw())
    recent = min(cfg.rnn_steps or input_size, input_size)
    members = [_member_layers(keras, cfg, n_out, k, draw, anchored=baseline is not None) for k in range(cfg.members)]

    def inputs_of(window, suffix=""):
        """[batch, input_size, 1] -> (RNN input [batch, recent, channels], baseline [batch, n_out] or None,
        long-season difference [batch, n_out] or None)."""
        x, base, extra = window, None, None
        if baseline is not None:
            flat = keras.layers.Flatten(name=f"window{suffix}")(window)  # [batch, input_size]
            if relative is not None:
                rel = keras.layers.Reshape((input_size, 1), name=f"relative_window{suffix}")(relative(flat))
                x = keras.layers.Concatenate(axis=-1, name=f"channels{suffix}")([window, rel])  # [b, in, 2]
            base = baseline(flat)
            extra = long_season(flat) if long_season is not None else None
        if recent < input_size:
            x = keras.layers.Cropping1D((input_size - recent, 0), name=f"recent{suffix}")(x)  # [b, recent, ch]
        return x, base, extra

    def forecast(x, base, extra, layers, suffix=""):  # -> [batch, n_out]
        for layer in layers[:-1]:
            x = layer(x)  # -> [batch, units]
        if extra is not None:
            prefix = layers[-1].name.removesuffix("head")
            joined = keras.layers.Concatenate(name=f"{prefix}state_and_long_season{suffix}")
            x = joined([x, extra])  # [batch, units + n_out]
        out = layers[-1](x)  # [batch, n_out]
        if base is not None:
            out = keras.layers.Add(name=f"{layers[-1].name.removesuffix('head')}anchored{suffix}")([base, out])
        return out

    def combine(outs, suffix=""):
        if len(outs) == 1:
            return outs[0]
        return keras.layers.Concatenate(axis=-1, name=f"members{suffix}")(outs)  # [batch, members * n_out]

    history = keras.Input(shape=(input_size, 1), name="history")  # [batch, input_size, 1]
    x, base, extra = inputs_of(history)
    model = keras.Model(history, combine([forecast(x, base, extra, m) for m in members]), name=f"{cfg.cell}_{cfg.head}")
    trainer = model
    if cfg.members > 1:
        windows = keras.Input(shape=(input_size, cfg.members), name="member_windows")  # [batch, input_size, K]
        own = []
        for k, m in enumerate(members):
            pick = _fixed_linear(keras, np.eye(cfg.members, dtype=np.float32)[:, [k]], f"window_of_m{k}")
            x, base, extra = inputs_of(pick(windows), f"_m{k}")  # member k reads channel k
            own.append(forecast(x, base, extra, m, "_own"))
        trainer = keras.Model(windows, combine(own, "_own"), name=f"{cfg.cell}_{cfg.head}_trainer")
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    for m in {id(model): model, id(trainer): trainer}.values():
        m.compile(optimizer=optimizer[cfg.optimizer](learning_rate=cfg.learning_rate), loss=cfg.loss)
    return Ensemble(model, trainer)


def _member_layers(keras, cfg: ModelConfig, n_out: int, k: int, draw, anchored: bool) -> list:
    """Member k's recurrent stack and ``Dense`` head, its seeds drawn in Keras's own order. One member
    keeps the names of the single model."""
    cell = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.cell]
    prefix = f"m{k}_" if cfg.members > 1 else ""
    layers = []
    for i in range(cfg.layers):
        if cfg.cell == "simple_rnn":  # Keras's own order of draws differs between the cells
            dropout_seed, kernel_seed, recurrent_seed = draw(), draw(), draw()
        else:
            kernel_seed, recurrent_seed, dropout_seed = draw(), draw(), draw()
        layers.append(
            cell(
                cfg.units,
                activation="tanh",
                dropout=cfg.dropout,
                return_sequences=i < cfg.layers - 1,
                name=f"{prefix}{cfg.cell}_{i}",
                kernel_initializer=keras.initializers.GlorotUniform(kernel_seed),
                recurrent_initializer=keras.initializers.Orthogonal(seed=recurrent_seed),
                seed=dropout_seed,
            )
        )
    init = "zeros" if anchored else keras.initializers.GlorotUniform(draw())
    layers.append(keras.layers.Dense(n_out, kernel_initializer=init, name=f"{prefix}head"))
    return layers


def _fixed_linear(keras, kernel: np.ndarray, name: str, seed: int = 1):
    """``x @ kernel`` (on the last axis) as a frozen bias-free Dense layer, saved with the model like any
    weight."""
    init = keras.initializers.GlorotUniform(seed)  # overwritten below; seeded only to keep the order of draws
    layer = keras.layers.Dense(kernel.shape[1], use_bias=False, trainable=False, kernel_initializer=init, name=name)
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel])
    return layer
