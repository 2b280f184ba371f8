"""The Keras model factory: cells, layers, dropout, heads, optimisers and losses."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnn_model.config import ModelConfig
from rnn_model.errors import ConfigError
from rnn_model.model import anchor_lags, build_ensemble, build_model, output_size

CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _rnn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]


def test_default_is_one_simple_rnn_of_128_tanh_units_and_a_dense_head():
    """The article's network, one member of the default ensemble (members=1: the plain single model)."""
    model = build_model(ModelConfig(anchor="none", members=1), input_size=48, horizon=24)
    (rnn,) = _rnn_layers(model)
    assert type(rnn) is keras.layers.SimpleRNN
    assert rnn.units == 128 and rnn.activation is keras.activations.tanh and not rnn.return_sequences
    head = model.layers[-1]
    assert isinstance(head, keras.layers.Dense) and head.units == 24
    assert model.input_shape == (None, 48, 1) and model.output_shape == (None, 24)
    # h_t = tanh(W_hh h + W_xh x + b): 1*128 + 128*128 + 128 weights, then 128*24 + 24 for the head
    assert model.count_params() == (128 + 128 * 128 + 128) + (128 * 24 + 24)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("layers", [1, 3])
def test_cells_and_stacked_layers(cell, layers):
    model = build_model(
        ModelConfig(cell=cell, units=8, layers=layers, dropout=0.25, members=1), input_size=10, horizon=4
    )
    rnns = _rnn_layers(model)
    assert len(rnns) == layers
    assert all(type(layer) is CELLS[cell] for layer in rnns)
    assert [layer.return_sequences for layer in rnns] == [True] * (layers - 1) + [False]
    assert all(layer.units == 8 and layer.dropout == 0.25 for layer in rnns)
    x = np.random.default_rng(0).standard_normal((5, 10, 1)).astype(np.float32)
    assert model(x).shape == (5, 4)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))  # no dropout at inference


@pytest.mark.parametrize("head,size", [("direct", 6), ("recursive", 1)])
def test_heads(head, size):
    cfg = ModelConfig(units=8, head=head, members=1)
    assert output_size(cfg, 6) == size
    model = build_model(cfg, input_size=12, horizon=6)
    assert model.output_shape == (None, size) and model.get_layer("head").units == size


@pytest.mark.parametrize(
    "name,cls", [("adam", keras.optimizers.Adam), ("rmsprop", keras.optimizers.RMSprop), ("sgd", keras.optimizers.SGD)]
)
def test_optimizers(name, cls):
    model = build_model(ModelConfig(units=4, optimizer=name, learning_rate=0.05), input_size=6, horizon=2)
    assert type(model.optimizer) is cls
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.05)


def _reference_loss(name, err):
    if name == "mse":
        return np.mean(err**2)
    if name == "mae":
        return np.mean(np.abs(err))
    a = np.abs(err)  # huber with delta 1
    return np.mean(np.where(a <= 1.0, 0.5 * err**2, a - 0.5))


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_losses_are_the_configured_ones(loss):
    model = build_model(ModelConfig(units=4, loss=loss, members=1), input_size=6, horizon=3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 6, 1)).astype(np.float32)
    y = (3 * rng.standard_normal((16, 3))).astype(np.float32)  # large errors: huber is not mse here
    pred = model.predict(x, verbose=0)
    got = model.evaluate(x, y, batch_size=16, verbose=0)
    assert got == pytest.approx(_reference_loss(loss, pred.astype(np.float64) - y), rel=1e-5)


def _window(n=5, size=12, seed=0):
    return np.random.default_rng(seed).standard_normal((n, size, 1)).astype(np.float32)  # [n, size, 1]


@pytest.mark.parametrize("head", ["direct", "recursive"])
def test_seasonal_naive_anchor_starts_at_exactly_seasonal_naive(head):
    # zero-initialised head: before training the forecast is the value one season back, step by step
    model = build_model(ModelConfig(units=8, head=head, members=1), input_size=12, horizon=6, season_length=4)
    x = _window()
    want = x[:, [8, 9, 10, 11, 8, 9], 0] if head == "direct" else x[:, [8], 0]  # [n, out]
    np.testing.assert_array_equal(model(x).numpy(), want)


