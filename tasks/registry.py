"""Registry tasks: load the champion, register the challenger, apply the promotion gate, roll back."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from rnn_model.bundle import Bundle, save_bundle
from rnn_model.errors import RegistryError
from rnn_model.registry import ModelRegistry, PromotionDecision
from rnn_model.training import TrainResult

from ._options import COMPUTE, IO_RETRY, artifact_key

__all__ = ["load_model", "load_champion", "register_challenger", "promote", "rollback"]


@task(name="load-model", **IO_RETRY)
def load_model(store: str, model_name: str, version: str | None = None) -> tuple[str | None, Bundle | None]:
    """The given version, else the champion, else (None, None) when there is no champion yet."""
    registry = ModelRegistry(store, model_name)
    version = version or registry.champion()
    if version is None:
        get_run_logger().info("no champion yet for model %r", model_name)
        return None, None
    bundle = registry.load(version)
    get_run_logger().info("loaded model %s/%s", model_name, version)
    return version, bundle


@task(name="load-champion", **IO_RETRY)
def load_champion(store: str, model_name: str) -> tuple[str | None, Bundle | None, str | None]:
    """For retraining: (version, bundle, problem). A champion that cannot be loaded is not fatal here:
    it is reported, not compared, and a challenger that beats seasonal naive replaces it."""
    registry = ModelRegistry(store, model_name)
    try:
        version = registry.champion()
        bundle = registry.load(version) if version else None
    except RegistryError as exc:  # ModelLoadError included; transient OSErrors are retried instead
        problem = f"current champion is unusable ({exc})"
        get_run_logger().error(
            "%s; it is not compared and will be replaced by a challenger that beats seasonal naive", problem
        )
        return None, None, problem
    return version, bundle, None


@task(name="register-challenger", **IO_RETRY)
def register_challenger(store: str, model_name: str, result: TrainResult, metrics: dict, meta: dict) -> str:
    registry = ModelRegistry(store, model_name)
    meta = {
        **meta,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "n_train_windows": result.n_train_windows,
        "train_seconds": round(result.seconds, 3),
    }
    version = registry.register(lambda tmp: save_bundle(tmp, result.forecaster, metrics, meta, pending=True))
    get_run_logger().info("registered %s/%s", model_name, version)
    return version


@task(name="promote", **COMPUTE)
def promote(store: str, model_name: str, version: str, decision: PromotionDecision, force: bool) -> bool:
    """Record the decision with the version and move the champion pointer when it passes (or is forced)."""
    registry = ModelRegistry(store, model_name)
    try:
        before = registry.champion()
    except RegistryError:  # a corrupt pointer: load_champion already reported it; promotion mends it
        before = "unreadable"
    promoted = decision.promote or force
    reasons = list(decision.reasons) + (["forced by force_promote=True"] if force and not decision.promote else [])
    if promoted:  # pointer first: if this fails, decision.json still says "not promoted (pending)"
        registry.set_champion(version, "; ".join(reasons))
    registry.record_decision(
        version,
        {
            "promoted": promoted,
            "reasons": reasons,
            "forced": force and not decision.promote,
            "evidence": decision.evidence,
        },
    )
    shown = PromotionDecision(
        promoted,
        reasons,
        decision.challenger_mase,
        decision.champion_mase,
        decision.seasonal_naive_mase,
        decision.evidence,
    )
    where = registry.root / version
    card = shown.to_markdown(version) + (
        f"\n\n- champion before: {f'`{before}`' if before else 'none'}; champion now: "
        f"`{version if promoted else before}`\n- bundle: `{where}`\n- decision: `{where / 'decision.json'}`"
        if promoted or before
        else f"\n\n- no champion yet: predictions are seasonal naive until a challenger passes\n- bundle: `{where}`"
        f"\n- decision: `{where / 'decision.json'}`"
    )
    create_markdown_artifact(card, key=artifact_key(model_name, "train", "promotion"), description="Promotion decision")
    log = get_run_logger().info if promoted else get_run_logger().warning
    log("challenger %s %s: %s", version, "promoted" if promoted else "not promoted", "; ".join(reasons))
    return promoted


@task(name="rollback", **COMPUTE)
def rollback(store: str, model_name: str, version: str) -> str:
    registry = ModelRegistry(store, model_name)
    registry.load(version)  # refuse to point the champion at a bundle that does not load
    previous = registry.previous_champion()  # never raises: a rollback is how a broken pointer is mended
    registry.set_champion(version, f"rollback from {previous}")
    create_markdown_artifact(
        f"### Rollback\n\nChampion set to `{version}` (was `{previous}`).",
        key=artifact_key(model_name, "train", "promotion"),
        description="Promotion decision",
    )
    get_run_logger().warning("champion rolled back from %s to %s", previous, version)
    return version
