"""Every case of the bad-input corpus through the real CLI and flows (in-process, on the test harness).

Error cases: exit code 2, one line naming the problem and the fix, no traceback, the flow run FAILED
with that message, and the store (a champion and yesterday's predictions) byte-for-byte untouched.
Policy cases: exit code 0, the report lists the problem with its action, every prediction finite.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "bad"))
from make_corpus import CASES, HORIZON, INPUT_SIZE, build_all, healthy  # noqa: E402

from flows.cli import main  # noqa: E402

TINY = ["--horizon", str(HORIZON), "--input-size", str(INPUT_SIZE), "--epochs", "1", "--units", "8", "--seed", "1"]
AS_OF = "2026-02-01"


def _snapshot(store: Path) -> dict[str, str]:
    """Every file's hash, except the lock file: it records who holds the lock (and last held it)."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory) -> Path:
    """A store with a champion and a predictions partition, built once from healthy data."""
    root = tmp_path_factory.mktemp("seeded")
    data = root / "healthy.parquet"
    healthy().to_parquet(data)
    store = root / "store"
    assert main(["run", "--data", str(data), "--store", str(store), "--as-of", AS_OF, "--force-promote", *TINY]) == 0
    return store


async def _latest_flow_run_state():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        runs = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=5)
        return [r.state for r in runs]