@pytest.mark.parametrize(
    "anchor,season,lags",
    [
        ("seasonal_naive", 4, [8, 9, 10, 11, 8, 9]),
        ("seasonal_naive", 1, [11] * 6),
        ("seasonal_naive", 24, [11] * 6),  # a season longer than the window: the last value
        ("naive", 4, [11] * 6),
    ],
)
def test_anchor_lags(anchor, season, lags):
    assert anchor_lags(ModelConfig(anchor=anchor), 12, 6, season).tolist() == lags


def test_anchored_model_reads_level_and_relative_channels_and_adds_the_baseline():
    model = build_model(ModelConfig(units=8, members=1), input_size=12, horizon=3, season_length=4)
    rng = np.random.default_rng(3)  # random trainable weights: the head contributes
    model.set_weights(
        [
            rng.standard_normal(w.shape).astype(np.float32) if v.trainable else w
            for w, v in zip(model.get_weights(), model.weights)
        ]
    )
    x = _window() + 100.0  # a level far from zero: the relative channel is still near zero
    channels = keras.Model(model.input, model.get_layer("channels").output)(x).numpy()  # [n, 12, 2]
    np.testing.assert_array_equal(channels[..., 0], x[..., 0])
    np.testing.assert_allclose(channels[..., 1], x[..., 0] - x[:, -1:, 0], atol=1e-4)
    head = keras.Model(model.input, model.get_layer("head").output)(x).numpy()  # [n, 3]
    assert np.abs(head).max() > 1e-3  # the network's correction
    np.testing.assert_allclose(model(x).numpy() - head, x[:, [8, 9, 10], 0], atol=1e-4)
    frozen = {v.path.split("/")[0] for v in model.non_trainable_weights}
    assert frozen == {"relative", "baseline"}


def test_anchored_model_round_trips_in_keras_safe_mode(tmp_path):
    model = build_model(ModelConfig(units=8), input_size=12, horizon=6, season_length=4)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    x = _window()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


# --- ensembles (ModelConfig.members): members side by side in one graph, each from its own weights


def _trainable_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {
        layer.name: [w.numpy() for w in layer.trainable_weights] for layer in model.layers if layer.trainable_weights
    }


@pytest.mark.parametrize("head,n_out", [("direct", 6), ("recursive", 1)])
def test_ensemble_output_is_every_members_forecast_side_by_side(head, n_out):
    members = 3
    model = build_model(ModelConfig(units=8, head=head, members=members, anchor="none"), input_size=12, horizon=6)
    assert model.output_shape == (None, members * n_out)
    assert [layer.name for layer in _rnn_layers(model)] == [f"m{k}_simple_rnn_0" for k in range(members)]
    x = _window()
    out = model(x).numpy()  # [n, members * n_out]
    assert out.shape == (5, members * n_out)
    for k in range(members):  # member k in columns k * n_out .. (k + 1) * n_out, computed by its own head
        head_k = keras.Model(model.input, model.get_layer(f"m{k}_head").output)(x).numpy()  # [n, n_out]
        np.testing.assert_array_equal(out[:, k * n_out : (k + 1) * n_out], head_k)


