"""The ``rnn-forecast`` console script as a user runs it: a real subprocess, Prefect's temporary local API
(no test harness here), real TensorFlow and real Parquet files."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

from rnn_model.sample import make_sample_panel

from ._support import EXE, cli_env, still_running

ROOT = Path(__file__).resolve().parents[2]

DOCUMENTED = [
    "--data",
    "--store",
    "--horizon",
    "--freq",
    "--season-length",
    "--input-size",
    "--cell",
    "--epochs",
    "--seed",
    "--as-of",
]
HELP_OPTIONS = {
    "run": [*DOCUMENTED, "--model-name", "--units", "--margin", "--force-promote"],
    "train": [*DOCUMENTED, "--model-name", "--units", "--margin", "--force-promote", "--rollback-to"],
    "predict": [*DOCUMENTED, "--model-name", "--model-version"],
    "backtest": ["--data", "--store", "--freq", "--as-of", "--model-name", "--model-version", "--n-windows"],
    "sample-data": ["--out", "--n-series", "--length", "--freq", "--seed"],
}
TINY = ["--horizon", "12", "--input-size", "24", "--epochs", "2", "--units", "8", "--seed", "1"]
# identical train runs: the champion's home advantage; "--refit" makes the first one train on every window
IDENTICAL = {"identical": (), "identical-refit": ("--refit",)}


def identical_train(panel: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(panel), "--store", "store", "--as-of", "2026-01-14", *TINY, "--members", "2", *extra]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return cli_env(tmp_path_factory.mktemp("prefect-home"))


def cli(env: dict, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


class Background:
    """A CLI run started now and awaited later: the slow runs (each starts Prefect's temporary server)
    overlap instead of queueing. Each has its own PREFECT_HOME, so their SQLite databases never meet."""

    def __init__(self, env: dict, cwd: Path, *args: str):
        cwd.mkdir(parents=True, exist_ok=True)
        self.args, self.cwd = args, cwd
        self.proc = subprocess.Popen(
            [str(EXE), *args],
            env={**env, "PREFECT_HOME": str(cwd / ".prefect")},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def kill(self) -> None:
        """Stop the run and the temporary Prefect server it started (its own process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()

    def result(self, timeout: float = 480) -> subprocess.CompletedProcess:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"rnn-forecast {' '.join(self.args)} ran over {timeout}s")
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lock_is_held(store: Path) -> bool:
    try:
        fd = os.open(store / ".lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases it at once when this test took it


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Path:
    """3 hourly series, 2026-01-01 .. 2026-01-14 23:00."""
    path = tmp_path_factory.mktemp("cli-data") / "panel.parquet"
    make_sample_panel(n_series=3, length=24 * 14, seed=5).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module", autouse=True)
def slow_runs(env, panel, tmp_path_factory) -> dict[str, Background]:
    """The slow CLI runs, started together before the module's first test: the quick tests run while
    they do, and each test below awaits its own. Whatever still runs at the end is killed."""
    root = tmp_path_factory.mktemp("cli-runs")
    bad = root / "data.parquet"
    bad.write_text("unique_id,ds,y\ns0,2026-01-01,1.0\n")  # CSV under a Parquet name
    runs = {
        "run": Background(
            env, root / "run", "run", "--data", str(panel), "--store", "store", "--as-of", "2026-01-14", *TINY
        ),
        "not-parquet": Background(env, root / "not-parquet", "predict", "--data", str(bad), "--store", "store"),
        # item 13.3: the leader of a two-worker cluster whose peer never comes up
        "multi-worker-peer-down": Background(
            {
                **env,
                "TF_CONFIG": json.dumps(
                    {
                        "cluster": {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]},
                        "task": {"type": "worker", "index": 0},
                    }
                ),
                "RNN_FORECAST_CLUSTER_TIMEOUT": "3",
            },
            root / "multi-worker",
            "train",
            "--data",
            str(panel),
            "--store",
            "store",
            "--strategy",
            "multi_worker",
            *TINY,
        ),
        # the first of two identical train runs each (the second starts when the first is done)
        **{
            name: Background(env, root / name, *identical_train(panel, *extra), "--force-promote")
            for name, extra in IDENTICAL.items()
        },
    }
    yield runs
    for run in runs.values():
        if run.proc.returncode is None:  # not awaited: a test was deselected or failed early
            run.kill()


def test_help_lists_the_commands(env, tmp_path):
    out = cli(env, tmp_path, "--help")
    assert out.returncode == 0, out.stderr
    for command in HELP_OPTIONS:
        assert command in out.stdout
    assert "--debug" in out.stdout


@pytest.mark.parametrize("command", list(HELP_OPTIONS))
def test_subcommand_help_lists_the_documented_options(env, tmp_path, command):
    out = cli(env, tmp_path, command, "--help")
    assert out.returncode == 0, out.stderr
    missing = [opt for opt in HELP_OPTIONS[command] if opt not in out.stdout]
    assert not missing, f"{command} --help lacks {missing}:\n{out.stdout}"


def _assert_one_line_error(out: subprocess.CompletedProcess, pattern: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, out.stderr[-3000:]
    assert errors[0].startswith("error: ") and pattern in errors[0], errors[0]
    return errors[0]


def test_missing_file_exits_2_at_once(env, tmp_path):
    out = cli(env, tmp_path, "train", "--data", str(tmp_path / "nope.parquet"), "--store", str(tmp_path / "store"))
    _assert_one_line_error(out, "input not found")
    assert out.stderr.strip().count("\n") == 0  # nothing else: no server was started
    assert not (tmp_path / "store").exists()


def test_zero_epochs_exits_2_at_once(env, tmp_path, panel):
    out = cli(env, tmp_path, "run", "--data", str(panel), "--store", str(tmp_path / "store"), "--epochs", "0")
    line = _assert_one_line_error(out, "epochs=0")
    assert "epochs=0 is invalid" in line
    assert out.stderr.strip().count("\n") == 0
    assert not (tmp_path / "store").exists()


def test_non_parquet_file_exits_2_without_traceback(slow_runs):
    run = slow_runs["not-parquet"]
    _assert_one_line_error(run.result(), "as Parquet")
    assert not (run.cwd / "store" / "predictions").exists()


def test_sample_data_is_deterministic(env, tmp_path):
    a, b = tmp_path / "sample.parquet", tmp_path / "nested" / "sample.parquet"
    for path in (a, b):
        out = cli(env, tmp_path, "sample-data", "--out", str(path), "--n-series", "3", "--length", "200")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"sample data: {path}"
    assert a.read_bytes() == b.read_bytes()
    frame = pd.read_parquet(a)
    pd.testing.assert_frame_equal(frame, make_sample_panel(n_series=3, length=200), check_dtype=False)
    assert list(frame.columns) == ["unique_id", "ds", "y"] and len(frame) == 600


def test_run_trains_predicts_and_reports(slow_runs):
    run = slow_runs["run"]
    out = run.result()
    assert out.returncode == 0, out.stderr[-4000:]
    assert "Traceback" not in out.stderr

    store = run.cwd / "store"
    lines = out.stdout.splitlines()
    assert any(
        line.startswith("predictions: store/predictions/as_of=2026-01-14/part-0.parquet (36 rows, model ")
        for line in lines
    ), out.stdout
    assert any(line.startswith("model v0001: ") for line in lines), out.stdout
    assert "model bundle: store/models/default/v0001" in lines, out.stdout
    # the held-out metrics table: a header and one row per model
    header = next(i for i, line in enumerate(lines) if line.split() == ["model", "MASE", "MAE", "RMSE", "sMAPE"])
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 4]}
    assert set(rows) == {"challenger", "naive", "seasonal_naive"}, out.stdout
    assert all(len(values) == 4 and all(float(v) >= 0 for v in values) for values in rows.values())

    # item 13.25: the temporary server's output (its shutdown tracebacks included) goes to its own log
    server_log = run.cwd / ".prefect" / "temporary-server.log"
    assert server_log.is_file()
    assert "uvicorn" not in out.stderr.lower() and "task_run_recorder" not in out.stderr
    # Prefect's log workers deliver before the server stops: they used to try after it, keeping every run
    # alive 66 s past its last line, then printing this
    assert "Error logging to API" not in out.stdout + out.stderr

    table = pq.read_table(store / "predictions" / "as_of=2026-01-14" / "part-0.parquet")
    assert table.num_rows == 36 and set(table.column("as_of").to_pylist()) == {"2026-01-14"}
    assert (store / "models" / "default" / "v0001" / "model.keras").is_file()


