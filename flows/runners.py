"""Task runners: where the mapped tasks (validation, prediction, backtest per group of series) run.

    thread   Prefect's ThreadPoolTaskRunner in the flow's process (the default)
    dask     prefect_dask.DaskTaskRunner: an existing Dask cluster (``dask_address="tcp://host:8786"``),
             or a temporary LocalCluster on 127.0.0.1 started for the flow run and stopped after it

A flow's task runner is fixed when the flow is decorated; :func:`with_task_runner` returns the flow with
the requested one (``flow.with_options(task_runner=...)``). The flows also accept ``task_runner`` and
``dask_address`` as parameters (deployments, ``prefect deployment run --param``): a flow called with a
runner other than the one it runs on calls itself once more, as a subflow, on the requested runner.

``prefect-dask`` is an optional extra (``pip install 'rnn-forecast-pipeline[dask]'``); it is imported only
when ``dask`` is asked for.

Without a configured ``PREFECT_API_URL`` Prefect runs flows against a temporary local server (a uvicorn
child process). :func:`temporary_api` starts it under a watchdog, so it never outlives this process, not
even a SIGKILL of it, and sends its output to a log file instead of the user's terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal, Optional

from rnn_model.errors import ConfigError

__all__ = [
    "TaskRunnerName",
    "check_task_runner",
    "make_task_runner",
    "with_task_runner",
    "runs_on",
    "reachable_api",
    "dask_cluster",
    "heartbeats_off_on_temporary_api",
    "temporary_api",
    "SERVER_LOG",
    "drain_prefect_services",
]

TaskRunnerName = Literal["thread", "dask"]

DASK_EXTRA_HINT = "pip install 'rnn-forecast-pipeline[dask]' (prefect-dask)"


def _local_cluster_kwargs(n_workers: Optional[int] = None) -> dict:
    # Bound to the loopback interface only; one thread per worker process (the numerical work uses its
    # own threads); as many workers as distributed chooses for this machine unless told.
    kwargs = {"host": "127.0.0.1", "processes": True, "threads_per_worker": 1, "dashboard_address": None}
    if n_workers:
        kwargs["n_workers"] = n_workers
    return kwargs


def check_task_runner(kind: str, dask_address: Optional[str] = None) -> None:
    """The ConfigError a runner choice would give, without importing Prefect or Dask (for the CLI)."""
    import importlib.util

    if kind not in ("thread", "dask"):
        raise ConfigError(f"task_runner={kind!r} is invalid: must be one of thread, dask")
    if kind == "thread" and dask_address:
        raise ConfigError("dask_address is set but task_runner='thread'; pass task_runner='dask' (--task-runner dask)")
    if kind == "dask" and importlib.util.find_spec("prefect_dask") is None:
        raise ConfigError(f"task_runner='dask' needs prefect-dask, which is not installed: {DASK_EXTRA_HINT}")


def make_task_runner(kind: str = "thread", dask_address: Optional[str] = None, n_workers: Optional[int] = None):
    """A fresh task runner of the given kind."""
    check_task_runner(kind, dask_address)
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError(f"task_runner='dask' needs prefect-dask, which is not installed: {DASK_EXTRA_HINT}") from None
    # The groups of rows travel inside the tasks by design (workers need no access to the data): Dask's
    # advice to load data on the workers instead does not apply, so its warning is not shown.
    warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(cluster_kwargs=_local_cluster_kwargs(n_workers))  # a temporary local cluster


def with_task_runner(flow_obj, kind: str = "thread", dask_address: Optional[str] = None):
    """``flow_obj`` running its mapped tasks on the requested runner."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if kind == "thread" and not dask_address and isinstance(flow_obj.task_runner, ThreadPoolTaskRunner):
        return flow_obj  # already so: with_options would rebuild the parameter schema (~0.3 s per call)
    return flow_obj.with_options(task_runner=make_task_runner(kind, dask_address))


def runs_on(kind: str, dask_address: Optional[str]) -> bool:
    """Whether the current flow run's task runner is the requested one."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None)
    if runner is None:
        return kind == "thread"
    if kind == "thread":
        return isinstance(runner, ThreadPoolTaskRunner)
    return type(runner).__name__ == "DaskTaskRunner" and getattr(runner, "address", None) == (dask_address or None)


@contextmanager
def dask_cluster(kind: str, dask_address: Optional[str]) -> Iterator[Optional[str]]:
    """The scheduler address for flows that run several subflows (pipeline, backfill): the given one, or a
    temporary local cluster (127.0.0.1) shared by all of them instead of one per subflow."""
    if kind != "dask" or dask_address:
        yield dask_address
        return
    make_task_runner("dask")  # the clear error when prefect-dask is missing
    import distributed

    with distributed.LocalCluster(**_local_cluster_kwargs()) as cluster:
        yield cluster.scheduler_address


@contextmanager
def reachable_api(kind: str) -> Iterator[None]:
    """Dask workers report task runs to the Prefect API named in the flow's settings. Without a configured
    ``PREFECT_API_URL`` Prefect starts a temporary local server lazily; start it now and name it in the
    settings (and the environment, which local worker processes inherit), so every worker reports to the
    same server. A no-op for the thread runner or when an API URL is set."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if kind != "dask" or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance Prefect's own client would start
    server.start()
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


