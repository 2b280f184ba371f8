"""Run every benchmark, one subprocess each, and print one RATIO line per target last.

    .venv/bin/python -m benchmarks            # full (make bench): one after another, < 20 minutes on 2 cores
    .venv/bin/python -m benchmarks --quick    # reduced (make bench-quick), < 3 minutes on 2 cores at a low load:
                                              # two lanes side by side (LANES), one shared Prefect API (SharedApi)
    .venv/bin/python -m benchmarks --only ingest,inference

Targets (see benchmarks/RESULTS.md): 1 windowing (benchmarks/windowing.py), 2 training input pipeline and
GFLOP/s, 7 seed vs us (benchmarks/training.py), 3 inference (benchmarks/inference.py), 4 ingest
(benchmarks/ingest.py), 5 scale run (benchmarks/scale.py), 6 orchestration overhead
(benchmarks/orchestration.py), 8 ensemble cost (benchmarks/ensemble.py). Each benchmark prints its own tables and RATIO lines; this runner shows
them as they come (quick: each benchmark's output in one piece when it ends), then repeats all RATIO lines at the end (a benchmark that fails to report gets FAIL
lines for its targets). Exit status 0 when every target passes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.common import ROOT, child_env, machine, machine_line, stop_process

# name -> (module, extra args full, extra args quick, timeout s full, timeout s quick, expected RATIO names).
# Quick (< 3 minutes in all on 2 shared cores): windowing at h=24 on 30 series; the others reduce
# themselves with --quick; two lanes run side by side (LANES); scale and orchestration use one API server started by this runner at the
# beginning (see SharedApi) instead of each paying the temporary API's start-up.
BENCHMARKS = {
    "windowing": ("benchmarks.windowing", [], ["--horizons", "24", "--n-series", "30", "--keras-warmup", "2"], 480, 120, [
        "windows_vs_keras_h1", "windows_vs_numpy_h1", "extra_rss_vs_numpy_h1",
        "windows_vs_keras_h24", "windows_vs_numpy_h24", "extra_rss_vs_numpy_h24"]),
    "training": ("benchmarks.training", [], [], 360, 150, [
        "train_pipeline_vs_numpy_b256", "train_pipeline_vs_numpy_b1024", "train_gflops_of_matmul_peak_b1024",
        "seed_default_vs_article_b1"]),
    "inference": ("benchmarks.inference", [], [], 360, 100, ["inference_vs_model_predict"]),
    "ensemble": ("benchmarks.ensemble", [], ["--quick"], 600, 300, [
        "ensemble_wall_vs_single_sample", "ensemble_wall_vs_single_1000_series"]),
    "ingest": ("benchmarks.ingest", [], [], 200, 60, ["ingest_speed_vs_bare_minimum", "ingest_10m_rows_seconds"]),
    "scale": ("benchmarks.scale", [], ["--shared-api"], 480, 120, ["scale_run_peak_rss_gb"]),
    "orchestration": ("benchmarks.orchestration", [], ["--shared-api"], 600, 120, ["orchestration_overhead_fraction"]),
}  # fmt: skip


# Quick: the two lanes (each about half of the work; the Prefect-based ones last, after the API is up).
LANES = (["windowing", "ingest", "scale", "ensemble"], ["training", "inference", "orchestration"])


class SharedApi:
    """The quick run's Prefect API: the same uvicorn server Prefect starts as its temporary local API,
    started once, in a fresh PREFECT_HOME, at a low CPU priority (nice 10) while the first benchmarks run
    (its start-up, mostly creating the database, then barely disturbs them), and raised back to normal
    priority before the benchmarks that use it. Its start-up is thus left out of the quick numbers; the
    full run measures it (benchmarks/scale.py and orchestration.py start their own temporary API)."""

    def __init__(self, home: str):
        import os
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        import prefect  # noqa: F401  (only for its location)

        env = child_env(PREFECT_HOME=home, PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1",
                        PREFECT__SERVER_FINAL="1")  # fmt: skip
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", os.path.dirname(os.path.dirname(prefect.__file__)),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, preexec_fn=lambda: os.nice(10), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def ready(self, timeout: float = 180.0) -> float:
        """Raise the server to normal priority, wait for /health; returns the seconds since the start."""
        import os
        import urllib.request

        try:
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, 0)
        except OSError:  # not allowed to lower the niceness: it stays low
            pass
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.t0
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the shared Prefect API on port {self.port} did not start")

    def stop(self) -> None:
        stop_process(self.proc)


_PRINT = threading.Lock()


def run_one(name: str, quick: bool, env: dict | None = None, buffered: bool = False) -> tuple[list[str], float, int]:
    """Run one benchmark; its output is shown as it comes, or (``buffered``: lanes run side by side)
    all at once when it ends. Returns its RATIO lines (FAIL lines for targets it did not report)."""
    module, full_args, quick_args, t_full, t_quick, expected = BENCHMARKS[name]
    cmd = [sys.executable, "-m", module] + (["--quick"] + quick_args if quick else full_args)
    out: list[str] = []

    def show(text: str) -> None:
        if buffered:
            out.append(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    show(f"\n{'=' * 100}\n$ {' '.join(cmd[1:])}\n\n")
    t0 = time.perf_counter()
    lines: list[str] = []
    timeout = (t_quick if quick else t_full) * 2  # a generous cap: never hang the whole run
    timed_out = False
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or child_env(), stdout=subprocess.PIPE, text=True)
        killer = threading.Timer(timeout, proc.kill)  # also fires when the child prints nothing
        killer.start()
        for line in proc.stdout:
            show(line)
            if line.startswith("RATIO "):
                lines.append(line.strip())
        rc = proc.wait()
        timed_out = not killer.is_alive()
        killer.cancel()
    except OSError as exc:  # pragma: no cover
        show(f"cannot run {module}: {exc}\n")
        rc = -1
    if timed_out:
        show(f"{module}: stopped after {timeout} s\n")
    if buffered:
        with _PRINT:
            sys.stdout.write("".join(out))
            sys.stdout.flush()
    seen = {ln.split()[1] for ln in lines}
    if quick and "--horizons" in quick_args:
        horizons = quick_args[quick_args.index("--horizons") + 1].split()
        expected = [t for t in expected if not t.rsplit("_h", 1)[-1].isdigit() or t.rsplit("_h", 1)[-1] in horizons]
    for target in expected:
        if target not in seen:
            lines.append(f"RATIO {target} nan - FAIL")
    return lines, time.perf_counter() - t0, rc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the reduced version (< 3 minutes on 2 cores)")
    p.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    t0 = time.perf_counter()
    print(f"# rnn-forecast-pipeline benchmarks ({'quick' if args.quick else 'full'})")
    print(machine_line(machine()))
    ratios: dict[str, list[str]] = {}
    durations: dict[str, tuple[float, int]] = {}
    # Full: one benchmark at a time. Quick: two lanes side by side (the CPU-light start-ups and
    # imports of one overlap the other's work); each benchmark still interleaves its own variants.
    lanes = [[n for n in LANES[0] if n in names], [n for n in LANES[1] if n in names]] if args.quick else [names]
    lanes = [lane for lane in lanes if lane]
    if args.quick:
        print(f"quick: two lanes side by side: {' -> '.join(lanes[0])} | {' -> '.join(lanes[-1])}")
    api = None
    with tempfile.TemporaryDirectory(prefix="bench_prefect_home_") as home:

        def lane(todo: list[str]) -> None:
            for name in todo:
                env = None
                if api is not None and name in ("scale", "orchestration"):
                    ready = api.ready()
                    with _PRINT:
                        print(f"\nshared Prefect API ready after {ready:.0f} s (started at low priority at the "
                              "beginning of the run)", flush=True)  # fmt: skip
                    env = child_env(PREFECT_API_URL=api.url, PREFECT_HOME=home)
                lines, seconds, rc = run_one(name, args.quick, env, buffered=len(lanes) > 1)
                ratios[name] = lines
                durations[name] = (seconds, rc)

        try:
            if args.quick and {"scale", "orchestration"} & set(names):
                api = SharedApi(home)
            threads = [threading.Thread(target=lane, args=(todo,)) for todo in lanes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            if api is not None:
                api.stop()
    total = time.perf_counter() - t0
    print(f"\n{'=' * 100}\n# Summary ({'quick' if args.quick else 'full'}): {total:.0f} s in all")
    for name in names:
        seconds, rc = durations.get(name, (float("nan"), -1))
        print(f"  {name:14s} {seconds:6.0f} s  exit {rc}")
    print(machine_line(machine()).replace("at start", "at end"))
    print()
    lines = [line for name in names for line in ratios.get(name, [])]
    for line in lines:
        print(line)
    sys.stdout.flush()
    return 0 if all(line.endswith("PASS") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
