"""Shared task options: retries with backoff only around I/O, never hashing models or frames."""

from __future__ import annotations

import errno
import re
from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from rnn_model.errors import ForecastError

__all__ = ["IO_RETRY", "COMPUTE", "is_transient_io_error", "artifact_key"]

# errnos worth retrying: the file system or network hiccupped; the same call may succeed a moment later
_TRANSIENT = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE, errno.ECONNRESET, errno.EINTR}


def is_transient_io_error(exc: BaseException | None) -> bool:
    """OSErrors with a transient errno (also when wrapped by a StoreError); never a user error."""
    cause = exc.__cause__ if isinstance(exc, ForecastError) else exc
    if isinstance(exc, ForecastError) and not isinstance(cause, OSError):
        return False
    return isinstance(cause, OSError) and (cause.errno in _TRANSIENT or cause.errno is None)


def _retry_condition(task, task_run, state) -> bool:
    return is_transient_io_error(state.data if isinstance(state.data, BaseException) else None)


# Tasks that read or write files: three retries, 1 s, 2 s, 4 s (+ jitter), on transient errors only.
IO_RETRY: dict[str, Any] = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=1),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_condition,
    cache_policy=NO_CACHE,
    timeout_seconds=600,
)
# Pure computation: no retries (a deterministic failure fails again), no input hashing.
COMPUTE: dict[str, Any] = dict(cache_policy=NO_CACHE)


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
