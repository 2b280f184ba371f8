"""Per-series scaling, fit on each series' training part only and stored with the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ModelLoadError
from .io import atomic_write_parquet
from .panel import Panel

__all__ = ["SeriesScaler", "fit_scaler"]


@dataclass(frozen=True)
class SeriesScaler:
    """``scaled = (y - loc) / scale`` per series, looked up by ``unique_id``."""

    kind: str
    ids: np.ndarray  # [n_series] str
    loc: np.ndarray  # [n_series] float64
    scale: np.ndarray  # [n_series] float64, > 0

    def index_of(self, ids: np.ndarray) -> np.ndarray:
        """Position of each id in this scaler, -1 where the scaler has never seen the series."""
        lookup = {k: i for i, k in enumerate(self.ids)}
        return np.array([lookup.get(k, -1) for k in ids], dtype=np.int64)

    def scaled_buffer(self, panel: Panel) -> np.ndarray:
        """The panel's values scaled per series; unobserved slots and unknown series hold 0."""
        idx = self.index_of(panel.ids)
        loc = np.where(idx >= 0, self.loc[idx], 0.0)
        scale = np.where(idx >= 0, self.scale[idx], 1.0)
        per_slot = np.repeat(np.arange(panel.n_series), panel.lengths)  # [n_slots] series of each slot
        out = (panel.values - loc[per_slot].astype(np.float32)) / scale[per_slot].astype(np.float32)
        out[~panel.observed] = 0.0
        return out.astype(np.float32, copy=False)

    def save(self, path: Path) -> None:
        table = pa.table({"unique_id": self.ids.astype(str), "loc": self.loc, "scale": self.scale})
        table = table.replace_schema_metadata({"kind": self.kind})
        atomic_write_parquet(table, path)

    @classmethod
    def load(cls, path: Path) -> "SeriesScaler":
        try:
            table = pq.read_table(path)
            kind = (table.schema.metadata or {}).get(b"kind", b"standard").decode()
            return cls(
                kind=kind,
                ids=np.asarray(table.column("unique_id").to_pylist(), dtype=object),
                loc=table.column("loc").to_numpy(),
                scale=table.column("scale").to_numpy(),
            )
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise ModelLoadError(f"cannot load scaler {path}: {exc}; the model bundle is corrupt") from exc


def fit_scaler(panel: Panel, train_end: np.ndarray, kind: str = "standard") -> SeriesScaler:
    """Fit per-series statistics on slots ``[0, train_end[i])`` of each series (observed ones only).

    Values after ``train_end`` are never read, so changing them cannot change the scaler. ``none`` and
    ``window`` are the identity (``window``: each window is normalised by its own inputs instead, see
    normalization.py; the scaler then only records the series the model was trained on).
    """
    n = panel.n_series
    loc = np.zeros(n)
    scale = np.ones(n)
    if kind not in ("none", "window"):
        per_slot = np.repeat(np.arange(n), panel.lengths)  # [n_slots]
        rel = np.arange(len(panel.values)) - panel.offsets[per_slot]
        use = panel.observed & (rel < train_end[per_slot])
        v = panel.values[use].astype(np.float64)
        s = per_slot[use]
        if kind == "mean":  # no shift: levels keep their ratios (a series halving stays a halving)
            count = np.bincount(s, minlength=n)
            scale = np.bincount(s, weights=np.abs(v), minlength=n) / np.maximum(count, 1)
        elif kind == "standard":
            count = np.bincount(s, minlength=n)
            mean = np.bincount(s, weights=v, minlength=n) / np.maximum(count, 1)
            var = np.bincount(s, weights=(v - mean[s]) ** 2, minlength=n) / np.maximum(count, 1)
            loc, scale = mean, np.sqrt(var)
        else:  # robust: median and IQR / 1.349 (the normal-consistent IQR), one sort per series
            bounds = np.r_[0, np.cumsum(np.bincount(s, minlength=n))]
            for i in range(n):
                part = v[bounds[i] : bounds[i + 1]]
                if part.size:
                    q25, q50, q75 = np.percentile(part, [25, 50, 75])
                    loc[i], scale[i] = q50, (q75 - q25) / 1.349
        # Constant (or one-point) training parts: keep the level, do not divide by ~0.
        scale = np.where(np.isfinite(scale) & (scale > 1e-8 * np.maximum(1.0, np.abs(loc))), scale, 1.0)
    return SeriesScaler(kind=kind, ids=panel.ids.copy(), loc=loc, scale=scale)
