"""The Keras model factory: an Elman RNN (or LSTM/GRU) and a linear head.

h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h) is ``SimpleRNN``; y = W_hy h_T + b_y is the ``Dense`` head.
LSTM and GRU are the usual cure for vanishing gradients over long inputs.
"""

from __future__ import annotations

from .config import ModelConfig

__all__ = ["build_model", "output_size"]


def output_size(cfg: ModelConfig, horizon: int) -> int:
    """Direct: all ``horizon`` steps at once. Recursive: one step, fed back ``horizon`` times."""
    return horizon if cfg.head == "direct" else 1


def build_model(cfg: ModelConfig, input_size: int, horizon: int):
    import keras

    cell = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.cell]
    inputs = keras.Input(shape=(input_size, 1), name="history")  # [batch, input_size, 1]
    x = inputs
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        x = cell(cfg.units, activation="tanh", dropout=cfg.dropout, return_sequences=not last, name=f"{cfg.cell}_{i}")(x)
    outputs = keras.layers.Dense(output_size(cfg, horizon), name="head")(x)  # [batch, horizon or 1]
    model = keras.Model(inputs, outputs, name=f"{cfg.cell}_{cfg.head}")
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    model.compile(optimizer=optimizer[cfg.optimizer](learning_rate=cfg.learning_rate), loss=cfg.loss)
    return model
