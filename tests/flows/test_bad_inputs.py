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
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(store.rglob("*")) if p.is_file()}


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
        states = asyncio.run(_latest_flow_run_state())  # what the UI shows for the run
        failed = [s for s in states if s.is_failed()]
        assert failed and any(lines[0].removeprefix("error: ")[:60] in (s.message or "") for s in failed), states
    else:
        assert code == 0, err
        problem, action = case.expect[1], case.expect[2]
        if problem:
            # the train flow's report (the predict flow keeps constant/short series for seasonal naive)
            reports = [a.data for a in asyncio.run(_latest_artifacts("default-data-quality", 2))]
            pattern = rf"\| {problem} \| \d+ \| .* \| {re.escape(action)} \|"
            assert any(re.search(pattern, r) for r in reports), reports
        table = pq.read_table(store / "predictions" / f"as_of={AS_OF}" / "part-0.parquet")
        y_hat = table.column("y_hat").to_numpy()
        assert len(y_hat) > 0 and np.isfinite(y_hat).all()
        assert set(table.column("model_version").to_pylist()) <= {"seasonal_naive", *[p.name for p in (store / "models" / "default").glob("v*")]}


def test_file_not_found_is_caught_before_any_work(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.parquet"), "--store", str(tmp_path / "s")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
