"""Fuzzing the input contract (issue 13): random schemas, column types, timestamps, ids, values,
directory layouts and settings, through the ingest path that runs before any training: read the
Parquet input, split it into groups, validate each, agree on a freq, combine the reports, and lay out
the future ds of a (seasonal-naive) forecast.

Every generated input must end in success or in a ForecastError whose message is one line (what the
CLI prints as ``error: ...`` with exit code 2), within a time bound, without changing its input files.
Anything else -- another exception type (a traceback at the CLI), a multi-line message, a hang -- fails
the test, and hypothesis shrinks it to a minimal reproduction.

    FUZZ_EXAMPLES=2000 FUZZ_REPORT=/tmp/fuzz.json python -m pytest -q tests/unit/test_fuzz_input.py

runs the long version (docs/reliability.md records it); CI runs ``FUZZ_EXAMPLES`` (default 150),
derandomised so a CI failure reproduces. The same generator feeds a few inputs through the real CLI in
tests/flows/test_bad_inputs.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_model.config import ALLOWED_POLICIES, ForecastConfig
from rnn_model.errors import ForecastError
from rnn_model.io import read_long_table
from rnn_model.outputs import as_of_label
from rnn_model.partitions import combine_outcomes, merge_panels, reconcile_freq, split_table, validate_partition
from rnn_model.prediction import future_frame

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
LONG = EXAMPLES > 500
TIME_BOUND_S = 20  # per input: the ingest of <= 400 rows takes milliseconds; a hang is caught by an alarm


# --------------------------------------------------------------------------- what an input is


@dataclass
class Spec:
    """One generated input: files to write (relative path -> table or raw bytes) and how to run it."""

    files: dict[str, object]
    single_file: bool
    config: dict = field(default_factory=dict)
    as_of: object = None
    purpose: str = "predict"
    partitions: int = 1
    notes: list[str] = field(default_factory=list)

    def write(self, root: Path) -> Path:
        for rel, content in self.files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                pq.write_table(content, target)
        return root / next(iter(self.files)) if self.single_file else root


_STARTS = [
    dt.datetime(2026, 1, 1),
    dt.datetime(2026, 11, 30, 23),
    dt.datetime(1970, 1, 1),
    dt.datetime(2099, 1, 1),
    dt.datetime(1678, 1, 2),
    dt.datetime(2261, 12, 1),
    dt.datetime(1500, 1, 1),
    dt.datetime(3000, 1, 1),
    dt.datetime(2262, 4, 10),
]
_STEPS = {
    "h": dt.timedelta(hours=1),
    "D": dt.timedelta(days=1),
    "15min": dt.timedelta(minutes=15),
    "W": dt.timedelta(days=7),
    "s": dt.timedelta(seconds=1),
}
_INT_STARTS = [0, -5, 10**6, 2**61 - 100, 2**62, 2**63 - 100, -(2**63) + 5]
_FREQS = ["h", "D", "W", "MS", "B", "15min", "1", "2", "0D", "-1D", "1000000000000D", "bogus", "7", "s"]
_AS_OFS = [
    "now",
    "2026-01-02",
    "2026-01-02T05:00",
    "2026-01-02T05:00:00.5",
    "2099-01-01",
    "9999-12-31",
    "1500-01-01",
    "5",
    "-3",
    "²",
    "yesterday",
    "2026-13-45",
    "20",
    "100000",
    "2026-11-30T23:00:00+05:00",
]


def _sometimes(draw, odd, usual, one_in: int = 8):
    """Mostly the usual choice, one time in ``one_in`` a draw from the odd ones: most inputs carry zero
    or one defect, so both sides of the contract (success and each error) are reached often."""
    if draw(st.integers(0, one_in - 1)) == 0:
        return draw(st.sampled_from(odd))
    return usual if not isinstance(usual, list) else draw(st.sampled_from(usual))


def _timestamps(draw, positions: list[int]) -> tuple[list, str]:
    """Timestamps at grid ``positions`` of a regular step (python datetimes; None beyond their range)."""
    start = _sometimes(draw, _STARTS, _STARTS[:2])
    step_name = _sometimes(draw, sorted(_STEPS), ["h", "D"])
    step = _STEPS[step_name]
    out = []
    for p in positions:
        try:
            out.append(start + p * step)
        except OverflowError:
            out.append(None)
    return out, step_name


def _ds_column(draw, positions: list[int]) -> pa.Array:
    kind = _sometimes(
        draw,
        [
            "ts_s",
            "ts_ms",
            "ts_tz",
            "date32",
            "int32",
            "uint64",
            "str_iso",
            "str_garbage",
            "float",
            "str_offsets",
            "dictionary_str",
            "null",
        ],
        ["ts_us", "ts_ns", "int64"],
        one_in=5,
    )
    if kind in ("int64", "int32", "uint64", "float"):
        start = _sometimes(draw, _INT_STARTS, [0, 10**6])
        step = _sometimes(draw, [2, 7, 10**9, 2**40], 1)
        values = [start + p * step for p in positions]
        if kind == "uint64":
            values = [abs(v) + draw(st.sampled_from([0, 2**63])) for v in values]
            values = [v if v < 2**64 else 2**64 - 1 for v in values]
            return pa.array(values, pa.uint64())
        if kind == "int32":
            return pa.array([max(min(v, 2**31 - 1), -(2**31)) for v in values], pa.int32())
        if kind == "float":
            return pa.array([float(v) for v in values], pa.float64())
        return pa.array([max(min(v, 2**63 - 1), -(2**63)) for v in values], pa.int64())
    if kind == "null":
        return pa.nulls(len(positions))
    chosen, _ = _timestamps(draw, positions)
    if kind.startswith("str") or kind == "dictionary_str":
        if kind == "str_garbage":
            text = [
                draw(st.sampled_from(["yesterday", "", "NaT", "2026-02-30", "١٢", "0"]))
                if i % 5 == 0
                else (c.isoformat() if c else None)
                for i, c in enumerate(chosen)
            ]
        elif kind == "str_offsets":
            text = [(c.isoformat() + ("+00:00" if i % 2 else "+05:30")) if c else None for i, c in enumerate(chosen)]
        else:
            text = [c.isoformat() if c else None for c in chosen]
        arr = pa.array(text, pa.string())
        return arr.dictionary_encode() if kind == "dictionary_str" else arr
    if kind == "date32":
        return pa.array([c.date() if c else None for c in chosen], pa.date32())
    unit = {"ts_us": "us", "ts_ns": "ns", "ts_s": "s", "ts_ms": "ms", "ts_tz": "us"}[kind]
    epoch = dt.datetime(1970, 1, 1)
    per = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    ints = []
    for c in chosen:
        v = None if c is None else ((c - epoch) // dt.timedelta(microseconds=1)) * per // 10**6
        ints.append(v if v is None or -(2**63) <= v < 2**63 else None)
    return pa.array(ints, pa.int64()).cast(pa.timestamp(unit, tz="Europe/Paris" if kind == "ts_tz" else None))


def _y_column(draw, n: int) -> pa.Array:
    kind = _sometimes(draw, ["float32", "int64", "uint64", "decimal", "string", "bool", "null", "constant"], "float64")
    floats = [float(np.sin(i / 3.0) * 10 + 50) for i in range(n)]
    if n and draw(st.integers(0, 3)) == 0:  # a few arbitrary values: NaN, inf, huge, tiny, negative zero
        for _ in range(draw(st.integers(1, 3))):
            floats[draw(st.integers(0, n - 1))] = draw(st.floats(allow_nan=True, allow_infinity=True, width=64))
    if kind == "float32":
        with np.errstate(over="ignore"):
            return pa.array(np.asarray(floats, np.float64).astype(np.float32))
    if kind == "int64":
        return pa.array([int(v) if np.isfinite(v) and abs(v) < 9e18 else 2**62 for v in floats], pa.int64())
    if kind == "uint64":
        return pa.array([2**63 + i * 2**55 for i in range(n)], pa.uint64())
    if kind == "decimal":
        return pa.array([decimal.Decimal(i) * decimal.Decimal("1e30") for i in range(n)], pa.decimal128(38, 0))
    if kind == "string":
        return pa.array([str(v) for v in floats])
    if kind == "bool":
        return pa.array([i % 2 == 0 for i in range(n)])
    if kind == "null":
        return pa.nulls(n, pa.float64())
    if kind == "constant":
        return pa.array([5.0] * n)
    return pa.array(floats, pa.float64())


def _id_column(draw, series: list[int]) -> pa.Array:
    kind = _sometimes(draw, ["large_str", "int", "dictionary", "float", "binary", "with_nulls", "markup"], "str", 5)
    names = [f"s{i}" for i in range(max(series) + 1)] if series else []
    if kind == "markup":
        names = [draw(st.text(min_size=0, max_size=8)) for _ in names]
    values = [names[s] for s in series]
    if kind == "int":
        return pa.array(series, pa.int64())
    if kind == "float":
        return pa.array([float(s) for s in series])
    if kind == "binary":
        return pa.array([v.encode("utf-8", "surrogatepass") for v in values], pa.binary())
    if kind == "with_nulls":
        return pa.array([None if i % 7 == 3 else v for i, v in enumerate(values)], pa.string())
    if kind == "large_str":
        return pa.array(values, pa.large_string())
    if kind == "dictionary":
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, pa.string())


@st.composite
def input_specs(draw) -> Spec:
    n_series = draw(st.integers(1, 4))
    lengths = [
        draw(st.integers(0, 70)) if draw(st.integers(0, 3)) == 0 else draw(st.integers(30, 70)) for _ in range(n_series)
    ]
    series, positions = [], []
    for s, length in enumerate(lengths):
        pos = list(range(length))
        if length and draw(st.integers(0, 3)) == 0:  # gaps, duplicates, an outlier position
            pos = [p for p in pos if draw(st.integers(0, 9)) > 0] or [0]
            if draw(st.integers(0, 3)) == 0:
                pos += pos[: draw(st.integers(0, 2))]
            if draw(st.integers(0, 5)) == 0:
                pos.append(draw(st.sampled_from([10**5, 10**7, 10**9])))
        series += [s] * len(pos)
        positions += pos
    notes = [f"lengths={lengths}"]
    columns = {
        "unique_id": _id_column(draw, series),
        "ds": _ds_column(draw, positions),
        "y": _y_column(draw, len(series)),
    }
    order = draw(st.permutations(range(len(series)))) if draw(st.integers(0, 3)) == 0 else list(range(len(series)))
    table = pa.table(columns).take(pa.array(order, pa.int64())) if series else pa.table(columns)
    mutation = _sometimes(draw, ["drop_y", "rename_ds", "extra", "duplicate_y"], "none")
    if mutation == "drop_y":
        table = table.drop_columns(["y"])
    elif mutation == "rename_ds":
        table = table.rename_columns(["unique_id", "time", "y"])
    elif mutation == "extra":
        table = table.append_column("note", pa.array(["x"] * table.num_rows))
    elif mutation == "duplicate_y":
        table = table.append_column("y", table.column("y"))
    notes.append(f"types={[str(t) for t in table.schema.types]} mutation={mutation}")
    files, single = _layout(draw, table, notes)
    config = {
        "data": {"freq": _sometimes(draw, _FREQS, None, one_in=4)},
        "window": {"horizon": draw(st.integers(1, 6)), "input_size": draw(st.integers(1, 12))},
    }
    for policy, allowed in ALLOWED_POLICIES.items():
        if draw(st.integers(0, 3)) == 0:
            config["data"][policy] = draw(st.sampled_from(allowed))
    return Spec(
        files=files,
        single_file=single,
        config=config,
        as_of=_sometimes(draw, _AS_OFS, None, one_in=4),
        purpose=draw(st.sampled_from(["predict", "train"])),
        partitions=draw(st.sampled_from([1, 1, 3])),
        notes=notes,
    )


def _layout(draw, table: pa.Table, notes: list[str]) -> tuple[dict, bool]:
    """A single file, or a directory: rows spread over files (nested, hive-partitioned by id), maybe with a
    drifted schema, junk, hidden or empty files."""
    layout = _sometimes(draw, ["drift", "junk", "empty_file", "empty_dir"], ["file", "dir", "nested", "hive"])
    notes.append(f"layout={layout}")
    if layout == "file":
        return {"data.parquet": table}, True
    if layout == "empty_file":
        return {"data.parquet": b""}, True
    if layout == "empty_dir":
        return {".hidden.tmp": table, "_SUCCESS": b""}, False
    k = draw(st.integers(1, 3))
    parts = np.arange(table.num_rows) % k
    files: dict[str, object] = {}
    for i in range(k):
        rows = table.take(pa.array(np.flatnonzero(parts == i)))
        rel = f"sub{i}/part-{i}.parquet" if layout == "nested" else f"part-{i}.parquet"
        files[rel] = rows
    if (
        layout == "hive"
        and "unique_id" in table.column_names
        and pa.types.is_string(table.schema.field("unique_id").type)
    ):
        files = {}
        ids = table.column("unique_id").to_pylist()
        for uid in sorted(
            {
                i
                for i in ids
                if i is not None
                and not set(i) & {"/", "=", "\x00"}
                and i not in ("", ".", "..")
                and not i.startswith((".", "_"))
            }
        ):
            mask = pa.array([i == uid for i in ids])
            files[f"unique_id={uid}/part-0.parquet"] = table.filter(mask).drop_columns(["unique_id"])
        files = files or {"part-0.parquet": table}
    if layout == "drift" and len(files) > 1:
        last = sorted(files)[-1]
        t = files[last]
        if t.column_names.count("y") == 1:
            files[last] = draw(
                st.sampled_from(
                    [
                        t.rename_columns([("value" if c == "y" else c) for c in t.column_names]),
                        t.set_column(
                            t.column_names.index("y"), "y", pa.array([str(v) for v in t.column("y").to_pylist()])
                        ),
                    ]
                )
            )
    if layout == "junk":
        files[draw(st.sampled_from(["README.txt", "zero.parquet", ".part.tmp", "_temporary/x.parquet"]))] = draw(
            st.sampled_from([b"", b"unique_id,ds,y\na,2026-01-01,1\n", b"PAR1garbagePAR1"])
        )
    return files, False


# --------------------------------------------------------------------------- running one input


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` in the code under test hides it."""


