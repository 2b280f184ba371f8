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
for it first thing.
"""

from __future__ import annotations

import json
import os

from .errors import ConfigError

__all__ = ["get_strategy", "is_chief", "writes_results", "replicas"]

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
            json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"TF_CONFIG is not valid JSON ({exc})") from None
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise ConfigError(f"strategy={name!r} is invalid: must be one of default, mirrored, multi_worker")
    _CACHE[name] = strategy
    return strategy


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
