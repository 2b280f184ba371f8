"""Per-series scaling fit on the training part only; nothing after the cutoff leaks into the model."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_model.config import DataConfig
from rnn_model.errors import ModelLoadError
from rnn_model.panel import panel_from_frame
from rnn_model.scaling import SeriesScaler, fit_scaler
from rnn_model.training import min_train_length, train
from rnn_model.windowing import make_split

from ._helpers import seasonal_frame


@pytest.fixture(scope="module")
def panel():
    df = seasonal_frame(n_series=3, length=60, seed=4, noise=1.0)
    df.loc[[3, 4], "y"] = np.nan  # masked slots in s0 must not enter the statistics
    df.loc[df.index[df["unique_id"] == "s2"], "y"] = np.r_[np.full(30, 7.5), np.arange(30.0)]  # constant train part
    p, _ = panel_from_frame(df, DataConfig(freq="h", on_constant="keep"))
    return p


def _train_part(p, i, end):
    v = p.series(i)[:end]
    return v[np.isfinite(v)].astype(np.float64)


def test_standard_scaler_uses_observed_training_slots_only(panel):
    train_end = np.array([40, 25, 30])
    s = fit_scaler(panel, train_end, "standard")
    for i in range(2):
        part = _train_part(panel, i, train_end[i])
        assert part.size == train_end[i] - (2 if i == 0 else 0)
        np.testing.assert_allclose(s.loc[i], part.mean(), rtol=1e-12)
        np.testing.assert_allclose(s.scale[i], part.std(), rtol=1e-10)
    assert (s.loc[2], s.scale[2]) == (7.5, 1.0)  # constant: keep the level, do not divide by ~0
    assert list(s.ids) == list(panel.ids) and s.kind == "standard"


def test_robust_scaler_is_median_and_normal_iqr(panel):
    train_end = np.array([40, 25, 30])
    s = fit_scaler(panel, train_end, "robust")
    for i in range(2):
        q25, q50, q75 = np.percentile(_train_part(panel, i, train_end[i]), [25, 50, 75])
        np.testing.assert_allclose([s.loc[i], s.scale[i]], [q50, (q75 - q25) / 1.349], rtol=1e-12)
    assert (s.loc[2], s.scale[2]) == (7.5, 1.0)


def test_mean_scaler_divides_by_the_mean_absolute_value_without_shifting(panel):
    train_end = np.array([40, 25, 30])
    s = fit_scaler(panel, train_end, "mean")
    for i in range(2):
        np.testing.assert_allclose(s.scale[i], np.abs(_train_part(panel, i, train_end[i])).mean(), rtol=1e-12)
    assert (s.loc == 0).all() and s.kind == "mean"


def test_none_scaler_is_identity(panel):
    s = fit_scaler(panel, np.array([40, 25, 30]), "none")
    assert (s.loc == 0).all() and (s.scale == 1).all()
    buf = s.scaled_buffer(panel)
    np.testing.assert_array_equal(buf[panel.observed], panel.values[panel.observed])


def test_window_scaler_is_the_identity_and_records_the_series(panel, tmp_path):
    """scaler="window": each window is normalised by its own inputs in the model's pipeline, so the
    stored scaler is the identity; it still records which series the model was trained on."""
    s = fit_scaler(panel, np.array([40, 25, 30]), "window")
    assert s.kind == "window" and list(s.ids) == list(panel.ids)
    assert (s.loc == 0).all() and (s.scale == 1).all()
    np.testing.assert_array_equal(s.scaled_buffer(panel)[panel.observed], panel.values[panel.observed])
    s.save(tmp_path / "scaler.parquet")
    assert SeriesScaler.load(tmp_path / "scaler.parquet").kind == "window"


@pytest.mark.parametrize("kind", ["standard", "robust", "mean"])
def test_values_after_the_cutoff_never_change_the_scaler(panel, kind):
    train_end = np.array([40, 25, 30])
    values = panel.values.copy()
    for i in range(panel.n_series):
        values[panel.offsets[i] + train_end[i] : panel.offsets[i + 1]] *= -1000.0
    changed = type(panel)(panel.ids, values, panel.observed, panel.offsets, panel.first_tick, panel.grid)
    a, b = fit_scaler(panel, train_end, kind), fit_scaler(changed, train_end, kind)
    np.testing.assert_array_equal(a.loc, b.loc)
    np.testing.assert_array_equal(a.scale, b.scale)
    c = fit_scaler(changed, train_end + 1, kind)  # one more slot and the change is seen
    assert not (np.array_equal(a.loc, c.loc) and np.array_equal(a.scale, c.scale))


def test_scaled_buffer_masks_and_handles_unknown_series(panel):
    s = fit_scaler(panel, np.array([40, 25, 30]))
    buf = s.scaled_buffer(panel)
    assert buf.dtype == np.float32 and buf.shape == panel.values.shape
    assert (buf[~panel.observed] == 0).all()
    for i in range(panel.n_series):
        sl = slice(panel.offsets[i], panel.offsets[i + 1])
        obs = panel.observed[sl]
        np.testing.assert_allclose(buf[sl][obs], (panel.series(i)[obs] - s.loc[i]) / s.scale[i], rtol=1e-5, atol=1e-5)
    other = SeriesScaler("standard", np.array(["s1"], dtype=object), np.array([100.0]), np.array([10.0]))
    np.testing.assert_array_equal(other.index_of(np.array(["s0", "s1", "zz"])), [-1, 0, -1])
    buf = other.scaled_buffer(panel)
    s0 = slice(panel.offsets[0], panel.offsets[1])
    obs = panel.observed[s0]
    np.testing.assert_array_equal(buf[s0][obs], panel.series(0)[obs])  # unknown: identity


def test_scaler_save_load_round_trip(panel, tmp_path):
    s = fit_scaler(panel, np.array([40, 25, 30]), "robust")
    s.save(tmp_path / "scaler.parquet")
    back = SeriesScaler.load(tmp_path / "scaler.parquet")
    assert back.kind == "robust" and list(back.ids) == list(s.ids)
    np.testing.assert_array_equal(back.loc, s.loc)
    np.testing.assert_array_equal(back.scale, s.scale)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ModelLoadError, match="bad.parquet"):
        SeriesScaler.load(tmp_path / "bad.parquet")


def test_changing_test_values_changes_neither_scaler_nor_model(hourly_frame, hourly_panel, tiny_cfg, tiny_trained):
    """Retrain on data whose held-out test region was changed: same scaler, same weights, same forecasts
    for every window whose inputs lie before the cutoff. Only forecasts reading the changed values move."""
    split = make_split(hourly_panel, tiny_cfg.window)
    df = hourly_frame.copy()
    pos = df.groupby("unique_id").cumcount().to_numpy()
    length = df.groupby("unique_id")["y"].transform("size").to_numpy()
    assert (split.n_test == tiny_cfg.window.test_windows).all()  # long series: every test horizon held out
    test_region = pos >= length - tiny_cfg.window.horizon * tiny_cfg.window.test_windows
    assert test_region.sum() == 4 * tiny_cfg.window.horizon * tiny_cfg.window.test_windows
    df.loc[test_region, "y"] = df.loc[test_region, "y"] * 3 + 50
    changed, _ = panel_from_frame(df, tiny_cfg.data, min_length=min_train_length(tiny_cfg))
    assert not np.array_equal(changed.values, hourly_panel.values)

    again = train(changed, tiny_cfg)
    a, b = tiny_trained.forecaster, again.forecaster
    np.testing.assert_array_equal(a.scaler.loc, b.scaler.loc)
    np.testing.assert_array_equal(a.scaler.scale, b.scaler.scale)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert tiny_trained.history == again.history

    idx = np.arange(hourly_panel.n_series)
    for origin in (split.train_end, split.val_end):  # inputs end before the changed region
        ya, ca = a.forecast_at(hourly_panel, idx, origin)
        yb, cb = b.forecast_at(changed, idx, origin)
        assert ca.all() and cb.all()
        assert ya.tobytes() == yb.tobytes()
    fa, _ = a.forecast_future(hourly_panel)
    fb, _ = b.forecast_future(changed)
    assert not np.allclose(fa["y_hat"], fb["y_hat"])  # the last inputs did change: the test can see it
