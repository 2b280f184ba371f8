"""Schedule simulation: a scheduled retraining over consecutive ``as_of`` dates, under three promotion policies,
each date's written forecasts scored on what came next (issue 12, "What it must show").

    .venv/bin/python -m benchmarks.schedule                                   # 3 data sets, 10 dates, defaults
    .venv/bin/python -m benchmarks.schedule --datasets msft_daily --dates 3 --extra "--members 2 --epochs 3"
    .venv/bin/python -m benchmarks.schedule --jobs 3 --json /tmp/schedule.json --keep /tmp/schedule-stores
    .venv/bin/python -m benchmarks.schedule --tables-from benchmarks/results/schedule.json

Data (``benchmarks/datasets.py``, ``load_datasets``): ``msft_daily`` (one series, trading days, h=14, m=5),
``aus_livestock`` (50 monthly series, h=12, m=12), ``epf_hourly`` (2 hourly series, h=24, m=24). Each is cut, per
series, to the last ``history + (N - 1) * step + h`` points (``SETTINGS``: msft the last ~3 years of trading days,
aus_livestock the last 15 years, epf_hourly the last 8 weeks before the first date), so that one CLI run takes about a
minute on 2 cores.

Dates: ``N`` (``--dates``, default 10) consecutive ``as_of`` origins, one period apart (``step`` points: one trading
day, one month, one day = 24 hours), the last one ``h`` points before the end of the data, so every date has ``h``
points of future truth.

Policies, each with its own store, driven through the CLI only, oldest date first (what the ``backfill`` flow does,
with the policy's flags):

- ``gate``: ``rnn-forecast run --data F --store S_gate --as-of D --horizon h --freq f --season-length m --seed 0``
  at every date: the promotion gate decides;
- ``always``: the same plus ``--force-promote``;
- ``never``: the first date as ``always``; every later date only ``rnn-forecast predict`` with that first champion.

``--extra "ARGS"`` is appended to every ``run`` (not to ``predict``: the model decides its own configuration there).
``gate`` and ``always`` train the same challenger at each date (same data, seed and configuration; training does not
read the champion and is deterministic), but both are run: the challenger's held-out MASE of the two is recorded per
date and compared (``same_challenger``), which checks that the two policies differ only in the promotion decision.

Scores: each date's written predictions (``<store>/predictions/as_of=<label>/*.parquet``) against the next ``h``
true points: MASE (scale: ``accuracy.mase_scale``, the in-sample seasonal-naive MAE of the data up to the date, as
the CLI sees it) and sMAPE, each the mean over series (``accuracy.Window.score``); seasonal naive
(``competitors.seasonal_naive``) from the data up to the date, on the same points. Per data set: the mean MASE over
dates per policy, per date the ratio policy / seasonal naive, the promotions under ``gate`` (from each version's
``decision.json``), runtimes (seconds of every CLI call).

Targets (per data set; only once all dates of all policies are scored): the gate's mean MASE at most the better of
``always`` and ``never`` (ratio <= 1); on no date the gate's MASE above 1.05 x seasonal naive's.

The CLI runs share one Prefect API server started by this harness (``accuracy``'s ``SharedApi``; its start-up is not
counted). ``--jobs N`` runs N (data set, policy) chains side by side; each chain is sequential in its dates. With
``--json`` the results are written after every CLI call (a stopped run keeps what it finished).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rnn_model.outputs import as_of_label

from .__main__ import SharedApi
from .accuracy import (
    Window,
    aligned_forecasts,
    log,
    mase_scale,
    read_predictions,
)  # Window.score: MASE and accuracy.smape
from .common import ROOT, child_env, machine, machine_line
from .competitors import seasonal_naive
from .datasets import LOADERS, load_datasets

DEFAULT_DATASETS = ("msft_daily", "aus_livestock", "epf_hourly")
POLICIES = ("gate", "always", "never")
STEP_BY_FREQ = {"30min": 48, "h": 24}  # points between two dates: one day for sub-daily data, else one period
# history: points per series before the first date (runtime: about a minute per CLI run on 2 cores)
SETTINGS = {"msft_daily": {"history": 756}, "aus_livestock": {"history": 180}, "epf_hourly": {"history": 8 * 7 * 24}}
DEFAULT_HISTORY = 1000
TARGETS = {"gate_vs_best_other": 1.0, "worst_gate_vs_seasonal_naive": 1.05}
SEED = 0


# ------------------------------------------------------------------------------------------------- data


@dataclass
class Schedule:
    """One data set ready for the simulation: its (cut) frame, Parquet file, dates and the truth after each."""

    name: str
    ds: dict
    frame: pd.DataFrame
    data: Path
    step: int
    history: int
    dates: list[pd.Timestamp]
    windows: dict[str, Window] = field(default_factory=dict)  # as_of text -> truth, scales
    naive: dict[str, dict] = field(default_factory=dict)  # as_of text -> seasonal-naive scores


def as_of_text(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def window_at(frame: pd.DataFrame, end: pd.Timestamp, h: int, m: int) -> Window:
    """The truth (the next ``h`` points of each series after ``end``) and the MASE scales of the data up to it."""
    train = frame[frame["ds"] <= end]
    test = frame[frame["ds"] > end].groupby("unique_id", sort=True).head(h)
    test = test.astype({"ds": "datetime64[ns]"}).sort_values(["unique_id", "ds"]).reset_index(drop=True)
    by_series = {u: g["y"].to_numpy(np.float64) for u, g in train.groupby("unique_id", sort=True)}
    truth = {u: g["y"].to_numpy(np.float64) for u, g in test.groupby("unique_id", sort=True)}
    short = [u for u, y in truth.items() if len(y) < h]
    if short:
        raise RuntimeError(f"as_of {end}: fewer than h={h} future points for {short[:3]}")
    return Window(0, train, end, test, truth, {u: mase_scale(y, m) for u, y in by_series.items()}, None)


def prepare(name: str, ds: dict, n_dates: int, workdir: Path) -> Schedule:
    freq, h, m = ds["freq"], ds["h"], ds["m"]
    step = STEP_BY_FREQ.get(freq, 1)
    history = SETTINGS.get(name, {}).get("history", DEFAULT_HISTORY)
    frame = ds["frame"].sort_values(["unique_id", "ds"])
    ends = frame.groupby("unique_id")["ds"].max()
    if ends.nunique() != 1:
        raise RuntimeError(f"{name}: series end at different dates; align them first")
    keep = history + (n_dates - 1) * step + h
    frame = frame.groupby("unique_id", sort=False, group_keys=False).tail(keep).reset_index(drop=True)
    grid = pd.date_range(end=ends.iloc[0], periods=(n_dates - 1) * step + 1 + h, freq=freq)
    dates = list(grid[: (n_dates - 1) * step + 1 : step])
    data = workdir / f"{name}.parquet"
    frame.to_parquet(data, index=False)
    sched = Schedule(name, ds, frame, data, step, history, dates)
    for d in dates:
        w = window_at(frame, d, h, m)
        sched.windows[as_of_text(d)] = w
        train = {u: g["y"].to_numpy(np.float64) for u, g in w.train.groupby("unique_id", sort=True)}
        sched.naive[as_of_text(d)] = w.score({u: seasonal_naive(y, h, m) for u, y in train.items()})
    return sched


# ------------------------------------------------------------------------------------------------- CLI


def read_partition(store: Path, as_of: str) -> pd.DataFrame:
    """The predictions one date wrote: ``<store>/predictions/as_of=<label>/*.parquet``."""
    return read_predictions(store, f"predictions/as_of={as_of_label(as_of)}/*.parquet")


def command(sched: Schedule, policy: str, k: int, store: Path, extra: list[str]) -> list[str]:
    ds, as_of = sched.ds, as_of_text(sched.dates[k])
    exe = str(Path(sys.executable).parent / "rnn-forecast")
    common = [
        "--data",
        str(sched.data),
        "--store",
        str(store),
        "--as-of",
        as_of,
        "--horizon",
        str(ds["h"]),
        "--freq",
        ds["freq"],
        "--season-length",
        str(ds["m"]),
    ]
    if policy == "never" and k > 0:
        return [exe, "predict", *common]
    return [exe, "run", *common, "--seed", str(SEED), *(["--force-promote"] if policy != "gate" else []), *extra]


_MODEL_LINE = re.compile(r"^model (v\d+): (.+)$", re.M)
_CHALLENGER = re.compile(r"^\s+challenger\s+([0-9.naN]+)\s", re.M)


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_step(sched: Schedule, policy: str, k: int, store: Path, extra: list[str], api_url: str | None) -> dict:
    """One CLI call of one policy at one date, scored."""
    as_of = as_of_text(sched.dates[k])
    cmd = command(sched, policy, k, store, extra)
    rec: dict = {"as_of": as_of, "command": shlex.join(cmd), "subcommand": cmd[1]}
    env = child_env(PREFECT_HOME=str(store / ".prefect"), **({"PREFECT_API_URL": api_url} if api_url else {}))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    rec["seconds"] = time.perf_counter() - t0
    rec["summary"] = "\n".join(ln for ln in proc.stdout.splitlines() if ln.strip())[-2000:]
    try:
        if proc.returncode != 0:
            raise RuntimeError(f"rnn-forecast exited {proc.returncode}: {' '.join(proc.stderr.split())[-800:]}")
        hit = _MODEL_LINE.search(proc.stdout)
        if hit:  # a run: which version it trained, and what the gate decided (decision.json)
            version = hit.group(1)
            rec["version"] = version
            decision = _json(store / "models" / "default" / version / "decision.json") or {}
            rec["promoted"] = bool(decision.get("promoted"))
            rec["forced"] = bool(decision.get("forced"))
            rec["gate_would_promote"] = rec["promoted"] and not rec["forced"]
            rec["reasons"] = decision.get("reasons", [])
            rec["evidence"] = decision.get("evidence", {})
            ch = _CHALLENGER.search(proc.stdout)
            rec["challenger_mase"] = float(ch.group(1)) if ch else None
        pointer = _json(store / "models" / "default" / "champion")
        rec["champion"] = pointer.get("version") if pointer else None
        window = sched.windows[as_of]
        pred = read_partition(store, as_of)
        rec.update(window.score(aligned_forecasts(pred, window.test)))
        rec["model_versions"] = sorted(map(str, pred["model_version"].unique()))
        rec["model_rows"] = float((pred["model_version"] != "seasonal_naive").mean())
        rec["seasonal_naive_mase"] = sched.naive[as_of]["mase"]
        rec["vs_seasonal_naive"] = rec["mase"] / rec["seasonal_naive_mase"]
    except Exception as exc:  # noqa: BLE001 - a failed call is a result: recorded and reported
        rec["error"] = f"{type(exc).__name__}: {exc}"
    return rec


# ------------------------------------------------------------------------------------------ scheduling


class Runner:
    """Runs every (data set, policy) chain, ``jobs`` CLI calls at a time; within a chain the dates run in order.
    The next call is the earliest (data set, date, policy) whose chain is free: with one job, each date's three
    policies run before the next date (partial results compare the policies on the same dates)."""

    def __init__(
        self, scheds: dict[str, Schedule], stores: Path, extra: list[str], api_url: str | None, results: dict, save
    ):
        self.scheds, self.stores, self.extra, self.api_url = scheds, stores, extra, api_url
        self.results, self.save = results, save
        self.next = {(n, p): 0 for n in scheds for p in POLICIES}
        self.busy: set = set()
        self.failed: set = set()  # a chain stops at its first failed call (its store is then not trustworthy)
        self.lock = threading.Condition()
        self.total = sum(len(s.dates) for s in scheds.values()) * len(POLICIES)
        self.done = 0

    def _pick(self):
        order = list(self.scheds)
        todo = [
            (order.index(n), k, POLICIES.index(p), n, p)
            for (n, p), k in self.next.items()
            if (n, p) not in self.busy and (n, p) not in self.failed and k < len(self.scheds[n].dates)
        ]
        return min(todo)[3:] if todo else None

    def _remaining(self) -> bool:
        return any((n, p) not in self.failed and k < len(self.scheds[n].dates) for (n, p), k in self.next.items())

    def worker(self) -> None:
        while True:
            with self.lock:
                while True:
                    pick = self._pick()
                    if pick is not None or not self._remaining():
                        break
                    self.lock.wait()
                if pick is None:
                    return
                self.busy.add(pick)
                k = self.next[pick]
            name, policy = pick
            sched = self.scheds[name]
            store = self.stores / name / policy
            rec = run_step(sched, policy, k, store, self.extra, self.api_url)
            with self.lock:
                self.results["datasets"][name]["policies"][policy]["dates"][rec["as_of"]] = rec
                self.next[pick] += 1
                self.busy.discard(pick)
                self.done += 1
                if "error" in rec:
                    self.failed.add(pick)
                state = rec.get("error") or (
                    f"MASE {rec['mase']:.3f} (seasonal naive {rec['seasonal_naive_mase']:.3f}, ratio "
                    f"{rec['vs_seasonal_naive']:.3f})"
                    + (f", {rec['version']} promoted={rec['promoted']}" if "version" in rec else "")
                    + f", champion {rec.get('champion')}"
                )
                log(
                    f"  [{self.done}/{self.total}] {name} {policy} {rec['as_of']} ({rec['subcommand']}): "
                    f"{rec['seconds']:.0f}s, {state}"
                )
                self.save()
                self.lock.notify_all()

    def run(self, jobs: int) -> None:
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(max(1, jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


# ---------------------------------------------------------------------------------------- aggregation


def summarize(results: dict) -> None:
    """Fills in each data set's per-policy means, promotions, runtimes and verdicts (in place)."""
    for name, e in results["datasets"].items():
        dates = e["dates"]
        sn = e["seasonal_naive"]
        for policy, p in e["policies"].items():
            recs = [p["dates"][d] for d in dates if d in p["dates"]]
            ok = [r for r in recs if "error" not in r]
            p["dates_scored"] = len(ok)
            p["failed"] = len(recs) - len(ok)
            p["errors"] = [r["error"] for r in recs if "error" in r]
            p["mean_mase"] = float(np.mean([r["mase"] for r in ok])) if ok else float("nan")
            p["mean_smape"] = float(np.mean([r["smape"] for r in ok])) if ok else float("nan")
            p["vs_seasonal_naive"] = {r["as_of"]: r["vs_seasonal_naive"] for r in ok}
            p["worst_vs_seasonal_naive"] = max(p["vs_seasonal_naive"].values(), default=float("nan"))
            p["seconds_total"] = float(sum(r["seconds"] for r in recs))
            p["seconds_per_call"] = {r["as_of"]: r["seconds"] for r in recs}
            trained = [r for r in ok if "version" in r]
            p["trainings"] = len(trained)
            p["promotions"] = sum(r["promoted"] for r in trained)
            p["gate_would_promote"] = sum(r["gate_would_promote"] for r in trained)
            p["champion_by_date"] = {r["as_of"]: r.get("champion") for r in ok}
            # the same mean over the seasonal-naive scores of the dates this policy scored
            p["seasonal_naive_mean_mase"] = float(np.mean([sn[r["as_of"]]["mase"] for r in ok])) if ok else float("nan")
        g, a = e["policies"]["gate"], e["policies"]["always"]
        pairs = [
            (g["dates"][d].get("challenger_mase"), a["dates"][d].get("challenger_mase"))
            for d in dates
            if d in g["dates"] and d in a["dates"]
        ]
        same = sum(x == y and x is not None for x, y in pairs)
        e["same_challenger"] = {"dates_compared": len(pairs), "identical": same}
        complete = all(e["policies"][p]["dates_scored"] == len(dates) for p in POLICIES)
        means = {p: e["policies"][p]["mean_mase"] for p in POLICIES}
        best_other = min(means["always"], means["never"])
        e["mean_mase"] = {**means, "seasonal_naive": float(np.mean([sn[d]["mase"] for d in dates]))}
        e["verdicts"] = {
            "complete": complete,
            "gate_vs_best_other": means["gate"] / best_other if complete else float("nan"),
            "gate_at_least_as_good_as_best_other": bool(means["gate"] <= best_other) if complete else None,
            "worst_gate_vs_seasonal_naive": g["worst_vs_seasonal_naive"] if complete else float("nan"),
            "gate_never_5pct_worse_than_seasonal_naive": bool(
                g["worst_vs_seasonal_naive"] <= TARGETS["worst_gate_vs_seasonal_naive"]
            )
            if complete
            else None,
            "gate_promotions": g["promotions"],
        }
    done = [e for e in results["datasets"].values() if e["verdicts"]["complete"]]
    results["targets"] = {
        "complete_datasets": len(done),
        "datasets": len(results["datasets"]),
        "gate_at_least_as_good_as_best_other_everywhere": all(
            e["verdicts"]["gate_at_least_as_good_as_best_other"] for e in done
        )
        if done
        else None,
        "gate_never_5pct_worse_than_seasonal_naive_everywhere": all(
            e["verdicts"]["gate_never_5pct_worse_than_seasonal_naive"] for e in done
        )
        if done
        else None,
    }


# --------------------------------------------------------------------------------------------- output


def _f(x, fmt=".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def print_tables(results: dict) -> None:
    meta = results["meta"]
    print(
        f"\nschedule simulation: {meta['n_dates']} dates, extra CLI args {meta['extra']!r}, seed {SEED}; "
        f"{meta['machine_line']}"
    )
    code = meta.get("code", {})
    print(
        f"code: {code.get('root')} (sources {code.get('sources_sha256')}, commit {code.get('commit')}, "
        f"{code.get('origin') or str(len(code.get('changed', []))) + ' changed files'}); status {meta['status']}, "
        f"{meta.get('seconds', float('nan')):.0f} s"
    )
    print("\n" + _row(["data set", "series", "rows (cut)", "freq", "h", "m", "step", "history", "dates", "note"]))
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    for name, e in results["datasets"].items():
        print(
            _row(
                [
                    name,
                    e["n_series"],
                    e["rows"],
                    e["freq"],
                    e["h"],
                    e["m"],
                    e["step"],
                    e["history"],
                    f"{e['dates'][0]} .. {e['dates'][-1]}",
                    e["note"],
                ]
            )
        )
    print("\nmean MASE over dates (dates scored), promotions, seconds of CLI calls:")
    print(
        _row(
            [
                "data set",
                "gate",
                "always",
                "never",
                "seasonal naive",
                "gate / best other",
                "gate promotions",
                "worst gate / s. naive",
                "same challenger gate=always",
                "s gate",
                "s always",
                "s never",
            ]
        )
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, e in results["datasets"].items():
        p, v = e["policies"], e["verdicts"]
        cells = [f"{_f(p[x]['mean_mase'])} ({p[x]['dates_scored']})" for x in POLICIES]
        sc = e["same_challenger"]
        print(
            _row(
                [
                    name,
                    *cells,
                    _f(e["mean_mase"]["seasonal_naive"]),
                    _f(v["gate_vs_best_other"]),
                    f"{p['gate']['promotions']} of {p['gate']['trainings']}",
                    _f(p["gate"]["worst_vs_seasonal_naive"]),
                    f"{sc['identical']} of {sc['dates_compared']}",
                    *[f"{p[x]['seconds_total']:.0f}" for x in POLICIES],
                ]
            )
        )
    for name, e in results["datasets"].items():
        print(f"\n{name}: per date, MASE / seasonal naive's MASE (gate: promoted or not; champion after the date)")
        print(
            _row(
                [
                    "as_of",
                    "seasonal naive MASE",
                    "gate",
                    "always",
                    "never",
                    "gate decision",
                    "gate champion",
                    "gate s",
                    "always s",
                    "never s",
                ]
            )
        )
        print("|---|---:|---:|---:|---:|---|---|---:|---:|---:|")
        for d in e["dates"]:
            recs = {x: e["policies"][x]["dates"].get(d, {}) for x in POLICIES}
            g = recs["gate"]
            decision = "-" if "version" not in g else f"{g['version']} {'promoted' if g['promoted'] else 'kept out'}"
            print(
                _row(
                    [
                        d,
                        _f(e["seasonal_naive"][d]["mase"]),
                        *[("error" if "error" in r else _f(r.get("vs_seasonal_naive"))) for r in recs.values()],
                        decision,
                        g.get("champion") or "-",
                        *[_f(r.get("seconds"), ".0f") for r in recs.values()],
                    ]
                )
            )
        for x in POLICIES:
            for err in e["policies"][x]["errors"]:
                print(f"  {x} failed: {err[:400]}")
    print("\ntargets (per data set, once all its dates are scored):")
    print(_row(["data set", "gate / min(always, never)", "target", "worst date gate / seasonal naive", "target"]))
    print("|---|---:|---|---:|---|")
    for name, e in results["datasets"].items():
        v = e["verdicts"]
        if not v["complete"]:
            print(_row([name, "incomplete", "", "incomplete", ""]))
            continue
        print(
            _row(
                [
                    name,
                    _f(v["gate_vs_best_other"]),
                    f"<= {TARGETS['gate_vs_best_other']:g} "
                    f"{'PASS' if v['gate_at_least_as_good_as_best_other'] else 'FAIL'}",
                    _f(v["worst_gate_vs_seasonal_naive"]),
                    f"<= {TARGETS['worst_gate_vs_seasonal_naive']:g} "
                    f"{'PASS' if v['gate_never_5pct_worse_than_seasonal_naive'] else 'FAIL'}",
                ]
            )
        )
    print()
    for name, e in results["datasets"].items():
        v = e["verdicts"]
        if v["complete"]:
            print(
                f"RATIO schedule_gate_vs_best_other[{name}] {v['gate_vs_best_other']:.3g} <= 1 "
                f"{'PASS' if v['gate_at_least_as_good_as_best_other'] else 'FAIL'}"
            )
            print(
                f"RATIO schedule_worst_gate_vs_seasonal_naive[{name}] "
                f"{v['worst_gate_vs_seasonal_naive']:.3g} <= 1.05 "
                f"{'PASS' if v['gate_never_5pct_worse_than_seasonal_naive'] else 'FAIL'}"
            )
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--datasets",
        default=",".join(DEFAULT_DATASETS),
        help=f"comma-separated (default: {','.join(DEFAULT_DATASETS)}; any of: {', '.join(LOADERS)})",
    )
    ap.add_argument("--dates", type=int, default=10, help="consecutive as_of dates per data set (default: 10)")
    ap.add_argument(
        "--extra",
        default="",
        metavar='"CLI ARGS"',
        help='appended to every run call, e.g. "--members 2 --epochs 5" (a smoke test)',
    )
    ap.add_argument("--json", help="write the results here (after every CLI call)")
    ap.add_argument("--jobs", type=int, default=1, help="(data set, policy) chains side by side (default: 1)")
    ap.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the stores under DIR/<data set>/<policy> (default: a temporary directory, removed at the end)",
    )
    ap.add_argument("--own-api", action="store_true", help="every CLI call starts its own temporary Prefect API")
    ap.add_argument("--tables-from", metavar="JSON", help="only print the tables of an earlier --json file")
    args = ap.parse_args(argv)
    if args.dates < 1:
        ap.error("--dates must be at least 1")
    return args


def code_version() -> dict:
    """Which project code the CLI calls run: the root they import from, a digest of its ``rnn_model``, ``flows`` and
    ``tasks`` sources, and the git commit and changed files where the root is a checkout (the simulation may run on
    a copy of a working tree, so that edits made meanwhile do not mix code versions within one run)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for d in ("rnn_model", "flows", "tasks") for p in (ROOT / d).rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    out = {"root": str(ROOT), "sources_sha256": digest.hexdigest()[:16]}
    try:

        def git(*a: str) -> str:
            return subprocess.run(
                ["git", "-C", str(ROOT), *a], capture_output=True, text=True, check=True
            ).stdout.rstrip()

        out.update(commit=git("rev-parse", "--short", "HEAD"), changed=git("status", "--porcelain").splitlines())
    except (OSError, subprocess.CalledProcessError):
        origin = ROOT / "CODE_ORIGIN"  # a copy may say where it came from
        out["origin"] = origin.read_text().strip() if origin.exists() else None
    return out


def _write_json(path: str, results: dict) -> None:
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(results, indent=1, default=float))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tables_from:
        print_tables(json.loads(Path(args.tables_from).read_text()))
        return 0
    names = [n for n in args.datasets.split(",") if n]
    extra = shlex.split(args.extra)
    log(machine_line())
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="schedule-"))
    stores = Path(args.keep) if args.keep else workdir / "stores"
    if args.keep and stores.exists() and any(stores.iterdir()):
        raise SystemExit(f"--keep {stores}: not empty (each policy needs a fresh store)")
    results: dict = {
        "meta": {
            "argv": sys.argv[1:] if argv is None else argv,
            "n_dates": args.dates,
            "extra": args.extra,
            "jobs": args.jobs,
            "seed": SEED,
            "policies": list(POLICIES),
            "targets": TARGETS,
            "code": code_version(),
            "machine": machine(),
            "machine_line": machine_line(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "preparing",
            "stores": str(stores) if args.keep else None,
        },
        "datasets": {},
    }
    lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # kill PID: the JSON says "stopped", not "running"

    def save() -> None:
        with lock:
            results["meta"]["seconds"] = time.perf_counter() - t0
            summarize(results)
            if args.json:
                _write_json(args.json, results)

    try:
        datasets = load_datasets(names)
        scheds = {n: prepare(n, d, args.dates, workdir) for n, d in datasets.items()}
        for n, s in scheds.items():
            f = s.frame
            log(
                f"[{n}] {f['unique_id'].nunique()} series, {len(f)} rows (cut), freq {s.ds['freq']}, h={s.ds['h']}, "
                f"m={s.ds['m']}, step {s.step}, dates {as_of_text(s.dates[0])} .. {as_of_text(s.dates[-1])}"
            )
            results["datasets"][n] = {
                "n_series": int(f["unique_id"].nunique()),
                "rows": int(len(f)),
                "freq": s.ds["freq"],
                "h": s.ds["h"],
                "m": s.ds["m"],
                "step": s.step,
                "history": s.history,
                "note": s.ds["note"],
                "source": s.ds["source"],
                "dates": [as_of_text(d) for d in s.dates],
                "seasonal_naive": s.naive,
                "policies": {p: {"dates": {}} for p in POLICIES},
            }
        results["meta"]["status"] = "running"
        save()
        api = None if args.own_api else SharedApi(str(workdir / "prefect-home"))
        try:
            if api is not None:
                log(f"shared Prefect API at {api.url}, ready after {api.ready():.0f}s")
            Runner(scheds, stores, extra, api.url if api else None, results, save).run(args.jobs)
        finally:
            if api is not None:
                api.stop()
        results["meta"]["status"] = "done"
    except BaseException:
        results["meta"]["status"] = "stopped"
        raise
    finally:
        save()
        shutil.rmtree(workdir, ignore_errors=True)
    print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
