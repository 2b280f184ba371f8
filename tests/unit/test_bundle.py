"""Model bundles: a round trip in a fresh process, safe loading, clear errors for broken bundles."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from rnn_model.bundle import BUNDLE_FILES, load_bundle, save_bundle
from rnn_model.errors import ModelLoadError

from ._helpers import run_python, wait_ok


@pytest.fixture(scope="module")
def bundle_dir(tiny_trained, hourly_panel, tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "v"
    save_bundle(path, tiny_trained.forecaster, {"mase": 0.9}, {"fingerprint": hourly_panel.fingerprint()})
    return path


def test_bundle_files_and_metadata(bundle_dir, tiny_trained, hourly_panel):
    assert sorted(p.name for p in bundle_dir.iterdir()) == sorted(BUNDLE_FILES)
    bundle = load_bundle(bundle_dir)
    assert bundle.path == bundle_dir and bundle.metrics == {"mase": 0.9}
    assert bundle.meta["fingerprint"] == hourly_panel.fingerprint()
    assert bundle.meta["seed"] == tiny_trained.forecaster.config.train.seed
    assert {"tensorflow", "keras", "numpy", "python"} <= set(bundle.meta["packages"])
    assert bundle.meta["code_version"] and bundle.meta["created_at"]
    assert bundle.forecaster.config == tiny_trained.forecaster.config
    np.testing.assert_array_equal(bundle.forecaster.scaler.loc, tiny_trained.forecaster.scaler.loc)


LOAD_AND_PREDICT = """
import sys
from rnn_model.bundle import load_bundle
from rnn_model.io import read_long_table
from rnn_model.panel import build_panel

bundle = load_bundle(sys.argv[1])
cfg = bundle.forecaster.config
panel, _ = build_panel(read_long_table(sys.argv[2], cfg.data), cfg.data)
frame, _ = bundle.forecaster.forecast_future(panel)
with open(sys.argv[3], "wb") as fh:
    fh.write(frame["y_hat"].to_numpy().tobytes())
"""


def test_round_trip_in_a_fresh_process_gives_identical_predictions(
    bundle_dir, hourly_parquet, tiny_trained, hourly_panel, tmp_path
):
    proc = run_python(LOAD_AND_PREDICT, str(bundle_dir), str(hourly_parquet), str(tmp_path / "y_hat.bin"))
    expected, _ = tiny_trained.forecaster.forecast_future(hourly_panel)
    wait_ok(proc)
    got = (tmp_path / "y_hat.bin").read_bytes()
    assert got == expected["y_hat"].to_numpy().tobytes()


def test_same_process_load_predicts_identically(bundle_dir, tiny_trained, hourly_panel):
    a, _ = tiny_trained.forecaster.forecast_future(hourly_panel)
    b, _ = load_bundle(bundle_dir).forecaster.forecast_future(hourly_panel)
    assert a.equals(b)


def _copy(bundle_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(bundle_dir, target)
    return target


def test_loading_uses_safe_mode(bundle_dir, tmp_path):
    """A model file carrying a Python lambda (arbitrary code) is refused."""
    target = _copy(bundle_dir, tmp_path)
    inputs = keras.Input((24, 1))
    outputs = keras.layers.Dense(6)(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2.0)(inputs)))
    keras.Model(inputs, outputs).save(target / "model.keras")
    with pytest.raises(ModelLoadError, match="safe_mode|arbitrary code"):
        load_bundle(target)


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_missing_file_is_named(bundle_dir, tmp_path, name):
    target = _copy(bundle_dir, tmp_path)
    (target / name).unlink()
    with pytest.raises(ModelLoadError, match=f"missing {name}"):
        load_bundle(target)


@pytest.mark.parametrize(
    "name,content",
    [
        ("model.keras", b"PK\x03\x04 truncated zip"),
        ("scaler.parquet", b"PAR1garbage"),
        ("config.json", b"{not json"),
        ("meta.json", b""),
        ("config.json", json.dumps({"model": {"units": -1}}).encode()),
        ("config.json", b"[]"),
    ],
    ids=["model", "scaler", "config-syntax", "meta-empty", "config-invalid", "config-not-an-object"],
)
def test_corrupt_file_is_a_model_load_error(bundle_dir, tmp_path, name, content):
    target = _copy(bundle_dir, tmp_path)
    (target / name).write_bytes(content)
    with pytest.raises(ModelLoadError):
        load_bundle(target)


def test_missing_directory_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="incomplete"):
        load_bundle(tmp_path / "nothing")


def test_bundle_from_before_the_anchor_option_reports_the_plain_model(bundle_dir, tmp_path):
    target = _copy(bundle_dir, tmp_path)
    stored = json.loads((target / "config.json").read_text())
    assert stored["model"]["anchor"] == "seasonal_naive"  # written by this version
    del stored["model"]["anchor"]  # as written before the option existed
    (target / "config.json").write_text(json.dumps(stored))
    assert load_bundle(target).forecaster.config.model.anchor == "none"
    assert load_bundle(bundle_dir).forecaster.config.model.anchor == "seasonal_naive"


def test_bundle_from_before_ensembles_loads_as_one_network(hourly_panel, tmp_path):
    """config.json without ``model.members`` was written for one network: it loads as members=1 (the
    default, 5, would read the single model's one output column as five members)."""
    from rnn_model.model import build_model
    from rnn_model.prediction import Forecaster
    from rnn_model.scaling import fit_scaler

    from ._helpers import TINY_HORIZON, TINY_INPUT, tiny_config

    cfg = tiny_config(model={"members": 1})
    model = build_model(cfg.model, TINY_INPUT, TINY_HORIZON, cfg.data.season_length, seed=1, relative_channel=False)
    single = Forecaster(model, fit_scaler(hourly_panel, hourly_panel.lengths, "window"), cfg)
    target = save_bundle(tmp_path / "v", single, {}, {})
    stored = json.loads((target / "config.json").read_text())
    assert stored["model"]["members"] == 1
    del stored["model"]["members"]  # as written before the option existed
    (target / "config.json").write_text(json.dumps(stored))
    loaded = load_bundle(target).forecaster
    assert loaded.config.model.members == 1 and loaded.model.output_shape == (None, TINY_HORIZON)
    want, _ = single.forecast_future(hourly_panel)
    got, _ = loaded.forecast_future(hourly_panel)
    np.testing.assert_array_equal(got["y_hat"].to_numpy(), want["y_hat"].to_numpy())
