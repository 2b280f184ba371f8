"""Orchestration overhead (target 6): the ``pipeline`` flow (train then predict, as ``rnn-forecast run``
runs it) vs the same ``rnn_model`` calls made directly, on the default sample panel (8 hourly series of
1,344 points), default configuration (SimpleRNN(128), up to 20 epochs with early stopping).

``direct`` does what the flow's tasks do, without Prefect: write the sample panel, read and validate,
plan windows, train, evaluate against naive and seasonal naive, register the bundle and promote it,
then load the champion, read and validate again, forecast, write the predictions partition and render
the forecast plot -- the README's library example plus the registry and output writes.

Both run in this one process (TensorFlow warm in both), each repetition in a fresh store, alternating
which goes first. Training is seeded and deterministic, so both train the same epochs and the same
model. The one-off start-up of Prefect's temporary local API (the first flow run of a process) is
measured separately with a no-op flow before any timed run, and is not part of the overhead.

    .venv/bin/python -m benchmarks.orchestration            # full: default config, 3 pairs
    .venv/bin/python -m benchmarks.orchestration --quick    # 2 epochs, 2 pairs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RUN_ENV, fmt, log, machine, machine_line, print_ratios, stats

OVERHEAD_LIMIT = 0.10
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds of this process, of its child processes: the temporary API server), all threads."""
    from benchmarks.common import _tree

    me = os.getpid()
    own = children = 0.0
    for pid in _tree(me):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        sec = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
        if pid == me:
            own = sec
        else:
            children += sec
    return own, children


def direct_run(store: Path, config) -> dict:
    """The pipeline's work through rnn_model only (see flows/train.py and flows/predict.py)."""
    from rnn_model.bundle import save_bundle
    from rnn_model.evaluation import evaluate
    from rnn_model.io import read_long_table
    from rnn_model.outputs import as_of_label, write_predictions
    from rnn_model.plotting import forecast_plot_png
    from rnn_model.registry import ModelRegistry, store_lock
    from rnn_model.sample import write_sample_data
    from rnn_model.stages import config_for_model, prediction_frame, promotion_decision, validate
    from rnn_model.training import plan_windows, train

    with store_lock(store):
        path = store / "sample" / "sample.parquet"
        write_sample_data(path)
        # train
        panel, report, resolved = validate(read_long_table(path, config.data), config, None, "train")
        plan = plan_windows(panel, resolved)
        registry = ModelRegistry(store, "default")
        assert registry.champion() is None
        result = train(panel, resolved, plan)
        forecasts, scores = evaluate({"challenger": result.forecaster}, panel, resolved)
        decision = promotion_decision(forecasts, scores, 0.01)
        meta = {"data_fingerprint": panel.fingerprint(), "data_path": str(path), "n_series": panel.n_series,
                "history": result.history, "best_epoch": result.best_epoch}  # fmt: skip
        version = registry.register(lambda tmp: save_bundle(tmp, result.forecaster, scores.to_dict(), meta, pending=True))
        if decision.promote:
            registry.set_champion(version, "; ".join(decision.reasons))
        registry.record_decision(version, {"promoted": decision.promote, "reasons": decision.reasons, "forced": False})
        # predict
        label = as_of_label(None)
        bundle = registry.load(registry.champion())
        cfg = config_for_model(bundle.forecaster.config, config)
        panel, _, resolved = validate(read_long_table(path, cfg.data), cfg, None, "predict")
        frame = prediction_frame(panel, bundle.forecaster, version, resolved, label)
        out = write_predictions(frame, store, label)
        forecast_plot_png(panel, frame)
    return {"version": version, "epochs": len(result.history["loss"]), "rows": len(frame), "predictions": str(out)}


