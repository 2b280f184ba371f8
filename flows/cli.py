"""``rnn-forecast``: run the flows by hand. Exit 0 on success, 2 on bad input or configuration (one
line, no traceback unless --debug), 1 on any other failure, 130 on Ctrl-C and 143 on SIGTERM (after
stopping the temporary Prefect server)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from contextlib import contextmanager
from typing import Any, Iterator, get_args

from rnn_model.config import Anchor, Cell, Head, Loss, MemberWindows, Optimizer, Scaler, Strategy

__all__ = ["main", "console", "build_parser", "config_from_args"]

# Offline, quiet, patient defaults; set before prefect or tensorflow are imported. Users can override.
_ENV_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "rnn_model",  # the library's few log lines (e.g. waiting for the store lock)
}

_MODEL_OPTS = {  # option -> (section, field, type)
    "freq": ("data", "freq", str),
    "season_length": ("data", "season_length", int),
    "id_col": ("data", "id_col", str),
    "time_col": ("data", "time_col", str),
    "target_col": ("data", "target_col", str),
    "horizon": ("window", "horizon", int),
    "input_size": ("window", "input_size", int),
    "max_windows_per_series": ("window", "max_windows_per_series", int),
    "cell": ("model", "cell", str),
    "units": ("model", "units", int),
    "layers": ("model", "layers", int),
    "dropout": ("model", "dropout", float),
    "head": ("model", "head", str),
    "optimizer": ("model", "optimizer", str),
    "learning_rate": ("model", "learning_rate", float),
    "loss": ("model", "loss", str),
    "anchor": ("model", "anchor", str),
    "members": ("model", "members", int),
    "long_season": ("model", "long_season", int),
    "rnn_steps": ("model", "rnn_steps", int),
    "member_windows": ("train", "member_windows", str),
    "test_windows": ("window", "test_windows", int),
    "val_windows": ("window", "val_windows", int),
    "epochs": ("train", "epochs", int),
    "steps": ("train", "steps", int),
    "batch_size": ("train", "batch_size", int),
    "seed": ("train", "seed", int),
    "scaler": ("train", "scaler", str),
    "strategy": ("train", "strategy", str),
    "refit": ("train", "refit", bool),
}


# The config fields without a hand-written option above: their options are generated from the field's type
# (choices from its Literal type), default and the comment here, so every field is reachable from the CLI
# (tests/flows/test_flow_parameters.py enumerates them).
_GENERATED_HELP = {
    ("data", "on_null_id"): "rows with a null id or ds",
    ("data", "on_duplicate"): "repeated (unique_id, ds) rows",
    ("data", "on_non_finite"): "NaN/inf values (fill: masked, never a training target)",
    ("data", "on_off_grid"): "timestamps off the frequency's grid",
    ("data", "on_gap"): "missing timestamps inside a series (fill: masked)",
    ("data", "on_too_short"): "series too short to train on (forecast by seasonal naive when dropped)",
    ("data", "on_constant"): "constant series (drop: not trained on, still forecast)",
    ("window", "step"): "stride between training windows",
    ("window", "sampling"): "which windows --max-windows-per-series keeps",
    ("train", "patience"): "epochs without a better validation loss before early stopping (with --val-windows)",
}


def _generated_options() -> dict[str, tuple[str, str, Any, tuple, Any]]:
    """option -> (section, field, type, choices, default) for the fields in :data:`_GENERATED_HELP`."""
    import dataclasses
    from typing import Literal, get_origin, get_type_hints

    from rnn_model.config import ForecastConfig

    out = {}
    defaults = ForecastConfig()
    for section, field in _GENERATED_HELP:
        cls = type(getattr(defaults, section))
        hint = get_type_hints(cls)[field]
        choices = get_args(hint) if get_origin(hint) is Literal else ()
        kind = str if choices else hint
        default = next(f.default for f in dataclasses.fields(cls) if f.name == field)
        out[field] = (section, field, kind, choices, default)
    return out


def _add_generated(p: argparse.ArgumentParser) -> None:
    for opt, (section, field, kind, choices, default) in _generated_options().items():
        p.add_argument(
            "--" + opt.replace("_", "-"),
            type=kind,
            choices=choices or None,
            help=f"{_GENERATED_HELP[section, field]} ({section}.{field}; default: {default})",
        )


def _common(p: argparse.ArgumentParser, model_options: bool) -> None:
    p.add_argument(
        "--data",
        help="Parquet file, directory (hive partitions too) or URL such as file:///data/panel "
        "or s3://bucket/panel/ (default: the embedded sample panel)",
    )
    p.add_argument("--store", default="store", help="output store directory (default: ./store)")
    p.add_argument("--model-name", default="default", help="model name in the registry (default: default)")
    p.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="wait at most SECONDS for another run's store lock, saying who holds it (default: 600)",
    )
    p.add_argument("--as-of", help="use data with ds <= AS_OF and label outputs with it (default: now)")
    p.add_argument("--freq", help="pandas frequency alias (h, D, W, MS, ...); inferred when omitted")
    p.add_argument("--id-col", help="series id column (default: unique_id)")
    p.add_argument("--time-col", help="time column, timestamp or integer (default: ds)")
    p.add_argument("--target-col", help="value column (default: y)")
    p.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="groups of series (crc32 of the id) validated and forecast in parallel (default: 1)",
    )
    p.add_argument(
        "--task-runner",
        choices=["thread", "dask"],
        default="thread",
        help="where the per-group tasks run: thread (default) or dask (needs the [dask] extra)",
    )
    p.add_argument(
        "--dask-address",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://host:8786 (default with --task-runner dask: a temporary "
        "local cluster on 127.0.0.1)",
    )
    if not model_options:
        return
    _add_generated(p)
    p.add_argument("--horizon", type=int, help="steps to forecast (default: by freq, e.g. 24 hourly, 14 daily)")
    p.add_argument("--season-length", type=int, help="season length for MASE and seasonal naive (default: by freq)")
    p.add_argument("--input-size", type=int, help="input window length (default: 2 seasons, at least 2 horizons)")
    p.add_argument("--max-windows-per-series", type=int, help="cap on training windows per series")
    p.add_argument("--cell", choices=get_args(Cell), help="recurrent cell (default: simple_rnn)")
    p.add_argument("--units", type=int, help="units per recurrent layer (default: 128)")
    p.add_argument("--layers", type=int, help="recurrent layers (default: 1)")
    p.add_argument("--dropout", type=float, help="input dropout of the recurrent layers (default: 0)")
    p.add_argument("--head", choices=get_args(Head), help="direct: all steps at once (default)")
    p.add_argument("--optimizer", choices=get_args(Optimizer), help="default: adam")
    p.add_argument("--learning-rate", type=float, help="default: 0.001")
    p.add_argument("--loss", choices=get_args(Loss), help="default: mae")
    p.add_argument(
        "--members",
        type=int,
        help="networks in the ensemble, trained side by side in one fit; the forecast is their median (default: 5)",
    )
    p.add_argument(
        "--member-windows",
        choices=get_args(MemberWindows),
        help="shared (default): every member trains on each step's whole batch; own: the batch is split "
        "between the members (each its own windows, about the cost of one network)",
    )
    p.add_argument(
        "--test-windows",
        type=int,
        help="held-out horizons per series that judge the model (default: 3, fewer where a series is short)",
    )
    p.add_argument("--val-windows", type=int, help="horizons per series before those that stop training (default: 0)")
    p.add_argument(
        "--anchor",
        choices=get_args(Anchor),
        help="the network predicts a correction to seasonal naive (default) or to the last value "
        "(naive), reading each value and its difference to the window's last one; none: the plain model",
    )
    p.add_argument(
        "--long-season",
        type=int,
        help="a second, longer season in steps (sub-daily data: the week); the head also reads the value one long "
        "season back minus seasonal naive's, per output step; needs input_size >= it (default: the week, for "
        "sub-daily data whose training part says weekly naive beats daily naive by 10%%, the window widened to a "
        "week unless --input-size is set shorter; 0: none)",
    )
    p.add_argument(
        "--rnn-steps",
        type=int,
        help="the recurrent layers read only the last RNN_STEPS of the input window (default: all of it)",
    )
    p.add_argument("--steps", type=int, help="gradient steps to train (default: 500, whatever the number of windows)")
    p.add_argument(
        "--epochs",
        type=int,
        help="train by epochs instead of --steps: at most EPOCHS, early stopping may end sooner with --val-windows",
    )
    p.add_argument("--batch-size", type=int, help="default: 256 (1 = stochastic gradient descent)")
    p.add_argument("--seed", type=int, help="one seed for all randomness (default: 42)")
    p.add_argument(
        "--scaler",
        choices=get_args(Scaler),
        help="window (default): each window normalised by its own inputs; standard | robust | mean | "
        "none: per-series statistics of the training part; auto: standard or none, whichever validates better",
    )
    refit = p.add_mutually_exclusive_group()
    refit.add_argument(
        "--refit",
        dest="refit",
        action="store_const",
        const=True,
        help="train a model about to become champion once more on all the data, for the same number "
        "of gradient steps (default: off; the written model is then not the one the gate judged)",
    )
    refit.add_argument(
        "--no-refit",
        dest="refit",
        action="store_const",
        const=False,
        help="promote the early-stopped model as it is (the default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-forecast",
        description="Train, validate and promote an RNN forecaster on Parquet time series, and write "
        "Parquet predictions. Runs Prefect flows (a temporary local API when no server is configured).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="train (and maybe promote), then predict: the main job")
    train = sub.add_parser("train", help="train a challenger and promote it if it wins")
    for p in (run, train):
        _common(p, model_options=True)
        p.add_argument(
            "--margin", type=float, default=0.01, help="relative MASE margin to beat the champion (default: 0.01)"
        )
        p.add_argument("--force-promote", action="store_true", help="make the new model champion regardless")
        p.add_argument(
            "--strategy",
            choices=get_args(Strategy),
            help="training distribution: default (one device), mirrored (all local devices), "
            "multi_worker (cluster from TF_CONFIG); --batch-size is the global batch",
        )
    train.add_argument("--rollback-to", metavar="VERSION", help="only point the champion back at VERSION (e.g. v0002)")
    predict = sub.add_parser("predict", help="forecast with the champion and write predictions Parquet")
    _common(predict, model_options=True)
    predict.add_argument("--model-version", metavar="VERSION", help="use this version instead of the champion")
    backtest = sub.add_parser("backtest", help="rolling-origin backtest of the champion (no refit)")
    _common(backtest, model_options=False)
    backtest.add_argument("--model-version", metavar="VERSION", help="backtest this version instead of the champion")
    backtest.add_argument("--n-windows", type=int, default=4, help="number of rolling origins (default: 4)")
    sample = sub.add_parser("sample-data", help="write the deterministic synthetic sample panel")
    sample.add_argument("--out", default="data/sample.parquet", help="output file (default: data/sample.parquet)")
    sample.add_argument("--n-series", type=int, default=8)
    sample.add_argument("--length", type=int, default=24 * 7 * 8, help="points per series (default: 1344)")
    sample.add_argument("--freq", default="h")
    sample.add_argument("--seed", type=int, default=0)
    return parser


def config_from_args(args: argparse.Namespace):
    from rnn_model.config import ForecastConfig

    sections: dict[str, dict[str, Any]] = {}
    generated = {opt: (section, field, kind) for opt, (section, field, kind, _, _) in _generated_options().items()}
    for opt, (section, field, _) in {**_MODEL_OPTS, **generated}.items():
        value = getattr(args, opt, None)
        if value is not None:
            sections.setdefault(section, {})[field] = value
    train = sections.get("train", {})
    if "epochs" in train and "steps" not in train:  # --epochs alone: train by epochs, not the default step budget
        train["steps"] = None
    return ForecastConfig().replace(**sections)


def _print_metrics(records: list[dict]) -> None:
    print(f"  {'model':<16}{'MASE':>9}{'MAE':>11}{'RMSE':>11}{'sMAPE':>9}")
    for r in records:
        print(f"  {r['model']:<16}{r['mase']:>9.4f}{r['mae']:>11.4f}{r['rmse']:>11.4f}{r['smape']:>9.2f}")


def _report_train(result: dict, store: str) -> None:
    if result.get("rollback"):
        print(f"champion is now {result['champion']}")
        return
    if result["version"] is None:  # a non-chief multi_worker worker
        print(f"trained as a non-chief worker: {'; '.join(result['reasons'])}")
        return
    champion = result["champion"] or "none yet: predictions fall back to seasonal naive"
    verdict = "promoted to champion" if result["promoted"] else f"not promoted (champion: {champion})"
    print(f"model {result['version']}: {verdict}")
    for reason in result["reasons"]:
        print(f"  - {reason}")
    print(f"model bundle: {result['model_dir']}")
    if result.get("long_season"):
        print(f"second season: {result['long_season']}")
    print("held-out metrics:")
    _print_metrics(result["metrics"])


def _report_predict(result: dict) -> None:
    print(f"predictions: {result['predictions']} ({result['rows']} rows, model {result['model_version'] or 'none'})")
    if result["fallback_series"]:
        print(
            f"  seasonal-naive fallback for {len(result['fallback_series'])} series: {', '.join(result['fallback_series'][:10])}"
        )
    for line in result.get("warnings", []):  # e.g. a --horizon the (unchanged) champion does not have
        print(f"  warning: {line}")


def _run(args: argparse.Namespace) -> None:
    if args.command == "sample-data":
        from rnn_model.sample import write_sample_data  # no Prefect or TensorFlow import: fast

        path = write_sample_data(args.out, n_series=args.n_series, length=args.length, freq=args.freq, seed=args.seed)
        print(f"sample data: {path}")
        return
    from flows.params import check_data_path

    config = config_from_args(args)  # ConfigError here: before Prefect or TensorFlow start
    _check_as_of(args.as_of)
    check_data_path(args.data)
    _check_scale_options(args)
    _check_store_options(args)
    if not args.debug:
        _hide_user_error_tracebacks()
    from flows.runners import heartbeats_off_on_temporary_api, reachable_api, temporary_api, with_task_runner

    common = dict(
        data=args.data,
        store=args.store,
        config=config,
        as_of=args.as_of,
        model_name=args.model_name,
        partitions=args.partitions,
        task_runner=args.task_runner,
        dask_address=args.dask_address,
    )
    with (
        _lock_timeout(args.lock_timeout),
        heartbeats_off_on_temporary_api(),
        temporary_api(),
        reachable_api(args.task_runner),
    ):
        if args.command == "run":
            from flows.pipeline import pipeline

            result = pipeline(**common, margin=args.margin, force_promote=args.force_promote)
            _report_train(result["train"], args.store)
            if result["predict"] is not None:  # None on a non-chief multi_worker worker
                _report_predict(result["predict"])
        elif args.command == "train":
            from flows.train import train

            result = with_task_runner(train, args.task_runner, args.dask_address)(
                **common, margin=args.margin, force_promote=args.force_promote, rollback_to=args.rollback_to
            )
            _report_train(result, args.store)
        elif args.command == "predict":
            from flows.predict import predict

            _report_predict(
                with_task_runner(predict, args.task_runner, args.dask_address)(
                    **common, model_version=args.model_version
                )
            )
        elif args.command == "backtest":
            from flows.backtest import backtest

            result = with_task_runner(backtest, args.task_runner, args.dask_address)(
                **common, model_version=args.model_version, n_windows=args.n_windows
            )
            print(f"backtest of {result['model_version']}: {result['report']}")
            _print_metrics(result["metrics"])


def _check_scale_options(args: argparse.Namespace) -> None:
    """Refused before Prefect starts: a bad partition count, a Dask address without Dask, a missing extra."""
    from flows.runners import check_task_runner
    from rnn_model.errors import ConfigError

    if not 1 <= args.partitions <= 4096:
        raise ConfigError(f"partitions={args.partitions} is invalid: must be an integer between 1 and 4096")
    check_task_runner(args.task_runner, args.dask_address)  # ConfigError naming the fix


def _check_store_options(args: argparse.Namespace) -> None:
    """Refused before Prefect starts: an empty --store (it would write into the current directory), a
    negative or non-finite --lock-timeout."""
    from rnn_model.errors import ConfigError
    from rnn_model.store import check_store

    check_store(args.store)
    if args.lock_timeout is not None and not 0 <= args.lock_timeout < float("inf"):
        raise ConfigError(f"--lock-timeout {args.lock_timeout} is invalid: must be a number of seconds >= 0")


@contextmanager
def _lock_timeout(seconds: float | None) -> Iterator[None]:
    """--lock-timeout reaches the flows' store lock through the environment (also a deployment's)."""
    from rnn_model.store import LOCK_TIMEOUT_ENV

    previous = os.environ.get(LOCK_TIMEOUT_ENV)
    if seconds is not None:
        os.environ[LOCK_TIMEOUT_ENV] = str(seconds)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(LOCK_TIMEOUT_ENV, None)
        else:
            os.environ[LOCK_TIMEOUT_ENV] = previous


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt: the stack unwinds, so the flow run is
    marked crashed and the temporary Prefect server is stopped instead of orphaned."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the unwinding is not interrupted again
    raise _Terminated()


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (main() called from a thread): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_as_of(as_of: str | None) -> None:
    """--as-of is parsed before Prefect starts: '9999-12-31', '²' or a fraction of a second are refused
    with the fix (ConfigError), not found by the flow's parameter check seconds later."""
    from rnn_model.outputs import as_of_label

    as_of_label(as_of)


