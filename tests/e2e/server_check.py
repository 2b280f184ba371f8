"""End-to-end check against a real Prefect server and the served deployments (run by ``.ci/run``).

Not a pytest module (no ``test_`` prefix, no pytest import): it needs a running ``prefect server start``
and ``python deployments/serve.py``, which ``.ci/run`` starts, and stops, around it. Only the standard
library (urllib for the REST API, subprocess for the ``prefect`` CLI) and pyarrow are used.

    python tests/e2e/server_check.py wait-health --api-url http://127.0.0.1:4219/api [--pid PID]
    python tests/e2e/server_check.py run --api-url URL --store STORE --prefect .venv/bin/prefect \\
        [--pid SERVER_PID --pid SERVE_PID]

``run`` waits for the deployments ``train/daily-retrain`` and ``predict/daily-predict``, triggers them
through ``prefect deployment run --param ...`` (values are JSON; a nested ``config`` dict becomes the
``ForecastConfig`` dataclass), polls the REST API until each flow run ends, and checks states, artifacts,
the model bundle and the predictions Parquet. Then it submits invalid parameters and checks that they are
rejected: either the CLI refuses them (the server validates against the deployment's parameter schema),
or the flow run ends FAILED with a parameter validation message before any task runs. Exit 0 when every
check passed, 1 otherwise; the summary says which.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

TRAIN = "train/daily-retrain"
PREDICT = "predict/daily-predict"
AS_OF = "2026-02-20"
TRAIN_CONFIG = {"train": {"epochs": 3, "steps": None}, "model": {"units": 32, "members": 2}}  # small: by epochs
TRAIN_ARTIFACTS = {
    "default-train-data-quality",
    "default-train-metrics",
    "default-train-metrics-per-step",
    "default-train-promotion",
    "default-train-progress-fit-1",
    "default-train-loss-fit-1",
    "default-train-summary",
}
PREDICT_ARTIFACTS = {
    "default-predict-data-quality",
    "default-predict-forecast-plot",
    "default-predict-fallback",
    "default-predict-summary",
}
PREDICTION_COLUMNS = ["unique_id", "ds", "horizon_step", "y_hat", "model_version", "as_of", "created_at"]
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
UUID_RE = re.compile(r"UUID:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


class CheckFailed(Exception):
    pass


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------- REST


class Api:
    def __init__(self, url: str, timeout: float = 15.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        if status != 200:
            raise CheckFailed(f"GET {path} -> HTTP {status}: {body}")
        return body

    def post(self, path: str, body: Any) -> Any:
        status, body_out = self.call("POST", path, body)
        if status not in (200, 201):
            raise CheckFailed(f"POST {path} -> HTTP {status}: {body_out}")
        return body_out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def wait_for(what: str, probe: Callable[[], Any], timeout: float, pids: list[int], every: float = 1.0) -> Any:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` s or when a watched
    process (the server, the serve process) has died."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        for pid in pids:
            if not pid_alive(pid):
                raise CheckFailed(f"while waiting for {what}: process {pid} has exited (see its log in .ci/logs/)")
        try:
            result = probe()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        except CheckFailed as exc:
            last_error = str(exc)
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last_error})")
        time.sleep(every)


# -------------------------------------------------------------------------------------------- checks


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, bool, str]] = []

    def ok(self, name: str, detail: str = "") -> None:
        self.rows.append((name, True, detail))
        log(f"PASS {name}{': ' + detail if detail else ''}")

    def fail(self, name: str, detail: str) -> None:
        self.rows.append((name, False, detail))
        log(f"FAIL {name}: {detail}")

    def check(self, name: str, condition: bool, detail: str) -> bool:
        (self.ok if condition else self.fail)(name, detail)
        return condition

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(ok for _, ok, _ in self.rows)

    def summary(self) -> str:
        lines = ["", "=" * 78, "end-to-end server check: summary", "-" * 78]
        for name, ok, detail in self.rows:
            lines.append(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"\n      {detail}" if detail else ""))
        n_fail = sum(not ok for _, ok, _ in self.rows)
        lines += ["-" * 78, f"{len(self.rows) - n_fail} passed, {n_fail} failed", "=" * 78]
        return "\n".join(lines)


def run_cli(prefect: str, name: str, params: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [prefect, "--no-prompt", "deployment", "run", name]
    for p in params:
        cmd += ["--param", p]
    log("$ " + " ".join(repr(c) if (" " in c or "{" in c) else c for c in cmd))
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"`prefect deployment run {name}` did not return within {timeout:.0f} s") from exc
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        print(f"    | {line}", flush=True)
    return proc


def trigger(prefect: str, name: str, params: list[str]) -> str:
    proc = run_cli(prefect, name, params)
    if proc.returncode != 0:
        raise CheckFailed(
            f"`prefect deployment run {name}` exited {proc.returncode}: "
            f"{' '.join((proc.stdout + proc.stderr).split())[-600:]}"
        )
    match = UUID_RE.search(proc.stdout + proc.stderr)
    if not match:
        raise CheckFailed(f"no flow run UUID in the output of `prefect deployment run {name}`")
    return match.group(1)


def state_of(run: dict) -> tuple[str, str]:
    state = run.get("state") or {}
    return state.get("type") or "?", state.get("message") or ""


def wait_run(api: Api, run_id: str, timeout: float, pids: list[int]) -> dict:
    seen: list[str] = []

    def probe() -> dict | None:
        run = api.get(f"/flow_runs/{run_id}")
        kind, _ = state_of(run)
        name = (run.get("state") or {}).get("name") or kind
        if not seen or seen[-1] != name:
            seen.append(name)
            log(f"flow run {run['name']} ({run_id[:8]}): {name}")
        return run if kind in TERMINAL else None

    return wait_for(f"flow run {run_id} to finish", probe, timeout, pids, every=2.0)


def run_logs(api: Api, run_id: str, limit: int = 40) -> str:
    try:
        logs = api.post(
            "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_DESC", "limit": limit}
        )
    except (CheckFailed, OSError) as exc:
        return f"(could not read logs: {exc})"
    return "\n".join(f"      {entry['timestamp'][11:19]} {entry['message'][:400]}" for entry in reversed(logs))


def artifact_keys(api: Api, run_id: str) -> set[str]:
    found = api.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    return {a["key"] for a in found if a.get("key")}


def task_run_count(api: Api, run_id: str) -> int:
    return int(api.post("/task_runs/count", {"flow_runs": {"id": {"any_": [run_id]}}}))


def deployment_run_ids(api: Api, deployment_id: str) -> set[str]:
    runs = api.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "limit": 200})
    return {r["id"] for r in runs}


def expect_completed(api: Api, rep: Report, label: str, run: dict) -> bool:
    kind, message = state_of(run)
    ok = rep.check(
        f"{label}: flow run COMPLETED",
        kind == "COMPLETED",
        f"{run['name']} ({run['id']}) ended {kind}"
        + (f": {message}" if message and kind != "COMPLETED" else "")
        + (f" in {run.get('total_run_time', 0):.1f} s" if kind == "COMPLETED" else ""),
    )
    if not ok:
        print(f"    last log lines of {run['id']}:\n{run_logs(api, run['id'])}", flush=True)
    return ok


def check_run_label(rep: Report, label: str, run: dict, outcomes: tuple[str, ...]) -> None:
    """What the run list shows: ``<flow>-<model>-<as_of>`` as the name, the outcome as the state message,
    ``model:<name>`` and the outcome as tags."""
    _, message = state_of(run)
    tags = set(run.get("tags") or [])
    rep.check(
        f"{label}: run named by flow, model and as_of",
        run["name"] == f"{label}-default-{AS_OF}",
        f"name {run['name']!r}",
    )
    rep.check(
        f"{label}: state message gives the outcome",
        bool(message) and any(o in message for o in outcomes),
        f"message {message!r}",
    )
    rep.check(
        f"{label}: tags name the model (and the outcome)",
        "model:default" in tags and (label != "train" or bool(tags & {"promoted", "kept"})),
        f"tags {sorted(tags)}",
    )


def check_artifacts(api: Api, rep: Report, label: str, run_id: str, expected: set[str]) -> None:
    keys = artifact_keys(api, run_id)
    missing = expected - keys
    rep.check(
        f"{label}: artifacts",
        not missing,
        f"found {sorted(keys)}" + (f"; MISSING {sorted(missing)}" if missing else ""),
    )


def check_summary(api: Api, rep: Report, label: str, run_id: str, needles: list[str]) -> None:
    """The run's summary artifact (flow-run level, not a task's) holds the outcome, as_of, the metrics and
    the paths of what was written."""
    found = api.post(
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": [f"default-{label}-summary"]}}, "limit": 5},
    )
    text = found[0]["data"] if found else ""
    missing = [n for n in needles if n not in text]
    rep.check(
        f"{label}: summary artifact",
        len(found) == 1 and found[0].get("task_run_id") is None and not missing,
        f"{len(found)} found" + (f"; missing {missing}" if missing else f"; {len(text)} characters"),
    )


def check_distinct_keys(api: Api, rep: Report, train_id: str, predict_id: str) -> None:
    train, predict = artifact_keys(api, train_id), artifact_keys(api, predict_id)
    rep.check(
        "train and predict artifacts under distinct keys",
        bool(train) and bool(predict) and not train & predict,
        f"shared: {sorted(train & predict)}" if train & predict else f"{len(train)} + {len(predict)} keys",
    )


def check_bundle(rep: Report, store: Path) -> tuple[str | None, str | None]:
    """The newest model version and the champion after the train run."""
    versions = sorted(p for p in (store / "models" / "default").glob("v*") if (p / "config.json").exists())
    if not rep.check(
        "train: model bundle written",
        bool(versions),
        f"versions under {store}/models/default: {[p.name for p in versions]}",
    ):
        return None, None
    config = json.loads((versions[-1] / "config.json").read_text())
    epochs, units = config.get("train", {}).get("epochs"), config.get("model", {}).get("units")
    rep.check(
        "train: nested --param config reached the flow",
        (epochs, units) == (3, 32),
        f"{versions[-1].name}/config.json has train.epochs={epochs}, model.units={units} (sent 3 and 32)",
    )
    pointer = store / "models" / "default" / "champion"
    champion = json.loads(pointer.read_text()).get("version") if pointer.exists() else None
    return versions[-1].name, champion


def check_predictions(rep: Report, store: Path, expected_version: str, label: str = "predict") -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = store / "predictions" / f"as_of={AS_OF}" / "part-0.parquet"
    if not rep.check(f"{label}: partition file exists", path.is_file(), str(path)):
        return
    table = pq.read_table(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in table.column_names]
    rep.check(f"{label}: columns", not missing, f"{table.column_names}" + (f"; MISSING {missing}" if missing else ""))
    if missing:
        return
    y_hat = table.column("y_hat").to_pylist()
    finite = bool(y_hat) and all(v is not None and math.isfinite(v) for v in y_hat)
    n_series = len(pc.unique(table.column("unique_id")))
    steps = pc.min_max(table.column("horizon_step")).as_py()
    versions = sorted({str(v) for v in pc.unique(table.column("model_version")).to_pylist()})
    as_of_values = sorted({str(v) for v in pc.unique(table.column("as_of")).to_pylist()})
    rep.check(
        f"{label}: finite y_hat",
        finite,
        f"{table.num_rows} rows, {n_series} series, "
        f"horizon_step {steps['min']}..{steps['max']}, model_version {versions}, as_of {as_of_values}",
    )
    rep.check(
        f"{label}: model_version of the rows",
        versions == [expected_version],
        f"expected {expected_version}; rows labelled {versions}",
    )


def check_rejected(
    api: Api,
    rep: Report,
    prefect: str,
    deployment: dict,
    label: str,
    params: list[str],
    field: str,
    pids: list[int],
    timeout: float,
) -> None:
    """An invalid parameter must never reach a task: the CLI refuses it (server-side schema validation),
    or the run fails parameter validation in the flow engine before any task runs."""
    before = deployment_run_ids(api, deployment["id"])
    proc = run_cli(prefect, deployment["_name"], params)
    output = " ".join((proc.stdout + proc.stderr).split())
    if proc.returncode != 0:
        new = deployment_run_ids(api, deployment["id"]) - before
        rep.check(
            f"invalid {label}: refused by the CLI / server",
            not new and field in output,
            f"`prefect deployment run` exited {proc.returncode}, no flow run created ({len(new)} new); "
            f"message: {output[-400:]}",
        )
        return
    match = UUID_RE.search(proc.stdout + proc.stderr)
    if not match:
        rep.fail(f"invalid {label}", "CLI accepted it but printed no flow run UUID")
        return
    run = wait_run(api, match.group(1), timeout, pids)
    kind, message = state_of(run)
    n_tasks = task_run_count(api, run["id"])
    text = " ".join(message.split())
    ok = kind == "FAILED" and "parameter" in text.lower() and field in text and n_tasks == 0
    rep.check(
        f"invalid {label}: accepted by the CLI, flow run FAILED parameter validation",
        ok,
        f"run {run['name']} ended {kind} with {n_tasks} task runs; message: {text[:500]}",
    )
    if not ok:
        print(f"    last log lines of {run['id']}:\n{run_logs(api, run['id'])}", flush=True)


def check_deployment(api: Api, rep: Report, name: str) -> dict:
    flow_name, dep_name = name.split("/")
    dep = api.get(f"/deployments/name/{flow_name}/{dep_name}")
    dep["_name"] = name
    schedules = [s.get("schedule", {}).get("cron") for s in dep.get("schedules", []) if s.get("active", True)]
    limit = dep.get("global_concurrency_limit") or {}
    strategy = (dep.get("concurrency_options") or {}).get("collision_strategy")
    params = dep.get("parameters") or {}
    rep.check(
        f"deployment {name}",
        bool(schedules) and limit.get("limit") == 1 and strategy == "CANCEL_NEW",
        f"cron {schedules}, concurrency limit {limit.get('limit')} ({strategy}), "
        f"store={params.get('store')}, enforce_parameter_schema={dep.get('enforce_parameter_schema')}",
    )
    return dep


def check_scheduled_runs(api: Api, rep: Report, deployments: list[dict]) -> None:
    ids = [d["id"] for d in deployments]
    runs = api.post(
        "/flow_runs/filter",
        {"flow_runs": {"deployment_id": {"any_": ids}, "state": {"type": {"any_": ["SCHEDULED"]}}}, "limit": 200},
    )
    runs = [r for r in runs if r.get("auto_scheduled")]  # made by the scheduler service, not by hand
    by_dep = {d["_name"]: sum(r["deployment_id"] == d["id"] for r in runs) for d in deployments}
    first = min((r["expected_start_time"] for r in runs), default=None)
    rep.check(
        "scheduler created future runs",
        all(by_dep.values()),
        f"auto-scheduled runs per deployment {by_dep}, earliest {first}",
    )


# ------------------------------------------------------------------------------------------- commands


def cmd_wait_health(args: argparse.Namespace) -> int:
    api = Api(args.api_url, timeout=5)

    def probe() -> bool:
        status, body = api.call("GET", "/health")
        return status == 200 and body is True

    try:
        wait_for(f"{args.api_url}/health", probe, args.timeout, args.pid)
    except CheckFailed as exc:
        log(f"FAIL {exc}")
        return 1
    version = api.get("/admin/version")
    log(f"server healthy at {args.api_url} (Prefect server {version})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    api, rep, store, pids = Api(args.api_url), Report(), Path(args.store).resolve(), args.pid
    t0 = time.monotonic()
    timings: list[tuple[str, float]] = []

    def phase(name: str, start: float) -> None:
        timings.append((name, time.monotonic() - start))

    try:
        start = time.monotonic()
        for name in (TRAIN, PREDICT):
            flow_name, dep_name = name.split("/")
            wait_for(
                f"deployment {name}",
                lambda f=flow_name, d=dep_name: api.call("GET", f"/deployments/name/{f}/{d}")[0] == 200,
                args.deploy_timeout,
                pids,
            )
        deployments = [check_deployment(api, rep, TRAIN), check_deployment(api, rep, PREDICT)]
        phase("deployments registered", start)

        start = time.monotonic()
        config = json.dumps(TRAIN_CONFIG)
        train_id = trigger(args.prefect, TRAIN, [f"as_of={AS_OF}", f"config={config}"])
        run = wait_run(api, train_id, args.run_timeout, pids)
        sent = run.get("parameters", {})
        rep.check(
            "train: parameters stored on the flow run",
            sent.get("as_of") == AS_OF and sent.get("config") == TRAIN_CONFIG,
            f"as_of={sent.get('as_of')!r}, config={sent.get('config')}, store={sent.get('store')}",
        )
        trained = champion = None
        if expect_completed(api, rep, "train", run):
            check_artifacts(api, rep, "train", train_id, TRAIN_ARTIFACTS)
            check_run_label(rep, "train", run, ("promoted to champion", "not promoted"))
            trained, champion = check_bundle(rep, store)
            check_summary(
                api,
                rep,
                "train",
                train_id,
                [
                    f"| as_of | {AS_OF} |",
                    f"challenger | `{trained}`",
                    "| MASE |",
                    "*to promote*",
                    "decision.json",
                    "seasonal_naive",
                ],
            )
            log(f"trained {trained}; champion now: {champion or 'none (the challenger was not promoted)'}")
        phase("train run", start)

        start = time.monotonic()
        predict_id = trigger(args.prefect, PREDICT, [f"as_of={AS_OF}"])
        run = wait_run(api, predict_id, args.run_timeout, pids)
        if expect_completed(api, rep, "predict", run):
            check_artifacts(api, rep, "predict", predict_id, PREDICT_ARTIFACTS)
            check_run_label(rep, "predict", run, ("wrote ",))
            # without a champion every series falls back to seasonal naive (and says so in an artifact)
            check_predictions(rep, store, champion or "seasonal_naive")
            check_summary(
                api,
                rep,
                "predict",
                predict_id,
                [f"| as_of | {AS_OF} |", "| predictions |", f"as_of={AS_OF}", "| forecasts |"],
            )
            check_distinct_keys(api, rep, train_id, predict_id)
        phase("predict run", start)

        if trained and trained != champion:
            # The 3-epoch model lost the promotion gate, so the run above never loaded it: forecast once more
            # with model_version=<trained> so the served flow also loads a Keras bundle from the registry.
            start = time.monotonic()
            model_id = trigger(args.prefect, PREDICT, [f"as_of={AS_OF}", f"model_version={trained}"])
            run = wait_run(api, model_id, args.run_timeout, pids)
            if expect_completed(api, rep, f"predict model_version={trained}", run):
                check_predictions(rep, store, trained, label=f"predict model_version={trained}")
            phase("predict run (trained model)", start)

        start = time.monotonic()
        train_dep = deployments[0]
        check_rejected(api, rep, args.prefect, train_dep, "margin=5", ["margin=5"], "margin", pids, args.run_timeout)
        check_rejected(api, rep, args.prefect, train_dep, "as_of=../x", ["as_of=../x"], "as_of", pids, args.run_timeout)
        phase("invalid-parameter runs", start)

        check_scheduled_runs(api, rep, deployments)
    except CheckFailed as exc:
        rep.fail("end-to-end check aborted", str(exc))
    except Exception as exc:  # noqa: BLE001 - report, then fail
        rep.fail("end-to-end check crashed", f"{type(exc).__name__}: {exc}")

    print(rep.summary())
    for name, seconds in timings:
        print(f"  {name:<28}{seconds:7.1f} s")
    print(f"  {'total':<28}{time.monotonic() - t0:7.1f} s", flush=True)
    return 0 if rep.passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    health = sub.add_parser("wait-health", help="wait until GET /api/health answers true")
    health.add_argument("--api-url", required=True)
    health.add_argument("--timeout", type=float, default=180)
    health.add_argument("--pid", type=int, action="append", default=[], help="fail at once if this process exits")
    run = sub.add_parser("run", help="trigger the deployments and check the results")
    run.add_argument("--api-url", required=True)
    run.add_argument("--store", required=True, help="the RNN_FORECAST_STORE the serve process uses")
    run.add_argument("--prefect", default="prefect", help="the prefect CLI executable")
    run.add_argument("--deploy-timeout", type=float, default=240)
    run.add_argument("--run-timeout", type=float, default=300)
    run.add_argument("--pid", type=int, action="append", default=[], help="fail at once if this process exits")
    args = parser.parse_args(argv)
    return cmd_wait_health(args) if args.command == "wait-health" else cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