def flow_run(store: Path, config) -> dict:
    from flows.pipeline import pipeline

    res = pipeline(store=str(store), config=config)
    return {"version": res["train"]["version"], "rows": res["predict"]["rows"], "predictions": res["predict"]["predictions"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=None, help="default: the project default (20, early stopping)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.epochs = 2, args.epochs or 2
    t_bench = time.perf_counter()
    m = machine()
    tmp = tempfile.TemporaryDirectory(prefix="bench_orchestration_")
    root = Path(tmp.name)
    for k, v in RUN_ENV.items():
        os.environ.setdefault(k, v)
    os.environ["PREFECT_HOME"] = str(root / "prefect")  # a fresh temporary API, as on a first `make run`

    t0 = time.perf_counter()
    import tensorflow  # noqa: F401
    from prefect import flow

    import flows.pipeline  # noqa: F401
    from rnn_model.config import ForecastConfig

    t_import = time.perf_counter() - t0

    @flow(name="noop")
    def noop() -> int:
        return 1

    t0 = time.perf_counter()
    noop()
    t_first = time.perf_counter() - t0  # temporary API start-up + one trivial flow run
    t0 = time.perf_counter()
    noop()
    t_noop = time.perf_counter() - t0
    config = ForecastConfig()
    if args.epochs:
        config = config.replace(train={"epochs": args.epochs})
    log(f"imports {t_import:.1f} s, first flow run (API start-up) {t_first:.1f} s, no-op flow {t_noop:.2f} s")
    t0 = time.perf_counter()
    direct_run(root / "warm", ForecastConfig().replace(train={"epochs": 1}))  # TF runtime warm-up, untimed
    log(f"warm-up {time.perf_counter() - t0:.1f} s")

    times: dict[str, list[float]] = {"flow": [], "direct": []}
    cpu: dict[str, list[tuple[float, float]]] = {"flow": [], "direct": []}
    outs: dict[str, list[dict]] = {"flow": [], "direct": []}
    runs = {"flow": flow_run, "direct": direct_run}
    for rep in range(args.reps):
        order = ["flow", "direct"] if rep % 2 == 0 else ["direct", "flow"]
        for name in order:
            store = root / f"{name}{rep}"
            c0, t0 = cpu_seconds(), time.perf_counter()
            outs[name].append(runs[name](store, config))
            times[name].append(time.perf_counter() - t0)
            c1 = cpu_seconds()
            cpu[name].append((c1[0] - c0[0], c1[1] - c0[1]))
            log(f"rep {rep + 1}/{args.reps} {name}: {times[name][-1]:.1f} s wall, CPU {cpu[name][-1][0]:.1f} s "
                f"+ API server {cpu[name][-1][1]:.1f} s")
    for a, b in zip(outs["flow"], outs["direct"]):
        assert a["rows"] == b["rows"], (a, b)
    tmp.cleanup()

    f, d = stats(times["flow"]), stats(times["direct"])
    paired = stats([x / y - 1 for x, y in zip(times["flow"], times["direct"])])
    print(f"\n# Orchestration overhead ({'quick' if args.quick else 'full'}), {time.perf_counter() - t_bench:.0f} s")
    print(machine_line(m))
    epochs = outs["direct"][0]["epochs"]
    print(f"default sample panel (8 x 1,344 hourly), config: {'default' if not args.epochs else f'epochs={args.epochs}'} "
          f"({epochs} epochs trained, early stopping), {args.reps} interleaved pairs, one process\n")  # fmt: skip
    print("| | seconds median | min | max |\n|---|---:|---:|---:|")
    print(f"| pipeline flow (Prefect) | {f['median']:.2f} | {f['min']:.2f} | {f['max']:.2f} |")
    print(f"| direct rnn_model calls | {d['median']:.2f} | {d['min']:.2f} | {d['max']:.2f} |")
    print(f"| difference (median of pairs) | {fmt(paired['median'] * d['median'])} | | |")
    cf = stats([a + b for a, b in cpu["flow"]])
    cd = stats([a + b for a, b in cpu["direct"]])
    api = stats([b for _, b in cpu["flow"]])
    cpu_over = stats([(fa + fb) / (da + db) - 1 for (fa, fb), (da, db) in zip(cpu["flow"], cpu["direct"])])
    print(f"\nCPU seconds (this process, all threads, + the temporary API server process): flow median {cf['median']:.1f} "
          f"(API server {api['median']:.1f}), direct {cd['median']:.1f}; CPU overhead, paired: median "
          f"{100 * cpu_over['median']:.1f}% [{100 * cpu_over['min']:.1f}%, {100 * cpu_over['max']:.1f}%] (less sensitive "
          "to other load on the machine than wall time)")  # fmt: skip
    print(f"\none-off, not in the overhead: imports (TF, Prefect, flows) {t_import:.1f} s; first flow run of the "
          f"process = temporary local API start-up + a no-op flow {t_first:.1f} s; a no-op flow afterwards "
          f"{t_noop:.2f} s")  # fmt: skip
    print(f"Prefect overhead per pipeline run, paired: median {100 * paired['median']:.1f}% "
          f"[{100 * paired['min']:.1f}%, {100 * paired['max']:.1f}%]")  # fmt: skip
    ok = print_ratios([("orchestration_overhead_fraction", paired["median"], OVERHEAD_LIMIT, False)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
