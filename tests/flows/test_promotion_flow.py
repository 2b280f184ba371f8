"""The promotion gate through real ``train`` runs: a worse challenger never replaces the champion unless
forced, every decision is recorded with its reasons, and the champion pointer can be rolled back."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from flows.train import train

from ._support import AS_OF, HORIZON, LAST_INPUT, WORSE, champion_of, decision_of, read_flow_run, run_api, small_config

TEST_WINDOWS = small_config().window.test_windows


@pytest.fixture(scope="module")
def forced_store(trained, panel_file, tmp_path_factory):
    """The trained store plus a worse v0002 made champion with ``force_promote=True``, refitted
    (``refit=True``: a model about to become champion, forced or not, is trained once more)."""
    store = tmp_path_factory.mktemp("forced") / "store"
    shutil.copytree(trained["store"], store)
    worse = small_config(model=WORSE["model"], train={**WORSE["train"], "refit": True})
    state = train(
        data=str(panel_file), store=str(store), config=worse, as_of=AS_OF, force_promote=True, return_state=True
    )
    assert state.is_completed(), state.message
    return store, state.result()


def test_worse_challenger_keeps_the_champion(store_copy, panel_file):
    state = train(
        data=str(panel_file), store=str(store_copy), config=small_config(**WORSE), as_of=AS_OF, return_state=True
    )
    assert state.is_completed(), state.message  # losing is a decision, not a failure
    result = state.result()
    assert result["version"] == "v0002"
    assert result["promoted"] is False and result["champion"] == "v0001"
    assert champion_of(store_copy) == "v0001"
    # the run list says what happened (issue 15.1): the state message and tags carry the outcome
    assert state.message == f"v0002 not promoted: {result['reasons'][0]} (champion v0001)", state.message
    flow_run = run_api(read_flow_run, state.state_details.flow_run_id)
    assert flow_run.name == f"train-default-{AS_OF}"
    assert {"model:default", "kept"} <= set(flow_run.tags) and "promoted" not in flow_run.tags

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
    assert meta["refit"] is None  # off by default, and only a model about to become champion is refitted
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
    meta = json.loads((store / "models" / "default" / "v0002" / "meta.json").read_text())
    assert meta["refit"]["windows"] > meta["refit"]["windows_before"] > 0  # forced, and refit=True: refitted
    assert meta["trained_through"] == LAST_INPUT.isoformat()  # the refit saw every value up to the end


def test_force_promote_without_refit_promotes_the_model_the_gate_judged(trained, panel_file, tmp_path):
    """refit is off by default: a forced promotion writes the early-stopped model, as it was scored."""
    store = tmp_path / "store"
    shutil.copytree(trained["store"], store)
    result = train(
        data=str(panel_file), store=str(store), config=small_config(**WORSE), as_of=AS_OF, force_promote=True
    )
    assert result["promoted"] is True and champion_of(store) == "v0002"
    meta = json.loads((store / "models" / "default" / "v0002" / "meta.json").read_text())
    assert meta["refit"] is None
    assert meta["trained_through"] == (LAST_INPUT - pd.Timedelta(hours=HORIZON * TEST_WINDOWS)).isoformat()


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


# --- identical runs: the gate gives the champion no home advantage


def _twice(panel_file, store, config) -> tuple[dict, dict]:
    """Two identical train runs (same data, config, seed and as_of) into ``store``: the first forced."""
    first = train(data=str(panel_file), store=str(store), config=config, as_of=AS_OF, force_promote=True)
    second = train(data=str(panel_file), store=str(store), config=config, as_of=AS_OF)
    return first, second


def test_an_identical_challenger_ties_and_is_not_promoted(panel_file, tmp_path):
    store = tmp_path / "store"
    first, second = _twice(panel_file, store, small_config())
    assert first["promoted"] is True and first["version"] == "v0001"
    assert second["version"] == "v0002" and second["promoted"] is False and champion_of(store) == "v0001"
    decision = decision_of(store, "v0002")
    assert decision["promoted"] is False and decision["forced"] is False
    assert any(r.startswith("tie") for r in decision["reasons"]), decision["reasons"]
    evidence = decision["evidence"]
    # the champion trained through its validation horizons: every held-out window of the challenger is
    # after that, so all of them are compared, and both models score exactly the same there
    assert evidence["champion_trained_through"] == (LAST_INPUT - pd.Timedelta(hours=HORIZON * TEST_WINDOWS)).isoformat()
    assert (
        evidence["fair_windows"]
        == decision_of(store, "v0001")["evidence"]["held_out_windows"]
        == evidence["held_out_windows"]
        > 0
    )
    assert evidence["champion_fair_mase"] == evidence["challenger_fair_mase"]
    assert evidence["improvement"] == 0.0
    assert not evidence["champion_fair_mase"] < evidence["challenger_fair_mase"]  # never a champion advantage
    metrics = {row["model"]: row["mase"] for row in second["metrics"]}
    assert metrics["champion"] == metrics["challenger"]
    meta = json.loads((store / "models" / "default" / "v0002" / "meta.json").read_text())
    assert meta["champion_at_training"] == "v0001" and meta["refit"] is None


def test_an_identical_challenger_of_a_refitted_champion_is_not_comparable(panel_file, tmp_path):
    """The champion was refitted on all the data: every held-out window of the identical challenger lies
    in data the champion trained on, so it is not compared there (no home advantage) and stays."""
    store = tmp_path / "store"
    first, second = _twice(panel_file, store, small_config(train={"refit": True}))
    assert first["promoted"] is True
    champion_meta = json.loads((store / "models" / "default" / "v0001" / "meta.json").read_text())
    assert champion_meta["refit"]["windows"] > champion_meta["refit"]["windows_before"]
    assert champion_meta["trained_through"] == LAST_INPUT.isoformat()
    assert second["promoted"] is False and champion_of(store) == "v0001"
    decision = decision_of(store, "v0002")
    assert decision["promoted"] is False and decision["forced"] is False
    assert decision["reasons"][0].startswith("not comparable"), decision["reasons"]
    assert not any(r.startswith("tie") for r in decision["reasons"])
    evidence = decision["evidence"]
    assert evidence["fair_windows"] == 0 and evidence["held_out_windows"] > 0
    assert evidence["champion_trained_through"] == LAST_INPUT.isoformat()
    assert all(evidence[k] is None for k in ("champion_fair_mase", "challenger_fair_mase"))  # no champion score
    meta = json.loads((store / "models" / "default" / "v0002" / "meta.json").read_text())
    assert meta["refit"] is None  # not about to become champion: not refitted
