"""Windows as indices into the panel buffer, the temporal split, and the tf.data training pipeline.

A window is one int64: the buffer slot of its first input. Its inputs are the ``input_size`` slots from
there and its targets the ``horizon`` slots after them. Windows are never materialised: the tf.data
pipeline shuffles the starts (seeded, reshuffled every epoch), batches them, and gathers each batch's
``[batch, input_size + horizon]`` block with one ``tf.gather``, split into ``[batch, input_size, 1]``
inputs and ``[batch, horizon]`` targets. Memory stays O(rows): the buffer, its scaled copy and one int64
per window (int32 inside the tf.data pipeline; see ``benchmarks/windowing.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import WindowConfig
from .panel import Panel

__all__ = [
    "Split",
    "make_split",
    "heldout_test_origins",
    "window_starts",
    "cap_windows",
    "gather_windows",
    "make_dataset",
]

PREFETCH_BATCHES = 4  # batches make_dataset prepares ahead of the consumer


@dataclass(frozen=True)
class Split:
    """Per-series slot boundaries (relative to each series' start).

    train: ``[0, train_end)``; validation targets: ``[train_end, val_end)``; test targets:
    ``[val_end, length)``. Test targets are never seen in training or early stopping.
    """

    train_end: np.ndarray  # [n_series]
    val_end: np.ndarray  # [n_series]
    length: np.ndarray  # [n_series]
    n_test: np.ndarray  # [n_series] held-out test horizons (0 where the series is too short for any)


def make_split(panel: Panel, window: WindowConfig) -> Split:
    """Hold out up to ``test_windows`` horizons (the most recent) and ``val_windows`` before them, per
    series, as many as fit: a series keeps at least one training window (``input_size + horizon``
    points) before its held-out horizons, so a short series still trains; the test horizons are taken
    first (they judge the model), then the validation ones."""
    h = window.horizon
    assert window.input_size is not None and h is not None  # filled in by config.resolve
    length = panel.lengths.astype(np.int64)
    fit = np.maximum(0, (length - window.input_size - h) // h)  # [n_series] horizons that fit
    n_test = np.minimum(window.test_windows, fit)
    n_val = np.minimum(window.val_windows, fit - n_test)
    val_end = length - h * n_test
    train_end = val_end - h * n_val
    return Split(train_end=train_end, val_end=val_end, length=length, n_test=n_test)


def heldout_test_origins(split: Split, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """``(series_idx [n], origin [n])``: the first target slot of every held-out test horizon."""
    n_test = split.n_test
    series_idx = np.repeat(np.arange(len(n_test)), n_test)  # [n]
    first = np.r_[0, np.cumsum(n_test)[:-1]]  # [n_series] position of each series' first test horizon
    j = np.arange(len(series_idx)) - np.repeat(first, n_test)  # [n] 0 .. n_test - 1 within the series
    return series_idx, split.val_end[series_idx] + j * horizon


def window_starts(
    panel: Panel,
    input_size: int,
    horizon: int,
    target_lo: np.ndarray,
    target_hi: np.ndarray,
    step: int = 1,
) -> np.ndarray:
    """Buffer slots of every fully observed window whose targets lie in ``[target_lo[i], target_hi[i])``.

    Windows are aligned on the most recent one (targets ending at ``target_hi``) and taken every
    ``step`` slots back from there. Returned sorted, which groups them by series.
    """
    span = input_size + horizon
    n_slots = len(panel.values)
    per_slot = np.repeat(np.arange(panel.n_series), panel.lengths)  # [n_slots] series of each slot
    rel = np.arange(n_slots) - panel.offsets[per_slot]  # slot position within its series
    target_start = rel + input_size  # if a window started here
    last_ok = target_hi[per_slot] - horizon  # latest target start allowed
    ok = (target_start >= target_lo[per_slot]) & (target_start <= last_ok)
    if step > 1:
        ok &= (last_ok - target_start) % step == 0
    # A window is usable when none of its span slots is unobserved: a prefix count of gaps.
    gaps = np.r_[0, np.cumsum(~panel.observed)]  # [n_slots + 1]
    end = np.minimum(np.arange(n_slots) + span, n_slots)
    ok &= (gaps[end] - gaps[:n_slots] == 0) & (np.arange(n_slots) + span <= panel.offsets[per_slot + 1])
    return np.flatnonzero(ok).astype(np.int64)


def cap_windows(starts: np.ndarray, panel: Panel, cap: int | None, sampling: str, seed: int) -> np.ndarray:
    """Keep at most ``cap`` windows per series: the most recent ones, or a seeded uniform sample."""
    if cap is None or len(starts) == 0:
        return starts
    series = np.searchsorted(panel.offsets, starts, side="right") - 1  # [n_windows]
    first_of_series = np.searchsorted(series, series, side="left")
    if sampling == "recent":
        last_of_series = np.searchsorted(series, series, side="right")
        rank_from_end = last_of_series - 1 - np.arange(len(starts))
        return starts[rank_from_end < cap]
    keys = np.random.default_rng(seed).random(len(starts))
    order = np.lexsort((keys, series))  # by series, random within
    rank = np.arange(len(starts)) - first_of_series[order]
    return np.sort(starts[order][rank < cap])


def gather_windows(buffer: np.ndarray, starts: np.ndarray, input_size: int, horizon: int):
    """Numpy gather for evaluation/prediction: ``[n, input_size, 1]`` inputs, ``[n, horizon]`` targets."""
    idx = starts[:, None] + np.arange(input_size + horizon)  # [n, input_size + horizon]
    block = buffer[idx]
    return block[:, :input_size, None], block[:, input_size:]  # [n, input_size, 1], [n, horizon]


def make_dataset(
    buffer: np.ndarray,
    starts: np.ndarray,
    input_size: int,
    horizon: int,
    batch_size: int,
    seed: int | None = None,
    epochs: int = 1,
    transform=None,
    multiple_of: int = 1,
):
    """The training pipeline: shuffled (when ``seed`` is given) batches of gathered windows.

    With a seed, epoch ``e`` uses the permutation ``stateless_shuffle(starts, [seed, e])`` so every run is
    reproducible; the dataset yields ``epochs`` epochs back to back (pass ``steps_per_epoch`` to fit).
    ``transform(x, y) -> (x, y)``: applied to every gathered batch (see normalization.window_transform).
    ``multiple_of``: every batch holds a multiple of it, the last one of an epoch cut down to one (its
    cut windows are others in the next epoch's order). Returns ``(dataset, steps_per_epoch)``.
    """
    import tensorflow as tf

    starts = np.asarray(starts)  # [n_windows]
    n = len(starts)
    full = (n // batch_size) * batch_size
    rest = (n - full) // multiple_of * multiple_of  # windows of the last, partial batch
    steps = n // batch_size + (rest > 0)
    # Index arithmetic in int32 whenever every slot index fits (short of 2**31 slots): it halves the
    # resident starts, each epoch's permutation and each batch's index matrix. stateless_shuffle draws
    # the same permutation whatever the dtype, so batches are bit-identical to int64 indexing. Starts
    # outside the buffer stay int64 (no silent wrap-around): tf.gather rejects them as before.
    in_range = n == 0 or (starts.min() >= 0 and starts.max() < len(buffer))
    index_dtype = np.int32 if in_range and len(buffer) <= np.iinfo(np.int32).max else np.int64
    buf = tf.constant(np.asarray(buffer, dtype=np.float32))  # [n_slots]
    starts_t = tf.constant(np.asarray(starts, dtype=index_dtype))  # [n_windows]
    span_offsets = tf.range(input_size + horizon, dtype=starts_t.dtype)  # [input_size + horizon]

    def batches(order):
        ds = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full], [-1, batch_size]))  # [steps, batch]
        if rest:
            ds = ds.concatenate(tf.data.Dataset.from_tensors(order[full : full + rest]))  # [rest]: the partial batch
        return ds

    if seed is None:
        ds = batches(starts_t).repeat(epochs)
    else:

        def epoch_batches(e):
            order = tf.random.experimental.stateless_shuffle(starts_t, seed=tf.stack([tf.constant(seed, tf.int64), e]))
            return batches(order)

        ds = tf.data.Dataset.range(epochs).flat_map(epoch_batches)

    def gather(idx):  # idx: [batch]
        block = tf.gather(buf, idx[:, None] + span_offsets)  # [batch, input_size + horizon]: the one gather
        x, y = block[:, :input_size, None], block[:, input_size:]  # [batch, input_size, 1], [batch, horizon]
        return (x, y) if transform is None else transform(x, y)

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # A fixed, small prefetch depth: with AUTOTUNE the buffer kept growing under a slower consumer (tens
    # of MB of extra RSS in benchmarks/windowing.py) without measurably more windows/s; the parallel
    # map, not the buffer depth, is what keeps up with a fast consumer.
    return ds.prefetch(PREFETCH_BATCHES), steps
