"""Run every benchmark, one subprocess each, one after another, and print one RATIO line per target last.

    .venv/bin/python -m benchmarks            # full (make bench), < 20 minutes on 2 cores
    .venv/bin/python -m benchmarks --quick    # reduced (make bench-quick), < 3 minutes on 2 cores
    .venv/bin/python -m benchmarks --only ingest,inference

Targets (see benchmarks/RESULTS.md): 1 windowing (benchmarks/windowing.py), 2 training input pipeline and
GFLOP/s, 7 seed vs us (benchmarks/training.py), 3 inference (benchmarks/inference.py), 4 ingest
(benchmarks/ingest.py), 5 scale run (benchmarks/scale.py), 6 orchestration overhead
(benchmarks/orchestration.py). Each benchmark prints its own tables and RATIO lines; this runner shows
them as they come, then repeats all RATIO lines at the end (a benchmark that fails to report gets FAIL
lines for its targets). Exit status 0 when every target passes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks.common import ROOT, child_env, machine, machine_line

# name -> (module, extra args full, extra args quick, timeout s full, timeout s quick, expected RATIO names)
BENCHMARKS = {
    "windowing": ("benchmarks.windowing", [], [], 420, 150, [
        "windows_vs_keras_h1", "windows_vs_numpy_h1", "extra_rss_vs_numpy_h1",
        "windows_vs_keras_h24", "windows_vs_numpy_h24", "extra_rss_vs_numpy_h24"]),
    "training": ("benchmarks.training", [], [], 360, 100, [
        "train_pipeline_vs_numpy_b256", "train_pipeline_vs_numpy_b1024", "train_gflops_of_matmul_peak_b1024",
        "seed_default_vs_article_b1"]),
    "inference": ("benchmarks.inference", [], [], 300, 80, ["inference_vs_model_predict"]),
    "ingest": ("benchmarks.ingest", [], [], 200, 60, ["ingest_speed_vs_bare_minimum", "ingest_10m_rows_seconds"]),
    "scale": ("benchmarks.scale", [], [], 420, 100, ["scale_run_peak_rss_gb"]),
    "orchestration": ("benchmarks.orchestration", [], [], 420, 100, ["orchestration_overhead_fraction"]),
}  # fmt: skip


def run_one(name: str, quick: bool) -> tuple[list[str], float, int]:
    module, full_args, quick_args, t_full, t_quick, expected = BENCHMARKS[name]
    cmd = [sys.executable, "-m", module] + (["--quick"] + quick_args if quick else full_args)
    print(f"\n{'=' * 100}\n$ {' '.join(cmd[1:])}\n", flush=True)
    t0 = time.perf_counter()
    lines: list[str] = []
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True)
        deadline = t0 + (t_quick if quick else t_full) * 3  # a generous cap: never hang the whole run
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.startswith("RATIO "):
                lines.append(line.strip())
            if time.perf_counter() > deadline:
                proc.kill()
                break
        rc = proc.wait()
    except OSError as exc:  # pragma: no cover
        print(f"cannot run {module}: {exc}")
        rc = -1
    seen = {ln.split()[1] for ln in lines}
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
    ratios: list[str] = []
    durations: dict[str, tuple[float, int]] = {}
    for name in names:
        lines, seconds, rc = run_one(name, args.quick)
        ratios += lines
        durations[name] = (seconds, rc)
    total = time.perf_counter() - t0
    print(f"\n{'=' * 100}\n# Summary ({'quick' if args.quick else 'full'}): {total:.0f} s in all")
    for name, (seconds, rc) in durations.items():
        print(f"  {name:14s} {seconds:6.0f} s  exit {rc}")
    print(machine_line(machine()).replace("at start", "at end"))
    print()
    for line in ratios:
        print(line)
    sys.stdout.flush()
    return 0 if all(line.endswith("PASS") for line in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
