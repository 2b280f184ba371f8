"""Lazy windows: int64 starts into the buffer, checked against a brute-force enumeration.

rnn_model/windowing.py is owned by another engineer (being optimised); these tests pin its behaviour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnn_model.config import DataConfig, WindowConfig
from rnn_model.panel import panel_from_frame
from rnn_model.scaling import fit_scaler
from rnn_model.windowing import (
    cap_windows,
    gather_windows,
    heldout_test_origins,
    make_dataset,
    make_split,
    window_starts,
)

from ._helpers import seasonal_frame

IN, H = 5, 3


@pytest.fixture(scope="module")
def gappy_panel():
    """Series of lengths 40, 12, 7 (shorter than one window of 5 + 3) and 30; a and d have masked slots."""
    parts = [
        seasonal_frame(n_series=1, length=40, seed=1).assign(unique_id="a"),
        seasonal_frame(n_series=1, length=12, seed=2).assign(unique_id="b"),
        seasonal_frame(n_series=1, length=7, seed=3).assign(unique_id="c"),
        seasonal_frame(n_series=1, length=30, seed=4).assign(unique_id="d"),
    ]
    df = pd.concat(parts, ignore_index=True)
    d = df.index[df["unique_id"] == "d"]
    df = df.drop(d[[10, 11]])  # a filled gap in d
    df.loc[df.index[df["unique_id"] == "a"][20], "y"] = np.nan  # a masked value in a
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    assert panel.lengths.tolist() == [40, 12, 7, 30]
    return panel


def brute_force(panel, input_size, horizon, lo, hi, step=1):
    """Every window (start slot) whose targets lie in [lo, hi) of its series, all slots observed, aligned
    every ``step`` slots back from the most recent allowed one."""
    out = []
    for i in range(panel.n_series):
        off, n = int(panel.offsets[i]), int(panel.lengths[i])
        last_target_start = min(hi[i], n) - horizon
        for ts in range(last_target_start, -1, -step):
            if ts < lo[i] or ts - input_size < 0:
                continue
            start = off + ts - input_size
            if panel.observed[start : start + input_size + horizon].all():
                out.append(start)
    return sorted(out)


def series_of(panel, starts):
    return np.searchsorted(panel.offsets, starts, side="right") - 1


@pytest.mark.parametrize("step", [1, 2, 3, 7])
def test_window_starts_match_brute_force_and_respect_boundaries_and_gaps(gappy_panel, step):
    p = gappy_panel
    lo, hi = np.zeros(p.n_series, np.int64), p.lengths.astype(np.int64)
    starts = window_starts(p, IN, H, lo, hi, step)
    assert starts.dtype == np.int64
    assert starts.tolist() == brute_force(p, IN, H, lo, hi, step)
    sid = series_of(p, starts)
    assert (starts >= p.offsets[sid]).all()
    assert (starts + IN + H <= p.offsets[sid + 1]).all()  # never crosses into the next series
    for s in starts:
        assert p.observed[s : s + IN + H].all()  # never touches a masked slot
    if step == 1:
        # a: 40 - 8 + 1 = 33 windows minus the 8 that touch slot 20; b: 5; c: 0; d: 23 minus 9 touching 10-11
        assert np.bincount(sid, minlength=4).tolist() == [25, 5, 0, 14]


def test_window_starts_target_range_and_alignment(gappy_panel):
    p = gappy_panel
    split = make_split(p, WindowConfig(input_size=IN, horizon=H, val_windows=1, test_windows=1))
    # a (40) and d (30) hold out one test and one validation horizon; b (12) has room for one held-out
    # horizon after its one training window (5 + 3 points): the test one; c (7) is shorter than a window
    assert split.n_test.tolist() == [1, 1, 0, 1]
    assert split.val_end.tolist() == [40 - H, 12 - H, 7, 30 - H]
    assert split.train_end.tolist() == [40 - 2 * H, 12 - H, 7, 30 - 2 * H]
    train = window_starts(p, IN, H, np.zeros_like(split.train_end), split.train_end)
    sid = series_of(p, train)
    rel_target_end = train - p.offsets[sid] + IN + H
    assert (rel_target_end <= split.train_end[sid]).all()  # no target in validation or test
    val = window_starts(p, IN, H, split.train_end, split.val_end, H)
    vs = series_of(p, val)
    # exactly the last validation horizon of each long-enough series: targets [train_end, val_end)
    assert (val - p.offsets[vs] + IN).tolist() == split.train_end[vs].tolist()
    assert vs.tolist() == [0, 3]
    assert val.tolist() == brute_force(p, IN, H, split.train_end, split.val_end, H)


def _lengths_panel(lengths):
    df = pd.concat(
        [seasonal_frame(n_series=1, length=n, seed=k).assign(unique_id=f"{k:02d}") for k, n in enumerate(lengths)],
        ignore_index=True,
    )
    panel, _ = panel_from_frame(df, DataConfig(freq="h"))
    assert panel.lengths.tolist() == list(lengths)
    return panel


def test_short_series_hold_out_as_many_horizons_as_fit_test_first():
    """Up to 3 test then 1 validation horizons per series, while a training window (5 + 3) remains."""
    lengths = [7, 8, 10, 11, 14, 17, 19, 20, 40]
    p = _lengths_panel(lengths)
    split = make_split(p, WindowConfig(input_size=IN, horizon=H, val_windows=1, test_windows=3))
    fit = [max(0, (n - IN - H) // H) for n in lengths]  # horizons after one training window
    assert fit == [0, 0, 0, 1, 2, 3, 3, 4, 10]
    assert split.n_test.tolist() == [0, 0, 0, 1, 2, 3, 3, 3, 3]
    n_val = (split.val_end - split.train_end) // H
    assert n_val.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert split.val_end.tolist() == [n - H * t for n, t in zip(lengths, split.n_test.tolist())]
    assert split.length.tolist() == lengths
    long_enough = p.lengths >= IN + H
    assert (split.train_end[long_enough] >= IN + H).all()  # one training window always remains
    train = window_starts(p, IN, H, np.zeros_like(split.train_end), split.train_end)
    assert set(series_of(p, train).tolist()) == set(np.flatnonzero(long_enough).tolist())
    # the validation and test windows never lose a horizon: fewer horizons, not shorter ones
    assert ((split.length - split.val_end) % H == 0).all() and ((split.val_end - split.train_end) % H == 0).all()


def test_test_origins_are_the_first_target_of_every_held_out_horizon():
    lengths = [7, 11, 14, 40]
    p = _lengths_panel(lengths)
    split = make_split(p, WindowConfig(input_size=IN, horizon=H, val_windows=1, test_windows=3))
    series, origin = heldout_test_origins(split, H)
    want = [(i, int(split.val_end[i]) + j * H) for i in range(p.n_series) for j in range(int(split.n_test[i]))]
    assert list(zip(series.tolist(), origin.tolist())) == want
    assert [o for _, o in want] == [11 - 3, 14 - 6, 14 - 3, 40 - 9, 40 - 6, 40 - 3]
    assert (origin + H <= p.lengths[series]).all() and (origin >= IN + H).all()
    too_short = make_split(_lengths_panel([7, 10]), WindowConfig(input_size=IN, horizon=H))
    assert [len(a) for a in heldout_test_origins(too_short, H)] == [0, 0]


def test_cap_recent_keeps_exactly_the_most_recent(gappy_panel):
    p = gappy_panel
    all_starts = window_starts(p, IN, H, np.zeros(4, np.int64), p.lengths.astype(np.int64))
    counts = np.bincount(series_of(p, all_starts), minlength=4)
    for cap in (1, 4, 10, 1000):
        kept = cap_windows(all_starts, p, cap, "recent", seed=0)
        sid = series_of(p, kept)
        assert np.bincount(sid, minlength=4).tolist() == np.minimum(counts, cap).tolist()
        for i in range(4):
            mine = all_starts[series_of(p, all_starts) == i]
            assert kept[sid == i].tolist() == sorted(mine)[len(mine) - min(cap, len(mine)) :]
    assert cap_windows(all_starts, p, None, "recent", 0) is all_starts


def test_cap_uniform_is_an_exact_seeded_sample(gappy_panel):
    p = gappy_panel
    all_starts = window_starts(p, IN, H, np.zeros(4, np.int64), p.lengths.astype(np.int64))
    counts = np.bincount(series_of(p, all_starts), minlength=4)
    a = cap_windows(all_starts, p, 4, "uniform", seed=1)
    assert np.bincount(series_of(p, a), minlength=4).tolist() == np.minimum(counts, 4).tolist()
    assert set(a) <= set(all_starts) and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, cap_windows(all_starts, p, 4, "uniform", seed=1))
    samples = {tuple(cap_windows(all_starts, p, 4, "uniform", seed=s)) for s in range(6)}
    assert len(samples) > 1  # the seed matters
    recent = tuple(cap_windows(all_starts, p, 4, "recent", seed=0))
    assert samples != {recent}  # and it is not simply the most recent windows


def test_dataset_batches_gather_the_right_slices(gappy_panel):
    p = gappy_panel
    split = make_split(p, WindowConfig(input_size=IN, horizon=H))
    starts = window_starts(p, IN, H, np.zeros(4, np.int64), split.train_end)
    buffer = fit_scaler(p, split.train_end).scaled_buffer(p)
    ds, steps = make_dataset(buffer, starts, IN, H, batch_size=8, seed=None)
    batches = list(ds.as_numpy_iterator())
    assert steps == len(batches) == -(-len(starts) // 8)
    seen = []
    for x, y in batches:
        assert x.shape[1:] == (IN, 1) and y.shape[1:] == (H,) and x.shape[0] == y.shape[0] <= 8
        assert x.dtype == np.float32 and y.dtype == np.float32
        seen.append((x, y))
    x = np.concatenate([b[0] for b in seen])
    y = np.concatenate([b[1] for b in seen])
    assert x.shape == (len(starts), IN, 1) and y.shape == (len(starts), H)
    # unshuffled: batch order is start order, and each row is the buffer slice at its start
    for k, s in enumerate(starts):
        np.testing.assert_array_equal(x[k, :, 0], buffer[s : s + IN])
        np.testing.assert_array_equal(y[k], buffer[s + IN : s + IN + H])
    gx, gy = gather_windows(buffer, starts, IN, H)
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def _epoch_orders(starts, seed, epochs, batch_size=4):
    """Decode the start of every window from an identity buffer (value == slot)."""
    buffer = np.arange(int(starts.max()) + 20, dtype=np.float32)
    ds, steps = make_dataset(buffer, starts, 3, 2, batch_size, seed=seed, epochs=epochs)
    order = np.concatenate([x[:, 0, 0] for x, _ in ds.as_numpy_iterator()]).astype(np.int64)
    return order.reshape(epochs, len(starts)), steps


def test_seeded_shuffle_is_reproducible_and_differs_between_epochs():
    starts = np.arange(0, 200, 5, dtype=np.int64)  # 40 windows, batches of 4
    a, steps = _epoch_orders(starts, seed=11, epochs=3)
    b, _ = _epoch_orders(starts, seed=11, epochs=3)
    c, _ = _epoch_orders(starts, seed=12, epochs=3)
    assert steps == 10
    np.testing.assert_array_equal(a, b)  # same seed, same order
    for e in range(3):
        assert sorted(a[e]) == starts.tolist()  # every window exactly once per epoch
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])  # reshuffled every epoch
    assert not np.array_equal(a[0], np.sort(a[0]))  # actually shuffled
    assert not np.array_equal(a, c)  # another seed, another order
    plain, _ = _epoch_orders(starts, seed=None, epochs=2)
    assert plain.tolist() == [starts.tolist()] * 2


def test_partial_last_batch_and_fewer_windows_than_a_batch():
    starts = np.arange(0, 50, 5, dtype=np.int64)  # 10 windows
    buffer = np.arange(80, dtype=np.float32)
    ds, steps = make_dataset(buffer, starts, 3, 2, batch_size=4, seed=3, epochs=1)
    sizes = [x.shape[0] for x, _ in ds.as_numpy_iterator()]
    assert steps == 3 and sizes == [4, 4, 2]
    ds, steps = make_dataset(buffer, starts[:3], 3, 2, batch_size=8, seed=3, epochs=2)
    batches = list(ds.as_numpy_iterator())
    assert steps == 1 and [x.shape for x, _ in batches] == [(3, 3, 1)] * 2
    for x, y in batches:
        np.testing.assert_array_equal(y[:, 0], x[:, 0, 0] + 3)


def test_batches_hold_a_multiple_of_the_members_when_each_draws_its_own_windows():
    """``multiple_of`` (TrainConfig.member_windows="own"): a batch splits evenly between the members; the
    epoch's last, partial batch is cut down to a multiple (to nothing when fewer windows are left)."""
    buffer = np.arange(120, dtype=np.float32)
    for n, sizes in [(10, [6, 3]), (12, [6, 6]), (7, [6])]:
        starts = np.arange(0, 5 * n, 5, dtype=np.int64)
        ds, steps = make_dataset(buffer, starts, 3, 2, batch_size=6, seed=3, epochs=2, multiple_of=3)
        got = [x.shape[0] for x, _ in ds.as_numpy_iterator()]
        assert steps == len(sizes) and got == sizes * 2, (n, got)
        first_epoch = np.concatenate([x[:, 0, 0] for x, _ in ds.as_numpy_iterator()][: len(sizes)])
        assert len(np.unique(first_epoch)) == len(first_epoch)  # no window twice within an epoch
