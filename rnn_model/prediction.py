"""Forecasting with a trained model: compiled inference over large chunks, inverse scaling, future ds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .baselines import baseline_forecasts
from .config import ForecastConfig
from .errors import ConfigError
from .panel import Panel, constant_series
from .scaling import SeriesScaler
from .windowing import gather_windows

__all__ = [
    "Forecaster",
    "future_frame",
    "check_settings_match",
    "settings_clashes",
    "stale_data",
]  # intervals on its frames: intervals.add_intervals

# Windows per compiled call: large enough to amortise dispatch, small enough that the [chunk, units]
# hidden state stays in cache (4,096 x 128 float32 = 2 MB). 16,384 ran at about half the speed on
# 2 cores (benchmarks/RESULTS.md, "Inference"); memory is bounded by the chunk, not by n.
CHUNK = 4_096


_UNPICKLED: dict = {}  # per process: model pickle digest -> Forecaster holding the model and its tf.function


class Forecaster:
    """A trained model with its scaler and (resolved) configuration."""

    def __init__(self, model, scaler: SeriesScaler, config: ForecastConfig):
        self.model = model
        self.scaler = scaler
        self.config = config
        self.intervals: dict | None = None  # conformal quantiles (evaluation.interval_quantiles), from the bundle
        self._fn = None

    def __getstate__(self) -> dict:
        """Picklable, to be sent to Dask workers: the Keras model as its own pickle (a ``.keras`` archive),
        made once per forecaster; the compiled function is not sent."""
        import hashlib
        import pickle

        if self.__dict__.get("_blob") is None:
            self._blob = pickle.dumps(self.model)
            self._digest = hashlib.sha256(self._blob).hexdigest()
        return {k: v for k, v in self.__dict__.items() if k not in ("model", "_fn", "_shared")}

    def __setstate__(self, state: dict) -> None:
        """A worker gets one task per group of series, all with the same model: the model (and its compiled
        function) is rebuilt once per process and reused, not once per task."""
        import pickle

        self.__dict__.update(state)
        cached = _UNPICKLED.get(self._digest)
        if cached is None:
            cached = _UNPICKLED[self._digest] = Forecaster(pickle.loads(self._blob), self.scaler, self.config)
            while len(_UNPICKLED) > 4:
                _UNPICKLED.pop(next(iter(_UNPICKLED)))
        self.model = cached.model
        self._fn = None
        self._shared = cached  # the compiled function lives there, shared by every copy in this process

    def _compiled(self):
        shared = self.__dict__.get("_shared")
        if shared is not None and shared is not self:
            return shared._compiled()
        return self._compiled_here()

    @property
    def scale_free(self) -> bool:
        """Windows normalised by their own inputs: no per-series statistics, any series can be forecast."""
        return self.scaler.kind == "window"

    def _compiled_here(self):
        if self._fn is None:
            import tensorflow as tf

            from .normalization import denormalise, member_median, normalise_inputs

            w, model = self.config.window, self.model
            recursive = self.config.model.head == "recursive"
            members, scale_free = self.config.model.members, self.scale_free

            def step(x):  # x: [batch, input_size, 1] -> [batch, n_out], in the units of x
                if not scale_free:
                    return member_median(model(x, training=False), members)
                x_n, last, scale = normalise_inputs(x)
                return denormalise(member_median(model(x_n, training=False), members), last, scale)

            def run(x):  # x: [batch, input_size, 1]
                if not recursive:
                    return step(x)  # [batch, horizon]
                steps = []
                for _ in range(w.horizon):  # feed each one-step forecast back as the newest input
                    y = step(x)  # [batch, 1]
                    steps.append(y)
                    x = tf.concat([x[:, 1:, :], y[:, :, None]], axis=1)  # [batch, input_size, 1]
                return tf.concat(steps, axis=1)  # [batch, horizon]

            spec = tf.TensorSpec([None, w.input_size, 1], tf.float32)
            self._fn = tf.function(run, input_signature=[spec], reduce_retracing=True)
        return self._fn

    def predict_scaled(self, x: np.ndarray) -> np.ndarray:
        """``[n, input_size, 1]`` scaled inputs -> ``[n, horizon]`` scaled forecasts (the member median),
        in chunks. With ``scaler="window"`` the scaler is the identity: data units in and out."""
        fn = self._compiled()
        h = self.config.window.horizon
        assert h is not None  # filled in by config.resolve
        out = np.empty((len(x), h), np.float32)
        for lo in range(0, len(x), CHUNK):
            out[lo : lo + CHUNK] = fn(x[lo : lo + CHUNK]).numpy()
        return out

    def forecast_at(self, panel: Panel, series_idx: np.ndarray, target_start: np.ndarray):
        """Forecasts for origins ``target_start`` (relative slot of the first target) of each series.

        Returns ``(y_hat [n, horizon] in data units, covered [n] bool)``. A window is not covered when
        its input has unobserved slots or starts before the series, or (per-series scalers only) the
        scaler never saw the series; its row is NaN and the caller decides the fallback.
        """
        w = self.config.window
        assert w.input_size is not None and w.horizon is not None  # filled in by config.resolve
        sidx = self.scaler.index_of(panel.ids)[series_idx]  # [n] row in the scaler, -1 if unknown
        starts = panel.offsets[series_idx] + target_start - w.input_size  # [n] first input slot
        gaps = np.r_[0, np.cumsum(~panel.observed)]
        safe = np.clip(starts, 0, len(panel.values) - w.input_size)
        covered = (target_start >= w.input_size) & ((sidx >= 0) | self.scale_free)
        covered &= gaps[safe + w.input_size] - gaps[safe] == 0
        y_hat = np.full((len(series_idx), w.horizon), np.nan)
        if covered.any():
            buffer = self.scaler.scaled_buffer(panel)
            x, _ = gather_windows(buffer, starts[covered], w.input_size, 0)  # [n_cov, input_size, 1]
            scaled = self.predict_scaled(x).astype(np.float64)  # [n_cov, horizon]
            if self.scale_free:
                y_hat[covered] = scaled
            else:
                rows = sidx[covered]
                y_hat[covered] = scaled * self.scaler.scale[rows, None] + self.scaler.loc[rows, None]
            covered[covered] = np.isfinite(y_hat[covered]).all(axis=1)
        return y_hat, covered

    def forecast_future(self, panel: Panel) -> tuple[pd.DataFrame, list[str]]:
        """Forecast ``horizon`` steps after each series' last slot.

        Series the model cannot forecast (too short, gaps in the last input window, unknown to the
        scaler) get seasonal-naive forecasts labelled ``seasonal_naive`` in ``model``; their ids are
        returned second. So do constant series (training drops them by default, ``on_constant``): their
        seasonal-naive forecast is the constant itself, exactly.
        """
        series_idx = np.arange(panel.n_series)
        origin = panel.lengths.astype(np.int64)
        y_hat, covered = self.forecast_at(panel, series_idx, origin)
        covered &= ~constant_series(panel)
        return future_frame(panel, y_hat, covered, self.config), [str(i) for i in panel.ids[~covered]]


def future_frame(panel: Panel, y_hat: np.ndarray | None, covered: np.ndarray | None, config: ForecastConfig):
    """Long frame ``unique_id, ds, horizon_step, y_hat, source`` after each series' end.

    Rows not ``covered`` by the model (or all rows when ``y_hat`` is None: no model) are seasonal naive.
    """
    h, m = config.window.horizon, config.data.season_length
    assert h is not None and m is not None  # filled in by config.resolve
    series_idx = np.arange(panel.n_series)
    origin = panel.lengths.astype(np.int64)
    fallback = baseline_forecasts(panel, series_idx, origin, h, m)["seasonal_naive"]  # [n_series, h]
    if y_hat is None:
        y_hat, covered = fallback, np.zeros(panel.n_series, bool)
    assert covered is not None  # given with y_hat
    values = np.where(covered[:, None], y_hat, fallback)  # [n_series, horizon]
    steps = np.arange(1, h + 1)
    rep = np.repeat(series_idx, h)  # [n_series * horizon]
    pos = (origin[:, None] + steps[None, :] - 1).reshape(-1)  # [n_series * horizon]
    return pd.DataFrame(
        {
            "unique_id": panel.ids[rep].astype(str),
            "ds": panel.ds_at(rep, pos),
            "horizon_step": np.tile(steps, panel.n_series).astype(np.int32),
            "y_hat": values.reshape(-1),
            "source": np.where(np.repeat(covered, h), "model", "seasonal_naive"),
        }
    )


# Settings a stored model fixes: a user's explicit value that differs would be ignored (the model's is
# used), so it is refused, naming both. (section, field, CLI flag)
_MODEL_FIXED = (
    ("data", "freq", "--freq"),
    ("window", "horizon", "--horizon"),
    ("window", "input_size", "--input-size"),
    ("data", "season_length", "--season-length"),
)


def settings_clashes(model_config: ForecastConfig, user_config: ForecastConfig, version: str | None) -> list[str]:
    """The user's explicit freq, horizon, input size or season length (not None: None means "infer")
    that differ from the stored model's, which forecasting with it uses instead."""
    clashes = []
    for section, field, flag in _MODEL_FIXED:
        mine = getattr(getattr(user_config, section), field)
        theirs = getattr(getattr(model_config, section), field)
        if mine is not None and not _same(field, mine, theirs):
            clashes.append(f"{flag} {mine} but model {version} has {field} {theirs}")
    return clashes


