"""Distributed training for real: MirroredStrategy over two logical CPU devices, in a fresh interpreter
(logical devices must be configured before TensorFlow initialises), trains and forecasts; the model it
saves loads and forecasts without any strategy."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from rnn_model.config import TrainConfig
from rnn_model.distribute import get_strategy, is_chief, replicas
from rnn_model.errors import ConfigError

from ._helpers import TINY_HORIZON, run_python, wait_ok

MIRRORED = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np
from rnn_model.bundle import load_bundle, save_bundle
from rnn_model.config import ForecastConfig, ModelConfig, TrainConfig, WindowConfig, resolve
from rnn_model.io import read_long_table
from rnn_model.panel import build_panel
from rnn_model.training import min_train_length, train

data, out = sys.argv[1], sys.argv[2]
cfg = resolve(ForecastConfig(window=WindowConfig(input_size=24, horizon=6, max_windows_per_series=40, val_windows=1),
                             model=ModelConfig(units=8),
                             train=TrainConfig(epochs=2, steps=None, batch_size=32, seed=3, scaler="standard",
                                               strategy="mirrored")), "h")
panel, _ = build_panel(read_long_table(data, cfg.data), cfg.data, min_length=min_train_length(cfg))
result = train(panel, cfg)
frame, fallback = result.forecaster.forecast_future(panel)
save_bundle(out, result.forecaster, {}, {})
loaded, _ = load_bundle(out).forecaster.forecast_future(panel)
print(json.dumps({
    "devices": [d.name for d in tf.config.list_logical_devices("CPU")],
    "extra": result.extra, "history": result.history, "n_series": int(panel.n_series),
    "rows": len(frame), "fallback": fallback, "finite": bool(np.isfinite(frame["y_hat"]).all()),
    "reloaded_equal": bool(np.array_equal(frame["y_hat"].to_numpy(), loaded["y_hat"].to_numpy())),
    "weights_finite": all(bool(np.isfinite(w).all()) for w in result.forecaster.model.get_weights()),
}))
"""


def _trained_through(path) -> str:
    """The last ds the fit saw (TrainResult.extra["trained_through"]): every series ends at the same ds
    here, so the end of the validation horizons, test_windows horizons before the end of the data."""
    import pandas as pd

    from rnn_model.config import WindowConfig

    last = pd.read_parquet(path)["ds"].max()
    return (last - pd.Timedelta(hours=TINY_HORIZON * WindowConfig().test_windows)).isoformat()


def test_mirrored_strategy_on_two_logical_cpus_trains_and_forecasts(hourly_parquet, tmp_path):
    out = wait_ok(run_python(MIRRORED, str(hourly_parquet), str(tmp_path / "bundle")), timeout=400)
    got = json.loads(out.strip().splitlines()[-1])
    assert len(got["devices"]) == 2
    assert got["extra"] == {
        "strategy": "mirrored",
        "replicas": 2,
        "chief": True,
        "trained_through": _trained_through(hourly_parquet),
    }
    assert len(got["history"]["loss"]) == 2 and np.isfinite(got["history"]["loss"]).all()
    assert np.isfinite(got["history"]["val_loss"]).all()
    assert got["rows"] == got["n_series"] * TINY_HORIZON and got["fallback"] == []
    assert got["finite"] and got["weights_finite"] and got["reloaded_equal"]


MULTI_WORKER = """
import json, os, sys
index, ports = int(sys.argv[2]), sys.argv[3].split(",")
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                      "task": {"type": "worker", "index": index}})
from rnn_model.distribute import get_strategy
get_strategy("multi_worker")  # first, before TensorFlow initialises (as the train flow does)
import numpy as np
from rnn_model.config import ForecastConfig, ModelConfig, TrainConfig, WindowConfig, resolve
from rnn_model.io import read_long_table
from rnn_model.panel import build_panel
from rnn_model.training import min_train_length, train

cfg = resolve(ForecastConfig(window=WindowConfig(input_size=24, horizon=6, max_windows_per_series=40, val_windows=1),
                             model=ModelConfig(units=8),
                             train=TrainConfig(epochs=2, steps=None, batch_size=32, seed=3, scaler="standard",
                                                 strategy="multi_worker")), "h")
panel, _ = build_panel(read_long_table(sys.argv[1], cfg.data), cfg.data, min_length=min_train_length(cfg))
result = train(panel, cfg)
frame, _ = result.forecaster.forecast_future(panel)
print(json.dumps({"extra": result.extra, "history": result.history, "y_hat": frame["y_hat"].tolist()}))
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_strategy_with_two_worker_processes(hourly_parquet):
    """Two workers on localhost (TF_CONFIG): 2 replicas, one chief, identical weights on both, and the
    same optimisation as one device (batch_size is the global batch, split between the workers)."""
    ports = ",".join(map(str, _free_ports(2)))
    procs = [run_python(MULTI_WORKER, str(hourly_parquet), str(i), ports) for i in (0, 1)]
    chief, other = (json.loads(wait_ok(p, timeout=400).strip().splitlines()[-1]) for p in procs)
    through = _trained_through(hourly_parquet)
    assert chief["extra"] == {"strategy": "multi_worker", "replicas": 2, "chief": True, "trained_through": through}
    assert other["extra"] == {"strategy": "multi_worker", "replicas": 2, "chief": False, "trained_through": through}
    assert chief["y_hat"] == other["y_hat"] and np.isfinite(chief["y_hat"]).all()

    from rnn_model.config import ForecastConfig, ModelConfig, TrainConfig, WindowConfig, resolve
    from rnn_model.io import read_long_table
    from rnn_model.panel import build_panel
    from rnn_model.training import min_train_length, train

    window = WindowConfig(input_size=24, horizon=6, max_windows_per_series=40, val_windows=1)
    cfg = resolve(
        ForecastConfig(
            window=window,
            model=ModelConfig(units=8),
            train=TrainConfig(epochs=2, steps=None, batch_size=32, seed=3, scaler="standard"),
        ),
        "h",
    )
    panel, _ = build_panel(read_long_table(hourly_parquet, cfg.data), cfg.data, min_length=min_train_length(cfg))
    one_device = train(panel, cfg).history
    np.testing.assert_allclose(chief["history"]["loss"], one_device["loss"], rtol=1e-4)
    np.testing.assert_allclose(chief["history"]["val_loss"], one_device["val_loss"], rtol=1e-4)


def test_strategy_is_validated_and_default_builds_nothing(monkeypatch):
    with pytest.raises(ConfigError, match="strategy='tpu' is invalid: must be one of default, mirrored, multi_worker"):
        TrainConfig(strategy="tpu")
    assert get_strategy("default") is None and replicas(None) == 1 and is_chief(None)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        get_strategy("multi_worker")
