"""Refit vs no refit at library level (no Prefect): train with the held-out horizons, score its forecast of the
competition test window, refit on every window (same gradient steps), score again; one JSON line per data set and
seed. ``python benchmarks/refit_ablation.py m3_quarterly,tourism_yearly 0,1,2 [JSON overrides]``; results in
benchmarks/RESULTS.md ("Refit, measured again")."""

import json
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from benchmarks.accuracy import load_datasets, mase_scale, split
from rnn_model.config import ForecastConfig
from rnn_model.evaluation import evaluate
from rnn_model.stages import validate
from rnn_model.training import refit, train


def score(future, test, train_part, m):
    scales = {u: mase_scale(g["y"].to_numpy(float), m) for u, g in train_part.groupby("unique_id")}
    j = test.merge(future[["unique_id", "ds", "y_hat"]], on=["unique_id", "ds"], how="left")
    j = j[np.isfinite(j["y"])]
    return float(np.nanmean([np.mean(np.abs(g.y - g.y_hat)) / scales[u] for u, g in j.groupby("unique_id")]))


names = sys.argv[1].split(",")
seeds = [int(s) for s in sys.argv[2].split(",")]
over = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
dsets = load_datasets(names)
for name in names:
    ds = dsets[name]
    train_part, test, end = split(ds["frame"], ds["h"])
    for seed in seeds:
        cfg = ForecastConfig().replace(
            data={"freq": ds["freq"], "season_length": ds["m"]}, window={"horizon": ds["h"]}, train={"seed": seed}
        )
        if over:
            cfg = cfg.replace(**over)
        table = pa.Table.from_pandas(ds["frame"][["unique_id", "ds", "y"]], preserve_index=False)
        panel, _, cfg = validate(table, cfg, as_of=end.isoformat())
        t0 = time.perf_counter()
        res = train(panel, cfg)
        t1 = time.perf_counter()
        _, sc = evaluate({"challenger": res.forecaster}, panel, cfg)
        g = sc.overall["mase"]
        fut, _ = res.forecaster.forecast_future(panel)
        a = score(fut, test, train_part, ds["m"])
        rf = refit(panel, cfg, res)
        t2 = time.perf_counter()
        fut2, _ = rf.forecaster.forecast_future(panel)
        b = score(fut2, test, train_part, ds["m"])
        print(
            json.dumps(
                {
                    "ds": name,
                    "seed": seed,
                    "over": over,
                    "norefit": round(a, 4),
                    "refit": round(b, 4),
                    "heldout_model": round(float(g["challenger"]), 4),
                    "heldout_snaive": round(float(g["seasonal_naive"]), 4),
                    "train_s": round(t1 - t0, 1),
                    "refit_s": round(t2 - t1, 1),
                    "input_size": cfg.window.input_size,
                    "windows": res.n_train_windows,
                    "refit_windows": rf.n_train_windows,
                }
            ),
            flush=True,
        )