def check_settings_match(model_config: ForecastConfig, user_config: ForecastConfig, version: str | None) -> None:
    """Raise ConfigError naming every setting the user passed that the stored model would ignore."""
    clashes = settings_clashes(model_config, user_config, version)
    if clashes:
        raise ConfigError(
            f"{'; '.join(clashes)}: a stored model forecasts with its own settings; drop the flag(s), or train a "
            "model with them (rnn-forecast train) and predict with it"
        )


def _same(field: str, a, b) -> bool:
    if field != "freq":
        return a == b
    from .frequency import same_freq

    try:
        return same_freq(str(a), str(b))
    except ConfigError:
        return False


def stale_data(panels: list[Panel], as_of, horizon: int) -> str | None:
    """A warning when even the newest observation lies more than ``horizon`` steps before the cutoff: every
    forecast (which starts after its series' last observation) then ends before ``as_of``, although the
    output is labelled with it. Integer ``ds`` without ``as_of`` has no clock: never stale."""
    from .outputs import NOW, parse_as_of

    panels = [p for p in panels if p.n_series]
    if not panels:
        return None
    value = parse_as_of(as_of)
    grid = panels[0].grid
    shown_as_of = None
    if value is None or (isinstance(value, str) and value == NOW):
        if grid.is_integer:
            return None
        value = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
        shown_as_of = f"now ({value} UTC)"
    if isinstance(value, int) != grid.is_integer:
        return None
    assert not isinstance(value, str)  # parse_as_of returns a str only for NOW
    newest = max(panels, key=lambda p: int((p.first_tick + p.lengths - 1).max()))
    last_tick = int((newest.first_tick + newest.lengths - 1).max())
    last = newest.grid.to_ds(np.array([last_tick]))[0]
    cutoff = np.array([value if isinstance(value, int) else value.as_unit("ns").to_datetime64()])
    behind = int(newest.grid.to_ticks(cutoff)[0][0]) - last_tick  # [1] grid ticks between the two
    if behind <= horizon:
        return None
    shown = last if grid.is_integer else pd.Timestamp(last)
    return (
        f"stale data: the newest observation (ds={shown}) is {behind} steps of {grid.freq} before "
        f"as_of={shown_as_of or value}, more than the horizon ({horizon}): every forecast ends before as_of; supply "
        "newer data, or pass --as-of to label the run with the data's date"
    )
