"""Typed configuration: frozen dataclasses validated in ``__post_init__``.

They double as Prefect flow parameters (pydantic validates dataclasses and turns the ``ConfigError``
raised here into a parameter validation error before any task runs). Every error names the field, the
value and the allowed range. ``None`` means "infer from the data's frequency" (see :func:`resolve`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

from .errors import ConfigError

__all__ = [
    "DataConfig",
    "WindowConfig",
    "ModelConfig",
    "TrainConfig",
    "ForecastConfig",
    "season_length_for",
    "week_length_for",
    "default_horizon_for",
    "resolve",
]

# The fixed choices, as Literal types: the one list of allowed values, checked in __post_init__ (with a
# ConfigError naming the field) and shown by the Prefect UI's Run form as dropdowns.
Cell = Literal["simple_rnn", "lstm", "gru"]
Head = Literal["direct", "recursive"]
Optimizer = Literal["adam", "rmsprop", "sgd"]
Loss = Literal["mse", "mae", "huber"]
Anchor = Literal["seasonal_naive", "naive", "none"]
Scaler = Literal["window", "standard", "robust", "mean", "none", "auto"]
Strategy = Literal["default", "mirrored", "multi_worker"]
Sampling = Literal["recent", "uniform"]
MemberWindows = Literal["shared", "own"]
# What each data problem may do. "fill" inserts masked gaps (never inputs or targets); "keep" keeps the
# series as it is; "drop" removes the offending series (rows, for null ids and off-grid timestamps).
ErrorOrDrop = Literal["error", "drop"]
ErrorDropOrFill = Literal["error", "drop", "fill"]
ErrorDropOrKeep = Literal["error", "drop", "keep"]

SCALERS: tuple[str, ...] = get_args(Scaler)

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def _fail(field_name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{field_name}={value!r} is invalid: {allowed}")


def _check_int(name: str, value: Any, lo: int, hi: int | None = None, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        _fail(name, value, f"must be an integer {rng}" + (" or None (inferred)" if optional else ""))


@functools.cache
def choices_of(cls: type) -> dict[str, tuple[str, ...]]:
    """The Literal-typed fields of a config class and their allowed values."""
    hints = get_type_hints(cls)
    return {f.name: get_args(hints[f.name]) for f in dataclasses.fields(cls) if get_origin(hints[f.name]) is Literal}


def _check_choices(config: Any) -> None:
    for name, choices in choices_of(config.__class__).items():
        value = getattr(config, name)
        if value not in choices:
            _fail(name, value, f"must be one of {', '.join(choices)}")


def check_name(name: str, value: Any) -> None:
    """Names that become path components (model names) must not escape the store."""
    # fullmatch: with match, '$' also matches before a trailing newline ('evil\n' would pass)
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or ".." in value:
        _fail(name, value, "must be 1-128 characters of letters, digits, '_', '-', '.', without '..' or '/'")


@dataclass(frozen=True)
class DataConfig:
    """The long-format data contract and what to do with each kind of problem."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    freq: Optional[str] = None  # pandas alias ("h", "D", "W", "MS", ...) or an integer step for integer ds
    season_length: Optional[int] = None
    on_null_id: ErrorOrDrop = "drop"
    on_duplicate: ErrorOrDrop = "error"
    on_non_finite: ErrorDropOrFill = "fill"
    on_off_grid: ErrorOrDrop = "error"
    on_gap: ErrorDropOrFill = "fill"
    on_too_short: ErrorOrDrop = "drop"
    on_constant: ErrorDropOrKeep = "drop"

    def __post_init__(self) -> None:
        for name in ("id_col", "time_col", "target_col"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                _fail(name, value, "must be a non-empty column name")
        if len({self.id_col, self.time_col, self.target_col}) != 3:
            _fail("id_col/time_col/target_col", (self.id_col, self.time_col, self.target_col), "must differ")
        if self.freq is not None:
            from .frequency import parse_freq  # pandas import kept out of module import time

            parse_freq(self.freq)
        _check_int("season_length", self.season_length, 1, 100_000, optional=True)
        _check_choices(self)


# what each data problem may do, by policy field (tests and the fuzzer enumerate it)
ALLOWED_POLICIES: dict[str, tuple[str, ...]] = {k: v for k, v in choices_of(DataConfig).items() if k.startswith("on_")}


@dataclass(frozen=True)
class WindowConfig:
    """How series become (input, target) windows, and how much of each series is held out."""

    input_size: Optional[int] = None  # None: inferred from the season length and horizon
    horizon: Optional[int] = None  # None: inferred from the frequency (24 hourly, 14 daily, ...)
    step: int = 1
    max_windows_per_series: Optional[int] = None
    sampling: Sampling = "recent"  # which windows a cap keeps: the most recent or a seeded uniform sample
    # Horizons held out per series, the most recent ones, as many as fit (a series keeps one training
    # window; windowing.make_split): test_windows judge the model (the promotion gate pairs challenger and
    # champion on them: several origins, so one horizon does not decide), val_windows (before them) stop
    # training early; none by default: a fixed budget of TrainConfig.steps is trained.
    val_windows: int = 0
    test_windows: int = 3

    def __post_init__(self) -> None:
        _check_int("input_size", self.input_size, 1, 100_000, optional=True)
        _check_int("horizon", self.horizon, 1, 10_000, optional=True)
        _check_int("step", self.step, 1, 100_000)
        _check_int("max_windows_per_series", self.max_windows_per_series, 1, None, optional=True)
        _check_choices(self)
        _check_int("val_windows", self.val_windows, 0, 1000)
        _check_int("test_windows", self.test_windows, 1, 1000)


@dataclass(frozen=True)
class ModelConfig:
    """The network. Defaults follow the source article: SimpleRNN(128, tanh) + Dense, MSE, Adam."""

    cell: Cell = "simple_rnn"
    units: int = 128
    layers: int = 1
    dropout: float = 0.0
    head: Head = "direct"  # direct: Dense(horizon), all steps at once; recursive: one step fed back
    optimizer: Optimizer = "adam"
    learning_rate: float = 1e-3
    # mae: with scale-free windows (TrainConfig.scaler="window") an MAE of the normalised targets is a
    # scale-free MAE, the training counterpart of the MASE that the gate and the benchmark score
    loss: Loss = "mae"
    # seasonal_naive: output = seasonal naive + the network's correction, inputs = level and level relative
    # to the window's last value (see rnn_model/model.py); naive: the same around the last value;
    # none: the plain article model (one input channel, output = Dense(h_T))
    anchor: Anchor = "seasonal_naive"
    # networks trained side by side in one graph and one fit, each from its own initial weights; the
    # forecast is their median (one seed alone decided the accuracy of a single network: benchmarks/RESULTS.md)
    members: int = 5
    # the recurrent layers read only the last rnn_steps of the input window (None: all of it), so a window
    # long enough for long_season costs no more recurrent steps than a short one
    rnn_steps: Optional[int] = None
    # a second, longer season (sub-daily data: the week): the head also reads, per output step, the value one
    # long season before it minus the anchor's (one season before it), and learns how much of it to add; 0:
    # none; None: the week where the training data say it wins (rnn_model.seasons.choose_long_season)
    long_season: Optional[int] = None

    def __post_init__(self) -> None:
        _check_choices(self)
        _check_int("members", self.members, 1, 64)
        _check_int("rnn_steps", self.rnn_steps, 1, 100_000, optional=True)
        _check_int("long_season", self.long_season, 0, 100_000, optional=True)
        if self.long_season and self.anchor == "none":
            _fail("long_season", self.long_season, "needs an anchor (anchor='seasonal_naive' or 'naive'); set it to 0")
        _check_int("units", self.units, 1, 4096)
        _check_int("layers", self.layers, 1, 8)
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            _fail("dropout", self.dropout, "must be a number in [0, 1)")
        if not isinstance(self.learning_rate, (int, float)) or not 0.0 < self.learning_rate <= 1.0:
            _fail("learning_rate", self.learning_rate, "must be a number in (0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    """Training loop. batch_size=1 is the article's stochastic gradient descent; larger is mini-batch.

    ``strategy``: ``default`` (one device), ``mirrored`` (``tf.distribute.MirroredStrategy``: every local
    GPU, or every logical CPU device), ``multi_worker`` (``tf.distribute.MultiWorkerMirroredStrategy``,
    the cluster taken from ``TF_CONFIG``). ``batch_size`` is always the global batch: each step's batch
    is split across the replicas (a multiple of the replica count keeps the split even).
    """

    # at most ``epochs``; early stopping (``patience``) only where there are validation windows
    epochs: int = 40
    # total gradient steps (default 500): the fit runs ceil(steps / steps per epoch) epochs and ``epochs`` is
    # ignored, so a small panel trains as many steps as a large one, and a large one costs no more. None: epochs.
    # With WindowConfig.val_windows=0 (the default) there is no early stopping: selecting the epoch on one
    # validation horizon per series decided the test score more than the data did (benchmarks/RESULTS.md)
    steps: Optional[int] = 500
    batch_size: int = 256
    patience: int = 6
    seed: int = 42
    # window (default): every window normalised by its own input part, (x - x_last) / mean |step|
    # (rnn_model/normalization.py): no per-series statistics, any series forecast by the model.
    # standard | robust | mean | none: per-series statistics fit on the training part; auto: standard
    # and none both trained, the lower validation MASE kept (twice the training time)
    scaler: Scaler = "window"
    strategy: Strategy = "default"
    # True: a model about to become champion is trained once more, for the early-stopped number of
    # gradient steps, on every window (the held-out horizons included). Off by default: the refitted
    # model is not the one the gate judged, and a refitted champion would later be scored on windows it
    # trained on (the promotion gate's home advantage, benchmarks/RESULTS.md)
    refit: bool = False
    # how an ensemble's members share each step's batch_size windows. shared: every member trains on all of
    # them (members x the cost of one network); own: they are split between the members, each member its
    # own windows (about the cost of one network, each member seeing 1/members of the windows)
    member_windows: MemberWindows = "shared"

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("steps", self.steps, 1, 10_000_000, optional=True)
        _check_int("batch_size", self.batch_size, 1, 1_000_000)
        _check_int("patience", self.patience, 0, 10_000)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_choices(self)
        if not isinstance(self.refit, bool):
            raise ConfigError(f"refit={self.refit!r} is invalid: must be true or false")


@dataclass(frozen=True)
class ForecastConfig:
    """Everything that determines a trained model. Stored in every model bundle as config.json."""

    data: DataConfig = field(default_factory=DataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ForecastConfig":
        # A bundle's config.json may hold anything: refuse a non-mapping, and an unknown section (a typo
        # such as "modle") rather than silently replacing it by defaults.
        if not isinstance(d, dict):
            raise ConfigError(f"configuration={type(d).__name__} is invalid: must be a mapping of sections")
        unknown = sorted(set(d) - {"data", "window", "model", "train"})
        if unknown:
            raise ConfigError(f"unknown configuration section(s) {unknown}: allowed are data, window, model, train")
        try:
            return cls(
                data=DataConfig(**d.get("data", {})),
                window=WindowConfig(**d.get("window", {})),
                model=ModelConfig(**d.get("model", {})),
                train=TrainConfig(**d.get("train", {})),
            )
        except TypeError as exc:  # unknown key
            raise ConfigError(f"unknown configuration field: {exc}") from exc

    def replace(self, **sections: Any) -> "ForecastConfig":
        """``cfg.replace(window={"horizon": 12})``: a copy with some fields of some sections changed."""
        changed = {k: dataclasses.replace(getattr(self, k), **v) for k, v in sections.items()}
        return dataclasses.replace(self, **changed)


# Season length and horizon by the base unit of the frequency (the usual M4/Monash conventions).
_SEASON_BY_UNIT = {"D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "Y": 1, "int": 1}
_HORIZON_BY_UNIT = {"D": 14, "B": 10, "W": 13, "M": 12, "Q": 8, "Y": 6, "int": 8}


def season_length_for(freq: str) -> int:
    """One day for sub-daily data, one week for daily, one year for weekly and coarser."""
    from .frequency import freq_unit

    unit, multiple = freq_unit(freq)
    per_day = {"s": 86400, "min": 1440, "h": 24}
    if unit in per_day:
        return max(1, per_day[unit] // multiple)
    return _SEASON_BY_UNIT.get(unit, 1)


def default_horizon_for(freq: str) -> int:
    """One day ahead for sub-daily data (48 half-hours, 24 hours); the M4 horizons otherwise."""
    from .frequency import freq_unit

    unit, multiple = freq_unit(freq)
    per_day = {"s": 86400, "min": 1440, "h": 24}
    if unit in per_day:
        return max(1, min(per_day[unit] // multiple, 96))
    return _HORIZON_BY_UNIT.get(unit, 8)


def week_length_for(freq: str, season_length: int) -> int:
    """Steps in a week for sub-daily data whose season is the day; 0 otherwise (no second season)."""
    from .frequency import freq_unit

    unit, _ = freq_unit(freq)
    if unit not in ("s", "min", "h") or season_length != season_length_for(freq) or season_length < 2:
        return 0
    return 7 * season_length


def resolve(cfg: ForecastConfig, freq: str) -> ForecastConfig:
    """Fill every ``None`` left to inference: freq, season length, horizon and input size."""
    season = cfg.data.season_length or season_length_for(freq)
    horizon = cfg.window.horizon or default_horizon_for(freq)
    # Two seasons of context (at least two horizons) lets the network see the seasonal pattern repeat.
    input_size = cfg.window.input_size or max(2 * season, 2 * horizon, 8)
    model = {}
    if cfg.model.long_season is None and cfg.window.input_size is not None:
        # an input window set by hand is kept: the week (rnn_model.seasons) only where it fits in it
        if cfg.window.input_size < week_length_for(freq, season):
            model["long_season"] = 0
    return cfg.replace(
        data={"freq": freq, "season_length": season},
        model=model,
        window={"horizon": horizon, "input_size": input_size},
    )
