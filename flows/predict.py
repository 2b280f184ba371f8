"""The prediction flow: ingest the latest data -> load the champion -> forecast -> write Parquet."""

from __future__ import annotations


from prefect import flow

from rnn_model.config import ForecastConfig
from rnn_model.stages import config_for_model
from rnn_model.outputs import as_of_label
from rnn_model.registry import store_lock
from tasks.data import load_table, validate_data
from tasks.prediction import forecast, publish_plot, write_partition
from tasks.registry import load_model
from tasks.sample import sample_data_path

from .params import AsOf, DataPath, ModelName, Version

__all__ = ["predict"]


@flow(name="predict", log_prints=True, validate_parameters=True)
def predict(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    model_version: Version = None,
) -> dict:
    """Forecast every series after its last observation (up to ``as_of``) with the champion (or
    ``model_version``) and write ``predictions/as_of=<date>/``. Without a champion, or for series the
    model cannot cover, seasonal-naive forecasts are written and labelled ``seasonal_naive``."""
    with store_lock(store):
        label = as_of_label(as_of)
        version, bundle = load_model(store, model_name, model_version)
        if bundle is not None:  # the model decides horizon, input size and freq; the data its column names
            config = config_for_model(bundle.forecaster.config, config)
        path = data or sample_data_path(store)
        table = load_table(path, config.data)
        panel, _, resolved = validate_data(table, config, as_of, "predict", model_name)
        frame = forecast(panel, bundle, version, resolved, label, model_name)
        out = write_partition(frame, store, label)
        publish_plot(panel, frame, model_name)
        fallback = sorted(frame.loc[frame.model_version == "seasonal_naive", "unique_id"].unique())
        return {"predictions": out, "rows": len(frame), "model_version": version, "fallback_series": fallback}
