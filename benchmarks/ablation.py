"""Library-level ablation for the accuracy benchmark: the same data sets, splits and scoring as
``benchmarks/accuracy.py``, but the training code is called directly (no Prefect, no CLI), so a variant
over the seven data sets takes minutes. Prints, per data set, the challenger's raw test MASE and the
"gated" one (seasonal naive when the early-stopped model does not beat seasonal naive on its own
held-out window, which is what the pipeline writes); then the geometric means.

    .venv/bin/python -m benchmarks.ablation                                    # the default configuration
    .venv/bin/python -m benchmarks.ablation --variant lr3e-3='{"model": {"learning_rate": 0.003}}'
    .venv/bin/python -m benchmarks.ablation --variant norefit='{"train": {"refit": false}}' --datasets yearly3

A variant is a JSON object of config sections to override (``ForecastConfig.replace``); ``"_input_mult": k``
sets ``input_size = k * max(m, h, 4)`` per data set; ``"_long_seasons": k`` a window of ``k`` seasons of which the
RNN reads the default input length (``model.rnn_steps``), the head also reading the value ``k`` seasons back
(``model.long_season``; ``"_long_lag": false`` leaves that out). As in the pipeline, a refit (``train.refit``, the
default) retrains for the best epoch count on every window; unlike the pipeline it is scored even when the
gate fails (the raw column), so what it would have done is visible. Seasonal naive and the MASE scale are
computed here from the training part, as in the accuracy benchmark (the harness's seasonal naive repeats the
last season; on quarterly22 it differs slightly from the accuracy benchmark's).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa

from .accuracy import geo_mean, load_datasets, mase_scale, split
from .common import log
from .datasets import FEW_SERIES, ROLLING_ORIGINS

SEVEN = ["taylor_30min", "msft_daily", "co2_weekly", "monthly23", "quarterly22", "yearly3", "fertility_yearly"]


def run_variant(ds: dict, overrides: dict, origin: int = 0) -> tuple[float, float, float, int, int]:
    """(raw MASE, gated MASE, seconds, best epoch, epochs run) of one variant on one data set, test origin
    ``origin`` (0: the last horizon, 1: the one before, ...)."""
    from rnn_model.config import ForecastConfig
    from rnn_model.evaluation import evaluate
    from rnn_model.seasons import choose_long_season
    from rnn_model.stages import validate
    from rnn_model.training import refit, train

    train_part, test, end = split(ds["frame"], ds["h"], origin)
    cfg = ForecastConfig().replace(data={"freq": ds["freq"], "season_length": ds["m"]}, window={"horizon": ds["h"]})
    overrides = dict(overrides)
    m, default_input = ds["m"], max(2 * ds["m"], 2 * ds["h"], 8)  # as config.resolve infers it
    mult = overrides.pop("_input_mult", None)
    if mult:
        cfg = cfg.replace(window={"input_size": int(mult * max(ds["m"], ds["h"], 4))})
    long_seasons = overrides.pop("_long_seasons", None)  # k: a window of k seasons, the RNN reading the default part
    if long_seasons:
        lag = overrides.pop("_long_lag", True)  # False: the long window alone, no long-season head input
        cfg = cfg.replace(
            window={"input_size": max(long_seasons * m, default_input)},
            model={"rnn_steps": default_input, "long_season": long_seasons * m if lag else 0},
        )
    cfg = cfg.replace(**overrides)
    table = pa.Table.from_pandas(ds["frame"][["unique_id", "ds", "y"]], preserve_index=False)
    panel, _, cfg = validate(table, cfg, as_of=end.isoformat())
    cfg, _ = choose_long_season(panel, cfg)  # as the pipeline does (the variant's own long_season kept)
    t0 = time.perf_counter()
    result = train(panel, cfg)
    _, scores = evaluate({"challenger": result.forecaster}, panel, cfg)
    mase = scores.overall["mase"]
    gate = bool(mase["challenger"] < mase["seasonal_naive"])
    final = refit(panel, cfg, result) if cfg.train.refit else result
    future, _ = final.forecaster.forecast_future(panel)
    secs = time.perf_counter() - t0
    m = ds["m"]
    scales = {u: mase_scale(g["y"].to_numpy(float), m) for u, g in train_part.groupby("unique_id")}
    joined = test.merge(future[["unique_id", "ds", "y_hat"]], on=["unique_id", "ds"], how="left")
    joined = joined[np.isfinite(joined["y"])]
    raw = float(np.nanmean([np.mean(np.abs(g.y - g.y_hat)) / scales[u] for u, g in joined.groupby("unique_id")]))
    last_season = {u: g["y"].to_numpy()[-m:] for u, g in train_part.groupby("unique_id")}
    snaive = float(
        np.nanmean(
            [
                np.mean(np.abs(g.y.to_numpy() - np.resize(last_season[u], len(g)))) / scales[u]
                for u, g in test.groupby("unique_id")
            ]
        )
    )
    if "scaler" in result.extra:
        log(f"  scaler: {result.extra['scaler']}")
    return raw, raw if gate else snaive, secs, result.best_epoch, len(result.history["loss"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="config overrides as JSON (repeatable; default: the default configuration only)",
    )
    ap.add_argument("--datasets", help="comma-separated subset (default: all seven)")
    ap.add_argument(
        "--origins",
        type=int,
        help="rolling test origins per data set, the seed's MASE their mean (default: as the accuracy benchmark: "
        f"{ROLLING_ORIGINS} for sets of fewer than {FEW_SERIES} series, else 1)",
    )
    ap.add_argument(
        "--origin-step",
        type=int,
        default=1,
        help="horizons between rolling origins (default 1: consecutive; 7 on daily-horizon sub-daily data puts "
        "them a week apart, so that one unusual week does not decide)",
    )
    ap.add_argument("--seeds", default="42", help="comma-separated training seeds; each variant runs once per seed")
    args = ap.parse_args(argv)
    variants = (
        {"default": {}}
        if not args.variant
        else {v.split("=", 1)[0]: json.loads(v.split("=", 1)[1]) for v in args.variant}
    )
    datasets = load_datasets(args.datasets.split(",") if args.datasets else SEVEN)
    names = list(datasets)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"| variant | {' | '.join(names)} | geo-mean | gated geo-mean | seconds per run |", flush=True)
    for vname, overrides in variants.items():
        raw, gated, secs = {n: [] for n in names}, {n: [] for n in names}, []
        for seed in seeds:  # seed-major: a variant's seeds interleave with nothing else
            for name in names:
                seeded = {**overrides, "train": {**overrides.get("train", {}), "seed": seed}}
                n_origins = datasets[name]["origins"] if args.origins is None else args.origins
                per_origin = [
                    run_variant(datasets[name], seeded, origin * args.origin_step) for origin in range(n_origins)
                ]
                r, g = (float(np.mean([o[i] for o in per_origin])) for i in (0, 1))  # the seed's mean over origins
                raw[name].append(r), gated[name].append(g), secs.extend(o[2] for o in per_origin)
                detail = " ".join(f"{o[0]:.3f}" for o in per_origin) if n_origins > 1 else ""
                log(f"{vname:16s} seed {seed} {name:18s} MASE {r:.3f} gated {g:.3f} {per_origin[0][2]:5.1f}s {detail}")
        # median over seeds, and the spread max/min
        cells = [f"{np.median(raw[n]):.3f} ({max(raw[n]) / min(raw[n]):.2f})" for n in names]
        geo = geo_mean([float(np.median(raw[n])) for n in names])
        geo_gated = geo_mean([float(np.median(gated[n])) for n in names])
        print(f"| {vname} | {' | '.join(cells)} | {geo:.3f} | {geo_gated:.3f} | {np.median(secs):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
