"""Bad parameters are rejected by Prefect's parameter validation, before any task runs: the flow run is
FAILED with a ParameterTypeError naming the field, it has no task runs, and the store is not touched."""

from __future__ import annotations

import pytest
from prefect.exceptions import ParameterTypeError

from flows.backtest import backtest
from flows.pipeline import pipeline
from flows.predict import predict
from flows.train import train

from ._support import run_api, task_runs_of

CASES = [
    # (flow, bad keyword arguments, text the failure message must contain)
    (train, {"config": {"train": {"epochs": 0}}}, "epochs=0"),
    (train, {"config": {"model": {"cell": "transformer"}}}, "config.model.cell"),
    (train, {"margin": 2}, "margin"),
    (train, {"as_of": "../x"}, "as_of"),
    (train, {"model_name": "../evil"}, "model_name"),
    (train, {"data": "/does/not/exist"}, "data"),
    (train, {"rollback_to": "latest"}, "rollback_to"),
    (pipeline, {"margin": -0.1}, "margin"),
    (pipeline, {"config": {"window": {"horizon": 0}}}, "horizon=0"),
    (predict, {"as_of": "2026-13-45"}, "as_of"),
    (predict, {"model_version": "../v1"}, "model_version"),
    (backtest, {"n_windows": 0}, "n_windows"),
    (predict, {"partitions": 0}, "partitions"),
    (train, {"task_runner": "spark"}, "task_runner"),
    (train, {"config": {"train": {"strategy": "tpu"}}}, "config.train.strategy"),
]


@pytest.mark.parametrize("flow_fn, kwargs, field", CASES, ids=[f"{c[0].name}-{next(iter(c[1]))}-{c[2]}" for c in CASES])
def test_bad_parameter_fails_the_run_before_any_task(flow_fn, kwargs, field, tmp_path):
    store = tmp_path / "store"
    state = flow_fn(store=str(store), **kwargs, return_state=True)

    assert state.is_failed()
    assert state.message.startswith("Validation of flow parameters failed"), state.message
    assert field in state.message, state.message
    assert isinstance(state.result(raise_on_failure=False), ParameterTypeError)
    with pytest.raises(ParameterTypeError, match=field.replace("(", r"\(")):
        state.result()

    assert run_api(task_runs_of, state.state_details.flow_run_id) == []  # no task ran
    assert not store.exists()  # not even the store lock was taken


def test_field_is_named_in_the_message(tmp_path):
    """The message lists the parameter path, e.g. ``config.train: ... epochs=0 ...``."""
    state = train(store=str(tmp_path / "s"), config={"train": {"epochs": 0}}, return_state=True)
    assert "config.train" in state.message and "epochs=0 is invalid" in state.message, state.message
    state = train(store=str(tmp_path / "s"), data="/does/not/exist", return_state=True)
    assert " - data: " in state.message and "input not found" in state.message, state.message


def test_cli_model_options_map_onto_the_config():
    from flows.cli import build_parser, config_from_args

    default = config_from_args(build_parser().parse_args(["run"]))
    assert default.train.refit is False and default.model.anchor == "seasonal_naive"
    assert (default.model.members, default.train.scaler, default.window.test_windows) == (5, "window", 3)
    chosen = config_from_args(build_parser().parse_args(["run", "--refit", "--anchor", "none", "--epochs", "3"]))
    assert (chosen.train.refit, chosen.model.anchor, chosen.train.epochs) == (True, "none", 3)
    assert chosen.train.steps is None  # --epochs alone trains by epochs, not the default budget of steps
    budget = config_from_args(build_parser().parse_args(["run", "--steps", "120", "--epochs", "3"]))
    assert (budget.train.steps, budget.train.epochs) == (120, 3)
    assert config_from_args(build_parser().parse_args(["run"])).train.steps == 500
    assert config_from_args(build_parser().parse_args(["run", "--no-refit"])).train.refit is False
    chosen = config_from_args(
        build_parser().parse_args(
            ["train", "--members", "2", "--test-windows", "4", "--val-windows", "0", "--scaler", "standard"]
        )
    )
    assert (chosen.model.members, chosen.window.test_windows, chosen.window.val_windows, chosen.train.scaler) == (
        2,
        4,
        0,
        "standard",
    )
    assert default.train.member_windows == "shared"
    own = config_from_args(build_parser().parse_args(["run", "--member-windows", "own"]))
    assert own.train.member_windows == "own"
    weekly = config_from_args(build_parser().parse_args(["run", "--long-season", "336", "--rnn-steps", "96"]))
    assert (weekly.model.long_season, weekly.model.rnn_steps) == (336, 96)
    with pytest.raises(SystemExit):  # one or the other
        build_parser().parse_args(["run", "--refit", "--no-refit"])


def _a_value_other_than_the_default(cls, field):
    """``(value, argv)``: a valid value of ``cls.field`` other than its default, and the ``run`` options that
    ask for it."""
    from typing import Literal, get_args, get_origin, get_type_hints

    option = "--" + field.name.replace("_", "-")
    hint = get_type_hints(cls)[field.name]
    if get_origin(hint) is Literal:
        value = next(c for c in get_args(hint) if c != field.default)
        return value, [option, value]
    kind = next(k for k in (get_args(hint) or (hint,)) if k is not type(None))
    if kind is bool:  # a flag pair: --refit / --no-refit
        return not field.default, [option if not field.default else "--no-" + option[2:]]
    if kind is str:
        value = {"freq": "D"}.get(field.name, "x_col")
    elif field.name in ("dropout", "learning_rate"):  # fractions
        value = 0.25 if field.name == "dropout" else field.default / 2
    else:  # one more than the default (None: inferred or off), within every count's range
        value = kind(field.default + 1) if isinstance(field.default, (int, float)) else kind(3)
    assert value != field.default, field.name
    return value, [option, str(value)]


def test_every_config_field_is_reachable_from_the_cli_and_the_flow_parameters():
    """Each field of each config section: an option of ``run`` sets it, and the flows' parameter schema
    (the run form in the UI, deployments) offers it."""
    import dataclasses

    from flows.cli import build_parser, config_from_args
    from rnn_model.config import ForecastConfig

    schema = {flow.name: flow.parameters.model_dump()["definitions"] for flow in (train, pipeline, predict)}
    unreachable, checked = [], 0
    for section in dataclasses.fields(ForecastConfig):
        cls = type(getattr(ForecastConfig(), section.name))
        for field in dataclasses.fields(cls):
            checked += 1
            for name, definitions in schema.items():
                if field.name not in definitions[cls.__name__]["properties"]:
                    unreachable.append(f"{name} flow parameter config.{section.name}.{field.name}")
            value, argv = _a_value_other_than_the_default(cls, field)
            try:
                got = getattr(
                    getattr(config_from_args(build_parser().parse_args(["run", *argv])), section.name), field.name
                )
            except SystemExit:  # argparse: no such option
                got = "<no such option>"
            if got != value:
                unreachable.append(f"{' '.join(argv)} -> config.{section.name}.{field.name} = {got!r}, not {value!r}")
    assert checked >= 40 and unreachable == []