def test_members_start_from_different_initial_weights():
    model = build_model(ModelConfig(units=8, members=3, anchor="none"), input_size=12, horizon=4)
    weights = _trainable_by_layer(model)
    for name in ("simple_rnn_0", "head"):
        per_member = [weights[f"m{k}_{name}"] for k in range(3)]
        for a, b in [(0, 1), (0, 2), (1, 2)]:
            assert all(w.shape == v.shape for w, v in zip(per_member[a], per_member[b]))
            # kernels (the first weight) differ; biases start at zero in every member
            assert not np.array_equal(per_member[a][0], per_member[b][0]), (name, a, b)
    out = model(_window()).numpy().reshape(5, 3, 4)  # [n, member, step]
    assert not np.allclose(out[:, 0], out[:, 1]) and not np.allclose(out[:, 1], out[:, 2])
    # the same seed builds the same ensemble, another seed another one
    again = _trainable_by_layer(build_model(ModelConfig(units=8, members=3, anchor="none"), input_size=12, horizon=4))
    other = _trainable_by_layer(
        build_model(ModelConfig(units=8, members=3, anchor="none"), input_size=12, horizon=4, seed=1)
    )
    assert all(np.array_equal(a, b) for k in weights for a, b in zip(weights[k], again[k]))
    assert not np.array_equal(weights["m0_simple_rnn_0"][0], other["m0_simple_rnn_0"][0])


@pytest.mark.parametrize("anchor", ["seasonal_naive", "none"])
def test_one_member_is_the_single_model_with_its_names_and_weights(anchor):
    """members=1 builds the single model of before: no prefixes, no concatenation; its initial weights
    are those of the first member of an ensemble built with the same seed (the same draws, in order)."""
    cfg = ModelConfig(units=8, members=1, anchor=anchor)
    single = build_model(cfg, input_size=12, horizon=4, season_length=4, seed=5)
    names = [layer.name for layer in single.layers]
    assert "members" not in names and not any(n.startswith("m0_") for n in names)
    assert {"simple_rnn_0", "head"} <= set(names)
    ensemble = build_model(
        ModelConfig(units=8, members=2, anchor=anchor), input_size=12, horizon=4, season_length=4, seed=5
    )
    mine, theirs = _trainable_by_layer(single), _trainable_by_layer(ensemble)
    for name in ("simple_rnn_0", "head"):
        for a, b in zip(mine[name], theirs[f"m0_{name}"]):
            np.testing.assert_array_equal(a, b)
    assert ensemble.count_params() - single.count_params() == sum(w.size for ws in mine.values() for w in ws)


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_ensemble_loss_is_the_mean_of_the_members_losses_on_the_tiled_target(loss):
    members, h = 3, 3
    model = build_model(ModelConfig(units=4, loss=loss, members=members, anchor="none"), input_size=6, horizon=h)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 6, 1)).astype(np.float32)
    y = (3 * rng.standard_normal((16, h))).astype(np.float32)
    pred = model.predict(x, verbose=0).astype(np.float64).reshape(16, members, h)
    got = model.evaluate(x, np.tile(y, (1, members)), batch_size=16, verbose=0)  # as window_transform tiles it
    per_member = [_reference_loss(loss, pred[:, k] - y) for k in range(members)]
    assert len(set(np.round(per_member, 6))) == members  # the members really differ
    assert got == pytest.approx(np.mean(per_member), rel=1e-5)


def test_without_the_relative_channel_the_network_reads_one_channel():
    """scaler="window": inputs are already relative to the window's last value, so no second channel."""
    model = build_model(
        ModelConfig(units=8, members=2), input_size=12, horizon=6, season_length=4, relative_channel=False
    )
    names = {layer.name for layer in model.layers}
    assert not names & {"relative", "relative_window", "channels"}
    assert all(rnn.get_weights()[0].shape == (1, 8) for rnn in _rnn_layers(model))  # kernel [1 channel, units]
    with_relative = build_model(ModelConfig(units=8, members=2), input_size=12, horizon=6, season_length=4)
    assert all(rnn.get_weights()[0].shape == (2, 8) for rnn in _rnn_layers(with_relative))
    x = _window()  # zero heads: every member starts at seasonal naive, with or without the channel
    want = np.tile(x[:, [8, 9, 10, 11, 8, 9], 0], (1, 2))
    np.testing.assert_array_equal(model(x).numpy(), want)


# --- the trainer of an ensemble whose members draw their own windows (TrainConfig.member_windows="own")


