"""File registry: numbered immutable versions, the champion pointer, and the promotion gate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnn_model.bundle import save_bundle
from rnn_model.errors import ConfigError, RegistryError, StoreError
from rnn_model.registry import ModelRegistry, decide_promotion


def _write_marker(text):
    def write(tmp):
        (tmp / "marker.txt").write_text(text)

    return write


def test_versions_are_numbered_in_order(tmp_path):
    reg = ModelRegistry(tmp_path, "sales")
    assert reg.versions() == [] and reg.champion() is None
    assert [reg.register(_write_marker(str(i))) for i in range(3)] == ["v0001", "v0002", "v0003"]
    assert reg.versions() == ["v0001", "v0002", "v0003"]
    assert (tmp_path / "models" / "sales" / "v0002" / "marker.txt").read_text() == "1"
    # numbering continues after the highest version, and sorts numerically past 9999
    (reg.root / "v9999").mkdir()
    assert reg.register(_write_marker("x")) == "v10000"
    assert reg.versions()[-2:] == ["v9999", "v10000"]


def test_failed_write_leaves_no_version_and_no_temporary(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.register(_write_marker("ok"))

    def broken(tmp):
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        reg.register(broken)
    assert reg.versions() == ["v0001"]
    assert [p.name for p in reg.root.iterdir()] == ["v0001"]  # no .incoming-* left behind


def test_champion_pointer_and_history(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1, v2 = reg.register(_write_marker("1")), reg.register(_write_marker("2"))
    reg.set_champion(v1, "first model")
    assert reg.champion() == "v0001"
    reg.set_champion(v2, "promoted")
    assert reg.champion() == "v0002"
    reg.set_champion(v1, "rollback")
    assert reg.champion() == "v0001"
    history = [json.loads(line) for line in (reg.root / "history.jsonl").read_text().splitlines()]
    assert [(h["version"], h["reason"]) for h in history] == [
        ("v0001", "first model"),
        ("v0002", "promoted"),
        ("v0001", "rollback"),
    ]
    pointer = json.loads((reg.root / "champion").read_text())
    assert pointer["version"] == "v0001" and pointer["reason"] == "rollback" and pointer["since"]


def test_unknown_and_malformed_versions(tmp_path):
    reg = ModelRegistry(tmp_path)
    reg.register(_write_marker("1"))
    with pytest.raises(RegistryError, match="v0007 not found.*known: v0001"):
        reg.set_champion("v0007", "nope")
    with pytest.raises(ConfigError, match="versions look like"):
        reg.path("../v0001")
    assert reg.champion() is None  # a failed set_champion changes nothing


@pytest.mark.parametrize("content", ["{broken", "[]", '{"other": 1}', '{"version": "v0042"}'])
def test_corrupt_or_dangling_champion_pointer(tmp_path, content):
    reg = ModelRegistry(tmp_path)
    reg.register(_write_marker("1"))
    (reg.root / "champion").write_text(content)
    with pytest.raises(RegistryError):
        reg.champion()


def test_decisions_are_recorded_per_version(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = reg.register(_write_marker("1"))
    assert reg.decision(v) is None
    reg.record_decision(v, {"promote": True, "reasons": ["first"]})
    d = reg.decision(v)
    assert d["promote"] is True and d["reasons"] == ["first"] and d["decided_at"]


def test_bad_model_names_and_unwritable_store(tmp_path):
    with pytest.raises(ConfigError, match="model_name"):
        ModelRegistry(tmp_path, "../outside")
    blocker = tmp_path / "store"
    blocker.write_text("a file, not a directory")
    with pytest.raises(StoreError, match="cannot write"):
        ModelRegistry(blocker).register(_write_marker("x"))


def test_load_a_registered_bundle(tmp_path, tiny_trained):
    reg = ModelRegistry(tmp_path)
    v = reg.register(lambda tmp: save_bundle(tmp, tiny_trained.forecaster, {"mase": 1.0}, {}))
    bundle = reg.load(v)
    assert bundle.path == reg.root / v and bundle.metrics == {"mase": 1.0}
    for a, b in zip(bundle.forecaster.model.get_weights(), tiny_trained.forecaster.model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---- the promotion gate -------------------------------------------------------------------------------


def test_first_model_is_promoted_when_it_beats_seasonal_naive():
    d = decide_promotion(0.8, 1.0, None, margin=0.02, forecasts_complete=True)
    assert d.promote and any("no current champion" in r for r in d.reasons)
    assert (d.challenger_mase, d.seasonal_naive_mase, d.champion_mase) == (0.8, 1.0, None)


@pytest.mark.parametrize(
    "challenger,naive,champion,complete,promote,why",
    [
        (0.8, 1.0, 0.9, True, True, "beats the champion by more than 2.0%"),
        (0.8, 1.0, 0.81, True, False, "does not beat the champion by 2.0%"),  # better, but within the margin
        (0.98, 1.0, 1.0, True, False, "does not beat the champion"),  # exactly on the bar: not promoted
        (1.0, 1.0, None, True, False, "does not beat seasonal naive"),  # a tie with the baseline is not enough
        (1.2, 1.0, 1.5, True, False, "does not beat seasonal naive"),  # better than a bad champion is not enough
        (0.5, 1.0, 0.9, False, False, "not finite and complete"),
        (math.nan, 1.0, None, True, False, "not finite and complete"),
        (math.inf, 1.0, 0.9, True, False, "not finite and complete"),
    ],
)
def test_promotion_gate(challenger, naive, champion, complete, promote, why):
    d = decide_promotion(challenger, naive, champion, margin=0.02, forecasts_complete=complete)
    assert d.promote is promote
    assert any(why in r for r in d.reasons), d.reasons
    md = d.to_markdown("v0003")
    assert "v0003" in md and ("promoted to champion" in md) is promote
