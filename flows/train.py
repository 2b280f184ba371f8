"""The retraining flow: ingest -> validate (per group of series) -> window -> train -> evaluate ->
register -> promote."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Optional

from prefect import flow, get_run_logger

from rnn_model.config import ForecastConfig
from tasks.data import load_table
from tasks.evaluation import comparable, evaluate_models, promotion_decision
from tasks.outcome import alert_on_failure, finished, run_name
from tasks.registry import load_champion, promote, register_challenger, rollback
from tasks.sample import sample_data_path
from tasks.store import as_of_label, store_lock, writes_results
from tasks.training import build_windows, prepare_strategy, refit_model, train_model

from .params import AsOf, DataPath, Margin, ModelName, Partitions, Version, documented
from .partitioned import Validated, validate_groups
from .runners import TaskRunnerName, runs_on, with_task_runner

if TYPE_CHECKING:
    from rnn_model.panel import Panel

__all__ = ["train", "train_steps"]


@flow(
    name="train",
    flow_run_name=run_name("train"),
    log_prints=True,
    validate_parameters=True,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
@documented
def train(
    data: DataPath = None,
    store: str = "store",
    config: ForecastConfig = ForecastConfig(),
    as_of: AsOf = None,
    model_name: ModelName = "default",
    margin: Margin = 0.01,
    force_promote: bool = False,
    rollback_to: Version = None,
    partitions: Partitions = 1,
    task_runner: TaskRunnerName = "thread",
    dask_address: Optional[str] = None,
) -> dict:
    """Train a challenger on data up to ``as_of`` and promote it if it beats the champion and seasonal
    naive on the same held-out windows. ``rollback_to=vNNNN`` only moves the champion pointer back.
    ``data=None`` uses the embedded sample panel. ``partitions``: groups of series validated in parallel
    on ``task_runner``; the model is one global model, trained in this process (``config.train.strategy``
    spreads it over devices or machines)."""
    params = dict(locals())  # the parameters as given: run once more, with them, on the requested runner
    if not runs_on(task_runner, dask_address):
        return finished("train", model_name, with_task_runner(train, task_runner, dask_address)(**params))
    # multi_worker: every worker runs this flow in lockstep; only the chief locks and writes the store
    chief = writes_results(config.train.strategy)
    with store_lock(store) if chief else nullcontext():
        if rollback_to:
            version = rollback(store, model_name, rollback_to)
            return finished("train", model_name, {"champion": version, "promoted": False, "rollback": True})
        if config.train.strategy != "default":
            prepare_strategy(config.train.strategy)  # before anything initialises TensorFlow (multi_worker)
        path = data or sample_data_path(store)
        table = load_table(path, config.data)
        validated = validate_groups(table, config, as_of, "train", model_name, partitions)
        del table
        panel = validated.train_panel
        assert panel is not None  # validated for training
        return finished(
            "train",
            model_name,
            train_steps(path, store, panel, validated, as_of, model_name, margin, force_promote, partitions, chief),
        )


def train_steps(
    path: str,
    store: str,
    panel: Panel,
    validated: Validated,
    as_of: AsOf,
    model_name: str,
    margin: float,
    force_promote: bool,
    partitions: int,
    chief: bool,
) -> dict:
    """Train on ``panel`` (validated, locked by the caller) -> evaluate -> register -> promote, in the
    calling flow run (``pipeline`` runs them without a subflow: a subflow costs the API round trips of a
    flow run of its own). ``chief``: this process writes the store (always, except multi_worker's others)."""
    report, resolved = validated.report, validated.resolved
    span = {"as_of": as_of_label(as_of), "data": report.span, "stale_data": report.stale}
    plan = build_windows(panel, resolved)
    champion_version, champion, champion_problem = load_champion(store, model_name)
    result = train_model(panel, resolved, plan, model_name)
    forecasts, scores = evaluate_models(result.forecaster, champion, panel, resolved, model_name)
    through = champion.meta.get("trained_through") if champion is not None else None
    decision = promotion_decision(forecasts, scores, margin, through, [champion_problem] if champion_problem else [])
    if resolved.train.refit and (decision.promote or force_promote):  # every worker: training is in lockstep
        result = refit_model(panel, resolved, result, model_name)
    if not (chief and result.extra.get("chief", True)):  # multi_worker: only the chief writes the store
        get_run_logger().info("multi_worker: this worker is not the chief; the chief registers the model")
        return {
            "version": None,
            "promoted": False,
            "reasons": ["not the chief worker: nothing registered"],
            "champion": champion_version,
            "metrics": scores.overall.reset_index().to_dict("records"),
            "model_dir": None,
            **span,
        }
    meta = {
        "data_fingerprint": panel.fingerprint(),
        "data_path": str(path),
        "as_of": as_of,
        "n_series": panel.n_series,
        "champion_at_training": champion_version,
        "champion_compared": comparable(champion, resolved),
        "partitions": partitions,
        "strategy": resolved.train.strategy,
        "replicas": result.extra.get("replicas", 1),
        "refit": result.extra.get("refit"),
        "scaler": result.extra.get("scaler"),
        "long_season": report.long_season,  # whether the week is used and why (rnn_model.seasons)
        "trained_through": result.extra.get("trained_through"),
    }
    version = register_challenger(store, model_name, result, scores.to_dict(), meta)
    promoted = promote(store, model_name, version, decision, force_promote)
    get_run_logger().info("model %s/%s %s", model_name, version, "is champion" if promoted else "kept as candidate")
    return {
        "version": version,
        "promoted": promoted,
        "reasons": decision.reasons,
        "champion": version if promoted else champion_version,
        "champion_before": champion_version,
        "metrics": scores.overall.reset_index().to_dict("records"),
        "evidence": decision.evidence,
        "model_dir": f"{store}/models/{model_name}/{version}",
        "long_season": report.long_season,
        **span,
    }
