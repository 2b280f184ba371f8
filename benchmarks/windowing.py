"""Windowing benchmark: windows/s for one full shuffled epoch and peak RSS, ours vs two baselines.

Variants (same panel, same windows, same batch size, all shuffled, all ending in ``prefetch``):

* ``ours``  -- :func:`rnn_model.windowing.make_dataset`: window starts into one float32 buffer, a
  seeded per-epoch shuffle of the starts, one vectorised gather per batch.
* ``keras`` -- (a) ``keras.utils.timeseries_dataset_from_array`` per series (``shuffle=True``,
  ``batch_size=None``), windows split into ``[input_size, 1]`` / ``[horizon]``, the series mixed
  window by window with ``tf.data.Dataset.sample_from_datasets`` (uniform, seeded), then batched.
  Far too slow for a full epoch: it is timed on a fixed number of batches after a warm-up (which
  includes filling its 100 per-series shuffle buffers) and windows/s is extrapolated from that
  steady state -- the warm-up is excluded, which favours (a).
* ``numpy`` -- (b) ``numpy.lib.stride_tricks.sliding_window_view`` per series, concatenated into
  materialised ``X [n, input_size, 1]`` / ``Y [n, horizon]``, fed to
  ``tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(n).batch(...)`` (a full shuffle buffer by
  default, i.e. the same uniform per-epoch permutation ours does; ``--numpy-shuffle-buffer`` changes it).

Every variant runs in its own fresh subprocess, which imports TensorFlow, loads the prepared data (the
float32 buffer, series offsets and int64 window starts, saved by the parent), releases free heap
(``malloc_trim``), records its RSS baseline, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs`` = 5; a 2 ms VmRSS sampler is the fallback), builds its pipeline and waits.
Each rep of ours and numpy is one full epoch (``steps`` batches, the last one partial) from a fresh
iterator; keras keeps one warmed-up iterator and each rep takes its next ``--keras-batches`` batches.
The parent interleaves the reps (ours, keras, numpy, rotated each rep, after ``--settle`` idle
seconds), so machine noise hits all variants alike, and keeps every child but the one at work stopped
(SIGSTOP), so no idle pipeline's background threads run while another variant is timed. Peak RSS is
VmHWM at the end of the child (covering the build and every rep); "extra RSS" is peak minus baseline.
Windows/s only counts iterating (the build is reported as ``setup s``). By default each epoch is
drained inside a ``tf.function`` (as ``Model.fit`` consumes a dataset): every batch is fetched, its
windows counted and one value of each of its two tensors read. ``--consumer python`` uses a plain
Python loop over the iterator instead (checks every batch's shapes and counts its windows); there,
TF's eager per-batch overhead (hundreds of microseconds on a busy 2-core VM) caps ours, whatever the
pipeline. The script exits 1 when a target fails.

Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m benchmarks.windowing            # full (a few minutes)
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m benchmarks.windowing --quick    # reduced

The last lines are one ``RATIO <target> <measured> <threshold> PASS|FAIL`` per target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Child as _Child
from benchmarks.common import PeakRss, child_env, log, machine, send

VARIANTS = ("ours", "keras", "numpy")

# Targets: ours / keras windows/s >= 50, ours / numpy windows/s >= 3, ours extra RSS / numpy extra RSS < 0.10.
SPEED_VS_KERAS = 50.0
SPEED_VS_NUMPY = 3.0
EXTRA_RSS_VS_NUMPY = 0.10


# ----------------------------------------------------------------------------------------------- data


def prepare_data(n_series: int, length: int, input_size: int, horizons: list[int], out: Path) -> dict:
    """Sample panel -> Panel -> buffer/offsets/starts saved as .npy for the children (no TF here)."""
    from rnn_model.panel import panel_from_frame
    from rnn_model.sample import make_sample_panel
    from rnn_model.windowing import window_starts

    t0 = time.perf_counter()
    panel, _ = panel_from_frame(make_sample_panel(n_series=n_series, length=length))
    assert panel.observed.all(), "the sample panel has no gaps"
    buffer = np.ascontiguousarray(panel.values, dtype=np.float32)  # [n_slots]
    np.save(out / "buffer.npy", buffer)
    np.save(out / "offsets.npy", panel.offsets.astype(np.int64))  # [n_series + 1]
    info = {"n_series": panel.n_series, "length": length, "n_slots": len(buffer), "windows": {}}
    for h in horizons:
        lo = np.zeros(panel.n_series, np.int64)
        starts = window_starts(panel, input_size, h, lo, panel.lengths.astype(np.int64))  # [n_windows]
        # Every window of every series, exactly what sliding_window_view / keras produce.
        assert len(starts) == panel.n_series * (length - input_size - h + 1)
        np.save(out / f"starts_h{h}.npy", starts)
        info["windows"][h] = int(len(starts))
    info["prepare_s"] = time.perf_counter() - t0
    return info


# ---------------------------------------------------------------------------------------------- child


def child_main(args) -> None:
    import keras
    import tensorflow as tf

    (tf.constant(1.0) + 1.0).numpy()  # initialise the TF runtime before the baseline
    data = Path(args.data)
    h, input_size, batch, seed = args.horizon, args.input_size, args.batch_size, args.seed
    buffer = np.load(data / "buffer.npy")  # [n_slots] float32
    offsets = np.load(data / "offsets.npy")  # [n_series + 1] int64
    starts = np.load(data / f"starts_h{h}.npy")  # [n_windows] int64
    n_windows = len(starts)
    steps = -(-n_windows // batch)
    span = input_size + h

    send({"event": "loaded"})
    if sys.stdin.readline().strip() != "build":  # the parent builds one pipeline at a time
        return
    peak = PeakRss()
    t0 = time.perf_counter()
    info: dict = {}

    if args.consumer == "graph":

        @tf.function
        def drain(it, k):  # k batches consumed inside the graph, as Model.fit does
            n = tf.constant(0, tf.int64)
            touched = tf.constant(0.0)
            for _ in tf.range(k):
                x, y = next(it)  # [batch, input_size, 1], [batch, horizon]
                n += tf.shape(x, out_type=tf.int64)[0]
                touched += x[0, 0, 0] + y[-1, -1]  # read both tensors of every batch
            return n, touched

    def consume(it, k: int) -> int:
        """Take ``k`` batches from ``it``, touching each one; returns the number of windows."""
        if args.consumer == "graph":
            n, _ = drain(it, tf.constant(k, tf.int64))
            return int(n)
        n = 0
        for _ in range(k):
            x, y = next(it)
            if x.shape[1:] != (input_size, 1) or y.shape[1:] != (h,) or x.shape[0] != y.shape[0]:
                raise AssertionError(f"bad batch shapes {x.shape} {y.shape}")
            n += x.shape[0]
        return n

    if args.variant == "ours":
        import importlib

        module, _, attr = args.impl.partition(":")
        make_dataset = getattr(importlib.import_module(module), attr)
        ds, steps_ours = make_dataset(buffer, starts, input_size, h, batch, seed=seed, epochs=1)
        assert steps_ours == steps
        per_rep, full_epoch = steps, True
    elif args.variant == "numpy":
        from numpy.lib.stride_tricks import sliding_window_view

        # Materialised windows, built straight into X and Y (no [n, span] intermediate).
        series = [buffer[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        x_np = np.concatenate([sliding_window_view(s[: len(s) - h], input_size) for s in series])  # [n, in]
        y_np = np.concatenate([sliding_window_view(s[input_size:], h) for s in series])  # [n, h]
        x_np = x_np[..., None]  # [n, input_size, 1] (a view)
        assert len(x_np) == len(y_np) == n_windows
        shuffle_buffer = args.numpy_shuffle_buffer or n_windows
        info["shuffle_buffer"] = shuffle_buffer
        ds = (
            tf.data.Dataset.from_tensor_slices((x_np, y_np))
            .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
            .batch(batch)
            .prefetch(tf.data.AUTOTUNE)
        )
        per_rep, full_epoch = steps, True
    elif args.variant == "keras":

        def split(w):  # [span] -> [input_size, 1], [horizon]
            return w[:input_size, None], w[input_size:]

        per_series = [
            keras.utils.timeseries_dataset_from_array(
                buffer[offsets[i] : offsets[i + 1]],
                None,
                sequence_length=span,
                sequence_stride=1,
                batch_size=None,
                shuffle=True,
                seed=seed + i,
            ).map(split, num_parallel_calls=tf.data.AUTOTUNE)
            for i in range(len(offsets) - 1)
        ]
        ds = tf.data.Dataset.sample_from_datasets(per_series, seed=seed).batch(batch).prefetch(tf.data.AUTOTUNE)
        per_rep, full_epoch = args.keras_batches, False
    else:
        raise ValueError(args.variant)

    if args.consumer == "graph":  # trace once, outside the timed loop
        drain.get_concrete_function(tf.data.IteratorSpec(ds.element_spec), tf.TensorSpec([], tf.int64))
    info["build_s"] = time.perf_counter() - t0
    # ours and numpy: each rep is one full epoch from a fresh iterator (so no epoch is prepared in the
    # background while another variant is timed). keras: one iterator, warmed up first (that fills its
    # per-series shuffle buffers), then each rep takes the next ``keras_batches`` batches.
    persistent = None
    if args.variant == "keras":
        persistent = iter(ds)
        t1 = time.perf_counter()
        consume(persistent, args.keras_warmup)
        info["warmup_s"] = time.perf_counter() - t1
    info["setup_s"] = time.perf_counter() - t0

    send(
        {
            "event": "built",
            "variant": args.variant,
            "n_windows": n_windows,
            "steps": steps,
            "batches_per_rep": per_rep,
            "full_epoch": full_epoch,
            "baseline_kb": peak.baseline_kb,
            "tf": tf.__version__,
            "keras": keras.__version__,
            **info,
        }
    )
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":
            c0, t1 = time.process_time(), time.perf_counter()
            n = consume(persistent if persistent is not None else iter(ds), per_rep)
            seconds, cpu = time.perf_counter() - t1, time.process_time() - c0
            if full_epoch and n != n_windows:
                raise AssertionError(f"one epoch gave {n} windows, expected {n_windows}")
            send({"event": "rep", "windows": n, "seconds": seconds, "cpu_s": cpu})
        elif cmd == "done":
            send({"event": "done", "peak_kb": peak.peak_kb(), "rss_method": peak.method})
            os._exit(0)  # skip TF's slow teardown


# --------------------------------------------------------------------------------------------- parent


class Child(_Child):
    """One variant at one horizon (``--child VARIANT``), kept stopped (SIGSTOP) whenever it is not the
    one working: an idle child's background threads (autotune, prefetch) must not steal CPU."""

    def __init__(self, variant: str, horizon: int, args, data: Path, log_dir: Path):
        self.variant = variant
        cmd = [
            "-m", "benchmarks.windowing", "--child", variant, "--data", str(data),
            "--horizon", str(horizon), "--input-size", str(args.input_size), "--batch-size", str(args.batch_size),
            "--seed", str(args.seed), "--reps", str(args.reps), "--keras-batches", str(args.keras_batches),
            "--keras-warmup", str(args.keras_warmup), "--numpy-shuffle-buffer", str(args.numpy_shuffle_buffer),
            "--consumer", args.consumer, "--impl", args.impl,
        ]  # fmt: skip
        super().__init__(cmd, log_dir / f"{variant}_h{horizon}.log", env=child_env())

    def send(self, cmd: str) -> dict:
        """Wake the child, run one command, and stop it again."""
        return self.ask(cmd, pause_after=True)