def _second_identical_run(
    env: dict, slow_runs: dict, panel: Path, name: str
) -> tuple[subprocess.CompletedProcess, Path]:
    """Await the first (forced) run of ``name``, then run the identical train command again, unforced."""
    first = slow_runs[name]
    out = first.result()
    assert out.returncode == 0, out.stderr[-4000:]
    assert "model v0001: promoted to champion" in out.stdout.splitlines(), out.stdout
    args = identical_train(panel, *IDENTICAL[name])
    assert [*args, "--force-promote"] == list(first.args)  # the very same command, only not forced
    second = Background(env, first.cwd, *args).result()
    assert second.returncode == 0, second.stderr[-4000:]
    assert "Traceback" not in second.stderr
    return second, first.cwd / "store" / "models" / "default"


def test_identical_train_runs_tie_and_the_champion_stays(env, slow_runs, panel):
    out, models = _second_identical_run(env, slow_runs, panel, "identical")
    lines = out.stdout.splitlines()
    assert "model v0002: not promoted (champion: v0001)" in lines, out.stdout
    assert any(line.startswith("  - tie:") for line in lines), out.stdout
    decision = json.loads((models / "v0002" / "decision.json").read_text())
    assert decision["promoted"] is False and decision["forced"] is False
    assert any(r.startswith("tie") for r in decision["reasons"]), decision["reasons"]
    evidence = decision["evidence"]
    assert evidence["fair_windows"] == evidence["held_out_windows"] > 0
    assert evidence["champion_fair_mase"] == evidence["challenger_fair_mase"] and evidence["improvement"] == 0.0
    assert json.loads((models / "champion").read_text())["version"] == "v0001"
    header = next(i for i, line in enumerate(lines) if line.split() == ["model", "MASE", "MAE", "RMSE", "sMAPE"])
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 5]}
    assert rows["champion"] == rows["challenger"], out.stdout  # the same scores, to the printed digit


