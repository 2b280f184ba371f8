"""Training: seeded, deterministic, early-stopped on a temporal validation split."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import numpy as np

from .baselines import seasonal_naive_scale
from .config import ForecastConfig
from .distribute import build_before_fit, get_strategy, is_chief, multi_worker_logs, replicas
from .errors import DataValidationError
from .gate import ds_to_json
from .model import build_ensemble
from .normalization import window_transform
from .panel import Panel
from .prediction import Forecaster
from .scaling import fit_scaler
from .windowing import cap_windows, gather_windows, make_dataset, make_split, window_starts

__all__ = [
    "AUTO_SCALERS",
    "TrainResult",
    "WindowPlan",
    "plan_windows",
    "set_seed",
    "train",
    "refit",
    "min_train_length",
    "validation_mase",
]


@dataclass
class TrainResult:
    forecaster: Forecaster
    history: dict[str, list[float]]
    best_epoch: int
    n_train_windows: int
    n_val_windows: int
    seconds: float
    extra: dict = field(default_factory=dict)


def set_seed(seed: int) -> None:
    """One seed for Python, NumPy and TF, with deterministic TF kernels: same data + seed = same bits."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def min_train_length(config: ForecastConfig) -> int:
    """Observed points a series needs to give one training window (``input_size + horizon``); its
    validation and test horizons are held out only where they fit (windowing.make_split)."""
    w = config.window
    assert w.input_size is not None and w.horizon is not None  # filled in by config.resolve
    return w.input_size + w.horizon


@dataclass(frozen=True)
class WindowPlan:
    """Which windows train and which validate: int64 buffer starts (see windowing.py)."""

    train_starts: np.ndarray  # [n_train]
    val_starts: np.ndarray  # [n_val]
    train_end: np.ndarray  # [n_series] first slot of each series not used for fitting
    val_end: np.ndarray  # [n_series] first slot after the validation horizons


def plan_windows(panel: Panel, config: ForecastConfig) -> WindowPlan:
    """Split every series in time and index its windows. Raises before any training when there are none."""
    w = config.window
    assert w.input_size is not None and w.horizon is not None  # filled in by config.resolve
    split = make_split(panel, w)
    target_h = w.horizon if config.model.head == "direct" else 1
    train_starts = window_starts(panel, w.input_size, target_h, np.zeros_like(split.train_end), split.train_end, w.step)
    train_starts = cap_windows(train_starts, panel, w.max_windows_per_series, w.sampling, config.train.seed)
    if len(train_starts) == 0:
        raise DataValidationError(
            f"no training windows: every series is shorter than input_size + horizon = "
            f"{min_train_length(config)} points or has gaps everywhere; lower input_size or horizon, or supply "
            "longer series"
        )
    # whole horizons, also for the recursive head (validated on its fed-back h-step forecasts)
    val_starts = window_starts(panel, w.input_size, w.horizon, split.train_end, split.val_end, w.horizon)
    return WindowPlan(train_starts, val_starts, split.train_end, split.val_end)


