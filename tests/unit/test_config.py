"""Configuration: frozen dataclasses, every invalid value is a ConfigError naming field, value and range."""

from __future__ import annotations

import dataclasses

import pytest

from rnn_model.config import (
    ALLOWED_POLICIES,
    DataConfig,
    ForecastConfig,
    ModelConfig,
    TrainConfig,
    WindowConfig,
    check_name,
    default_horizon_for,
    resolve,
    season_length_for,
)
from rnn_model.errors import ConfigError


@pytest.mark.parametrize("cls", [DataConfig, WindowConfig, ModelConfig, TrainConfig, ForecastConfig])
def test_config_sections_are_frozen(cls):
    cfg = cls()
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, name, getattr(cfg, name))


def test_defaults_follow_the_article():
    """The article's cell and optimizer; MAE on scale-free windows and a 5-member median ensemble on top."""
    m = ModelConfig()
    assert (m.cell, m.units, m.layers, m.head, m.optimizer) == ("simple_rnn", 128, 1, "direct", "adam")
    assert (m.loss, m.members) == ("mae", 5)
    assert TrainConfig().scaler == "window" and TrainConfig().refit is False


# (section class, field, bad value, words the message must contain besides the field and the value)
INVALID = [
    (DataConfig, "id_col", "", ["non-empty"]),
    (DataConfig, "freq", "fortnightly", ["'h'", "integer step"]),
    (DataConfig, "season_length", 0, ["between 1 and 100000"]),
    (DataConfig, "on_gap", "interpolate", ["error", "drop", "fill"]),
    (DataConfig, "on_constant", "fill", ["error", "drop", "keep"]),
    (DataConfig, "on_null_id", "keep", ["error", "drop"]),
    (WindowConfig, "input_size", 0, ["between 1 and 100000"]),
    (WindowConfig, "horizon", -3, ["between 1 and 10000"]),
    (WindowConfig, "horizon", 2.5, ["integer"]),
    (WindowConfig, "step", True, ["integer"]),
    (WindowConfig, "max_windows_per_series", 0, [">= 1"]),
    (WindowConfig, "sampling", "random", ["recent", "uniform"]),
    (WindowConfig, "test_windows", 0, ["between 1 and 1000"]),
    (WindowConfig, "val_windows", -1, ["between 0 and 1000"]),
    (ModelConfig, "cell", "transformer", ["simple_rnn", "lstm", "gru"]),
    (ModelConfig, "units", 0, ["between 1 and 4096"]),
    (ModelConfig, "layers", 9, ["between 1 and 8"]),
    (ModelConfig, "dropout", 1.0, ["[0, 1)"]),
    (ModelConfig, "dropout", float("nan"), ["[0, 1)"]),
    (ModelConfig, "head", "seq2seq", ["direct", "recursive"]),
    (ModelConfig, "optimizer", "adagrad", ["adam", "rmsprop", "sgd"]),
    (ModelConfig, "learning_rate", 0.0, ["(0, 1]"]),
    (ModelConfig, "loss", "mape", ["mse", "mae", "huber"]),
    (ModelConfig, "anchor", "drift", ["seasonal_naive", "naive", "none"]),
    (TrainConfig, "epochs", 0, ["between 1 and 10000"]),
    (TrainConfig, "batch_size", 0, ["between 1 and 1000000"]),
    (TrainConfig, "seed", -1, ["between 0 and"]),
    (TrainConfig, "scaler", "minmax", ["standard", "robust", "mean", "none", "auto"]),
]


@pytest.mark.parametrize("cls,field,value,words", INVALID, ids=[f"{c.__name__}.{f}={v!r}" for c, f, v, _ in INVALID])
def test_invalid_value_names_field_value_and_allowed_range(cls, field, value, words):
    with pytest.raises(ConfigError) as info:
        cls(**{field: value})
    msg = str(info.value)
    assert field in msg
    assert repr(value) in msg or str(value) in msg
    for word in words:
        assert word in msg, msg


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        ModelConfig(units=-1)


@pytest.mark.parametrize("field,allowed", sorted(ALLOWED_POLICIES.items()))
def test_every_allowed_policy_is_accepted_and_others_rejected(field, allowed):
    for policy in allowed:
        assert getattr(DataConfig(**{field: policy}), field) == policy
    for policy in {"error", "drop", "fill", "keep"} - set(allowed):
        with pytest.raises(ConfigError, match=field):
            DataConfig(**{field: policy})


def test_column_names_must_differ():
    with pytest.raises(ConfigError, match="must differ"):
        DataConfig(id_col="x", time_col="x")


def test_round_trip_through_dict_and_unknown_fields():
    cfg = ForecastConfig(window=WindowConfig(horizon=5), model=ModelConfig(cell="gru", units=8))
    assert ForecastConfig.from_dict(cfg.to_dict()) == cfg
    bad = cfg.to_dict()
    bad["model"]["unitz"] = 3
    with pytest.raises(ConfigError, match="unknown configuration field"):
        ForecastConfig.from_dict(bad)
    bad = cfg.to_dict()
    bad["modle"] = bad.pop("model")  # a misspelt section is not silently replaced by defaults
    with pytest.raises(ConfigError, match="modle"):
        ForecastConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="mapping"):
        ForecastConfig.from_dict([])
    bad = cfg.to_dict()
    bad["train"]["epochs"] = 0
    with pytest.raises(ConfigError, match="epochs"):
        ForecastConfig.from_dict(bad)


def test_replace_changes_only_named_fields_and_validates():
    cfg = ForecastConfig()
    new = cfg.replace(window={"horizon": 12}, train={"epochs": 3})
    assert (new.window.horizon, new.train.epochs) == (12, 3)
    assert new.model == cfg.model and new.data == cfg.data and cfg.window.horizon is None
    with pytest.raises(ConfigError, match="horizon"):
        cfg.replace(window={"horizon": 0})


@pytest.mark.parametrize(
    "freq,season,horizon",
    [
        ("h", 24, 24),
        ("30min", 48, 48),
        ("min", 1440, 96),
        ("D", 7, 14),
        ("W", 52, 13),
        ("MS", 12, 12),
        ("QS", 4, 8),
        ("1", 1, 8),
    ],
)
def test_season_and_horizon_follow_the_frequency(freq, season, horizon):
    assert season_length_for(freq) == season
    assert default_horizon_for(freq) == horizon


def test_resolve_fills_only_what_was_left_to_inference():
    cfg = resolve(ForecastConfig(), "h")
    assert (cfg.data.freq, cfg.data.season_length, cfg.window.horizon, cfg.window.input_size) == ("h", 24, 24, 48)
    cfg = resolve(ForecastConfig(data=DataConfig(season_length=7), window=WindowConfig(horizon=3)), "D")
    # input size: two seasons of context, at least two horizons and 8 steps
    assert (cfg.data.season_length, cfg.window.horizon, cfg.window.input_size) == (7, 3, 14)
    cfg = resolve(ForecastConfig(window=WindowConfig(input_size=5)), "MS")
    assert (cfg.data.season_length, cfg.window.horizon, cfg.window.input_size) == (12, 12, 5)


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 129, 3])
def test_model_names_cannot_escape_the_store(name):
    with pytest.raises(ConfigError, match="model_name"):
        check_name("model_name", name)
    check_name("model_name", "sales-v2.daily_1")


def test_refit_must_be_a_boolean():
    with pytest.raises(ConfigError, match="refit='yes' is invalid: must be true or false"):
        TrainConfig(refit="yes")
    assert TrainConfig().refit is False and TrainConfig(refit=True).refit is True  # off by default