def ingest(spec: Spec, path: Path) -> str:
    """The flows' ingest, without Prefect (flows/partitioned.py validate_groups does these steps)."""
    as_of_label(spec.as_of)  # the flow parameter check
    config = ForecastConfig().replace(**spec.config)
    table = read_long_table(path, config.data)
    groups = split_table(table, config.data.id_col, spec.partitions) if spec.partitions > 1 else [(0, table)]
    outcomes = [validate_partition(k, t, config, as_of=spec.as_of, purpose=spec.purpose) for k, t in groups]
    freq, redo = reconcile_freq(outcomes, config)
    if redo:
        fixed = config.replace(data={"freq": freq})
        for i in redo:
            outcomes[i] = validate_partition(groups[i][0], groups[i][1], fixed, as_of=spec.as_of, purpose=spec.purpose)
    kept, report, resolved = combine_outcomes(outcomes)
    for outcome in kept:
        panel = outcome.panel
        assert panel.n_series > 0 and (np.diff(panel.offsets) > 0).all()
        assert len(panel.values) <= 100 * table.num_rows + 10_000_000  # the grid bound
        assert np.isfinite(panel.values[panel.observed]).all()
        frame = future_frame(panel, None, None, resolved)  # the future ds every forecast is written with
        assert len(frame) == panel.n_series * resolved.window.horizon
    if spec.purpose == "train" and len(kept) > 1:
        merge_panels([o.panel for o in kept])
    report.to_markdown()
    return "ok"


