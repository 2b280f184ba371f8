"""Training tasks: index the windows, fit the model with per-epoch logging and a UI progress bar."""

from __future__ import annotations

import keras
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from rnn_model.config import ForecastConfig
from rnn_model.distribute import get_strategy, replicas
from rnn_model.panel import Panel
from rnn_model.training import TrainResult, WindowPlan, plan_windows, refit, train

from ._options import COMPUTE, artifact_key

__all__ = ["build_windows", "prepare_strategy", "train_model", "refit_model", "PrefectProgress"]


class PrefectProgress(keras.callbacks.Callback):
    """One log line per epoch with the losses, and a progress artifact the UI updates live."""

    def __init__(self, epochs: int, key: str):
        super().__init__()
        self.epochs, self.key, self.artifact_id = epochs, key, None
        self.logger = get_run_logger()

    def on_train_begin(self, logs=None):
        self.artifact_id = create_progress_artifact(0.0, key=self.key, description="Training progress (epochs)")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        losses = ", ".join(f"{k}={v:.5f}" for k, v in sorted(logs.items()) if "loss" in k)
        self.logger.info("epoch %d/%d: %s", epoch + 1, self.epochs, losses)
        update_progress_artifact(self.artifact_id, 100.0 * (epoch + 1) / self.epochs)

    def on_train_end(self, logs=None):
        update_progress_artifact(self.artifact_id, 100.0)  # early stopping ends before the last epoch


@task(name="build-windows", **COMPUTE)
def build_windows(panel: Panel, config: ForecastConfig) -> WindowPlan:
    plan = plan_windows(panel, config)
    get_run_logger().info("windows: %d for training, %d for validation", len(plan.train_starts), len(plan.val_starts))
    return plan


@task(name="distribution-strategy", **COMPUTE)
def prepare_strategy(name: str) -> int:
    """Build the training strategy once for this process (multi_worker must exist before TF initialises)."""
    n = replicas(get_strategy(name))
    get_run_logger().info("strategy %s: %d replica(s) in sync; batch_size is the global batch", name, n)
    return n


@task(name="train-model", timeout_seconds=6 * 3600, **COMPUTE)
def train_model(panel: Panel, config: ForecastConfig, plan: WindowPlan, model_name: str) -> TrainResult:
    progress = PrefectProgress(config.train.epochs, artifact_key(model_name, "train", "training-progress"))
    result = train(panel, config, plan, callbacks=[progress])
    get_run_logger().info("trained %s in %.1fs; best epoch %d%s", config.model.cell, result.seconds, result.best_epoch,
                          f" ({config.train.strategy}, {result.extra['replicas']} replicas)"
                          if config.train.strategy != "default" else "")
    if "scaler" in result.extra:  # scaler="auto": one model per scaler, the better one kept
        get_run_logger().info("scaler: %s kept (validation MASE %s)", result.extra["scaler"]["chosen"],
                              result.extra["scaler"]["validation_mase"])
    return result


@task(name="refit-model", timeout_seconds=6 * 3600, **COMPUTE)
def refit_model(panel: Panel, config: ForecastConfig, result: TrainResult, model_name: str) -> TrainResult:
    """The model about to become champion, trained again for its best epoch count on all the data."""
    refitted = refit(panel, config, result, callbacks=[PrefectProgress(result.best_epoch, artifact_key(model_name, "train", "training-progress"))])
    info = refitted.extra["refit"]
    get_run_logger().info("refitted on all %d windows (%d before: the held-out horizons too) for %d epochs in %.1fs",
                          info["windows"], info["windows_before"], info["epochs"], info["seconds"])
    return refitted