@pytest.mark.parametrize("anchor", ["seasonal_naive", "none"])
def test_trainer_is_the_model_with_one_input_channel_per_member(anchor):
    members, h, n = 3, 4, 5
    ensemble = build_ensemble(ModelConfig(units=8, members=members, anchor=anchor), 12, h, season_length=4, seed=3)
    model, trainer = ensemble
    assert trainer.input_shape == (None, 12, members) and trainer.output_shape == model.output_shape
    # one set of weights: what fit changes in the trainer is what the model forecasts with
    assert {id(w) for w in trainer.trainable_weights} == {id(w) for w in model.trainable_weights}
    for w in model.trainable_weights:  # away from the zero head and biases, so members and windows differ
        w.assign(w.numpy() + np.random.default_rng(1).normal(0, 0.3, w.shape).astype(np.float32))
    x, other = _window(n), _window(n, seed=1)
    same = trainer(np.repeat(x, members, axis=-1)).numpy()  # [n, members * h]
    np.testing.assert_allclose(same, model(x).numpy(), rtol=1e-5, atol=1e-6)
    # member k reads channel k alone: member 1 on the other windows, members 0 and 2 on x
    mixed = trainer(np.concatenate([x, other, x], axis=-1)).numpy().reshape(n, members, h)
    on_x, on_other = model(x).numpy().reshape(n, members, h), model(other).numpy().reshape(n, members, h)
    np.testing.assert_allclose(mixed[:, [0, 2]], on_x[:, [0, 2]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed[:, 1], on_other[:, 1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(on_x[:, 1], on_other[:, 1])


def test_one_member_has_no_separate_trainer():
    model, trainer = build_ensemble(ModelConfig(units=8, members=1), 12, 4, season_length=4)
    assert trainer is model


# --- a second, longer season (ModelConfig.long_season) and the recurrent part of the window (rnn_steps)


def test_long_season_head_input_is_the_long_lag_minus_the_anchor_and_starts_at_zero_weight():
    # window 12, season 2, long season 8: output step k's anchor is x[10 + k % 2], its long lag x[4 + k % 8]
    cfg = ModelConfig(units=8, members=1, long_season=8, rnn_steps=4)
    model = build_model(cfg, input_size=12, horizon=3, season_length=2)
    x = _window()
    np.testing.assert_array_equal(model(x).numpy(), x[:, [10, 11, 10], 0])  # zero head: seasonal naive
    diff = keras.Model(model.input, model.get_layer("long_season").output)(x).numpy()  # [n, 3]
    np.testing.assert_allclose(diff, x[:, [4, 5, 6], 0] - x[:, [10, 11, 10], 0], atol=1e-6)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()  # kernel [units + n_out, n_out]: the state's rows, then the long lag's
    assert kernel.shape == (8 + 3, 3)
    kernel[8:] = np.eye(3, dtype=np.float32)  # take all of the long-season difference
    head.set_weights([kernel, bias])
    np.testing.assert_allclose(model(x).numpy(), x[:, [4, 5, 6], 0], atol=1e-5)  # = naive one long season back


def test_rnn_steps_crops_what_the_recurrent_layer_reads_but_not_the_baseline():
    model = build_model(ModelConfig(units=8, members=2, long_season=8, rnn_steps=4), 12, 3, 2)
    assert model.get_layer("m0_simple_rnn_0").input.shape[1:] == (4, 2)  # the last 4 steps, two channels
    x = _window()
    changed = x.copy()
    changed[:, 0, 0] += 5.0  # a step the recurrent layer does not read and no lag points at
    np.testing.assert_array_equal(model(changed).numpy(), model(x).numpy())


def test_long_season_longer_than_the_window_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="raise input_size to at least long_season"):
        build_model(ModelConfig(units=8, long_season=24), input_size=12, horizon=3, season_length=2)
    with pytest.raises(ConfigError, match="needs an anchor"):
        ModelConfig(anchor="none", long_season=8)


def test_long_season_model_round_trips_in_keras_safe_mode(tmp_path):
    model = build_model(ModelConfig(units=8, members=2, long_season=8, rnn_steps=4), 12, 3, 2)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    x = _window()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
