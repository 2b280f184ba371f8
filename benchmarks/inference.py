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
full run ``ours_chunk16384`` (the chunk size used before this benchmark), to show what the chunk size
does to speed and memory (``--variants ...,predict_b4096`` adds ``model.predict(x, batch_size=4096)``;
``--explore`` compares chunk and batch sizes in one process).

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m benchmarks.inference            # full
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m benchmarks.inference --quick    # 6,000 windows, 2 variants, 1 process
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    HORIZON,
    INPUT,
    Child,
    PeakRss,
    fmt,
    log,
    machine,
    machine_line,
    make_windows,
    print_ratios,
    rotated,
    send,
    serve,
    stats,
)  # fmt: skip

SPEEDUP = 4.0


def setup(args):
    """The windows ``x [n, 48, 1]`` of a sample panel's scaled buffer, the default model (seeded weights)
    and its Forecaster: the same in every variant and process."""
    import keras

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
    # Warm-up (trace) and check that both forecast the same numbers.
    np.testing.assert_allclose(
        forecaster.predict_scaled(x[:300]), model.predict(x[:300], verbose=0), rtol=1e-5, atol=1e-6
    )
    return x, model, forecaster


def child_main(args) -> None:
    import tensorflow as tf

    import rnn_model.prediction as prediction

    x, model, forecaster = setup(args)
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


def in_process(args) -> dict:
    """The quick version: ours and model.predict interleaved in this one process (no RSS figures)."""
    from rnn_model.prediction import CHUNK

    x, model, forecaster = setup(args)
    model.predict(x[:2000], verbose=0)
    runs = {"ours": lambda: forecaster.predict_scaled(x), "predict": lambda: model.predict(x, verbose=0)}
    results = {k: {"reps": [], "built": {"chunk": CHUNK}} for k in runs}
    for rep in range(args.reps):
        for k in rotated(list(runs), rep):
            t = time.perf_counter()
            runs[k]()
            results[k]["reps"].append({"windows": len(x), "seconds": time.perf_counter() - t})
            log(f"rep {rep + 1}/{args.reps} {k}: {len(x) / results[k]['reps'][-1]['seconds']:,.0f} windows/s")
    return results


def explore(args) -> None:
    """Chunk sizes of predict_scaled and batch sizes of model.predict, interleaved in one process."""
    import rnn_model.prediction as prediction

    x, model, forecaster = setup(args)

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
        for k in rotated(names, rep):
            t = time.perf_counter()
            variants[k]()
            rates[k].append(len(x) / (time.perf_counter() - t))
            log(f"rep {rep + 1}/{args.reps} {k}: {rates[k][-1]:,.0f} windows/s")
    print(f"\n## inference explore: {len(x):,} windows, {args.reps} interleaved repetitions, one process")
    print("| variant | windows/s median | min | max |\n|---|---:|---:|---:|")
    for k in names:
        st = stats(rates[k])
        print(f"| {k} | {fmt(st['median'])} | {fmt(st['min'])} | {fmt(st['max'])} |")


def run_children(args, variants: list[str]) -> dict:
    """One subprocess per variant, repetitions interleaved (the order rotates); with RSS figures."""
    results: dict = {v: {"reps": []} for v in variants}
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
                for v in rotated(variants, rep):
                    r = children[v].ask("run")
                    results[v]["reps"].append(r)
                    log(f"rep {rep + 1}/{args.reps} {v}: {r['windows'] / r['seconds']:,.0f} windows/s")
            for v in variants:
                results[v]["peak"] = children[v].ask("peak")
        finally:
            for c in children.values():
                c.close()
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="6,000 windows, ours and predict in one process")
    p.add_argument("--windows", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--n-series", type=int, default=42)
    p.add_argument("--length", type=int, default=2500)
    p.add_argument("--variants", default="ours,predict,ours_chunk16384")
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
        args.windows, args.reps, args.variants = 6_000, 3, "ours,predict"
    t0 = time.perf_counter()
    m = machine()
    variants = args.variants.split(",")
    results = in_process(args) if args.quick else run_children(args, variants)
    print(f"\n# Inference benchmark ({'quick' if args.quick else 'full'}), {time.perf_counter() - t0:.0f} s")
    print(machine_line(m))
    where = "ours and model.predict in one process (no RSS figures)" if args.quick else "one subprocess per variant"
    print(f"{args.windows:,} windows [n, 48, 1] -> [n, 24], default model (SimpleRNN(128) + Dense(24)), "
          f"{args.reps} interleaved repetitions, {where}\n")  # fmt: skip
    print(
        "| variant | calls | windows/s median | min | max | seconds (median) | baseline MB | extra MB (peak - baseline) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        r = results[v]
        rates = stats([x["windows"] / x["seconds"] for x in r["reps"]])
        secs = stats([x["seconds"] for x in r["reps"]])
        if "peak" in r:
            base = f"{r['built']['baseline_kb'] / 1024:.0f}"
            extra = f"{(r['peak']['peak_kb'] - r['built']['baseline_kb']) / 1024:.1f}"
        else:
            base = extra = "-"
        if v.startswith("ours"):
            what = f"predict_scaled, chunk {r['built']['chunk']}"
        else:
            what = "model.predict, batch " + ("32 (default)" if v == "predict" else v.removeprefix("predict_b"))
        print(f"| {v} | {what} | {fmt(rates['median'])} | {fmt(rates['min'])} | {fmt(rates['max'])} | "
              f"{secs['median']:.2f} | {base} | {extra} |")  # fmt: skip
    paired = stats([b["seconds"] / a["seconds"] for a, b in zip(results["ours"]["reps"], results["predict"]["reps"])])
    method = results["ours"].get("peak", {}).get("method", "not measured")
    print(f"\npaired per-repetition speed-up ours / model.predict: median {paired['median']:.2f} "
          f"[{paired['min']:.2f}, {paired['max']:.2f}]; RSS: {method}")  # fmt: skip
    ok = print_ratios([("inference_vs_model_predict", paired["median"], SPEEDUP, True)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
