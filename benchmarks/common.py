"""Shared helpers of the benchmarks: machine description, statistics, RATIO lines, peak RSS, child
processes driven over stdin/stdout, the interleaving order, the sample-panel training windows and the
generated time-major Parquet panel.

Nothing here imports TensorFlow or Prefect at import time: the parent processes stay light, and every measurement that
needs them runs in a child process (``python -m benchmarks.<name> --child ...``).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROTO = "@@BENCH "  # prefix of protocol lines on a child's stdout (everything else is ignored)

# The project's environment for runs (offline, quiet, patient local API start-up).
RUN_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def shared_api_url(parser, required: bool) -> str | None:
    """``PREFECT_API_URL`` when an API is already running (the quick runner's); ``required``
    (``--shared-api``) makes its absence an error instead of a temporary API of the benchmark's own."""
    url = os.environ.get("PREFECT_API_URL")
    if required and not url:
        parser.error("--shared-api needs PREFECT_API_URL")
    return url


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in RUN_ENV.items():
        env.setdefault(k, v)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress on stderr, with the seconds since this process imported the benchmarks."""
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- machine


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover
        return (float("nan"),) * 3


def machine() -> dict:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
        platform.processor(),
    )
    flags = next((ln.split(":", 1)[1].split() for ln in open("/proc/cpuinfo") if ln.startswith("flags")), [])
    mem_kb = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
    versions = {}
    for mod in ("numpy", "pandas", "pyarrow", "tensorflow", "keras", "prefect"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001
            versions[mod] = "?"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "simd": " ".join(f for f in ("avx", "avx2", "fma", "avx512f") if f in flags),
        "ram_gb": round(mem_kb / 1024**2, 1),
        "python": platform.python_version(),
        "versions": versions,
        "load": load_average(),
    }


def machine_line(m: dict | None = None) -> str:
    m = m or machine()
    v = m["versions"]
    return (
        f"machine: nproc={m['nproc']}, cpu={m['cpu']} ({m['simd']}), RAM {m['ram_gb']} GiB, Python {m['python']}, "
        f"TF {v['tensorflow']}, Keras {v['keras']}, NumPy {v['numpy']}, pandas {v['pandas']}, "
        f"PyArrow {v['pyarrow']}, Prefect {v['prefect']}; load average at start "
        f"{m['load'][0]:.1f}/{m['load'][1]:.1f}/{m['load'][2]:.1f} (shared machine)"
    )


# ---------------------------------------------------------------------------------------- statistics


def stats(values: Iterable[float]) -> dict:
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def fmt(x: float, digits: int = 3) -> str:
    if x != x:  # NaN
        return "nan"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ratio_line(name: str, measured: float, threshold: float, higher: bool = True) -> tuple[str, bool]:
    """``RATIO <name> <measured> <threshold> PASS|FAIL``: higher is better unless ``higher=False``
    (then the measured value must stay below the threshold)."""
    ok = (measured >= threshold) if higher else (measured < threshold)
    ok = bool(ok) and measured == measured
    return f"RATIO {name} {measured:.3g} {threshold:g} {'PASS' if ok else 'FAIL'}", ok


def print_ratios(rows: list[tuple[str, float, float, bool]]) -> bool:
    """The closing block of a benchmark: a markdown table, then one RATIO line per target, last."""
    print("\n| target | measured | threshold |\n|---|---:|---|")
    for name, value, thr, higher in rows:
        print(f"| {name} | {value:.3g} | {'>=' if higher else '<'} {thr:g} |")
    print()
    all_ok = True
    for name, value, thr, higher in rows:
        line, ok = ratio_line(name, value, thr, higher)
        all_ok &= ok
        print(line)
    sys.stdout.flush()
    return all_ok


# -------------------------------------------------------------------------------------------- memory


def status_kb(key: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def release_free_memory() -> None:
    """Collect garbage and hand free heap pages back to the OS, so a baseline holds no reusable slack."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakRss:
    """Peak RSS of this process from now on: the kernel's VmHWM after resetting it, or (where
    ``/proc/self/clear_refs`` cannot be written) a VmRSS sampler thread as fallback.
    ``baseline_kb`` is VmRSS after ``release_free_memory()``."""

    def __init__(self, interval_s: float = 0.002):
        release_free_memory()
        self.baseline_kb = status_kb("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak RSS mark (VmHWM) to the current RSS
            self.method = "VmHWM after clear_refs=5"
        except OSError:
            self.method = "VmRSS sampled every 2 ms"
        self._sampled = self.baseline_kb
        self._stop = threading.Event()
        self._thread = None
        if not self.method.startswith("VmHWM"):  # no background sampling when the kernel keeps the peak
            self._thread = threading.Thread(target=self._sample, args=(interval_s,), daemon=True)
            self._thread.start()

    def _sample(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._sampled = max(self._sampled, status_kb("VmRSS"))

    def peak_kb(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        sampled = max(self._sampled, status_kb("VmRSS"))
        if self.method.startswith("VmHWM"):
            return max(status_kb("VmHWM"), sampled)
        return sampled


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/*/stat parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class TreeRssSampler:
    """Samples the RSS of a process and of the sum over its process tree every ``interval_s``."""

    def __init__(self, pid: int, interval_s: float = 0.05):
        self.pid = pid
        self.peak_main_kb = 0
        self.peak_tree_kb = 0
        self.timeline: list[tuple[float, int, int]] = []  # (time.time(), main kB, tree kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            total = main = 0
            for p in _tree(self.pid):
                try:
                    kb = status_kb("VmRSS", p)
                except (OSError, KeyError):
                    continue
                total += kb
                if p == self.pid:
                    main = kb
                    self.peak_main_kb = max(self.peak_main_kb, kb)
            self.peak_tree_kb = max(self.peak_tree_kb, total)
            self.timeline.append((time.time(), main, total))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------------ child processes


def send(msg: dict) -> None:
    """From a child: one protocol line to the parent."""
    sys.stdout.write(PROTO + json.dumps(msg, default=float) + "\n")
    sys.stdout.flush()


def serve(handlers: dict[str, Callable[[], dict]]) -> None:
    """In a child: answer the parent's commands (one per stdin line) until ``done``."""
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "done":
            return
        send(handlers[cmd]())


class Child:
    """A benchmark child process (``python ARGS``): it prints protocol lines on stdout and reads one
    command a line on stdin; its stderr goes to a log file. ``pause``/``resume`` stop and continue it
    (SIGSTOP/SIGCONT): an idle child's background threads must not steal CPU from the one being timed."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.log = log_path
        self._log_f = open(log_path, "w")
        self.paused = False
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env or child_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log_f, text=True,
        )  # fmt: skip

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def recv(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(PROTO):
                return json.loads(line[len(PROTO) :])
        self.proc.wait()
        raise RuntimeError(
            f"child {self.proc.args} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
        )

    def tell(self, cmd: str) -> None:
        """Send one command without waiting for the answer (a paused child is resumed first)."""
        if self.paused:
            self.resume()
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def ask(self, cmd: str, pause_after: bool = False) -> dict:
        """One command and its answer; ``pause_after``: stop the child again once it has answered."""
        self.tell(cmd)
        msg = self.recv()
        if pause_after:
            self.pause()
        return msg

    def close(self, answer: bool = False) -> dict | None:
        """Send ``done`` (and read the child's last answer when ``answer``), then wait for it to exit."""
        msg = None
        try:
            self.tell("done")
            if answer:
                msg = self.recv()
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        stop_process(self.proc, timeout=60, terminate=False)
        self._log_f.close()
        return msg

    def kill(self) -> None:
        if self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.kill()
            self.proc.wait()
        self._log_f.close()


def stop_process(proc: subprocess.Popen, timeout: float = 10, terminate: bool = True) -> None:
    """SIGTERM (unless ``terminate=False``: it is already told to exit), wait up to ``timeout``
    seconds, then SIGKILL; the process is always reaped."""
    if terminate and proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------- interleaving


def rotated(names: list, rep: int) -> list:
    """The order of repetition ``rep``: ``names`` rotated by ``rep``, so each variant goes first in turn
    and machine noise hits all of them alike."""
    k = rep % len(names)
    return list(names[k:]) + list(names[:k])


# ----------------------------------------------------------------------------------------------- data


INPUT, HORIZON = 48, 24  # the windows of the training and inference benchmarks


def make_windows(n_series: int, length: int, seed: int = 0, input_size: int = INPUT, horizon: int = HORIZON):
    """The project's path from a long frame to scaled training windows: sample panel -> ``Panel`` ->
    resolved config -> window plan -> per-series scaler fit on the training part -> scaled buffer.
    Returns ``(config, buffer [n_slots] float32, train window starts [n] int64)``."""
    from rnn_model.config import ForecastConfig, resolve
    from rnn_model.panel import panel_from_frame
    from rnn_model.sample import make_sample_panel
    from rnn_model.scaling import fit_scaler
    from rnn_model.training import plan_windows

    cfg = ForecastConfig().replace(window={"input_size": input_size, "horizon": horizon})
    panel, _ = panel_from_frame(make_sample_panel(n_series=n_series, length=length, seed=seed))
    cfg = resolve(cfg, panel.freq)
    plan = plan_windows(panel, cfg)
    scaler = fit_scaler(panel, plan.train_end, cfg.train.scaler)
    return cfg, scaler.scaled_buffer(panel), plan.train_starts


def write_time_major_panel(path: Path, n_series: int, length: int, seed: int = 0, freq: str = "h") -> dict:
    """A long-format Parquet panel with rows in time-major order, as a scheduler appends them: all
    series at t0, then all at t1, ... ``unique_id`` string, ``ds`` timestamp[ns], ``y`` float64.

    Values: per-series level + daily and weekly cycles + noise (learnable, never constant).
    Written in row groups of 1M rows (the pyarrow default), id column dictionary-encoded by Parquet.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    ids = pa.array([f"series_{i:05d}" for i in range(n_series)])
    start = np.datetime64("2020-01-01T00:00", "ns")
    step = {"h": np.timedelta64(1, "h"), "D": np.timedelta64(1, "D")}[freq]
    level = rng.uniform(10, 100, n_series).astype(np.float32)  # [n_series]
    daily = rng.uniform(2, 8, n_series).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, n_series).astype(np.float32)
    writer = None
    block = max(1, 1_000_000 // n_series)  # time steps per row group
    codes = np.tile(np.arange(n_series, dtype=np.int32), block)
    for lo in range(0, length, block):
        steps = min(block, length - lo)
        t = np.arange(lo, lo + steps, dtype=np.float32)[:, None]  # [steps, 1]
        y = level + daily * np.sin(2 * np.pi * t / 24 + phase) + 2 * np.sin(2 * np.pi * t / 168)
        y += rng.standard_normal((steps, n_series), dtype=np.float32)  # [steps, n_series]
        ds = np.repeat(start + np.arange(lo, lo + steps) * step, n_series)  # [steps * n_series]
        table = pa.table(
            {
                "unique_id": pa.DictionaryArray.from_arrays(pa.array(codes[: steps * n_series]), ids).cast(pa.string()),
                "ds": pa.array(ds),
                "y": pa.array(y.reshape(-1).astype(np.float64)),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
    writer.close()
    return {
        "path": str(path),
        "rows": n_series * length,
        "n_series": n_series,
        "length": length,
        "bytes": path.stat().st_size,
        "seconds": time.perf_counter() - t0,
    }
