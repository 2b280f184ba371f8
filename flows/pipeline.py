"""The main job: retrain (and maybe promote), then predict with the champion. Also backfills."""

from __future__ import annotations


from prefect import flow

from rnn_model.config import ForecastConfig
from rnn_model.outputs import as_of_range
from rnn_model.registry import store_lock

from .params import AsOf, DataPath, Margin, ModelName
from .predict import predict
from .train import train

__all__ = ["pipeline", "backfill"]


@flow(name="pipeline", log_prints=True, validate_parameters=True)
def pipeline(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    margin: Margin = 0.01,
    force_promote: bool = False,
) -> dict:
    """``train`` then ``predict`` as subflows, on the same data and ``as_of``."""
    with store_lock(store):
        trained = train(data=data, store=store, config=config, as_of=as_of, model_name=model_name,
                        margin=margin, force_promote=force_promote)
        predicted = predict(data=data, store=store, config=config, as_of=as_of, model_name=model_name)
        return {"train": trained, "predict": predicted}


@flow(name="backfill", log_prints=True, validate_parameters=True)
def backfill(
    start: str,
    end: str,
    every: str = "D",
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    model_name: ModelName = "default",
    margin: Margin = 0.01,
) -> list[dict]:
    """Run ``pipeline`` for each ``as_of`` from ``start`` to ``end`` (every ``every``), oldest first."""
    return [
        pipeline(data=data, store=store, config=config, as_of=as_of, model_name=model_name, margin=margin)
        for as_of in as_of_range(start, end, every)
    ]
