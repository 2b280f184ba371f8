"""M3 monthly (1,428 series, h=18; issue 11's runtime and Theta checks): the default pipeline through the
CLI with 3 seeds, timed, and its written forecasts scored beside seasonal naive, statsforecast AutoTheta
and AutoETS (season 12) fitted in the same run, on the competition's split. Scores as benchmarks/accuracy.py:
MASE with ``accuracy.mase_scale``, sMAPE in %, each the mean over series.

    .venv/bin/python -m benchmarks.m3_monthly [--seeds 0,1,2] [--work /tmp/m3m]

Needs the [bench] extra and statsforecast (see pyproject.toml). AutoARIMA is left out: on 1,428 monthly
series it takes far longer than everything else here together.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .accuracy import mase_scale
from .common import RUN_ENV, log
from .datasets import load_datasets, split


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--work", default="/tmp/m3m", help="folder for the data, the stores and Prefect's home")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    d = load_datasets(["m3_monthly"])["m3_monthly"]
    h, m = d["h"], d["m"]
    train, test, end = split(d["frame"], h)
    train.to_parquet(work / "train.parquet", index=False)
    ys = {u: g["y"].to_numpy(float) for u, g in train.sort_values(["unique_id", "ds"]).groupby("unique_id")}
    truth = {u: g["y"].to_numpy(float) for u, g in test.sort_values(["unique_id", "ds"]).groupby("unique_id")}
    scale = {u: mase_scale(y, m) for u, y in ys.items()}

    def scores(fc: dict) -> tuple[float, float]:
        mase = np.nanmean([np.mean(np.abs(truth[u] - fc[u])) / scale[u] for u in truth])
        smape = np.mean([np.mean(200 * np.abs(truth[u] - fc[u]) / (np.abs(truth[u]) + np.abs(fc[u]))) for u in truth])
        return float(mase), float(smape)

    exe = Path(sys.executable).parent / "rnn-forecast"
    env = {**os.environ, **RUN_ENV, "PREFECT_HOME": str(work / ".prefect")}
    for seed in args.seeds.split(","):
        store = work / f"store-seed{seed}"
        cmd = [
            str(exe),
            "run",
            "--data",
            str(work / "train.parquet"),
            "--store",
            str(store),
            "--as-of",
            end.isoformat(),
            "--horizon",
            str(h),
            "--freq",
            d["freq"],
            "--season-length",
            str(m),
            "--seed",
            seed,
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - t0
        (part,) = (store / "predictions").glob("as_of=*/part-0.parquet")
        pred = pd.read_parquet(part).sort_values(["unique_id", "ds"])
        fc = {u: g["y_hat"].to_numpy(float) for u, g in pred.groupby("unique_id")}
        log(f"rnn seed {seed}: MASE %.3f sMAPE %.2f, %.0f s (CLI run, wall)" % (*scores(fc), seconds))
    log("seasonal naive: MASE %.3f sMAPE %.2f" % scores({u: np.resize(y[-m:], h) for u, y in ys.items()}))
    from statsforecast.models import AutoETS, AutoTheta

    for name, model in (("AutoTheta", AutoTheta), ("AutoETS", AutoETS)):
        t0 = time.perf_counter()
        fc = {u: model(season_length=m).forecast(y=y, h=h)["mean"] for u, y in ys.items()}
        log(f"{name}: MASE %.3f sMAPE %.2f, %.0f s" % (*scores(fc), time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