@contextmanager
def heartbeats_off_on_temporary_api() -> Iterator[None]:
    """Flow-run heartbeats let a server mark the runs of a process that died as crashed. Prefect's
    temporary local API (no ``PREFECT_API_URL`` configured) dies with this process, so nothing reads
    them, while every flow run waits up to 1 s at its end for the heartbeat thread to wake and stop: off
    there. With a configured API (a real server, deployments) they stay as configured."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


# --------------------------------------------------------------------------- the temporary local server

SERVER_LOG = "temporary-server.log"  # under PREFECT_HOME: the temporary server's stdout and stderr
_LOG_ROTATE_BYTES = 5_000_000

# Runs beside the temporary server, as a child of this process: when this process is gone (its parent
# pid changes, also after a SIGKILL, which no handler sees), it stops the server (SIGTERM, then SIGKILL
# after 5 s). It exits by itself as soon as the server has. A tiny interpreter (-I -S): no imports.
_WATCHDOG = r"""
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the CLI handles it

def ident(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return None if rest[0] in "ZX" else rest[19]  # state, start time (a reused pid differs)
    except OSError:
        return None
    except IndexError:
        return "?"

def alive(pid, start):
    if start is not None and os.path.isdir("/proc/self"):
        return ident(pid) == start
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

start = ident(server)
while alive(server, start):
    if os.getppid() != parent:
        os.kill(server, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while alive(server, start) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(server, start):
            os.kill(server, signal.SIGKILL)
        break
    time.sleep(0.2)
"""


def _server_log() -> Path:
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log = home / SERVER_LOG
    if log.exists() and log.stat().st_size > _LOG_ROTATE_BYTES:
        os.replace(log, log.with_suffix(".log.1"))
    return log


@contextmanager
def _stdio_to(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 point at ``path`` for the duration (children spawned then inherit it)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    saved = [os.dup(1), os.dup(2)]
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (log, *saved):
            os.close(fd)


def _guarded_server_class():
    from prefect.server.api.server import SubprocessASGIServer

    class GuardedServer(SubprocessASGIServer):
        """Prefect's temporary server, spawned with its output in a log file and a watchdog beside it.

        Prefect's stop() at exit (atexit) SIGTERMs it while it may be flushing task-run events; Prefect
        then logs the cancelled flush with a CancelledError traceback (prefect 3.9.1,
        ``server/services/task_run_recorder.py``), which followed the CLI's last line now and then.
        """

        watchdog: Optional[subprocess.Popen] = None

        def _run_uvicorn_command(self):  # called by start(), also when a port was taken and it retries
            with _stdio_to(_server_log()):
                process = super()._run_uvicorn_command()
            self._stop_watchdog()
            self.watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(os.getpid()), str(process.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return process

        def _stop_watchdog(self) -> None:
            if self.watchdog is not None:
                self.watchdog.kill()
                self.watchdog.wait()
                self.watchdog = None

        def stop(self) -> None:
            super().stop()
            self._stop_watchdog()

    return GuardedServer


@contextmanager
def temporary_api() -> Iterator[None]:
    """Without a configured ``PREFECT_API_URL``: start Prefect's temporary server now, in this thread,
    guarded (see ``GuardedServer``), as the instance every Prefect client of this process uses, and stop
    it on the way out (also when a SIGTERM handler unwinds the stack). A no-op with a configured API."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield
        return
    existing = SubprocessASGIServer._instances.get(None)
    if existing is not None and existing.running:  # someone already runs one in this process: theirs
        yield
        return
    SubprocessASGIServer._instances.pop(None, None)
    server = _guarded_server_class()()  # registers itself as the default instance (port None)
    try:
        server.start()
        yield
    finally:
        drain_prefect_services()
        server.stop()


def drain_prefect_services(timeout_s: float = 5.0) -> None:
    """Let Prefect's log and event workers deliver what they hold while the temporary server still runs.
    Without this they tried after it had stopped, at the interpreter's exit, and each CLI run lingered
    66 s after its last line and then printed ``--- Error logging to API --- All connection attempts
    failed``."""
    from prefect._internal.concurrency.services import QueueService

    QueueService.drain_all(timeout=timeout_s, at_exit=False)