def run_all(args, data: Path, log_dir: Path) -> dict:
    """Start every child at once (TF imports overlap), then build and measure one horizon at a time."""
    children = {(h, v): Child(v, h, args, data, log_dir) for h in args.horizons for v in VARIANTS}
    results: dict = {h: {} for h in args.horizons}
    try:
        for child in children.values():
            child.recv()  # "loaded": TF imported, data loaded, waiting for "build"
            child.pause()
        log(f"{len(children)} children loaded")
        # keras's builds (warm-ups) take the longest: they run side by side, before anything is timed.
        built = {}
        for h in args.horizons:
            children[h, "keras"].tell("build")
        for h in args.horizons:
            built[h, "keras"] = children[h, "keras"].recv()
            children[h, "keras"].pause()
        for h in args.horizons:
            for v in ("ours", "numpy"):  # one build at a time; the other children sit idle
                built[h, v] = children[h, v].send("build")
        for (h, v), b in built.items():
            results[h][v] = {"built": b, "reps": []}
            log(f"h={h} {v}: built in {b['setup_s']:.1f}s (baseline RSS {b['baseline_kb'] / 1024:.0f} MB)")
        for h in args.horizons:
            for rep in range(args.reps):
                order = VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]  # rotate who goes first
                for v in order:
                    time.sleep(args.settle)  # let the previous variant's background threads go idle
                    r = children[h, v].send("run")
                    results[h][v]["reps"].append(r)
                    log(f"h={h} rep {rep + 1}/{args.reps} {v}: {r['windows'] / r['seconds']:,.0f} windows/s")
        # Peaks are read at the end: finished children sit idle, none exits while another is timed.
        for (h, v), child in list(children.items()):
            results[h][v]["done"] = children.pop((h, v)).close(answer=True)
    finally:
        for child in children.values():
            child.kill()
    return results


