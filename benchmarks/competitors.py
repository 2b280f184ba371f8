"""The accuracy benchmark's competitors, fitted once per data set and test origin and cached (they are deterministic).

    .venv/bin/python -m benchmarks.competitors                          # every data set, every default origin
    .venv/bin/python -m benchmarks.competitors --datasets yearly3,m3_other --refit

Models: ``naive`` (last value), ``seasonal_naive`` (last season; the last value when a series is shorter than one
season), statsforecast ``AutoETS``, ``AutoARIMA`` and ``AutoTheta`` (``season_length=m``), and ``comb``: the mean
of the ETS, ARIMA and Theta forecasts (the M-competitions' standard benchmark). Missing values in a training part are
linearly interpolated for the competitors (the pipeline masks them). ETS, ARIMA and Theta see at most the last
``stat_history`` points of each series (``STAT_HISTORY``; for runtime: AutoARIMA with m=48 on 1000 half-hourly
points ran over an hour without finishing; on 480 it took 1254 s). A fit that raises falls back to seasonal naive for
that series (``comb`` then averages it in); the failures are counted per model and reported.

Cache: ``benchmarks/results/competitors/<key>.parquet`` (long: ``unique_id, horizon_step, model, y_hat``) and
``<key>.json`` (fit seconds and failures per model, the statsforecast version, a fingerprint of the training data and
settings), with ``key`` = the data set's name for origin 0 and ``<name>.origin<k>`` for rolling origin ``k``. A cache
whose fingerprint does not match the training part is refitted. One process, no multiprocessing: run it with
``nice -n 19`` beside other work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from .common import ROOT, log
from .datasets import load_datasets, split

CACHE_DIR = ROOT / "benchmarks" / "results" / "competitors"
STAT_MODELS = ("AutoETS", "AutoARIMA", "AutoTheta")
MODELS = ("naive", "seasonal_naive", *STAT_MODELS, "comb")
# Points of history ETS/ARIMA/Theta see (the last N of each series), for runtime (see the module docstring):
STAT_HISTORY = {"taylor_30min": 480, "msft_daily": 500, "co2_weekly": 500, "epf_hourly": 672}  # 672 = 4 weeks
DEFAULT_STAT_HISTORY = 1000


def stat_history(name: str) -> int:
    return STAT_HISTORY.get(name, DEFAULT_STAT_HISTORY)


def cache_key(name: str, origin: int) -> str:
    return name if origin == 0 else f"{name}.origin{origin}"


# ------------------------------------------------------------------------------------------- models


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN (for the competitors only)."""
    if not np.isnan(y).any():
        return y
    idx = np.arange(len(y))
    ok = np.isfinite(y)
    return np.interp(idx, idx[ok], y[ok])


def naive(y: np.ndarray, h: int) -> np.ndarray:
    return np.repeat(y[-1], h)


def seasonal_naive(y: np.ndarray, h: int, m: int) -> np.ndarray:
    lag = m if len(y) >= m else 1
    return np.resize(y[-lag:], h) if lag > 1 else np.repeat(y[-1], h)


def _stat_model(name: str, m: int):
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    return {"AutoETS": AutoETS, "AutoARIMA": AutoARIMA, "AutoTheta": AutoTheta}[name](season_length=m)


def forecast_series(y: np.ndarray, h: int, m: int, history: int, seconds: dict, failures: dict) -> dict:
    """``{model: forecast[h]}`` for one training series; adds fit seconds and failures (seasonal naive used) per
    model to ``seconds``/``failures``."""
    y = fill_gaps(np.asarray(y, np.float64))
    out = {"naive": naive(y, h), "seasonal_naive": seasonal_naive(y, h, m)}
    z = y[-history:]
    for name in STAT_MODELS:
        t0 = time.perf_counter()
        try:
            f = np.asarray(_stat_model(name, m).forecast(z, h)["mean"], np.float64)
            if f.shape != (h,) or not np.isfinite(f).all():
                raise ValueError(f"forecast of shape {f.shape} with non-finite values")
        except Exception:  # noqa: BLE001 - a failed fit falls back to seasonal naive, counted and reported
            f = out["seasonal_naive"]
            failures[name] += 1
        seconds[name] += time.perf_counter() - t0
        out[name] = f
    out["comb"] = np.mean([out[name] for name in STAT_MODELS], axis=0)
    return out


