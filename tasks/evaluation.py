"""Evaluation tasks: challenger, champion, naive and seasonal naive on the same held-out windows; the
promotion gate's decision on them (``promotion_decision``, a plain function: pure, and recorded by the
``promote`` task)."""

from __future__ import annotations

from typing import TypeGuard

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from rnn_model.bundle import Bundle
from rnn_model.config import ForecastConfig
from rnn_model.evaluation import Scores, backtest, evaluate, mase_scales, score
from rnn_model.outputs import write_backtest_report
from rnn_model.panel import Panel
from rnn_model.partitions import PartitionOutcome
from rnn_model.prediction import Forecaster
from rnn_model.stages import promotion_decision

from ._options import COMPUTE, IO_RETRY, artifact_key

__all__ = [
    "evaluate_models",
    "comparable",
    "promotion_decision",
    "backtest_group",
    "score_backtest",
    "write_report",
]


def comparable(champion: Bundle | None, config: ForecastConfig) -> TypeGuard[Bundle]:
    """A champion can be scored on the challenger's windows when it forecasts the same horizon and freq."""
    if champion is None:
        return False
    c = champion.forecaster.config
    return c.window.horizon == config.window.horizon and c.data.freq == config.data.freq


_DECIMALS = {"mase": 4, "mae": 4, "rmse": 4, "smape": 2}


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows for a table artifact: MASE (the gate's metric) first, one number of decimals per metric."""
    columns = [c for c in frame.columns if c not in _DECIMALS] + [c for c in _DECIMALS if c in frame.columns]
    return [
        {k: (round(v, _DECIMALS.get(k, 4)) if isinstance(v, float) else v) for k, v in row.items()}
        for row in frame[columns].to_dict("records")
    ]


def _mase_by_step(per_step: pd.DataFrame) -> list[dict]:
    """One row per horizon step, one MASE column per model (not one row per step and model)."""
    wide = per_step.pivot(index="horizon_step", columns="model", values="mase").round(4)
    return [
        {"horizon_step": int(step), **{f"{m} mase": float(v) for m, v in row.items()}} for step, row in wide.iterrows()
    ]


@task(name="evaluate-models", **COMPUTE)
def evaluate_models(
    challenger: Forecaster, champion: Bundle | None, panel: Panel, config: ForecastConfig, model_name: str
) -> tuple[pd.DataFrame, Scores]:
    logger = get_run_logger()
    models = {"challenger": challenger}
    if comparable(champion, config):
        models["champion"] = champion.forecaster
    elif champion is not None:
        logger.warning("champion has a different horizon or freq; it is not scored on these windows")
    forecasts, scores = evaluate(models, panel, config)
    overall = scores.overall.reset_index()
    create_table_artifact(
        _records(overall),
        key=artifact_key(model_name, "train", "metrics"),
        description="Held-out metrics: challenger vs champion vs naive vs seasonal naive",
    )
    create_table_artifact(
        _mase_by_step(scores.per_step),
        key=artifact_key(model_name, "train", "metrics-per-step"),
        description="Held-out MASE per horizon step and model",
    )
    for row in overall.itertuples():
        logger.info(
            "%-15s MASE %.4f  MAE %.4f  RMSE %.4f  sMAPE %.2f", row.model, row.mase, row.mae, row.rmse, row.smape
        )
    return forecasts, scores


@task(name="backtest", **COMPUTE)
def backtest_group(group: PartitionOutcome, bundle: Bundle, n_windows: int) -> tuple[pd.DataFrame, pd.Series]:
    """Rolling-origin backtest of a stored model on one group of series over the last ``n_windows``
    horizons (no refit): the long forecasts and the series' MASE scales."""
    assert group.panel is not None  # only groups with series left are backtested
    config = bundle.forecaster.config
    forecasts = backtest({"model": bundle.forecaster}, group.panel, config, n_windows)
    return forecasts, mase_scales(group.panel, config, n_windows)


@task(name="backtest-scores", **COMPUTE)
def score_backtest(
    results: list[tuple[pd.DataFrame, pd.Series]], n_windows: int, model_name: str
) -> tuple[pd.DataFrame, Scores]:
    """The groups' backtests scored together (per-series MASE averaged over all series)."""
    forecasts = pd.concat([f for f, _ in results], ignore_index=True) if len(results) > 1 else results[0][0]
    scales = pd.concat([s for _, s in results]) if len(results) > 1 else results[0][1]
    scores = score(forecasts, scales)
    create_table_artifact(
        _records(scores.overall.reset_index()),
        key=artifact_key(model_name, "backtest", "metrics"),
        description=f"Backtest over {n_windows} windows",
    )
    return forecasts, scores


@task(name="write-report", **IO_RETRY)
def write_report(forecasts: pd.DataFrame, scores: Scores, store: str, run_name: str) -> str:
    """``reports/<run>/backtest.parquet`` and ``metrics.json``."""
    return str(write_backtest_report(forecasts, scores, store, run_name))
