"""Distribution strategies for training one global model on more than one device or machine.

    default       no strategy: one device (the bit-for-bit reproducible path)
    mirrored      tf.distribute.MirroredStrategy over every local GPU (or every logical CPU device when
                  there is no GPU): synchronous data parallelism, one model replica per device
    multi_worker  tf.distribute.MultiWorkerMirroredStrategy: the same across machines; the cluster and
                  this process's role come from the TF_CONFIG environment variable

``batch_size`` is the *global* batch: every training step takes ``batch_size`` windows and splits them
across the replicas (``batch_size / replicas`` each), and gradients are all-reduced, so the optimisation
(steps per epoch, learning rate) stays that of ``default``.

A multi-worker strategy must be created before TensorFlow initialises its runtime in the process (before
any tensor exists), so :func:`get_strategy` builds it once per process and caches it; the train flow asks
for it first thing. Creating it waits for every worker in TF_CONFIG; TensorFlow's own wait has no end (a
worker that never comes up held the store lock for ever), so the registration of the other workers is bounded by
``RNN_FORECAST_CLUSTER_TIMEOUT`` seconds (default 300), the leader's wait included (registration is a
barrier), and every worker gets a ConfigError naming the workers.

Keras 3 (3.15) cannot ``fit`` under MultiWorkerMirroredStrategy with more than one worker
(keras-team/keras#20585). The workarounds, which reach into private Keras APIs, live here and only here:
:func:`build_before_fit` (build the model from a dummy batch and skip Keras's symbolic build) and
:func:`multi_worker_logs` (average scalar per-replica logs with ``axis=None``, for one ``fit``).
``training.train`` applies both, only with ``multi_worker``; the default path is untouched.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from typing import Iterator

from .errors import ConfigError

__all__ = [
    "get_strategy",
    "is_chief",
    "writes_results",
    "replicas",
    "cluster_timeout_s",
    "build_before_fit",
    "multi_worker_logs",
    "CLUSTER_TIMEOUT_ENV",
]

CLUSTER_TIMEOUT_ENV = "RNN_FORECAST_CLUSTER_TIMEOUT"
_DEFAULT_CLUSTER_TIMEOUT_S = 300

_CACHE: dict[str, object] = {}


def get_strategy(name: str):
    """The strategy for ``TrainConfig.strategy`` (None for ``default``), built once per process."""
    if name == "default":
        return None
    if name in _CACHE:
        return _CACHE[name]
    import tensorflow as tf

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    elif name == "multi_worker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise ConfigError(
                "strategy='multi_worker' needs the TF_CONFIG environment variable (the cluster's workers and "
                "this worker's index); see docs/scaling.md, or use strategy='mirrored' on one machine"
            )
        try:
            spec = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"TF_CONFIG is not valid JSON ({exc})") from None
        strategy = _multi_worker_strategy(spec, cluster_timeout_s())
    else:
        raise ConfigError(f"strategy={name!r} is invalid: must be one of default, mirrored, multi_worker")
    _CACHE[name] = strategy
    return strategy


def cluster_timeout_s() -> int:
    """Seconds to wait for the multi_worker cluster: ``$RNN_FORECAST_CLUSTER_TIMEOUT``, else 300."""
    raw = os.environ.get(CLUSTER_TIMEOUT_ENV) or str(_DEFAULT_CLUSTER_TIMEOUT_S)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise ConfigError(f"{CLUSTER_TIMEOUT_ENV}={raw!r} is invalid: must be a number of seconds >= 1")
    return int(math.ceil(value))


def _multi_worker_strategy(spec: dict, timeout_s: int):
    """MultiWorkerMirroredStrategy, waiting at most ``timeout_s`` for the other workers to register.

    TensorFlow configures its coordination service with no register deadline (it waits for ever) unless
    one is configured first, which is done here with the same jobs and leader TensorFlow would choose.
    The wait is a C++ call holding the GIL, so no Python code runs meanwhile (no signal handler, no other
    thread). Called from the main thread, SIGTERM gets its default action meanwhile (the process ends; the
    store lock is an flock and dies with it); from another thread, it takes effect when the wait ends.
    """
    import signal

    import tensorflow as tf
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.distribute.cluster_resolver import TFConfigClusterResolver
    from tensorflow.python.eager import context

    cluster = TFConfigClusterResolver().cluster_spec()
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
        for job in ("chief", "worker")
        if job in cluster.jobs
    ]
    if context.context().coordination_service is None and jobs:
        context.context().configure_coordination_service(
            service_type="standalone",
            service_leader=multi_worker_util.coordination_leader(cluster),
            coordinated_jobs=jobs,
            cluster_register_timeout_in_ms=timeout_s * 1000,
        )
        # Registration as a barrier: the leader's own registration then waits (at most the deadline) for
        # every worker, instead of passing at once into WaitForAllTasks, whose barrier lasts an hour.
        context.context()._coordination_service_config.cluster_register_with_barrier = True
    try:
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread
        previous = None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, RuntimeError) as exc:
        workers = ", ".join(spec.get("cluster", {}).get("worker", [])) or "none listed"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"multi_worker: the cluster in TF_CONFIG was not complete within {timeout_s} s (workers: {workers}; "
            f"{first}); start every worker, check the addresses, or raise {CLUSTER_TIMEOUT_ENV}"
        ) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def replicas(strategy) -> int:
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def is_chief(strategy) -> bool:
    """Whether this process writes results: always, except the non-chief workers of ``multi_worker``."""
    if strategy is None or not hasattr(strategy, "cluster_resolver"):
        return True
    resolver = strategy.cluster_resolver
    if resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def writes_results(strategy_name: str) -> bool:
    """Whether this process will be the one that writes (decided from ``TF_CONFIG``, before any strategy
    exists): True unless ``multi_worker`` and this task is not the chief. Non-chief workers must not
    take the store lock, or they would wait for the chief while the chief waits for them in training."""
    if strategy_name != "multi_worker":
        return True
    try:
        task = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        return True  # get_strategy reports the bad TF_CONFIG
    cluster, me = task.get("cluster", {}), task.get("task", {})
    kind, index = me.get("type"), int(me.get("index", 0))
    if kind in (None, "chief"):
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


# --------------------------------------------------------------------------- Keras 3 multi-worker workarounds


def build_before_fit(model, input_size: int, target_h: int) -> None:
    """Keras 3 (3.15) cannot ``fit`` under MultiWorkerMirroredStrategy with more than one worker
    (keras-team/keras#20585). First: ``fit`` reduces a distributed batch to build the model symbolically,
    which the collective strategy refuses; build weights, loss, metrics and optimizer from a dummy batch
    here (inside the strategy's scope) and skip that step. Second: see :func:`multi_worker_logs`."""
    import numpy as np

    x = np.zeros((1, input_size, model.input_shape[-1]), np.float32)  # [1, input_size, 1 or members]
    y = np.zeros((1, target_h), np.float32)  # [1, target_h]
    model._symbolic_build(data_batch=(x, y))
    model._maybe_symbolic_build = lambda *args, **kwargs: None


@contextmanager
def multi_worker_logs() -> Iterator[None]:
    """Keras 3 (3.15) averages each step's per-replica logs (scalar losses) across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails for scalars; average them with ``axis=None``
    instead, for the duration of one ``fit`` (keras-team/keras#20585). Gradients are unaffected."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            import keras

            def mean(v):
                if not tf_trainer._is_per_replica_instance(v):
                    return v
                return strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0)

            return keras.tree.map_structure(mean, values)
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
