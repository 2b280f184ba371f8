"""Generate the bad-input corpus: malformed inputs and the behaviour each must get.

    python tests/data/bad/make_corpus.py [OUT_DIR]      # default: tests/data/bad/corpus/

Each case is built from a small healthy hourly panel (4 series x 504 points) by one deliberate defect.
``expect`` is either ``("error", <regex the one-line message must match>)`` — CLI exit code 2, flow
run FAILED, store untouched — or ``("ok", <problem>, <action>)`` — the run completes, the validation
report lists that problem with that action, and every prediction is finite.
The tests (tests/flows/test_bad_inputs.py) run every case; docs/reliability.md lists them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from rnn_model.sample import make_sample_panel  # noqa: E402

# The model settings the corpus is judged with (small, so every case runs in seconds).
HORIZON, INPUT_SIZE = 12, 24
# one training window (rnn_model.training.min_train_length); held-out horizons only where they fit
MIN_TRAIN = INPUT_SIZE + HORIZON


def healthy(n_series: int = 4, length: int = 24 * 7 * 3) -> pd.DataFrame:
    return make_sample_panel(n_series=n_series, length=length, seed=7)


def _write(df: pd.DataFrame | pa.Table, path: Path) -> Path:
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path)
    return path


def _with(transform: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    return lambda path: _write(transform(healthy()), path)


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _not_parquet(path: Path) -> Path:
    healthy().to_csv(path, index=False)
    return path


def _truncated(path: Path) -> Path:
    _write(healthy(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _mixed_tz(path: Path) -> Path:
    df = healthy()
    stamps = pd.DatetimeIndex(df["ds"])
    text = np.where(
        np.arange(len(df)) % 2 == 0,
        stamps.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        stamps.strftime("%Y-%m-%dT%H:%M:%S+05:00"),
    )
    return _write(df.assign(ds=text), path)


def _null_ids(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({"unique_id": object})
    df.loc[[3, 400, 900], "unique_id"] = None
    return df


def _duplicates(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[10, 11]]], ignore_index=True)


def _nan_inf(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[20, 600], "y"] = np.nan
    df.loc[[700], "y"] = np.inf
    return df


def _all_nan_series(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.unique_id == "series_001", "y"] = np.nan
    return df


def _constant_series(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.unique_id == "series_002", "y"] = 5.0
    return df


def _short_series(df: pd.DataFrame) -> pd.DataFrame:
    short = df[df.unique_id == "series_003"].head(MIN_TRAIN - 10)
    return pd.concat([df[df.unique_id != "series_003"], short], ignore_index=True)


def _all_short(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("unique_id", group_keys=False).head(MIN_TRAIN - 10)


def _irregular(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[50, 51], "ds"] = df.loc[[50, 51], "ds"] + pd.Timedelta(minutes=17)
    return df


def _gaps(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(index=list(range(100, 110)) + list(range(800, 803))).reset_index(drop=True)


def _huge_value(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[300, "y"] = 1e30
    return df


def _beyond_float32(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[301, "y"] = 1e300
    return df


def _good_and_bad_dir(path: Path) -> Path:
    path.mkdir()
    _write(healthy(), path / "part-0.parquet")
    (path / "part-1.parquet").write_text("unique_id,ds,y\na,2026-01-01,1\n")
    return path


def _long_horizon_data(path: Path) -> Path:
    # Every series is shorter than the horizon the case asks for (--horizon 600 > 504 points).
    return _write(healthy(), path)


def _integer_ds(start: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """ds as integer steps from ``start`` (one per hour of the healthy panel)."""

    def transform(df: pd.DataFrame) -> pd.DataFrame:
        step = df.groupby("unique_id").cumcount().to_numpy(np.int64)
        return df.assign(ds=start + step)

    return transform


def _uint64_ds(path: Path) -> Path:
    df = _integer_ds(0)(healthy())
    ds = pa.array(df["ds"].to_numpy().astype(np.uint64) + np.uint64(2**63 + 5), pa.uint64())
    return _write(pa.table({"unique_id": df["unique_id"], "ds": ds, "y": df["y"]}), path)


def _int_ds_outlier(df: pd.DataFrame) -> pd.DataFrame:
    df = _integer_ds(0)(df)
    df.loc[len(df) - 1, "ds"] = 10**13  # one typo: 36 TiB of grid before the bound
    return df


def _ts_outlier(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[0, "ds"] = pd.Timestamp("1990-01-01")  # 36 years of hourly slots for 504 rows
    return df


def _far_timestamps(year: int, as_text: bool) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        df = healthy()
        ds = df["ds"].astype("datetime64[us]").tolist()
        ds[5] = pd.Timestamp(f"{year}-01-01").as_unit("us")
        col = pa.array([d.isoformat() for d in ds]) if as_text else pa.array(ds, pa.timestamp("us"))
        return _write(pa.table({"unique_id": df["unique_id"], "ds": col, "y": df["y"]}), path)

    return build


def _y_beyond_2_53(path: Path) -> Path:
    df = healthy()
    y = pa.array((df["y"].to_numpy() * 2**54).astype(np.int64), pa.int64())  # ~1e18: float64 rounds them
    return _write(pa.table({"unique_id": df["unique_id"], "ds": df["ds"], "y": y}), path)


def _dir_schema_drift(path: Path) -> Path:
    """Half the series in a file whose target column is called ``value``."""
    path.mkdir()
    df = healthy()
    first = df.unique_id <= "series_001"
    _write(df[first], path / "part-0.parquet")
    _write(df[~first].rename(columns={"y": "value"}), path / "part-1.parquet")
    return path


def _dir_type_drift(path: Path) -> Path:
    path.mkdir()
    df = healthy()
    first = df.unique_id <= "series_001"
    _write(df[first], path / "part-0.parquet")
    _write(df[~first].assign(y=df.y[~first].astype(str)), path / "part-1.parquet")
    return path


def _markup_ids(df: pd.DataFrame) -> pd.DataFrame:
    names = {"series_000": "a | b |\n| fake | row | 1 | x | kept |", "series_001": "<script>alert(1)</script>"}
    df = df.assign(unique_id=df.unique_id.replace(names))
    df.loc[df.unique_id == names["series_000"], "y"] = 5.0  # constant: the id shows in the report
    return df


DIRECTORY_CASES = {"dir_good_and_bad", "dir_schema_drift", "dir_type_drift"}


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: tuple
    what: str
    extra_args: tuple[str, ...] = ()
    early: bool = False  # refused by the CLI before Prefect starts: no flow run to inspect


CASES: list[Case] = [
    Case("empty_file", _empty_file, ("error", r"is empty \(0 bytes\)"), "a 0-byte file"),
    Case("zero_rows", _with(lambda df: df.head(0)), ("error", r"zero rows"), "valid Parquet, no rows"),
    Case("not_parquet", _not_parquet, ("error", r"cannot read .* as Parquet"), "a CSV file named .parquet"),
    Case("truncated", _truncated, ("error", r"cannot read .* as Parquet"), "the first half of a Parquet file"),
    Case("missing_y", _with(lambda df: df.drop(columns="y")), ("error", r"missing column\(s\) \['y'\]"), "no y column"),
    Case(
        "missing_ds",
        _with(lambda df: df.drop(columns="ds")),
        ("error", r"missing column\(s\) \['ds'\]"),
        "no ds column",
    ),
    Case(
        "y_strings",
        _with(lambda df: df.assign(y=df.y.astype(str))),
        ("error", r"y has type (large_)?string; expected a number"),
        "y written as text",
    ),
    Case(
        "ds_unparseable",
        _with(lambda df: df.assign(ds="yesterday")),
        ("error", r"non-timestamp text 'yesterday'"),
        "ds text that is no timestamp",
    ),
    Case("mixed_time_zones", _mixed_tz, ("error", r"mixes time zones"), "ds strings with +00:00 and +05:00 offsets"),
    Case("null_ids", _with(_null_ids), ("ok", "null_id", "dropped"), "three rows with a null unique_id"),
    Case(
        "duplicates",
        _with(_duplicates),
        ("error", r"duplicate in series_000 .*on_duplicate='drop'"),
        "two repeated (unique_id, ds) rows",
    ),
    Case("nan_and_inf", _with(_nan_inf), ("ok", "non_finite", "filled (masked)"), "NaN and inf values in y"),
    Case("all_nan_series", _with(_all_nan_series), ("ok", "too_short", "dropped"), "one series entirely NaN"),
    Case("constant_series", _with(_constant_series), ("ok", "constant", "dropped"), "one series with a single value"),
    Case(
        "short_series", _with(_short_series), ("ok", "too_short", "dropped"), "one series shorter than the model needs"
    ),
    Case(
        "all_short",
        _with(_all_short),
        ("error", r"all 4 series were dropped \(too_short\).*lower input_size/horizon"),
        "every series too short",
    ),
    Case(
        "irregular_timestamps",
        _with(_irregular),
        ("error", r"off_grid in series_000 .*not on freq h"),
        "two timestamps 17 minutes off the hourly grid",
    ),
    Case("gaps", _with(_gaps), ("ok", "gap", "filled (masked)"), "13 missing hours in two series"),
    Case("huge_value", _with(_huge_value), ("ok", None, None), "one y = 1e30"),
    Case(
        "beyond_float32",
        _with(_beyond_float32),
        ("ok", "non_finite", "filled (masked)"),
        "one y = 1e300 (not representable in float32)",
    ),
    Case("unsorted_rows", _with(lambda df: df.sample(frac=1.0, random_state=1)), ("ok", None, None), "rows shuffled"),
    Case(
        "extra_columns",
        _with(lambda df: df.assign(note="x", other=1.5)),
        ("ok", None, None),
        "two unknown extra columns",
    ),
    Case(
        "dir_good_and_bad",
        _good_and_bad_dir,
        ("error", r"part-1\.parquet"),
        "a directory with one good and one CSV file",
    ),
    Case(
        "horizon_too_long",
        _long_horizon_data,
        ("error", r"all 4 series were dropped \(too_short\).*lower input_size/horizon"),
        "--horizon 600 on 504-point series",
        ("--horizon", "600"),
    ),
    # Reliability v2 (issue 13): input contract
    Case(
        "int_ds_near_max",
        _with(_integer_ds(2**63 - 600)),
        ("error", r"ds_out_of_range .*beyond \+-2\*\*61"),
        "integer ds near int64 max (item 9)",
        ("--as-of", "9223372036854775807"),
    ),
    Case(
        "uint64_ds",
        _uint64_ds,
        ("error", r"ds_out_of_range .*9223372036854775813 beyond"),
        "uint64 ds above 2**63 (item 9)",
    ),
    Case(
        "dir_schema_drift",
        _dir_schema_drift,
        ("error", r"missing column 'y' in .*part-1\.parquet \(found .*'value'"),
        "a directory where one file has `value` instead of `y` (item 10)",
    ),
    Case(
        "dir_type_drift",
        _dir_type_drift,
        ("error", r"column 'y' has type double in .*part-0\.parquet but large_string in .*part-1\.parquet"),
        "a directory where one file has `y` as text (item 10)",
    ),
    Case(
        "ds_year_3000",
        _far_timestamps(3000, as_text=False),
        ("error", r"ds_out_of_range .*3000-01-01.*1678-2261"),
        "one ds in the year 3000, timestamp[us] (item 18)",
    ),
    Case(
        "ds_year_1500_text",
        _far_timestamps(1500, as_text=True),
        ("error", r"ds_out_of_range .*1500-01-01"),
        "one ds '1500-01-01' as text (item 18)",
    ),
    Case(
        "as_of_9999",
        _with(lambda df: df),
        ("error", r"as_of='9999-12-31' is invalid: it is outside the supported years"),
        "--as-of 9999-12-31 (item 18)",
        ("--as-of", "9999-12-31"),
        early=True,
    ),
    Case("y_int_beyond_2_53", _y_beyond_2_53, ("ok", None, None), "y as int64 around 1e18, beyond 2**53 (item 19)"),
    Case(
        "int_ds_outlier",
        _with(_int_ds_outlier),
        ("error", r"grid_too_large in series_003 .*ds=10000000000000"),
        "one integer ds of 1e13 (item 20)",
        ("--as-of", "100000000000000"),
    ),
    Case(
        "ts_outlier",
        _with(_ts_outlier),
        ("error", r"grid_too_large in series_000 .*ds=1990-01-01"),
        "one ds in 1990 in 2026 hourly data (item 20)",
    ),
    Case(
        "freq_0D",
        _with(lambda df: df),
        ("error", r"freq='0D' is invalid: the step must be positive"),
        "--freq 0D (item 21)",
        ("--freq", "0D"),
        early=True,
    ),
    Case(
        "freq_minus_1D",
        _with(lambda df: df),
        ("error", r"freq='-1D' is invalid: the step must be positive"),
        "--freq -1D (item 21)",
        ("--freq=-1D",),
        early=True,
    ),
    Case(
        "freq_huge",
        _with(lambda df: df),
        ("error", r"freq='1000000000000D' is invalid: the step is longer than a century"),
        "--freq 1000000000000D (item 21)",
        ("--freq", "1000000000000D"),
        early=True,
    ),
    Case(
        "date_as_of_on_int_ds",
        _with(_integer_ds(0)),
        ("error", r"as_of=2026-02-01 is a date but ds holds integer steps"),
        "--as-of 2026-02-01 on integer ds (item 22)",
    ),
    Case(
        "as_of_superscript",
        _with(lambda df: df),
        ("error", r"as_of='²' is invalid; use a date like"),
        "--as-of ² (item 22)",
        ("--as-of", "²"),
        early=True,
    ),
    Case(
        "weekly_as_daily",
        _with(lambda df: make_sample_panel(n_series=4, length=200, freq="W", seed=7)),
        ("error", r"freq_mismatch .*freq W-SUN, not freq=D"),
        "weekly data with --freq D (item 11)",
        ("--freq", "D", "--as-of", "2030-01-01"),
    ),
    Case(
        "markup_ids",
        _with(_markup_ids),
        ("ok", "constant", "dropped"),
        "ids with `|`, newlines and HTML (item 16): escaped in the report",
    ),
]


def build_all(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in CASES:
        target = out / (case.name if case.name in DIRECTORY_CASES else f"{case.name}.parquet")
        if not target.exists():
            case.build(target)
        paths[case.name] = target
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "corpus"
    for name, path in build_all(out).items():
        print(f"{name:24s} {path}")
