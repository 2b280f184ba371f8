"""What an ensemble costs: the wall time of ``rnn_model.training.train`` for a 5-member ensemble against
one network, in paired, interleaved repetitions (each repetition trains every variant once, in rotated
order, so machine noise hits all of them alike), on the embedded sample (8 hourly series) and on a
1,000-series panel.

    .venv/bin/python -m benchmarks.ensemble            # 5 repetitions
    .venv/bin/python -m benchmarks.ensemble --quick    # 3 repetitions, the same panels and steps

Variants: ``single`` (members=1), ``shared`` (5 members, every member on each step's whole batch) and
``own`` (5 members, each step's batch split between them: TrainConfig.member_windows; ``own_512`` with
batches of 512, about 102 windows per member). Every variant
trains the same number of gradient steps (``--steps``, 100: the cost per step is what differs; the
default budget of 500 multiplies every variant alike). Reported per ratio: the median over repetitions of
the paired ratio and its spread (min..max).
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .common import log, machine_line, print_ratios, rotated  # noqa: E402

VARIANTS = {
    "single": {"model": {"members": 1}},
    "shared": {"model": {"members": 5}, "train": {"member_windows": "shared"}},
    "own": {"model": {"members": 5}, "train": {"member_windows": "own"}},
    "own_512": {"model": {"members": 5}, "train": {"member_windows": "own", "batch_size": 512}},
}
# name -> (hourly series, points each): the embedded sample, and 1,000 series of two weeks
PANELS = {"sample": (8, 24 * 7 * 8), "1000_series": (1000, 24 * 14)}
TARGET = 2.0  # issue 16: a K=5 ensemble costs at most 2x one network


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 5")
    ap.add_argument("--only", choices=list(PANELS), help="one panel only")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 5

    import pyarrow as pa

    from rnn_model.config import ForecastConfig
    from rnn_model.sample import make_sample_panel
    from rnn_model.stages import validate
    from rnn_model.training import train

    print(machine_line())
    default = ForecastConfig().train.member_windows
    rows = []
    for panel_name, (n_series, length) in PANELS.items():
        if args.only and panel_name != args.only:
            continue
        table = pa.Table.from_pandas(make_sample_panel(n_series=n_series, length=length), preserve_index=False)
        seconds = {v: [] for v in VARIANTS}
        for rep in range(reps):
            for name in rotated(list(VARIANTS), rep):
                cfg = ForecastConfig().replace(train={"steps": args.steps}).replace(**VARIANTS[name])
                panel, _, cfg = validate(table, cfg)
                seconds[name].append(train(panel, cfg).seconds)
                log(f"{panel_name} rep {rep} {name}: {seconds[name][-1]:.2f} s")
        print(
            f"\n{panel_name}: {n_series} series x {length} points, {args.steps} steps of {ForecastConfig().train.batch_size} windows"
        )
        print(
            "| variant | seconds (median) | min..max | / single, paired: median | min..max |\n|---|---:|---|---:|---|"
        )
        for name, secs in seconds.items():
            paired = [s / one for s, one in zip(secs, seconds["single"])]
            print(
                f"| {name} | {statistics.median(secs):.2f} | {min(secs):.2f}..{max(secs):.2f} | "
                f"{statistics.median(paired):.2f} | {min(paired):.2f}..{max(paired):.2f} |"
            )
        paired = [s / one for s, one in zip(seconds[default], seconds["single"])]
        rows.append((f"ensemble_wall_vs_single_{panel_name}", statistics.median(paired), TARGET, False))
    print(f"\nThe RATIO lines are the default ({default!r}) 5-member ensemble against one network.")
    return 0 if print_ratios(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