def fit_panel(train: pd.DataFrame, h: int, m: int, history: int, label: str = "") -> tuple[pd.DataFrame, dict]:
    """Every model on every series of ``train``: the long forecast frame and ``{seconds, failures}`` per model."""
    warnings.filterwarnings("ignore")
    seconds = {k: 0.0 for k in MODELS}
    failures = {k: 0 for k in STAT_MODELS}
    rows, groups = [], train.groupby("unique_id", sort=True)["y"]
    t0 = last = time.perf_counter()
    for i, (uid, y) in enumerate(groups, 1):
        for model, f in forecast_series(y.to_numpy(np.float64), h, m, history, seconds, failures).items():
            rows.append(
                pd.DataFrame({"unique_id": uid, "horizon_step": np.arange(1, h + 1), "model": model, "y_hat": f})
            )
        if time.perf_counter() - last > 60:
            last = time.perf_counter()
            log(f"  {label}: {i}/{groups.ngroups} series, {last - t0:.0f}s")
    return pd.concat(rows, ignore_index=True), {"seconds": seconds, "failures": failures}


# -------------------------------------------------------------------------------------------- cache


def fingerprint(train: pd.DataFrame, h: int, m: int, history: int) -> str:
    """Digest of the training part and the settings (a cache of other data or settings is not reused)."""
    t = train.sort_values(["unique_id", "ds"])
    digest = hashlib.sha256(f"{h}/{m}/{history}/".encode())
    digest.update(pd.util.hash_pandas_object(t[["unique_id", "ds", "y"]], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    tmp.replace(path)


def cached(key: str, fp: str) -> tuple[pd.DataFrame, dict] | None:
    """The cached forecasts and info of ``key`` when present and fitted on the same data and settings."""
    pq, js = CACHE_DIR / f"{key}.parquet", CACHE_DIR / f"{key}.json"
    if not (pq.exists() and js.exists()):
        return None
    info = json.loads(js.read_text())
    if info.get("fingerprint") != fp:
        log(f"  {key}: cached competitors were fitted on other data or settings; refitting")
        return None
    return pd.read_parquet(pq), info


def competitor_forecasts(
    name: str, origin: int, train: pd.DataFrame, h: int, m: int, refit: bool = False, history: int | None = None
) -> tuple[pd.DataFrame, dict]:
    """Forecasts of every competitor for one data set and origin: from the cache, or fitted and cached."""
    history = history or stat_history(name)
    key, fp = cache_key(name, origin), fingerprint(train, h, m, history)
    hit = None if refit else cached(key, fp)
    if hit is not None:
        return hit
    log(f"  {key}: fitting competitors on {train['unique_id'].nunique()} series (h={h}, m={m}, history {history})")
    t0 = time.perf_counter()
    frame, info = fit_panel(train, h, m, history, key)
    info.update(
        dataset=name,
        origin=origin,
        h=h,
        m=m,
        stat_history=history,
        n_series=int(train["unique_id"].nunique()),
        train_end=str(train["ds"].max()),
        fingerprint=fp,
        statsforecast=version("statsforecast"),
        total_seconds=time.perf_counter() - t0,
        fitted_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    _write_atomic(CACHE_DIR / f"{key}.parquet", lambda p: frame.to_parquet(p, index=False))
    _write_atomic(CACHE_DIR / f"{key}.json", lambda p: p.write_text(json.dumps(info, indent=1) + "\n"))
    log(
        f"  {key}: done in {info['total_seconds']:.0f}s; seconds "
        + ", ".join(f"{k} {v:.0f}" for k, v in info["seconds"].items() if v)
        + f"; failures {info['failures']}"
    )
    return frame, info


def as_dict(frame: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """``{model: {unique_id: forecast[h]}}`` from the long forecast frame."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for (model, uid), g in frame.sort_values("horizon_step").groupby(["model", "unique_id"], sort=False):
        out.setdefault(model, {})[uid] = g["y_hat"].to_numpy(np.float64)
    return out


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", help="comma-separated data sets, fitted in this order (default: all)")
    ap.add_argument(
        "--origins",
        type=int,
        help="rolling test origins of the sets that have them (default: each "
        "set's own, 4 for sets of fewer than 10 series)",
    )
    ap.add_argument("--refit", action="store_true", help="fit again even where a valid cache exists")
    args = ap.parse_args(argv)
    names = args.datasets.split(",") if args.datasets else None
    log(f"competitors: statsforecast {version('statsforecast')}, cache {CACHE_DIR}")
    for name, ds in load_datasets(names).items():
        n_origins = (args.origins or ds["origins"]) if ds["origins"] > 1 else 1
        for origin in range(n_origins):
            train, _, _ = split(ds["frame"], ds["h"], origin)
            competitor_forecasts(name, origin, train, ds["h"], ds["m"], refit=args.refit)
    log("competitors: all done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
