"""Training tasks: index the windows, fit the model with per-epoch logging and a UI progress bar."""

from __future__ import annotations

import keras
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from rnn_model.config import ForecastConfig
from rnn_model.distribute import get_strategy, replicas
from rnn_model.panel import Panel
from rnn_model.training import TrainResult, WindowPlan, plan_windows, refit, train

from ._options import COMPUTE, artifact_key

__all__ = ["build_windows", "prepare_strategy", "train_model", "refit_model", "PrefectProgress", "loss_curve"]


class PrefectProgress(keras.callbacks.Callback):
    """Per fit (``scaler="auto"`` trains one model per scaler; a refit is one more): a progress artifact
    the UI updates live, one log line per epoch naming the fit, and at the end a loss-curve table that
    marks the epoch kept. ``label``: "fit" (numbered per fit: fit 1, fit 2) or "refit"."""

    def __init__(self, model_name: str, label: str = "fit", members: int = 1):
        super().__init__()
        self.model_name, self.label, self.members = model_name, label, members
        self.fits, self.artifact_id, self.epochs = 0, None, 0
        self.losses: list[dict] = []
        self.logger = get_run_logger()

    @property
    def name(self) -> str:
        return self.label if self.label == "refit" else f"{self.label} {self.fits}"

    def _key(self, what: str) -> str:
        return artifact_key(self.model_name, "train", what, self.name)

    def on_train_begin(self, logs=None):
        self.fits += 1
        self.epochs, self.losses = int(self.params.get("epochs") or 0), []
        who = f"{self.members} members in one graph" if self.members > 1 else "one model"
        self.artifact_id = create_progress_artifact(
            0.0, key=self._key("progress"), description=f"Training progress, {self.name} ({who}, {self.epochs} epochs)"
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if "loss" in k}
        self.losses.append(logs)
        losses = ", ".join(f"{k}={v:.5f}" for k, v in sorted(logs.items()))
        self.logger.info("%s: epoch %d/%d: %s", self.name, epoch + 1, self.epochs, losses)
        update_progress_artifact(self.artifact_id, 100.0 * (epoch + 1) / max(self.epochs, 1))

    def on_train_end(self, logs=None):
        update_progress_artifact(self.artifact_id, 100.0)  # early stopping ends before the last epoch
        if self.losses:
            create_table_artifact(
                loss_curve(self.losses),
                key=self._key("loss"),
                description=f"Loss per epoch, {self.name}: the kept epoch is marked",
            )


def loss_curve(losses: list[dict], rows: int = 20) -> list[dict]:
    """The loss table of one fit: every epoch when there are at most ``rows``, else ``rows`` evenly spaced
    ones plus the first, the kept and the last. The kept epoch is the lowest ``val_loss`` (early stopping
    restores it), or the last one without validation (a fixed budget keeps the final weights)."""
    n = len(losses)
    val = [e.get("val_loss", float("nan")) for e in losses]
    finite = [v for v in val if v == v]
    kept = val.index(min(finite)) if finite else n - 1
    spaced = range(n) if n <= rows else (round(i * (n - 1) / (rows - 1)) for i in range(rows))
    shown = sorted({0, kept, n - 1, *spaced})
    return [
        {
            "epoch": i + 1,
            **{k: round(v, 6) for k, v in sorted(losses[i].items())},
            "kept": "<- kept" if i == kept else "",
        }
        for i in shown
    ]


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
    result = train(panel, config, plan, callbacks=[PrefectProgress(model_name, "fit", config.model.members)])
    get_run_logger().info(
        "trained %s in %.1fs; best epoch %d%s",
        config.model.cell,
        result.seconds,
        result.best_epoch,
        f" ({config.train.strategy}, {result.extra['replicas']} replicas)"
        if config.train.strategy != "default"
        else "",
    )
    if "scaler" in result.extra:  # scaler="auto": one model per scaler, the better one kept
        get_run_logger().info(
            "scaler: %s kept (validation MASE %s)",
            result.extra["scaler"]["chosen"],
            result.extra["scaler"]["validation_mase"],
        )
    return result


@task(name="refit-model", timeout_seconds=6 * 3600, **COMPUTE)
def refit_model(panel: Panel, config: ForecastConfig, result: TrainResult, model_name: str) -> TrainResult:
    """The model about to become champion, trained again for its best epoch count on all the data."""
    refitted = refit(panel, config, result, callbacks=[PrefectProgress(model_name, "refit", config.model.members)])
    info = refitted.extra["refit"]
    get_run_logger().info(
        "refitted on all %d windows (%d before: the held-out horizons too) for %d epochs in %.1fs",
        info["windows"],
        info["windows_before"],
        info["epochs"],
        info["seconds"],
    )
    return refitted
