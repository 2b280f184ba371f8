"""Ingest benchmark (target 4): a 10-million-row long-format Parquet file, rows in time-major order as a
scheduler appends them (all series at t0, then all at t1, ...), to the validated panel buffer.

Variants, on the same file, interleaved in one process (the order rotates every repetition), after
one untimed read of each (the file is in the page cache for all of them):

* ``ours`` -- ``rnn_model.io.read_long_table`` + ``rnn_model.panel.build_panel`` (default ``DataConfig``:
  freq inferred, every check of the data contract, the float32 buffer, the observed mask and offsets),
  with the training ``min_length`` that ``rnn_model.stages.validate`` uses.
* ``bare`` -- the bare minimum: ``pyarrow.parquet.read_table`` of the three columns (the id column read as
  a dictionary: codes without hashing strings, the fastest form), dictionaries unified, ``numpy.lexsort``
  by (series code, ds), the three columns gathered in that order, and offsets from ``bincount``.
* ``bare_str`` (informational) -- the same with the id column read as strings and dictionary-encoded by
  ``pyarrow.compute.dictionary_encode``: the bare minimum written the obvious way.

Wall time (``perf_counter``) and CPU time (``process_time``, all threads) are both reported: on this
shared machine CPU time is the less noisy of the two. ``ours`` is also split into reading and building.

    .venv/bin/python -m benchmarks.ingest            # full: 1,000 x 10,000 = 10M rows, 7 repetitions
    .venv/bin/python -m benchmarks.ingest --quick    # the same file, 2 repetitions, without bare_str
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import log, machine, machine_line, print_ratios, rotated, stats, write_time_major_panel

SPEED_VS_BARE = 0.5
SECONDS = 2.0


def bare(path: str, dictionary: bool = True):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["unique_id", "ds", "y"], read_dictionary=["unique_id"] if dictionary else None)
    if dictionary:
        ids = table.unify_dictionaries().column("unique_id").combine_chunks()
    else:
        ids = pc.dictionary_encode(table.column("unique_id")).combine_chunks()
    codes = ids.indices.to_numpy()  # [n_rows] int32
    ds = table.column("ds").to_numpy()  # [n_rows] datetime64[ns]
    y = table.column("y").to_numpy()  # [n_rows] float64
    order = np.lexsort((ds, codes))
    codes, ds, y = codes[order], ds[order], y[order]
    offsets = np.r_[0, np.cumsum(np.bincount(codes))]  # [n_series + 1]
    return offsets, y


def ours(path: str, timings: dict | None = None):
    from rnn_model.config import DataConfig, ForecastConfig, resolve
    from rnn_model.io import read_long_table
    from rnn_model.panel import build_panel
    from rnn_model.training import min_train_length

    config = ForecastConfig()
    t0 = time.perf_counter()
    table = read_long_table(path, config.data)
    t1 = time.perf_counter()
    panel, report = build_panel(table, DataConfig(), min_length=lambda freq: min_train_length(resolve(config, freq)))
    if timings is not None:
        timings.setdefault("read", []).append(t1 - t0)
        timings.setdefault("build_panel", []).append(time.perf_counter() - t1)
    return panel, report


VARIANTS = {"ours": lambda p, t: ours(p, t), "bare": lambda p, t: bare(p), "bare_str": lambda p, t: bare(p, False)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--n-series", type=int, default=1000)
    p.add_argument("--length", type=int, default=10_000)
    p.add_argument("--data", type=Path, help="an existing file instead of the generated one")
    args = p.parse_args(argv)
    if args.quick:
        args.reps = 2
        del VARIANTS["bare_str"]
    t_start = time.perf_counter()
    m = machine()
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        path = args.data or Path(tmp) / "panel.parquet"
        if args.data is None:
            info = write_time_major_panel(path, args.n_series, args.length)
            log(f"wrote {info['rows']:,} rows ({info['bytes'] / 1e6:.0f} MB) in {info['seconds']:.1f} s")
        import pyarrow.parquet as pq  # noqa: F401  (imports outside the timed region)

        import rnn_model.io  # noqa: F401
        import rnn_model.panel  # noqa: F401

        # Untimed: page cache, and the panel equals the bare minimum's layout.
        panel, report = ours(str(path))
        offsets, y = bare(str(path))
        np.testing.assert_array_equal(panel.offsets, offsets)
        np.testing.assert_array_equal(panel.values, y.astype(np.float32))
        if "bare_str" in VARIANTS:
            bare(str(path), False)
        n_rows = int(offsets[-1])
        del panel, offsets, y
        wall = {v: [] for v in VARIANTS}
        cpu = {v: [] for v in VARIANTS}
        parts: dict = {}
        names = list(VARIANTS)
        for rep in range(args.reps):
            for v in rotated(names, rep):
                c0, t0 = time.process_time(), time.perf_counter()
                out = VARIANTS[v](str(path), parts if v == "ours" else None)
                wall[v].append(time.perf_counter() - t0)
                cpu[v].append(time.process_time() - c0)
                del out
                log(f"rep {rep + 1}/{args.reps} {v}: {wall[v][-1]:.2f} s wall, {cpu[v][-1]:.2f} s CPU")
    print(f"\n# Ingest benchmark ({'quick' if args.quick else 'full'}), {time.perf_counter() - t_start:.0f} s")
    print(machine_line(m))
    print(f"file: {n_rows:,} rows ({args.n_series:,} series x {args.length:,} hourly points), time-major rows, "
          f"row groups of 1M, {report.freq} inferred; {args.reps} interleaved repetitions\n")  # fmt: skip
    print("| variant | wall s median | min | max | CPU s median | Mrows/s (wall) |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in names:
        w, c = stats(wall[v]), stats(cpu[v])
        print(
            f"| {v} | {w['median']:.3f} | {w['min']:.3f} | {w['max']:.3f} | {c['median']:.3f} | {n_rows / w['median'] / 1e6:.1f} |"
        )
    for k, vals in parts.items():
        s = stats(vals)
        print(f"| ours: {k} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} | | |")
    paired = stats([b / o for b, o in zip(wall["bare"], wall["ours"])])
    paired_cpu = stats([b / o for b, o in zip(cpu["bare"], cpu["ours"])])
    print(f"\nspeed of ours relative to the bare minimum (bare time / ours time), paired per repetition: wall "
          f"{paired['median']:.2f} [{paired['min']:.2f}, {paired['max']:.2f}], CPU {paired_cpu['median']:.2f}")  # fmt: skip
    # "Under 2 s here" is a property of the code on this machine, not of the other tenants' load: with a
    # load average of 5-10 on 2 cores a process gets a fraction of a core, and wall time grows with the
    # load. CPU seconds (all threads) are what ours costs; on an idle machine its wall time is at most
    # that (the Parquet read is multi-threaded, the rest single-threaded). Wall medians are printed above.
    cpu_ours = stats(cpu["ours"])
    print(f"ours, 10M rows: CPU {cpu_ours['median']:.2f} s median [{cpu_ours['min']:.2f}, {cpu_ours['max']:.2f}], "
          f"wall {stats(wall['ours'])['median']:.2f} s median (min {stats(wall['ours'])['min']:.2f})")  # fmt: skip
    ok = print_ratios([
        ("ingest_speed_vs_bare_minimum", paired["median"], SPEED_VS_BARE, True),
        ("ingest_10m_rows_seconds", cpu_ours["median"], SECONDS, False),
    ])  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
