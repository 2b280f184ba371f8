"""Backtest a stored model (the champion by default) over rolling origins, without refitting."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from prefect import flow
from pydantic import Field

from rnn_model.config import ForecastConfig
from rnn_model.stages import config_for_model
from rnn_model.errors import RegistryError
from tasks.data import load_table, validate_data
from tasks.evaluation import run_backtest, write_report
from tasks.registry import load_model
from tasks.sample import sample_data_path

from .params import AsOf, DataPath, ModelName, Version

__all__ = ["backtest"]


@flow(name="backtest", log_prints=True, validate_parameters=True)
def backtest(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    model_version: Version = None,
    n_windows: Annotated[int, Field(ge=1, le=1000)] = 4,
) -> dict:
    version, bundle = load_model(store, model_name, model_version)
    if bundle is None:
        raise RegistryError(f"no champion for model {model_name!r} in {store}; run `rnn-forecast train` first")
    config = config_for_model(bundle.forecaster.config, config)
    table = load_table(data or sample_data_path(store), config.data)
    panel, _, _ = validate_data(table, config, as_of, "predict", model_name)
    forecasts, scores = run_backtest(bundle, panel, n_windows, model_name)
    run_name = f"backtest-{version}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    folder = write_report(forecasts, scores, store, run_name)
    return {"report": folder, "model_version": version, "metrics": scores.overall.reset_index().to_dict("records")}