def test_identical_train_runs_after_a_refit_are_not_comparable(env, slow_runs, panel):
    out, models = _second_identical_run(env, slow_runs, panel, "identical-refit")
    lines = out.stdout.splitlines()
    assert "model v0002: not promoted (champion: v0001)" in lines, out.stdout
    assert any(line.startswith("  - not comparable:") for line in lines), out.stdout
    champion_meta = json.loads((models / "v0001" / "meta.json").read_text())
    assert champion_meta["refit"]["windows"] > champion_meta["refit"]["windows_before"]
    decision = json.loads((models / "v0002" / "decision.json").read_text())
    assert decision["promoted"] is False and decision["reasons"][0].startswith("not comparable"), decision
    assert decision["evidence"]["fair_windows"] == 0
    assert decision["evidence"]["champion_trained_through"] == champion_meta["trained_through"]
    assert json.loads((models / "champion").read_text())["version"] == "v0001"


# --------------------------------------------------------------------------- issue 13 through the real CLI


def test_an_empty_store_is_refused_at_once_and_nothing_is_written_here(env, tmp_path, panel):
    """Item 14: --store '' wrote .lock and predictions/ into the current directory."""
    out = cli(env, tmp_path, "predict", "--data", str(panel), "--store", "")
    _assert_one_line_error(out, "store='' is invalid: pass a directory")
    assert list(tmp_path.iterdir()) == []