def _is_user_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    from rnn_model.errors import ForecastError

    user_errors: tuple[type[BaseException], ...] = (ForecastError, ValidationError)
    try:
        from prefect.exceptions import ParameterTypeError
    except ImportError:  # pragma: no cover
        pass
    else:
        user_errors += (ParameterTypeError,)
    return isinstance(exc, user_errors)


class _NoUserErrorTraceback(logging.Filter):
    """Prefect's console handler prints a failed flow's traceback; for a user error the CLI prints one
    line instead (``--debug`` shows it, and the run's log in the API keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _is_user_error(exc):
            record.exc_info = record.exc_text = None
        return True


def _hide_user_error_tracebacks() -> None:
    import prefect.main  # noqa: F401  (configures Prefect's logging)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _NoUserErrorTraceback) for f in handler.filters
        ):
            handler.addFilter(_NoUserErrorTraceback())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_unwinds():
            _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("terminated (SIGTERM); the store keeps its last complete state", file=sys.stderr)
        return 143
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: one line, or the traceback with --debug
        if args.debug:
            raise
        code = 2 if _is_user_error(exc) else 1
        kind = "error" if code == 2 else f"error ({type(exc).__name__})"
        print(f"{kind}: {_one_line(exc)}", file=sys.stderr)
        return code
    return 0


def console() -> None:
    """The ``rnn-forecast`` console script: :func:`main`, then exit with its code.

    After SIGTERM the process ends at once (``os._exit``) instead of through the interpreter's exit: the
    signal interrupts the main thread at an arbitrary line, also inside one of Prefect's log or event
    workers between marking itself stopped and waking its loop, and that worker's at-exit drain then waits
    for ever (measured: 5 of 10 runs SIGTERMed 1.5-2.5 s into training never ended). By then the stack has
    unwound: the flow run is marked crashed, the temporary server stopped, every store write is atomic.
    """
    code = main()
    if code == 143:
        try:
            from prefect.settings import PREFECT_API_URL

            from flows.runners import drain_prefect_services

            if PREFECT_API_URL.value():  # a configured server outlives us (the temporary one already stopped)
                drain_prefect_services()
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
