"""Scale run (target 5): ``rnn-forecast run`` end to end on a generated 1,000 series x 10,000 hourly
points panel (10M rows, rows in time-major order), with a cap on training windows per series: ingest,
validate, window, train a few epochs, backtest, register and promote, then predict and write.

The CLI runs in a subprocess with a fresh ``PREFECT_HOME`` (its own temporary local API) and a fresh
store. Peak RSS: the CLI process's own peak (``ru_maxrss`` of the largest waited-for descendant, exact)
and the sum over its process tree (the CLI plus the temporary API server it starts), sampled every
50 ms; the target uses the tree sum. Wall time per stage comes from the Prefect log: the flows run their
tasks one after another, so a task's stage time is the time from the previous task's (or the flow's)
log event to its ``Finished in state`` line -- the orchestration between tasks is counted in the stage.
Start-up is split in two: imports (Python, Prefect, the CLI) up to ``Starting temporary server``, and
the temporary API's start-up from there to the first ``Beginning flow run``.

    .venv/bin/python -m benchmarks.scale            # 1,000 x 10,000, cap 50 windows/series, 3 epochs
    .venv/bin/python -m benchmarks.scale --quick    # 100 x 2,000 (200k rows), cap 50, 1 epoch

With ``PREFECT_API_URL`` set (``--shared-api``: the quick runner's server), the CLI uses that API and
no temporary API is started: the start-up split then shows only the imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    ROOT,
    TreeRssSampler,
    child_env,
    log,
    machine,
    machine_line,
    print_ratios,
    shared_api_url,
    write_time_major_panel,
)  # fmt: skip

RSS_LIMIT_GB = 3.0
LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) \| (\w+)\s*\| (Flow run|Task run) '([^']+)' - (.*)$")
SERVER = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) \| \w+\s*\| prefect - Starting temporary server")
STAGES = {  # task name -> stage
    "sample-data": "ingest", "load-data": "ingest",
    "partition-data": "validate", "validate-data": "validate", "data-quality": "validate",
    "build-windows": "windows", "load-champion": "windows",
    "train-model": "train", "refit-model": "refit",
    "evaluate-models": "backtest",
    "register-challenger": "register + promote", "promote": "register + promote",
    "load-model": "predict: load model", "forecast": "predict: forecast",
    "write-predictions": "predict: write", "forecast-plot": "predict: write",
}  # fmt: skip


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("rnn-forecast")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]


def parse_log(text: str, day: dt.date) -> list[dict]:
    """Events ``{t, kind, name, message}`` from Prefect's console log (local times, as printed)."""
    events = []
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            m = SERVER.match(line)
            if m:
                h, mi, s, ms = (int(x) for x in m.groups()[:4])
                t = dt.datetime.combine(day, dt.time(h, mi, s, ms * 1000)).timestamp()
                events.append({"t": t, "kind": "server", "name": "", "message": ""})
            continue
        h, mi, s, ms = (int(x) for x in m.groups()[:4])
        t = dt.datetime.combine(day, dt.time(h, mi, s, ms * 1000)).timestamp()
        events.append({"t": t, "kind": m.group(6), "name": m.group(7), "message": m.group(8)})
    return events


def stage_of(flow_name: str, task: str) -> str:
    stage = STAGES.get(task, task)
    return f"predict: {stage}" if flow_name == "predict" and stage in ("ingest", "validate") else stage


def stage_peaks(rows, timeline, marks_start: float) -> dict[str, float]:
    """Peak RSS (GB, CLI process) sampled during each stage."""
    peaks: dict[str, float] = {}
    for flow_name, task, _, t0, t1 in rows:
        kb = [main for t, main, _ in timeline if t0 - 0.05 <= t <= t1 + 0.05]
        if kb:
            key = stage_of(flow_name, task)
            peaks[key] = max(peaks.get(key, 0.0), max(kb) / 1024**2)
    return peaks


