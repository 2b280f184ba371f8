"""Inference benchmark (target 3): batch forecasting of 100,000 windows with the project's
``Forecaster.predict_scaled`` (a ``tf.function`` with a fixed input signature, called on chunks of
``rnn_model.prediction.CHUNK`` windows) vs ``model.predict`` with its default batch size (32).

Every variant runs in its own fresh subprocess: it imports TensorFlow, builds the default model
(``build_model(ModelConfig())``: SimpleRNN(128) + Dense(24), seeded weights), gathers the 100,000
windows ``[n, 48, 1]`` from a sample panel's scaled buffer, warms up (traces) on a few windows, records
its RSS baseline, resets the kernel's peak-RSS mark and waits. The parent interleaves the repetitions
(rotating who goes first). Windows/s counts the whole call on all windows; "extra MB" is the peak RSS
during the calls minus the baseline (the input array is part of the baseline, the output is not).

Variants: ``ours`` (predict_scaled, the project's chunk), ``predict`` (``model.predict(x)``), and in the
full run ``ours_chunk16384`` (the chunk size used before this benchmark) and ``predict_b4096``
(``model.predict(x, batch_size=4096)``), to show what the chunk size does.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m benchmarks.inference            # full
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m benchmarks.inference --quick    # 30,000 windows, 2 variants
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Child, PeakRss, fmt, log, machine, machine_line, print_ratios, send, serve, stats

SPEEDUP = 4.0


def child_main(args) -> None:
    import keras
    import tensorflow as tf

    import rnn_model.prediction as prediction
    from benchmarks.training import HORIZON, INPUT, make_windows
    from rnn_model.model import build_model
    from rnn_model.prediction import Forecaster
    from rnn_model.windowing import gather_windows

    cfg, buffer, starts = make_windows(args.n_series, args.length)
    starts = np.sort(np.random.default_rng(1).permutation(starts)[: args.windows])
    x, _ = gather_windows(buffer, starts, INPUT, HORIZON)  # [n, 48, 1] float32
    assert len(x) == args.windows, (len(x), args.windows)
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_model(cfg.model, INPUT, HORIZON)
    forecaster = Forecaster(model, None, cfg)
    variant = args.child
    if variant.startswith("ours_chunk"):
        prediction.CHUNK = int(variant.removeprefix("ours_chunk"))
    chunk = prediction.CHUNK

    if variant.startswith("ours"):
        def predict():
            return forecaster.predict_scaled(x)
    elif variant == "predict":
        def predict():
            return model.predict(x, verbose=0)
    elif variant.startswith("predict_b"):
        batch = int(variant.removeprefix("predict_b"))

        def predict():
            return model.predict(x, batch_size=batch, verbose=0)
    else:
        raise ValueError(variant)

    # Warm-up: trace, and check that the variants forecast the same numbers.
    probe = x[:300]
    ours_probe = forecaster.predict_scaled(probe)
    ref = model.predict(probe, verbose=0)
    np.testing.assert_allclose(ours_probe, ref, rtol=1e-5, atol=1e-6)
    if variant.startswith("predict"):
        model.predict(x[:2000], verbose=0, **({} if variant == "predict" else {"batch_size": batch}))
    peak = PeakRss()
    send({"event": "built", "variant": variant, "chunk": chunk, "tf": tf.__version__, "baseline_kb": peak.baseline_kb})

    def run() -> dict:
        t = time.perf_counter()
        out = predict()
        seconds = time.perf_counter() - t
        assert out.shape == (len(x), HORIZON)
        return {"windows": len(x), "seconds": seconds}

    serve({"run": run, "peak": lambda: {"peak_kb": peak.peak_kb(), "method": peak.method}})


def explore(args) -> None:
    """Chunk sizes of predict_scaled and batch sizes of model.predict, interleaved in one process."""
    import keras

    import rnn_model.prediction as prediction
    from benchmarks.training import HORIZON, INPUT, make_windows
    from rnn_model.model import build_model
    from rnn_model.prediction import Forecaster
    from rnn_model.windowing import gather_windows

    cfg, buffer, starts = make_windows(args.n_series, args.length)
    starts = np.sort(np.random.default_rng(1).permutation(starts)[: args.windows])
    x, _ = gather_windows(buffer, starts, INPUT, HORIZON)
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_model(cfg.model, INPUT, HORIZON)
    forecaster = Forecaster(model, None, cfg)

    def chunked(chunk):
        def run():
            prediction.CHUNK = chunk
            forecaster.predict_scaled(x)
        return run

    def predict(batch):
        return lambda: model.predict(x, batch_size=batch, verbose=0)

    variants = {f"chunk{c}": chunked(c) for c in (1024, 2048, 4096, 8192, 16384)}
    variants.update({f"predict_b{b}": predict(b) for b in (32, 4096)})
    for fn in variants.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for rep in range(args.reps):
        for k in names if rep % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            variants[k]()
            rates[k].append(len(x) / (time.perf_counter() - t))
            log(f"rep {rep + 1}/{args.reps} {k}: {rates[k][-1]:,.0f} windows/s")
    print(f"\n## inference explore: {len(x):,} windows, {args.reps} interleaved repetitions, one process")
    print("| variant | windows/s median | min | max |\n|---|---:|---:|---:|")
    for k in names:
        st = stats(rates[k])
        print(f"| {k} | {fmt(st['median'])} | {fmt(st['min'])} | {fmt(st['max'])} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--windows", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--n-series", type=int, default=42)
    p.add_argument("--length", type=int, default=2500)
    p.add_argument("--variants", default="ours,predict,ours_chunk16384,predict_b4096")
    p.add_argument("--explore", action="store_true", help="chunk and batch sizes, one process (not a target)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    if args.explore:
        explore(args)
        print(machine_line(machine()))
        return 0
    if args.quick:
        args.windows, args.reps, args.variants = 30_000, 2, "ours,predict"
    t0 = time.perf_counter()
    m = machine()
    variants = args.variants.split(",")
    results = {v: {"reps": []} for v in variants}
    children: dict[str, Child] = {}
    with tempfile.TemporaryDirectory(prefix="bench_inference_") as tmp:
        try:
            for v in variants:  # started one at a time: each builds while the others wait
                cmd = ["-m", "benchmarks.inference", "--child", v, "--windows", str(args.windows),
                       "--n-series", str(args.n_series), "--length", str(args.length)]  # fmt: skip
                children[v] = Child(cmd, Path(tmp) / f"{v}.log")
                results[v]["built"] = children[v].recv()
                log(f"{v}: ready (chunk {results[v]['built']['chunk']})")
            for rep in range(args.reps):
                order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
                for v in order:
                    r = children[v].ask("run")
                    results[v]["reps"].append(r)
                    log(f"rep {rep + 1}/{args.reps} {v}: {r['windows'] / r['seconds']:,.0f} windows/s")
            for v in variants:
                results[v]["peak"] = children[v].ask("peak")
        finally:
            for c in children.values():
                c.close()
    print(f"\n# Inference benchmark ({'quick' if args.quick else 'full'}), {time.perf_counter() - t0:.0f} s")
    print(machine_line(m))
    print(f"{args.windows:,} windows [n, 48, 1] -> [n, 24], default model (SimpleRNN(128) + Dense(24)), "
          f"{args.reps} interleaved repetitions, one subprocess per variant\n")  # fmt: skip
    print("| variant | calls | windows/s median | min | max | seconds (median) | baseline MB | extra MB (peak - baseline) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    describe = {
        "ours": "predict_scaled, chunk {chunk}",
        "predict": "model.predict, batch 32 (default)",
    }
    for v in variants:
        r = results[v]
        rates = stats([x["windows"] / x["seconds"] for x in r["reps"]])
        secs = stats([x["seconds"] for x in r["reps"]])
        base = r["built"]["baseline_kb"] / 1024
        extra = (r["peak"]["peak_kb"] - r["built"]["baseline_kb"]) / 1024
        what = describe.get(v, "predict_scaled, chunk {chunk}" if v.startswith("ours") else
                            f"model.predict, batch {v.removeprefix('predict_b')}").format(chunk=r["built"]["chunk"])  # fmt: skip
        print(f"| {v} | {what} | {fmt(rates['median'])} | {fmt(rates['min'])} | {fmt(rates['max'])} | "
              f"{secs['median']:.2f} | {base:.0f} | {extra:.1f} |")  # fmt: skip
        r["rates"] = rates
    paired = stats([a["seconds"] and b["seconds"] / a["seconds"] for a, b in zip(results["ours"]["reps"], results["predict"]["reps"])])
    print(f"\npaired per-repetition speed-up ours / model.predict: median {paired['median']:.2f} "
          f"[{paired['min']:.2f}, {paired['max']:.2f}]; RSS: {results['ours']['peak']['method']}")  # fmt: skip
    ok = print_ratios([("inference_vs_model_predict", paired["median"], SPEEDUP, True)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