async def _latest_artifacts(key: str, n: int):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=n
        )
        return found


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_case(case, corpus, seeded_store, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(seeded_store, store)
    before = _snapshot(store)
    capsys.readouterr()
    args = ["run", "--data", str(corpus[case.name]), "--store", str(store), "--as-of", AS_OF, *TINY, *case.extra_args]
    code = main(args)
    err = capsys.readouterr().err
    if case.expect[0] == "error":
        assert code == 2, err
        lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert re.search(case.expect[1], lines[0]), lines[0]
        assert "tensorflow" not in lines[0].lower()
        assert _snapshot(store) == before  # nothing written, nothing half-overwritten
        if case.early:  # refused before Prefect starts: there is no flow run
            return
        states = asyncio.run(_latest_flow_run_state())  # what the UI shows for the run
        failed = [s for s in states if s.is_failed()]
        assert failed and any(lines[0].removeprefix("error: ")[:60] in (s.message or "") for s in failed), states
    else:
        assert code == 0, err
        problem, action = case.expect[1], case.expect[2]
        if problem:
            # the pipeline's one report: what training left out, beside what prediction kept
            reports = [a.data for a in asyncio.run(_latest_artifacts("default-pipeline-data-quality", 1))]
            pattern = rf"\| {problem} \| \d+ \| .* \| {re.escape(action)} \|"
            assert any(re.search(pattern, r) for r in reports), reports
            assert not any("<script>" in r or "| fake | row |" in r for r in reports), reports  # ids escaped
        table = pq.read_table(store / "predictions" / f"as_of={AS_OF}" / "part-0.parquet")
        y_hat = table.column("y_hat").to_numpy()
        assert len(y_hat) > 0 and np.isfinite(y_hat).all()
        assert set(table.column("model_version").to_pylist()) <= {
            "seasonal_naive",
            *[p.name for p in (store / "models" / "default").glob("v*")],
        }


def test_file_not_found_is_caught_before_any_work(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.parquet"), "--store", str(tmp_path / "s")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- Reliability v2 (issue 13), CLI


def _run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _assert_one_error_line(code: int, err: str, pattern: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def store(seeded_store, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(seeded_store, copy)
    return copy


def test_default_as_of_drops_future_rows_and_reports_them(store, tmp_path, capsys):
    """Item 8: one row dated 2099 was forecast from 2099; without --as-of the cutoff is now."""
    import pandas as pd

    from rnn_model.outputs import as_of_label

    df = healthy()
    future = pd.DataFrame({"unique_id": ["series_001"], "ds": [pd.Timestamp("2099-01-01")], "y": [1.0]})
    data = tmp_path / "future.parquet"
    pd.concat([df, future], ignore_index=True).to_parquet(data)
    code, out, err = _run_cli(["predict", "--data", str(data), "--store", str(store)], capsys)
    assert code == 0, err
    table = pq.read_table(store / "predictions" / f"as_of={as_of_label(None)}" / "part-0.parquet").to_pandas()
    assert table["ds"].max() < pd.Timestamp("2027-01-01") and table["unique_id"].nunique() == 4
    reports = [a.data for a in asyncio.run(_latest_artifacts("default-predict-data-quality", 1))]
    assert re.search(r"\| future_rows \| 1 \| ds=2099-01-01 00:00:00 after now .* \| dropped \|", reports[0]), reports


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--horizon", "14"], r"--horizon 14 but model v0001 has horizon 12"),
        (["--freq", "D"], r"--freq D but model v0001 has freq h"),
        (["--input-size", "48", "--horizon", "12"], r"--input-size 48 but model v0001 has input_size 24"),
    ],
)
def test_predict_refuses_settings_the_champion_would_ignore(store, corpus, capsys, flags, pattern):
    """Item 11: --horizon 14 --freq W were ignored without a word (the champion's were used)."""
    before = _snapshot(store)
    code, _, err = _run_cli(
        ["predict", "--data", str(corpus["unsorted_rows"]), "--store", str(store), "--as-of", AS_OF, *flags], capsys
    )
    _assert_one_error_line(code, err, pattern)
    assert _snapshot(store) == before


def test_run_whose_challenger_stays_out_warns_that_the_champion_ignores_its_settings(store, corpus, capsys):
    """Item 11, ``run``: its settings were for training; when the challenger is not promoted, the
    champion forecasts with its own, and the summary says so instead of staying silent."""
    flags = ["--horizon", "6", "--input-size", str(INPUT_SIZE), "--epochs", "1", "--units", "8", "--seed", "1"]
    code = main(
        [
            "run",
            "--data",
            str(corpus["unsorted_rows"]),
            "--store",
            str(store),
            "--as-of",
            AS_OF,
            "--margin",
            "0.99",
            *flags,
        ]
    )  # a margin no challenger can clear: the champion v0001 stays
    out = capsys.readouterr().out
    assert code == 0, out
    assert "not promoted (champion: v0001)" in out
    assert f"warning: --horizon 6 but model v0001 has horizon {HORIZON}: forecasting with the model's" in out
    (part,) = (store / "predictions" / f"as_of={AS_OF}").glob("*.parquet")
    assert pq.read_table(part).column("horizon_step").to_numpy().max() == HORIZON


def test_weekly_data_with_an_hourly_champion_is_an_error(store, tmp_path, capsys):
    """Item 11: weekly data with a daily (here hourly) champion exited 0 with forecasts a step apart."""
    from rnn_model.sample import make_sample_panel

    data = tmp_path / "weekly.parquet"
    make_sample_panel(n_series=4, length=60, freq="W", seed=7).to_parquet(data)
    before = _snapshot(store)
    code, _, err = _run_cli(["predict", "--data", str(data), "--store", str(store), "--as-of", "2030-01-01"], capsys)
    _assert_one_error_line(code, err, r"freq_mismatch .*freq W-SUN, not freq=h")
    assert _snapshot(store) == before


def test_backtest_metrics_are_strict_json(store, corpus, capsys):
    """Item 13: --n-windows 1000 wrote a bare NaN into metrics.json."""
    import json

    code, _, err = _run_cli(
        [
            "backtest",
            "--data",
            str(corpus["unsorted_rows"]),
            "--store",
            str(store),
            "--as-of",
            AS_OF,
            "--n-windows",
            "1000",
        ],
        capsys,
    )
    assert code == 0, err
    (metrics,) = (store / "reports").glob("backtest-*/metrics.json")

    def no_constants(name):
        raise AssertionError(f"bare {name} in {metrics}")

    json.loads(metrics.read_text(), parse_constant=no_constants)


def test_backtest_without_a_complete_window_is_an_error(store, corpus, capsys):
    """Item 13: a backtest with no complete window exited 0 with an empty report."""
    before = _snapshot(store)
    code, _, err = _run_cli(
        ["backtest", "--data", str(corpus["all_short"]), "--store", str(store), "--as-of", AS_OF], capsys
    )
    _assert_one_error_line(code, err, r"the backtest has no complete window")
    assert _snapshot(store) == before and not (store / "reports").exists()


def test_a_bundle_inconsistent_with_its_model_is_a_one_line_error(store, corpus, capsys):
    """Item 23: config horizon 14 on a 12-step model crashed predict with 'could not broadcast'."""
    import json

    config = store / "models" / "default" / "v0001" / "config.json"
    data = json.loads(config.read_text())
    data["window"]["horizon"] = 14
    config.write_text(json.dumps(data))
    before = _snapshot(store)
    code, _, err = _run_cli(
        ["predict", "--data", str(corpus["unsorted_rows"]), "--store", str(store), "--as-of", AS_OF], capsys
    )
    _assert_one_error_line(code, err, r"model bundle .*v0001 is inconsistent: model.keras does not fit")
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--length", "-5"], r"length=-5 is invalid"),
        (["--freq", "0D"], r"freq='0D' is invalid"),
        (["--n-series", "0"], r"n_series=0 is invalid"),
        (["--n-series", "1000000", "--length", "100000"], r"too large for sample data"),
    ],
)
def test_sample_data_arguments_are_checked(tmp_path, capsys, flags, pattern):
    """Item 24: --length -5 and --freq 0D crashed, --n-series 0 wrote an empty file and exited 0."""
    out = tmp_path / "sample.parquet"
    code, _, err = _run_cli(["sample-data", "--out", str(out), *flags], capsys)
    _assert_one_error_line(code, err, pattern)
    assert not out.exists()


def test_fuzzed_inputs_through_the_real_cli(seeded_store, tmp_path_factory, capsys):
    """A few inputs of the fuzz generator (tests/unit/test_fuzz_input.py) through `rnn-forecast predict`
    against a store with a champion: exit 0, or exit 2 with one `error:` line and the store unchanged."""
    from hypothesis import HealthCheck, given, settings

    from tests.unit.test_fuzz_input import input_specs

    base = tmp_path_factory.mktemp("cli-fuzz")
    counter = iter(range(10**6))

    @settings(max_examples=8, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(spec=input_specs())
    def one(spec):
        root = base / str(next(counter))
        store = root / "store"
        shutil.copytree(seeded_store, store)
        path = spec.write(root / "input")
        before = _snapshot(store)
        args = ["predict", "--data", str(path), "--store", str(store), "--partitions", str(spec.partitions)]
        if spec.as_of is not None:
            args += ["--as-of", str(spec.as_of)]
        code, _, err = _run_cli(args, capsys)
        assert code in (0, 2) and "Traceback" not in err, err
        if code == 2:
            assert len([ln for ln in err.strip().splitlines() if ln.startswith("error:")]) == 1, err
            assert _snapshot(store) == before
        shutil.rmtree(root, ignore_errors=True)

    one()
