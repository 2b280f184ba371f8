"""Model bundle: a self-contained directory that reproduces a forecaster exactly.

model.keras    the Keras model (loaded with safe_mode=True: no arbitrary code)
scaler.parquet per-series loc/scale, by unique_id
config.json    the resolved ForecastConfig
metrics.json   evaluation scores on the held-out windows
meta.json      data fingerprint, seed, package versions, code version, created_at, history
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .config import ForecastConfig
from .errors import ConfigError, ModelLoadError
from .io import atomic_write_json, read_json
from .prediction import Forecaster
from .scaling import SeriesScaler

__all__ = ["Bundle", "save_bundle", "load_bundle", "package_versions", "BUNDLE_FILES"]

BUNDLE_FILES = ("model.keras", "scaler.parquet", "config.json", "metrics.json", "meta.json")
_PACKAGES = ("numpy", "pandas", "pyarrow", "tensorflow", "keras", "prefect", "rnn-forecast-pipeline")


@dataclass
class Bundle:
    forecaster: Forecaster
    metrics: dict
    meta: dict
    path: Path | None = None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_version() -> str:
    """The git commit of the project checkout when there is one, else the package version."""
    try:
        root = Path(__file__).resolve().parent.parent
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode == 0 and sha.stdout.strip():
            return sha.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return package_versions()["rnn-forecast-pipeline"]


def save_bundle(
    directory: str | Path, forecaster: Forecaster, metrics: dict, meta: dict, pending: bool = False
) -> Path:
    """Write all bundle files into ``directory`` (normally a temporary directory renamed afterwards).

    ``pending=True`` also writes ``decision.json`` = not promoted (pending), so a version whose run dies
    before the promotion decision is never mistaken for a promoted one.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    forecaster.model.save(directory / "model.keras")
    forecaster.scaler.save(directory / "scaler.parquet")
    atomic_write_json(forecaster.config.to_dict(), directory / "config.json")
    atomic_write_json(metrics, directory / "metrics.json")
    full_meta = {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "seed": forecaster.config.train.seed,
        "packages": package_versions(),
        "code_version": code_version(),
        **meta,
    }
    atomic_write_json(full_meta, directory / "meta.json")
    if pending:
        decision = {"promoted": False, "status": "pending", "reasons": ["registered; promotion not decided yet"]}
        atomic_write_json(decision, directory / "decision.json")
    return directory


def load_bundle(directory: str | Path) -> Bundle:
    """Load a bundle; any missing or corrupt file is a :class:`ModelLoadError` naming it."""
    import keras

    directory = Path(directory)
    missing = [f for f in BUNDLE_FILES if not (directory / f).is_file()]
    if missing:
        raise ModelLoadError(
            f"model bundle {directory} is incomplete (missing {', '.join(missing)}); roll back to another "
            "version (--rollback-to) or retrain"
        )
    try:
        stored = read_json(directory / "config.json")
        if isinstance(stored, dict) and isinstance(stored.get("model"), dict):
            # bundles written before ModelConfig.anchor existed hold the plain model: say so, not the new default
            stored["model"].setdefault("anchor", "none")
            stored["model"].setdefault("members", 1)  # and before ensembles: one network
        config = ForecastConfig.from_dict(stored)
        metrics = read_json(directory / "metrics.json")
        meta = read_json(directory / "meta.json")
    except (ValueError, ConfigError, OSError, TypeError, KeyError, AttributeError) as exc:
        raise ModelLoadError(f"model bundle {directory} has a corrupt JSON file ({exc}); retrain or roll back") from exc
    if not isinstance(metrics, dict) or not isinstance(meta, dict):
        raise _inconsistent(directory, "metrics.json and meta.json must hold JSON objects")
    if config.data.freq is None or config.window.horizon is None or config.window.input_size is None:
        raise _inconsistent(directory, "config.json lacks the resolved freq, horizon or input_size")
    intervals = metrics.get("intervals")
    _check_intervals(directory, intervals)
    scaler = SeriesScaler.load(directory / "scaler.parquet")
    _check_scaler(directory, scaler)
    try:
        model = keras.saving.load_model(directory / "model.keras", compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types (ValueError, OSError, zipfile errors...)
        raise ModelLoadError(
            f"cannot load {directory / 'model.keras'} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "the file is corrupt: roll back to another version or retrain"
        ) from exc
    forecaster = Forecaster(model, scaler, config)
    forecaster.intervals = intervals
    _check_model_shape(directory, forecaster)
    return Bundle(forecaster, metrics, meta, directory)


def _inconsistent(directory: Path, why: str) -> ModelLoadError:
    return ModelLoadError(
        f"model bundle {directory} is inconsistent: {why}; roll back to another version (--rollback-to) or retrain"
    )


def _is_number_list(values) -> bool:
    return isinstance(values, list) and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
    )


def _check_intervals(directory: Path, intervals) -> None:
    """The calibration in metrics.json has the shape :func:`rnn_model.intervals.add_intervals` reads:
    ``{"models": {label: {level: [quantile per step]}}, "levels": [...], "too_few": {...}, "n": {...}}``."""
    if intervals is None:
        return
    ok = isinstance(intervals, dict)
    models = intervals.get("models", {}) if ok else None
    ok = (
        ok
        and isinstance(models, dict)
        and all(isinstance(per, dict) and all(_is_number_list(q) for q in per.values()) for per in models.values())
    )
    levels = intervals.get("levels", [80]) if ok else None
    ok = ok and isinstance(levels, list) and all(isinstance(v, int) and 0 < v < 100 for v in levels)
    for key in ("too_few", "n"):
        ok = ok and isinstance(intervals.get(key, {}), dict)
    too_few = intervals.get("too_few", {}) if ok else {}
    ok = ok and all(isinstance(v, dict) and all(isinstance(x, list) for x in v.values()) for v in too_few.values())
    if not ok:
        raise _inconsistent(directory, "metrics.json 'intervals' is not a calibration of prediction intervals")


def _check_scaler(directory: Path, scaler: SeriesScaler) -> None:
    from .config import SCALERS

    numeric = all(np.asarray(a).dtype.kind in "fi" for a in (scaler.loc, scaler.scale))
    if scaler.kind not in SCALERS or not numeric or not len(scaler.loc) == len(scaler.ids) == len(scaler.scale):
        raise _inconsistent(directory, f"scaler.parquet does not hold a {scaler.kind!r} scaler of numbers per series")
    if not (np.isfinite(scaler.loc).all() and np.isfinite(scaler.scale).all() and (scaler.scale > 0).all()):
        raise _inconsistent(directory, "scaler.parquet holds non-finite locations or non-positive scales")


def _check_model_shape(directory: Path, forecaster: Forecaster) -> None:
    """One forecast of a zero window: the model must map ``[1, input_size, 1]`` to ``[1, horizon]`` as
    config.json says (the compiled function is the one prediction uses: no extra tracing)."""
    w = forecaster.config.window
    assert w.input_size is not None  # filled in by config.resolve
    try:
        out = forecaster.predict_scaled(np.zeros((1, w.input_size, 1), np.float32))
    except Exception as exc:  # noqa: BLE001 - TF raises many types for a shape mismatch
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise _inconsistent(
            directory,
            f"model.keras does not fit config.json's input_size {w.input_size} and "
            f"horizon {w.horizon} ({type(exc).__name__}: {first})",
        ) from exc
    if out.shape != (1, w.horizon):
        raise _inconsistent(directory, f"model.keras gives {out.shape[1:]} outputs, config.json horizon {w.horizon}")