def stage_times(events: list[dict], t_start: float, t_end: float) -> tuple[list[tuple[str, str, float]], dict]:
    """Per task: (flow, task, seconds since the previous event of the run); plus totals per stage."""
    rows, flow, prev = [], "?", None
    marks = {}
    for e in events:
        if e["kind"] == "server":
            marks.setdefault("server", e["t"])
        elif e["kind"] == "Flow run" and e["message"].startswith("Beginning"):
            m = re.search(r"for flow '([^']+)'", e["message"])
            flow = m.group(1) if m else flow
            marks.setdefault("first_flow", e["t"])
            prev = e["t"]
        elif e["kind"] == "Task run" and e["message"].startswith("Finished in state"):
            task = e["name"].rsplit("-", 1)[0]
            rows.append((flow, task, e["t"] - prev, prev, e["t"]))
            prev = e["t"]
            if task == "load-model":  # the pipeline's predict steps follow in the same flow run
                flow = "predict"
        elif e["kind"] == "Flow run" and e["message"].startswith("Finished in state"):
            marks["last_flow"] = e["t"]
    totals: dict[str, float] = {}
    first_flow = marks.get("first_flow", t_end)
    server = marks.get("server", first_flow)
    totals["start-up: imports"] = server - t_start
    totals["start-up: temporary API"] = first_flow - server
    for flow_name, task, sec, _, _ in rows:
        totals[stage_of(flow_name, task)] = totals.get(stage_of(flow_name, task), 0.0) + sec
    accounted = sum(totals.values())
    totals["flow bookkeeping + shutdown"] = (t_end - t_start) - accounted
    return rows, totals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n-series", type=int, default=1000)
    p.add_argument("--length", type=int, default=10_000)
    p.add_argument("--cap", type=int, default=50, help="--max-windows-per-series")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--keep", type=Path, help="keep the data, store and log in this directory")
    p.add_argument("--shared-api", action="store_true", help="require PREFECT_API_URL (a running API)")
    args = p.parse_args(argv)
    if args.quick:
        args.n_series, args.length, args.cap, args.epochs = 100, 2000, 50, 1
    shared = shared_api_url(p, args.shared_api)
    t_bench = time.perf_counter()
    m = machine()
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = work / "panel.parquet"
        info = write_time_major_panel(data, args.n_series, args.length)
        log(f"wrote {info['rows']:,} rows ({info['bytes'] / 1e6:.0f} MB) in {info['seconds']:.1f} s")
        cmd = cli_command() + [
            "run", "--data", str(data), "--store", str(work / "store"), "--as-of", "2021-12-31",
            "--max-windows-per-series", str(args.cap), "--epochs", str(args.epochs),
        ]  # fmt: skip
        home = {} if shared else {"PREFECT_HOME": str(work / "prefect")}
        env = child_env(**home, PREFECT_LOGGING_LEVEL="INFO", COLUMNS="200")
        log_path = work / "run.log"
        day = dt.date.today()
        with open(log_path, "w") as log_f:
            t_start = time.time()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_f, stderr=subprocess.STDOUT)
            sampler = TreeRssSampler(proc.pid)
            rc = proc.wait()
            t_end = time.time()
            sampler.stop()
        maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        text = log_path.read_text()
        rows, totals = stage_times(parse_log(text, day), t_start, t_end)
        predictions = re.search(r"predictions: \S+ \((\d+) rows", text)
        n_pred = int(predictions.group(1)) if predictions else 0
        if rc != 0:
            log(text[-4000:])
    wall = t_end - t_start
    print(f"\n# Scale run ({'quick' if args.quick else 'full'}), {time.perf_counter() - t_bench:.0f} s")
    print(machine_line(m))
    print(f"command: rnn-forecast run --data panel.parquet --store STORE --as-of 2021-12-31 "
          f"--max-windows-per-series {args.cap} --epochs {args.epochs}  "
          + (f"(API already running: {shared})" if shared else "(fresh PREFECT_HOME: temporary local API)"))  # fmt: skip
    print(f"data: {info['rows']:,} rows = {args.n_series:,} series x {args.length:,} hourly points, time-major row order, "
          f"{info['bytes'] / 1e6:.0f} MB Parquet (generated in {info['seconds']:.1f} s, not counted)")  # fmt: skip
    print(f"exit code {rc}; {n_pred:,} prediction rows (expected {args.n_series * 24:,}); wall {wall:.1f} s")
    print(f"peak RSS: CLI process {maxrss_kb / 1024**2:.2f} GB (ru_maxrss); CLI + temporary API server "
          f"{sampler.peak_tree_kb / 1024**2:.2f} GB (sampled sum); CLI sampled {sampler.peak_main_kb / 1024**2:.2f} GB\n")  # fmt: skip
    peaks = stage_peaks(rows, sampler.timeline, t_start)
    print("| stage | seconds | share | peak RSS of the CLI process in the stage, GB |\n|---|---:|---:|---:|")
    for stage, sec in totals.items():
        peak = f"{peaks[stage]:.2f}" if stage in peaks else ""
        print(f"| {stage} | {sec:.1f} | {100 * sec / wall:.0f}% | {peak} |")
    print(f"| **total (process wall time)** | **{wall:.1f}** | 100% | {sampler.peak_main_kb / 1024**2:.2f} |")
    print("\nper task (flow / task: seconds since the previous event):")
    for flow_name, task, sec, _, _ in rows:
        print(f"  {flow_name:8s} {task:22s} {sec:7.2f}")
    ok_run = rc == 0 and n_pred == args.n_series * 24
    peak_gb = max(sampler.peak_tree_kb, maxrss_kb) / 1024**2 if ok_run else float("nan")
    ok = print_ratios([("scale_run_peak_rss_gb", peak_gb, RSS_LIMIT_GB, False)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