def train(
    panel: Panel, config: ForecastConfig, plan: WindowPlan | None = None, callbacks=(), verbose: int = 0
) -> TrainResult:
    """Fit a model on the training part of every series; validation windows drive early stopping.

    ``config`` must be resolved (:func:`rnn_model.config.resolve`).
    """
    import keras

    t0 = time.perf_counter()
    w, tr = config.window, config.train
    assert w.input_size is not None and w.horizon is not None  # filled in by config.resolve
    plan = plan or plan_windows(panel, config)
    if tr.scaler == "auto":
        return _train_choosing_scaler(panel, config, plan, callbacks, verbose)
    target_h = w.horizon if config.model.head == "direct" else 1

    strategy = get_strategy(tr.strategy)  # None by default; multi_worker must exist before TF initialises
    set_seed(tr.seed)
    scaler = fit_scaler(panel, plan.train_end, tr.scaler)
    buffer = scaler.scaled_buffer(panel)  # [n_slots] float32
    members = config.model.members
    own = tr.member_windows == "own" and members > 1
    batch = max(1, tr.batch_size // members) * members if own else tr.batch_size  # own: b windows per member
    if tr.steps is not None:  # a budget of gradient steps, whatever the number of windows
        per_epoch = -(-len(plan.train_starts) // batch)
        tr = replace(tr, epochs=max(1, -(-tr.steps // per_epoch)))
    normalised = tr.scaler == "window"
    transform = window_transform(normalised, members, own)
    dataset, steps = make_dataset(
        buffer, plan.train_starts, w.input_size, target_h, batch, tr.seed, tr.epochs, transform, members if own else 1
    )
    if steps == 0:
        raise DataValidationError(
            f"fewer training windows ({len(plan.train_starts)}) than ensemble members ({members}), each of which "
            "trains on its own windows (member_windows='own'): supply longer series or use member_windows='shared'"
        )

    def build():
        return build_ensemble(config.model, w.input_size, w.horizon, config.data.season_length, tr.seed, not normalised)

    if strategy is None:
        ensemble = build()
    else:
        # Each element of the dataset is one global batch; the strategy splits it across the replicas.
        # Across workers, every worker builds the same seeded dataset and takes its share of each batch.
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
        with strategy.scope():  # variables (weights, optimizer state) mirrored on every replica
            ensemble = build()
            if tr.strategy == "multi_worker":
                build_before_fit(ensemble.trainer if own else ensemble.model, w.input_size, target_h * members)
    model, fitted = ensemble.model, (ensemble.trainer if own else ensemble.model)
    validation, whole_horizons = None, []
    if len(plan.val_starts) and config.model.head == "recursive":
        x_val, y_val = gather_windows(buffer, plan.val_starts, w.input_size, w.horizon)  # [n_val, in, 1], [n_val, h]
        whole_horizons = [_recursive_validation(model, x_val, y_val, config, normalised)]
    elif len(plan.val_starts):
        x_val, y_val = gather_windows(buffer, plan.val_starts, w.input_size, target_h)  # [n_val, in, 1], [n_val, h]
        x_val, y_val = (np.asarray(t) for t in window_transform(normalised, members)(x_val, y_val))
        # every member validated on every window: the trainer reads them as one channel per member
        validation = (np.repeat(x_val, members, axis=-1), y_val) if own else (x_val, y_val)
    # Early stopping only on validation windows; without them the whole budget is trained (stopping on the
    # training loss would only measure the noise of its last batches)
    validated = bool(len(plan.val_starts))
    stop = (
        [keras.callbacks.EarlyStopping(monitor="val_loss", patience=tr.patience, restore_best_weights=True)]
        if validated
        else []
    )
    patched = multi_worker_logs() if tr.strategy == "multi_worker" else nullcontext()
    with patched:
        fit = fitted.fit(
            dataset,
            epochs=tr.epochs,
            steps_per_epoch=steps,
            validation_data=validation,
            callbacks=[*whole_horizons, *stop, *callbacks],  # val_loss of the recursive head first
            shuffle=False,  # the dataset shuffles itself, seeded per epoch
            verbose=verbose,
        )
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    if not validated:
        best_epoch = len(history["loss"])
    else:
        best_epoch = int(np.nanargmin(history["val_loss"])) + 1 if np.isfinite(history["val_loss"]).any() else 0
    return TrainResult(
        forecaster=Forecaster(model, scaler, config),
        history=history,
        best_epoch=best_epoch,
        n_train_windows=int(len(plan.train_starts)),
        n_val_windows=int(len(plan.val_starts)),
        seconds=time.perf_counter() - t0,
        extra={
            "strategy": tr.strategy,
            "replicas": replicas(strategy),
            "chief": is_chief(strategy),
            "trained_through": trained_through(panel, plan),
        },
    )


def _recursive_validation(model, x: np.ndarray, y: np.ndarray, config: ForecastConfig, normalised: bool):
    """A callback setting ``val_loss`` of the recursive head on whole horizons: its h-step forecasts,
    each step fed back as the newest input (as it forecasts in production), against the validation
    targets ``y [n_val, h]``; the MAE in the units the model trains in (per-window normalised, or
    scaled). Keras's own validation would score only the first step. Must run before EarlyStopping."""
    import keras

    from .normalization import normalise_inputs
    from .scaling import SeriesScaler

    unit = normalise_inputs(x)[2].numpy().astype(np.float64) if normalised else np.ones((len(x), 1))  # [n_val, 1]
    target = y.astype(np.float64)  # [n_val, h]

    class RecursiveValidation(keras.callbacks.Callback):
        forecaster = None

        def on_epoch_end(self, epoch, logs=None):
            if self.forecaster is None:  # its compiled recursive loop reads the model's current weights
                identity = SeriesScaler(
                    "window" if normalised else "none", np.empty(0, object), np.empty(0), np.empty(0)
                )
                self.forecaster = Forecaster(model, identity, config)  # the model fit trains, or its twin
            pred = self.forecaster.predict_scaled(x).astype(np.float64)  # [n_val, h]
            if logs is not None:
                logs["val_loss"] = float(np.mean(np.abs(pred - target) / unit))

    return RecursiveValidation()


def trained_through(panel: Panel, plan: WindowPlan):
    """The latest ``ds`` whose value the fit saw as a target (training or early stopping): the champion
    is later compared only on windows after it (rnn_model.gate). ISO text, or an int for integer ds."""
    last = plan.val_end - 1  # [n_series] last slot used by the fit
    seen = np.flatnonzero(last >= 0)
    if not len(seen):
        return None
    return ds_to_json(np.max(np.asarray(panel.ds_at(seen, last[seen]))))


AUTO_SCALERS = ("standard", "none")


def _train_choosing_scaler(panel: Panel, config: ForecastConfig, plan: WindowPlan, callbacks, verbose) -> TrainResult:
    """``scaler="auto"``: one model per scaler in :data:`AUTO_SCALERS`; the one with the lower MASE on
    the validation windows (data units, windows neither trained on) is kept, ties to ``standard``.

    Why both: per-series standardisation suits panels of unrelated units and scales (GDP beside
    interest rates), but it maps each series' training part onto the same range, so a series that
    keeps trending leaves that range and series that share one unit (rates per person, per cent)
    lose what their levels say about each other; unscaled inputs keep both (accuracy benchmark,
    fertility_yearly). Costs a second training run."""
    if not len(plan.val_starts):  # nothing to choose on: val_windows=0
        fixed = config.replace(train={"scaler": AUTO_SCALERS[0]})
        return _with_choice(train(panel, fixed, plan, callbacks, verbose), config, AUTO_SCALERS[0], {})
    results = {
        kind: train(panel, config.replace(train={"scaler": kind}), plan, callbacks, verbose) for kind in AUTO_SCALERS
    }
    scores = {kind: validation_mase(r.forecaster, panel, plan, config) for kind, r in results.items()}
    chosen = min(AUTO_SCALERS, key=lambda k: scores[k] if np.isfinite(scores[k]) else np.inf)
    best = _with_choice(results[chosen], config, chosen, scores)
    return replace(best, seconds=sum(r.seconds for r in results.values()))


def _with_choice(result: TrainResult, config: ForecastConfig, chosen: str, scores: dict) -> TrainResult:
    forecaster = Forecaster(result.forecaster.model, result.forecaster.scaler, config)  # keeps "auto"
    choice = {"chosen": chosen, "validation_mase": {k: round(float(v), 6) for k, v in scores.items()}}
    return replace(result, forecaster=forecaster, extra={**result.extra, "scaler": choice})


def validation_mase(forecaster: Forecaster, panel: Panel, plan: WindowPlan, config: ForecastConfig) -> float:
    """Mean over series of the forecast MAE on the validation horizons, in data units, divided by each
    series' in-sample seasonal-naive MAE on its training part. NaN when no window can be scored."""
    h = config.window.horizon
    # filled in by config.resolve
    assert h is not None and config.window.input_size is not None and config.data.season_length is not None
    starts = plan.val_starts  # [n_val] buffer slot of each window's first input
    series = np.searchsorted(panel.offsets, starts, side="right") - 1  # [n_val]
    target_start = starts - panel.offsets[series] + config.window.input_size  # [n_val] relative slot
    y_hat, covered = forecaster.forecast_at(panel, series, target_start)  # [n_val, h] data units
    rel = target_start[:, None] + np.arange(h)  # [n_val, h] relative slot of each target
    ok = covered[:, None] & (rel < plan.val_end[series, None])
    slots = np.where(ok, panel.offsets[series, None] + rel, 0)  # [n_val, h]
    ok &= panel.observed[slots]
    err = np.abs(panel.values[slots].astype(np.float64) - np.where(ok, y_hat, 0.0))
    sums = np.bincount(series.repeat(h)[ok.ravel()], weights=err.ravel()[ok.ravel()], minlength=panel.n_series)
    counts = np.bincount(series.repeat(h)[ok.ravel()], minlength=panel.n_series)
    scale = seasonal_naive_scale(panel, plan.train_end, config.data.season_length)  # [n_series]
    per_series = sums / np.maximum(counts, 1) / scale
    use = (counts > 0) & np.isfinite(per_series)
    return float(per_series[use].mean()) if use.any() else float("nan")


def refit(panel: Panel, config: ForecastConfig, result: TrainResult, callbacks=(), verbose: int = 0) -> TrainResult:
    """A fresh model (same seed) trained on every window of every series, the validation and held-out
    test horizons included, for about as many gradient steps as the early-stopped model took to its
    best epoch (epochs over the larger window set: the same number of steps, not of epochs, so the refit
    is not trained several times longer). Nothing is left to score it on: its scores and intervals
    are the early-stopped model's, and its ``trained_through`` is the end of the data, so the next run's
    gate cannot compare it on windows it trained on (rnn_model.gate). The scaler is refitted on the
    whole series too. The returned forecaster keeps ``config`` (not the shortened epoch count)."""
    w = config.window
    assert w.input_size is not None and w.horizon is not None  # filled in by config.resolve
    target_h = w.horizon if config.model.head == "direct" else 1
    ends = panel.lengths.astype(np.int64)  # [n_series] every slot
    starts = window_starts(panel, w.input_size, target_h, np.zeros_like(ends), ends, w.step)
    starts = cap_windows(starts, panel, w.max_windows_per_series, w.sampling, config.train.seed)
    plan = WindowPlan(starts, np.empty(0, np.int64), ends, ends)
    batch = config.train.batch_size
    steps_before = max(1, result.best_epoch) * -(-result.n_train_windows // batch)
    epochs = max(1, round(steps_before / max(1, -(-len(starts) // batch))))
    # the scaler "auto" chose, if it did; steps=None: these epochs, not the configured budget of steps again
    same = {"epochs": epochs, "steps": None, "scaler": result.forecaster.scaler.kind}
    fitted = train(panel, config.replace(train=same), plan, callbacks, verbose)
    return TrainResult(
        forecaster=Forecaster(fitted.forecaster.model, fitted.forecaster.scaler, config),
        history=result.history,  # the early stopping that chose the epoch count
        best_epoch=result.best_epoch,
        n_train_windows=fitted.n_train_windows,
        n_val_windows=0,
        seconds=result.seconds + fitted.seconds,
        extra={
            **result.extra,
            "trained_through": fitted.extra["trained_through"],
            "refit": {
                "epochs": epochs,
                "windows": fitted.n_train_windows,
                "windows_before": result.n_train_windows,
                "seconds": round(fitted.seconds, 3),
            },
        },
    )
