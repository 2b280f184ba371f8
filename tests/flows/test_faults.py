"""Faults injected into real flow runs: nothing already written is lost, every failure says why."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from rnn_model.registry import ModelRegistry

from .test_bad_inputs import AS_OF, TINY, _snapshot, healthy


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "healthy.parquet"
    healthy().to_parquet(path)
    return path


@pytest.fixture(scope="module")
def champion_store(tmp_path_factory, data_file) -> Path:
    store = tmp_path_factory.mktemp("champion") / "store"
    assert (
        main(["run", "--data", str(data_file), "--store", str(store), "--as-of", AS_OF, "--force-promote", *TINY]) == 0
    )
    return store


@pytest.fixture
def store(champion_store, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(champion_store, copy)
    return copy


def _partition(store: Path) -> Path:
    return store / "predictions" / f"as_of={AS_OF}" / "part-0.parquet"


def test_failure_between_training_and_promotion_keeps_the_champion(store, data_file, monkeypatch, capsys):
    registry = ModelRegistry(store, "default")
    assert registry.champion() == "v0001"

    def disk_fails(self, version, reason):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ModelRegistry, "set_champion", disk_fails)
    code = main(["train", "--data", str(data_file), "--store", str(store), "--force-promote", *TINY])
    assert code != 0 and "Input/output error" in capsys.readouterr().err
    monkeypatch.undo()
    assert registry.champion() == "v0001"
    decision = json.loads((registry.root / "v0002" / "decision.json").read_text())
    assert decision["promoted"] is False and decision["status"] == "pending"
    # Re-running the failed run completes: a new version, one partition, no duplicated rows.
    assert (
        main(["run", "--data", str(data_file), "--store", str(store), "--as-of", AS_OF, "--force-promote", *TINY]) == 0
    )
    assert registry.champion() == "v0003"
    frame = pq.read_table(_partition(store)).to_pandas()
    assert not frame.duplicated(["unique_id", "ds"]).any()
    assert len(frame) == 4 * 12


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_unusable_champion_fails_prediction_clearly_and_retraining_replaces_it(store, data_file, damage, capsys):
    model_file = store / "models" / "default" / "v0001" / "model.keras"
    if damage == "corrupt":
        model_file.write_bytes(b"PK\x03\x04 not really a keras archive")
    else:
        model_file.unlink()
    before = _snapshot(store)
    capsys.readouterr()
    code = main(["predict", "--data", str(data_file), "--store", str(store), "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 2 and "model.keras" in err and "roll back" in err, err
    assert _snapshot(store) == before  # yesterday's predictions untouched, nothing silently forecast

    assert main(["train", "--data", str(data_file), "--store", str(store), *TINY]) == 0
    decision = json.loads((store / "models" / "default" / "v0002" / "decision.json").read_text())
    assert any("champion is unusable" in r for r in decision["reasons"])
    if decision["promoted"]:
        assert ModelRegistry(store, "default").champion() == "v0002"


@pytest.mark.parametrize("pointer", ['{"version":"../../.."}', "{", '{"version":"v0099"}'])
def test_a_corrupt_champion_pointer_never_wedges_the_store(store, data_file, pointer, capsys):
    """Item 13.1: train exited 2 ("model version '../../..' is invalid") and --rollback-to failed too, so
    only a hand edit recovered. Now predict says how to mend it, train replaces it, rollback mends it."""
    pointer_file = store / "models" / "default" / "champion"
    pointer_file.write_text(pointer)
    before = _snapshot(store)
    capsys.readouterr()
    assert main(["predict", "--data", str(data_file), "--store", str(store), "--as-of", AS_OF]) == 2
    err = capsys.readouterr().err
    assert "--rollback-to VERSION (known: v0001)" in err and "Traceback" not in err, err
    assert _snapshot(store) == before

    rolled_back = store.with_name("rolled-back")
    shutil.copytree(store, rolled_back)
    assert main(["train", "--store", str(rolled_back), "--rollback-to", "v0001"]) == 0, capsys.readouterr().err
    assert ModelRegistry(rolled_back, "default").champion() == "v0001"

    assert main(["train", "--data", str(data_file), "--store", str(store), *TINY]) == 0, capsys.readouterr().err
    decision = json.loads((store / "models" / "default" / "v0002" / "decision.json").read_text())
    assert any("champion is unusable" in r for r in decision["reasons"]), decision
    if decision["promoted"]:
        assert ModelRegistry(store, "default").champion() == "v0002"


def test_read_only_store_is_a_clear_error_and_keeps_predictions(store, data_file, monkeypatch, capsys):
    before = pq.read_table(_partition(store))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("rnn_model.io.os.replace", read_only)
    code = main(["predict", "--data", str(data_file), "--store", str(store), "--as-of", AS_OF])
    err = capsys.readouterr().err
    monkeypatch.undo()
    assert code == 2 and "Read-only file system" in err and "writable" in err, err
    assert pq.read_table(_partition(store)).equals(before)


def test_transient_read_error_is_retried(store, data_file, monkeypatch, capsys):
    import tasks.data

    calls = []
    real = tasks.data.read_long_table

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.EIO, "transient I/O error")
        return real(path, data)

    monkeypatch.setattr(tasks.data, "read_long_table", flaky)
    assert main(["predict", "--data", str(data_file), "--store", str(store), "--as-of", AS_OF]) == 0
    assert len(calls) == 2  # failed once, succeeded on the retry
    assert np.isfinite(pq.read_table(_partition(store)).column("y_hat").to_numpy()).all()


def test_user_errors_are_not_retried(store, tmp_path, monkeypatch, capsys):
    import tasks.data

    calls = []
    real = tasks.data.read_long_table
    monkeypatch.setattr(tasks.data, "read_long_table", lambda p, d: calls.append(p) or real(p, d))
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    assert main(["predict", "--data", str(bad), "--store", str(store), "--as-of", AS_OF]) == 2
    assert len(calls) == 1
