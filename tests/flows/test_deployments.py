"""The scheduled deployments of ``deployments/serve.py``, built without a server (nothing is applied)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.serve import PREDICT_DEPLOYMENT, TRAIN_DEPLOYMENT, build_deployments, served_flows
from flows.predict import predict
from flows.train import train


def _build(env: dict[str, str]) -> dict:
    # an API URL nothing listens on: building must not need a server
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        return {d.name: d for d in build_deployments(env)}


def _crons(deployment) -> list[str]:
    return [s.schedule.cron for s in deployment.schedules]


def test_default_deployments(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    deployments = _build({})
    assert set(deployments) == {TRAIN_DEPLOYMENT, PREDICT_DEPLOYMENT} == {"daily-retrain", "daily-predict"}

    retrain, daily = deployments["daily-retrain"], deployments["daily-predict"]
    assert retrain.flow_name == "train" and daily.flow_name == "predict"
    assert retrain.entrypoint.endswith("flows/train.py:train")
    assert daily.entrypoint.endswith("flows/predict.py:predict")
    assert _crons(retrain) == ["0 2 * * *"] and _crons(daily) == ["30 3 * * *"]  # predict after retraining
    for d in deployments.values():
        assert all(s.schedule.timezone == "UTC" and s.active for s in d.schedules)  # the UI shows the zone
        assert d.version.startswith("0.1.0+") or d.version == "0.1.0"  # the code version, not a hash of the flow
        assert "rnn-forecast" in d.tags

    store = str(Path(tmp_path) / "store")
    assert retrain.parameters == {"store": store, "data": None, "model_name": "default", "margin": 0.01}
    assert daily.parameters == {"store": store, "data": None, "model_name": "default"}


def test_deployments_from_the_environment(tmp_path):
    data = tmp_path / "data.parquet"
    data.touch()
    env = {
        "RNN_FORECAST_STORE": "/srv/forecast/store",
        "RNN_FORECAST_DATA": str(data),
        "RNN_FORECAST_MODEL": "sales",
        "RNN_FORECAST_TRAIN_CRON": "0 1 * * 1",
        "RNN_FORECAST_PREDICT_CRON": "15 6 * * *",
    }
    deployments = _build(env)
    retrain, daily = deployments["daily-retrain"], deployments["daily-predict"]
    assert _crons(retrain) == ["0 1 * * 1"] and _crons(daily) == ["15 6 * * *"]
    common = {"store": "/srv/forecast/store", "data": str(data), "model_name": "sales"}
    assert retrain.parameters == {**common, "margin": 0.01}
    assert daily.parameters == common
    # the parameters pass the flows' own validation (what a scheduled run would do first)
    train.validate_parameters(retrain.parameters)
    predict.validate_parameters(daily.parameters)


@pytest.mark.parametrize("name", ["daily-retrain", "daily-predict"])
def test_one_run_at_a_time_and_late_runs_are_cancelled(name):
    deployment = _build({})[name]
    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW


def test_scale_out_settings_from_the_environment(tmp_path):
    env = {
        "RNN_FORECAST_STORE": str(tmp_path / "store"),
        "RNN_FORECAST_PARTITIONS": "8",
        "RNN_FORECAST_TASK_RUNNER": "dask",
        "RNN_FORECAST_DASK_ADDRESS": "tcp://127.0.0.1:8786",
    }
    deployments = _build(env)
    for name in ("daily-retrain", "daily-predict"):
        params = deployments[name].parameters
        assert (params["partitions"], params["task_runner"], params["dask_address"]) == (
            8,
            "dask",
            "tcp://127.0.0.1:8786",
        )
    train.validate_parameters(deployments["daily-retrain"].parameters)
    predict.validate_parameters(deployments["daily-predict"].parameters)
    # the served flows already run their mapped tasks on that cluster (no nested subflow per run)
    from prefect_dask import DaskTaskRunner

    flows = served_flows(env)
    assert all(
        isinstance(f.task_runner, DaskTaskRunner) and f.task_runner.address == "tcp://127.0.0.1:8786" for f in flows
    )


def test_the_run_form_describes_every_parameter_and_offers_the_choices():
    """Issue 15.6: every flow parameter has a description, and fixed-choice config fields are enums
    (dropdowns in the Run form)."""
    from flows.backtest import backtest
    from flows.pipeline import backfill, pipeline
    from flows.predict import predict
    from flows.train import train

    for flow in (train, predict, pipeline, backtest, backfill):
        schema = flow.parameters.model_dump()
        undescribed = [name for name, spec in schema["properties"].items() if not spec.get("description")]
        assert undescribed == [], (flow.name, undescribed)
    definitions = train.parameters.model_dump()["definitions"]
    assert definitions["ModelConfig"]["properties"]["cell"]["enum"] == ["simple_rnn", "lstm", "gru"]
    assert definitions["TrainConfig"]["properties"]["scaler"]["enum"][0] == "window"
    assert definitions["DataConfig"]["properties"]["on_gap"]["enum"] == ["error", "drop", "fill"]