def classify(run, seconds: float = TIME_BOUND_S) -> tuple[str, str]:
    """``(outcome, detail)``: ``ok``, ``error`` (a one-line ForecastError), or a failure: ``traceback``
    (any other exception), ``bad_message`` (empty or multi-line), ``hang`` (over ``seconds``)."""

    def alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        run()
        return "ok", ""
    except Hang:
        return "hang", f"over {seconds} s"
    except ForecastError as exc:
        text = str(exc)
        if not text.strip() or "\n" in text or "Traceback" in text:
            return "bad_message", repr(text)
        return "error", text
    except Exception as exc:  # noqa: BLE001 - what the CLI would print a traceback (exit 1) for
        return "traceback", f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _kind_of(message: str) -> str:
    """A short class of an error message for the outcome table: the problem name, or the message's first
    words with paths and values left out."""
    if message.startswith("invalid input data: "):
        return message.split(": ", 1)[1].split(" ", 1)[0]
    text = re.sub(r"/\S+", "<path>", message)
    text = re.sub(r"(as_of|freq)=('[^']*'|\S+)", r"\1=<value>", text)
    return " ".join(text.split()[:4]).rstrip(":;,")


# --------------------------------------------------------------------------- the harness catches failures


def test_the_harness_flags_tracebacks_hangs_and_multi_line_messages():
    def raise_(exc):
        raise exc

    assert classify(lambda: "ok")[0] == "ok"
    assert classify(lambda: raise_(ForecastError("bad input; fix it")))[0] == "error"
    assert classify(lambda: raise_(KeyError("y")))[0] == "traceback"
    assert classify(lambda: raise_(MemoryError()))[0] == "traceback"
    assert classify(lambda: raise_(ForecastError("two\nlines")))[0] == "bad_message"
    assert classify(lambda: time.sleep(5), seconds=0.2)[0] == "hang"