def test_multi_worker_with_a_peer_down_ends_with_a_clear_error(slow_runs):
    """Item 13.3: the leader of a cluster whose peer never came up was alive at 618 s, holding the lock."""
    run = slow_runs["multi-worker-peer-down"]
    started = time.monotonic()
    out = run.result(timeout=240)
    _assert_one_line_error(out, "multi_worker: the cluster in TF_CONFIG was not complete within 3 s")
    assert time.monotonic() - started < 200
    assert not _lock_is_held(run.cwd / "store")
    assert still_running([p.pid for p in psutil.process_iter() if _in_group(p, run.proc.pid)]) == []


def _in_group(proc: psutil.Process, group: int) -> bool:
    try:
        return os.getpgid(proc.pid) == group
    except ProcessLookupError:
        return False


HOLD_LOCK = "import sys, time\nfrom rnn_model.store import store_lock\nwith store_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n"


def _read_stderr_until(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """The run's stderr up to the first line containing ``text`` (the run keeps going)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            seen.append(line)
            if text in line:
                return "".join(seen)
    pytest.fail(f"{text!r} never appeared on stderr:\n{''.join(seen)[-3000:]}")


def test_a_waiting_run_names_the_lock_holder_and_sigterm_leaves_no_process(env, panel, tmp_path):
    """Items 5 and 4: a second run said nothing for 600 s; a SIGTERMed run orphaned its Prefect server."""
    store = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    waiting = None
    try:
        assert holder.stdout.readline().strip() == "held"
        # a run that gives up after 2 s names the holder
        out = cli(env, tmp_path, "train", "--data", str(panel), "--store", str(store), "--lock-timeout", "2", *TINY)
        line = _assert_one_line_error(out, f"is locked by another run (pid {holder.pid} on ")
        assert "since 20" in line and "raise --lock-timeout" in line
        # a run that waits says so at once, inside its flow run; SIGTERM then ends it and its server
        waiting = Background(env, tmp_path / "waiting", "train", "--data", str(panel), "--store", str(store), *TINY)
        said = _read_stderr_until(waiting.proc, f"is locked by another run (pid {holder.pid}", timeout=240)
        assert "--lock-timeout" in said
        family = [c.pid for c in psutil.Process(waiting.proc.pid).children(recursive=True)]
        assert family, "the waiting run started no temporary Prefect server"
        waiting.proc.send_signal(signal.SIGTERM)  # the run only: its server must not outlive it
        _, err = waiting.proc.communicate(timeout=120)
        assert waiting.proc.returncode == 143, err[-3000:]
        assert "terminated (SIGTERM); the store keeps its last complete state" in err
        assert still_running(family) == [], "the temporary Prefect server outlived the run"
        assert not (store / "models").exists() or not any((store / "models").rglob("v*"))
    finally:
        holder.kill()
        holder.wait()
        if waiting is not None and waiting.proc.returncode is None:
            waiting.kill()
    assert not _lock_is_held(store)


def test_sigterm_during_training_ends_the_run_at_once(env, panel, tmp_path):
    """A SIGTERM 1.5-2.5 s into training used to leave the run alive for ever in 5 of 10 tries: the signal
    interrupted one of Prefect's log workers mid-stop, and its at-exit drain waited for it."""
    for delay in (1.5, 2.0):
        run = Background(
            env,
            tmp_path / f"after-{delay}",
            "train",
            "--data",
            str(panel),
            "--store",
            "store",
            "--horizon",
            "12",
            "--input-size",
            "24",
            "--epochs",
            "200",
            "--units",
            "8",
            "--members",
            "1",
        )
        try:
            _read_stderr_until(run.proc, "Task run 'load-champion", timeout=240)
            time.sleep(delay)
            family = [c.pid for c in psutil.Process(run.proc.pid).children(recursive=True)]
            run.proc.send_signal(signal.SIGTERM)
            _, err = run.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run SIGTERMed {delay} s into training was still alive after 60 s")
        finally:
            run.kill()
        assert run.proc.returncode == 143, err[-3000:]
        assert "terminated (SIGTERM); the store keeps its last complete state" in err
        assert still_running(family) == [], "the temporary Prefect server outlived the run"
        assert not list((run.cwd / "store" / "models" / "default").glob("v*"))