def summarise(h: int, res: dict) -> dict:
    out = {}
    for v, r in res.items():
        rates = [x["windows"] / x["seconds"] for x in r["reps"]]
        b, d = r["built"], r["done"]
        extra_kb = d["peak_kb"] - b["baseline_kb"]
        s = {
            "rates": rates,
            "median": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
            "epoch_s": b["n_windows"] / statistics.median(rates),
            "setup_s": b["setup_s"],
            "warmup_s": b.get("warmup_s", 0.0),
            "baseline_mb": b["baseline_kb"] / 1024,
            "peak_mb": d["peak_kb"] / 1024,
            "extra_mb": extra_kb / 1024,
            "full_epoch": b["full_epoch"],
            "timed_windows": r["reps"][0]["windows"],
            "rss_method": d["rss_method"],
        }
        if not b["full_epoch"]:  # extrapolated: warm-up once, then the steady-state rate
            s["epoch_s"] = s["warmup_s"] + b["n_windows"] / s["median"]
        out[v] = s
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="50 series, 2 reps, 15 keras batches per rep")
    p.add_argument("--n-series", type=int, default=100)
    p.add_argument("--length", type=int, default=10_000)
    p.add_argument("--input-size", type=int, default=48)
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 24])
    p.add_argument("--batch-size", type=int, default=256, help="the project's TrainConfig default")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keras-batches", type=int, default=40, help="timed batches per rep for (a)")
    p.add_argument("--keras-warmup", type=int, default=5, help="untimed batches before (a)'s first rep")
    p.add_argument("--numpy-shuffle-buffer", type=int, default=0, help="0: the number of windows (full)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds of idle before each timed run")
    p.add_argument(
        "--consumer", choices=("graph", "python"), default="graph",
        help="graph: drain each epoch in a tf.function, as Model.fit does; python: a for loop over the iterator",
    )  # fmt: skip
    p.add_argument(
        "--impl", default="rnn_model.windowing:make_dataset", help="module:function to time as ours (for A/B runs)"
    )
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--horizon", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.variant = args.child
        child_main(args)
        return 0
    if args.quick:
        args.n_series, args.reps, args.keras_batches, args.settle = min(args.n_series, 50), 2, 15, 0.5

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_windowing_") as tmp:
        data = Path(tmp)
        info = prepare_data(args.n_series, args.length, args.input_size, args.horizons, data)
        log(f"panel: {info['n_series']} series x {args.length} points, windows {info['windows']}")
        all_results = run_all(args, data, data)
        summary = {h: summarise(h, all_results[h]) for h in args.horizons}
    m = machine()
    built = all_results[args.horizons[0]]["ours"]["built"]
    m.update(tf=built["tf"], keras=built["keras"])

    print(f"\n# Windowing benchmark ({'quick' if args.quick else 'full'}), {time.perf_counter() - t_start:.0f} s")
    print(
        f"machine: nproc={m['nproc']}, cpu={m['cpu']}, RAM {m['ram_gb']:.1f} GiB, Python {m['python']}, "
        f"TF {m['tf']}, Keras {m['keras']}, NumPy {m['versions']['numpy']}; 1-min load average {load_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end (this benchmark alone adds about 1)"
    )
    print(
        f"panel {args.n_series} series x {args.length} points, input_size {args.input_size}, batch {args.batch_size}, "
        f"{args.reps} reps (interleaved), consumer={args.consumer}, seed {args.seed}"
    )
    rss_method = summary[args.horizons[0]]["ours"]["rss_method"]
    print(f"RSS: baseline after TF init + data load + malloc_trim, peak = {rss_method}; extra = peak - baseline")
    print(
        f"keras: {args.keras_batches} timed batches per rep after a {args.keras_warmup}-batch warm-up (fills its "
        "shuffle buffers; both horizons warm up side by side); its epoch s = warm-up + windows / median rate\n"
    )
    print(
        "| h | variant | windows | windows/s median | min | max | epoch s | setup s | baseline MB | peak MB | extra MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for h in args.horizons:
        for v in VARIANTS:
            s = summary[h][v]
            n = info["windows"][h]
            timed = "" if s["full_epoch"] else f" ({s['timed_windows']:,} timed/rep)"
            epoch = f"{s['epoch_s']:.1f}" + ("" if s["full_epoch"] else " (est.)")
            print(
                f"| {h} | {v} | {n:,}{timed} | {s['median']:,.0f} | {s['min']:,.0f} | {s['max']:,.0f} | {epoch} | "
                f"{s['setup_s']:.1f} | {s['baseline_mb']:.0f} | {s['peak_mb']:.0f} | {s['extra_mb']:.1f} |"
            )
    ratios = []  # (name, measured, threshold, higher is better, per-rep range or "")
    for h in args.horizons:
        s = summary[h]
        for other, thr in (("keras", SPEED_VS_KERAS), ("numpy", SPEED_VS_NUMPY)):
            paired = [a / b for a, b in zip(s["ours"]["rates"], s[other]["rates"])]  # rep r of each
            spread = f"{min(paired):.3g} - {max(paired):.3g}"
            ratios.append((f"windows_vs_{other}_h{h}", s["ours"]["median"] / s[other]["median"], thr, True, spread))
        rss = s["ours"]["extra_mb"] / s["numpy"]["extra_mb"] if s["numpy"]["extra_mb"] > 0 else float("inf")
        ratios.append((f"extra_rss_vs_numpy_h{h}", rss, EXTRA_RSS_VS_NUMPY, False, ""))
    print("\n| ratio | measured (medians) | per-rep ratios min - max | target |\n|---|---:|---:|---|")
    for name, value, thr, higher, spread in ratios:
        print(f"| {name} | {value:.3g} | {spread} | {'>=' if higher else '<'} {thr:g} |")
    if args.json:
        args.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "machine": m, "info": info,
                        "summary": summary, "raw": all_results}, indent=1, default=str)
        )  # fmt: skip
    print()
    ok = True
    for name, value, thr, higher, _ in ratios:
        passed = value >= thr if higher else value < thr
        ok &= passed
        shown = f"{value:.1f}" if higher else f"{value:.3f}"
        print(f"RATIO {name} {shown} {thr:g} {'PASS' if passed else 'FAIL'}" if higher
              else f"RATIO {name} {shown} {thr:.2f} {'PASS' if passed else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
