"""The promotion gate through real ``train`` runs: a worse challenger never replaces the champion unless
forced, every decision is recorded with its reasons, and the champion pointer can be rolled back."""

from __future__ import annotations

import json
import shutil

import pytest

from flows.train import train

from ._support import AS_OF, WORSE, champion_of, decision_of, small_config


@pytest.fixture(scope="module")
def forced_store(trained, panel_file, tmp_path_factory):
    """The trained store plus a worse v0002 made champion with ``force_promote=True``."""
    store = tmp_path_factory.mktemp("forced") / "store"
    shutil.copytree(trained["store"], store)
    state = train(data=str(panel_file), store=str(store), config=small_config(**WORSE), as_of=AS_OF,
                  force_promote=True, return_state=True)
    assert state.is_completed(), state.message
    return store, state.result()


def test_worse_challenger_keeps_the_champion(store_copy, panel_file):
    state = train(data=str(panel_file), store=str(store_copy), config=small_config(**WORSE), as_of=AS_OF,
                  return_state=True)
    assert state.is_completed(), state.message  # losing is a decision, not a failure
    result = state.result()
    assert result["version"] == "v0002"
    assert result["promoted"] is False and result["champion"] == "v0001"
    assert champion_of(store_copy) == "v0001"

    metrics = {row["model"]: row["mase"] for row in result["metrics"]}
    assert {"challenger", "champion", "naive", "seasonal_naive"} <= set(metrics)
    assert metrics["challenger"] > metrics["champion"]

    decision = decision_of(store_copy, "v0002")
    assert decision["promoted"] is False and decision["forced"] is False
    assert decision["reasons"] == result["reasons"]
    assert any(r.startswith("does not beat the champion") for r in decision["reasons"]), decision
    # the losing bundle is kept (complete) as a candidate; the champion's history is unchanged
    assert (store_copy / "models" / "default" / "v0002" / "model.keras").is_file()
    meta = json.loads((store_copy / "models" / "default" / "v0002" / "meta.json").read_text())
    assert meta["refit"] is None  # only a model about to become champion is refitted
    history = (store_copy / "models" / "default" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["version"] for line in history] == ["v0001"]


def test_force_promote_promotes_a_losing_model(forced_store):
    store, result = forced_store
    assert result["version"] == "v0002" and result["promoted"] is True and result["champion"] == "v0002"
    assert champion_of(store) == "v0002"
    metrics = {row["model"]: row["mase"] for row in result["metrics"]}
    assert metrics["challenger"] > metrics["champion"]  # it did lose
    decision = decision_of(store, "v0002")
    assert decision["promoted"] is True and decision["forced"] is True
    assert "forced by force_promote=True" in decision["reasons"]
    assert any(r.startswith("does not beat the champion") for r in decision["reasons"])
    pointer = json.loads((store / "models" / "default" / "champion").read_text())
    assert "forced by force_promote=True" in pointer["reason"]
    assert json.loads((store / "models" / "default" / "v0002" / "meta.json").read_text())["refit"]["windows"] > 0


def test_rollback_points_the_champion_back(forced_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(forced_store[0], store)
    state = train(store=str(store), rollback_to="v0001", return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"champion": "v0001", "promoted": False, "rollback": True}
    assert champion_of(store) == "v0001"
    pointer = json.loads((store / "models" / "default" / "champion").read_text())
    assert pointer["reason"] == "rollback from v0002"
    history = [json.loads(line) for line in (store / "models" / "default" / "history.jsonl").read_text().splitlines()]
    assert [h["version"] for h in history] == ["v0001", "v0002", "v0001"]
    assert sorted(p.name for p in (store / "models" / "default").glob("v*")) == ["v0001", "v0002"]  # nothing deleted


def test_rollback_to_an_unknown_version_fails_clearly(forced_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(forced_store[0], store)
    state = train(store=str(store), rollback_to="v0099", return_state=True)
    assert state.is_failed()
    assert "v0099 not found" in state.message and "known: v0001, v0002" in state.message, state.message
    assert champion_of(store) == "v0002"  # untouched