def test_the_harness_catches_a_defect_reintroduced(monkeypatch, tmp_path):
    """A fuzzed input that reaches a broken step is reported as a traceback, not counted as an error."""
    import rnn_model.partitions as partitions

    spec = Spec(
        files={
            "data.parquet": pa.table(
                {"unique_id": ["a"] * 30, "ds": pa.array(range(30)), "y": [float(i % 5) for i in range(30)]}
            )
        },
        single_file=True,
    )
    path = spec.write(tmp_path)
    assert classify(lambda: ingest(spec, path))[0] == "ok"
    monkeypatch.setattr(partitions, "check_forecast_room", lambda *a: np.zeros(2)[5])  # an IndexError inside
    assert classify(lambda: ingest(spec, path))[0] == "traceback"


# --------------------------------------------------------------------------- the fuzz test


def test_fuzzed_inputs_end_in_success_or_a_one_line_error(tmp_path_factory):
    stats: Counter = Counter()
    kinds: Counter = Counter()
    failures: list[str] = []
    base = tmp_path_factory.mktemp("fuzz")
    started = time.perf_counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=input_specs())
    def one(spec: Spec) -> None:
        root = Path(tempfile.mkdtemp(dir=base))
        try:
            path = spec.write(root)
            before = _digest(root)
            outcome, detail = classify(lambda: ingest(spec, path))
            stats[outcome] += 1
            if outcome == "error":
                kinds[_kind_of(detail)] += 1
            assert _digest(root) == before, "the input files changed"
            if outcome not in ("ok", "error"):
                failures.append(f"{outcome}: {detail[:300]} | {spec.notes} | {spec.config} as_of={spec.as_of!r}")
            assert outcome in ("ok", "error"), f"{outcome}: {detail}\n{spec.notes}\n{spec.config} as_of={spec.as_of!r}"
        finally:
            shutil.rmtree(root, ignore_errors=True)

    try:
        one()
    finally:
        elapsed = time.perf_counter() - started
        summary = {
            "examples": sum(stats.values()),
            "seconds": round(elapsed, 1),
            "outcomes": dict(stats),
            "error_kinds": dict(kinds.most_common()),
            "failures": failures[:20],
            "derandomized": not LONG,
        }
        print(json.dumps(summary, indent=1))
        if os.environ.get("FUZZ_REPORT"):
            Path(os.environ["FUZZ_REPORT"]).write_text(json.dumps(summary, indent=1) + "\n")
    assert stats["ok"] > 0 and stats["error"] > 0  # the generator reaches both sides of the contract
