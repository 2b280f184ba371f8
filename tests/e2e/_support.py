"""What the end-to-end tests share: the console script, a user's environment without a Prefect server,
and a wait for processes to end."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import psutil

__all__ = ["EXE", "cli_env", "still_running"]

EXE = Path(sys.executable).with_name("rnn-forecast")
if not EXE.exists():  # pragma: no cover - a non-venv install
    EXE = Path(shutil.which("rnn-forecast") or EXE)


def cli_env(prefect_home: Path) -> dict[str, str]:
    """The user's environment without any Prefect server (the CLI starts its own temporary one), with
    its database under ``prefect_home``."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {
        **clean,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }


def still_running(pids: list[int], timeout: float = 20.0) -> list[int]:
    """Those of ``pids`` still running (not zombies) after waiting up to ``timeout`` s for them to end."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
