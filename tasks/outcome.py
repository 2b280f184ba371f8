"""What the Prefect UI shows for a run at a glance: a name with the flow, model and ``as_of``, a final state
message with the outcome, tags with the model and the outcome (issue 15, item 1), and one summary
artifact at flow-run level (item 2): the decision and both versions, ``as_of`` and the data's span, the
metrics with MASE first and the gate's threshold, and where the bundle, decision and predictions are."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any, Callable

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, State

from rnn_model.errors import ForecastError
from rnn_model.outputs import as_of_label
from rnn_model.schema import escape_markdown

from ._options import artifact_key

__all__ = [
    "run_name",
    "finished",
    "outcome_message",
    "outcome_tags",
    "summary_markdown",
    "alert_on_failure",
    "ALERT_URL_ENV",
]


def run_name(kind: str) -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``train-default-2026-11-16`` (no ``as_of``: today's UTC date, the
    label the run writes under), ``backfill-default-2026-11-01..2026-11-07``."""

    def name() -> str:
        params = flow_run.parameters
        model = params.get("model_name", "default")
        if kind == "backfill":
            return f"{kind}-{model}-{params.get('start')}..{params.get('end')}"
        try:
            label = as_of_label(params.get("as_of"))
        except ForecastError:  # the parameter check fails the run at once; the name only shows the value
            label = str(params.get("as_of"))
        return f"{kind}-{model}-{label}"

    return name


def _train_message(result: dict) -> str:
    if result.get("rollback"):
        return f"champion rolled back to {result['champion']}"
    version = result.get("version")
    if version is None:
        return "; ".join(result.get("reasons") or ["nothing registered"])
    before = result.get("champion_before") or "none"
    if result.get("promoted"):
        return f"{version} promoted to champion (was {before})"
    reason = (result.get("reasons") or ["kept"])[0]
    return f"{version} not promoted: {reason} (champion {before})"


def _predict_message(result: dict) -> str:
    model = result.get("model_version") or "seasonal_naive (no champion)"
    message = f"wrote {result['rows']} forecasts, model {model}"
    if result.get("model_version") and result.get("fallback_series"):
        message += f"; {len(result['fallback_series'])} series by seasonal naive"
    return message + (f"; {result['stale_data']}" if result.get("stale_data") else "")


def outcome_message(kind: str, result: Any) -> str:
    """One line for the run list: ``v0004 not promoted: does not beat the champion ... (champion v0003)``,
    ``wrote 192 forecasts, model v0003``."""
    if kind == "train":
        return _train_message(result)
    if kind == "predict":
        return _predict_message(result)
    if kind == "pipeline":
        parts = [f"train: {_train_message(result['train'])}"]
        if result.get("predict") is not None:
            parts.append(f"predict: {_predict_message(result['predict'])}")
        return "; ".join(parts)
    if kind == "backtest":
        return f"backtest of {result['model_version']}: report {result['report']}"
    if kind == "backfill":
        promoted = sum(bool(r["train"].get("promoted")) for r in result)
        return f"{len(result)} runs, {promoted} promoted"
    raise ValueError(f"unknown flow kind {kind!r}")


def _train_tags(result: dict) -> set[str]:
    if result.get("rollback"):
        return {"rolled-back"}
    return {"promoted"} if result.get("promoted") else {"kept"}


def outcome_tags(kind: str, model_name: str, result: Any) -> set[str]:
    """``model:default`` and the outcome: ``promoted`` / ``kept`` / ``rolled-back`` for training, and
    ``fallback`` when some series were forecast by seasonal naive."""
    tags = {f"model:{model_name}"}
    if kind == "train":
        tags |= _train_tags(result)
    elif kind == "pipeline":
        tags |= _train_tags(result["train"])
        result = result.get("predict") or {}
    elif kind == "backfill":
        tags |= set().union(*(_train_tags(r["train"]) for r in result)) if result else set()
    if kind in ("predict", "pipeline") and result.get("fallback_series"):
        tags.add("fallback")
    return tags


_METRICS = (
    ("mase", "MASE", "{:.4f}"),
    ("mae", "MAE", "{:.4f}"),
    ("rmse", "RMSE", "{:.4f}"),
    ("smape", "sMAPE %", "{:.2f}"),
)


def _metrics_table(rows: list[dict], labels: dict[str, str], threshold: str | None = None) -> list[str]:
    """MASE (the gate's metric) first, one number format per column, models labelled with their version,
    and the gate's threshold as the last row."""
    lines = ["| model | " + " | ".join(name for _, name, _ in _METRICS) + " |", "|---|" + "---:|" * len(_METRICS)]
    for row in rows:
        cells = [fmt.format(row[k]) if isinstance(row.get(k), (int, float)) else "" for k, _, fmt in _METRICS]
        lines.append(f"| {labels.get(row['model'], row['model'])} | " + " | ".join(cells) + " |")
    if threshold:
        lines.append(f"| *to promote* | {threshold} |" + " |" * (len(_METRICS) - 1))
    return lines


def _threshold(evidence: dict) -> str | None:
    bars = (
        [f"< {evidence['seasonal_naive_bar']:.4f} (seasonal naive)"]
        if evidence.get("seasonal_naive_bar") is not None
        else []
    )
    if evidence.get("champion_bar") is not None:
        bars.append(f"< {evidence['champion_bar']:.4f} (champion, on {evidence.get('fair_windows')} fair windows)")
    return " and ".join(bars) or None


def _data_rows(result: dict) -> list[str]:
    data = result.get("data") or {}
    rows = [f"| as_of | {result.get('as_of', '')} |"]
    if data.get("series"):
        rows.append(
            f"| data | {data['series']} series, {data['observations']} observations, "
            f"{data['first']} .. {data['last']} |"
        )
    if result.get("stale_data"):
        rows.append(f"| **stale data** | **{escape_markdown(result['stale_data'], limit=400)}** |")
    return rows


def _train_summary(result: dict) -> list[str]:
    version, before = result.get("version"), result.get("champion_before")
    rows = ["| | |", "|---|---|", f"| outcome | {escape_markdown(_train_message(result), limit=400)} |"]
    if result.get("rollback"):
        return rows + [f"| champion | `{result['champion']}` |"]
    rows += [
        f"| challenger | `{version}` |" if version else "| challenger | not registered |",
        f"| champion before | `{before}` |" if before else "| champion before | none |",
        f"| champion now | `{result.get('champion')}` |" if result.get("champion") else "| champion now | none |",
        *_data_rows(result),
    ]
    if result.get("model_dir"):
        rows += [f"| bundle | `{result['model_dir']}` |", f"| decision | `{result['model_dir']}/decision.json` |"]
    labels = {
        "challenger": f"challenger `{version}`" if version else "challenger",
        "champion": f"champion `{before}`" if before else "champion",
    }
    metrics = result.get("metrics") or []
    table = _metrics_table(metrics, labels, _threshold(result.get("evidence") or {})) if metrics else []
    reasons = [f"- {escape_markdown(r, limit=400)}" for r in result.get("reasons") or []]
    return (
        rows
        + (["", "#### Held-out metrics (MASE decides)", "", *table] if table else [])
        + (["", "#### Why", "", *reasons] if reasons else [])
    )


def _predict_summary(result: dict) -> list[str]:
    rows = [
        "| | |",
        "|---|---|",
        f"| outcome | {escape_markdown(_predict_message(result), limit=400)} |",
        f"| model | `{result['model_version']}` |"
        if result.get("model_version")
        else "| model | seasonal naive (no champion) |",
        *_data_rows(result),
        f"| forecasts | {result['rows']} rows, {len(result.get('fallback_series') or [])} series by seasonal naive |",
        f"| predictions | `{result['predictions']}` |",
    ]
    return rows + [
        f"| warning | {escape_markdown(w, limit=400)} |"
        for w in result.get("warnings") or []
        if w != result.get("stale_data")
    ]


def summary_markdown(kind: str, name: str, result: Any) -> str:
    """The run's summary artifact (markdown)."""
    lines = [f"### {escape_markdown(name)}", ""]
    if kind == "train":
        lines += _train_summary(result)
    elif kind == "predict":
        lines += _predict_summary(result)
    elif kind == "pipeline":
        lines += ["#### Train", "", *_train_summary(result["train"])]
        if result.get("predict") is not None:
            lines += ["", "#### Predict", "", *_predict_summary(result["predict"])]
    elif kind == "backtest":
        lines += [
            "| | |",
            "|---|---|",
            f"| model | `{result['model_version']}` |",
            *_data_rows(result),
            f"| windows | last {result.get('n_windows')} horizons of every series |",
            f"| report | `{result['report']}` |",
            "",
            *_metrics_table(result.get("metrics") or [], {}),
        ]
    elif kind == "backfill":
        lines += ["| as_of | train | predict |", "|---|---|---|"]
        lines += [
            f"| {r['train'].get('as_of', '')} | {escape_markdown(_train_message(r['train']))} | "
            f"{escape_markdown(_predict_message(r['predict'])) if r.get('predict') else ''} |"
            for r in result
        ]
    return "\n".join(lines)


# Typed Any, not State: a flow that returns this State gives its callers the state's data (``result``);
# the flow's own return annotation describes that, which Prefect's typing cannot express.
def finished(kind: str, model_name: str, result: Any) -> Any:
    """The flow's final state: Completed with the outcome as its message and ``result`` as its data
    (callers of the flow get ``result``); the outcome tags are added to the flow run, and the summary
    artifact (``<model>-<kind>-summary``) is written at flow-run level."""
    from prefect.client.orchestration import get_client

    tags = outcome_tags(kind, model_name, result)
    run_id = flow_run.id
    if run_id is not None:
        with get_client(sync_client=True) as client:
            current = set(client.read_flow_run(run_id).tags or [])
            client.update_flow_run(run_id, tags=sorted(current | tags))
    message = outcome_message(kind, result)
    create_markdown_artifact(
        summary_markdown(kind, flow_run.name or kind, result),
        key=artifact_key(model_name, kind, "summary"),
        description=f"{kind} run: {message}"[:500],
    )
    get_run_logger().info("outcome: %s", message)
    return Completed(message=message, data=result)


ALERT_URL_ENV = "RNN_FORECAST_ALERT_URL"


def alert_on_failure(flow: Any, flow_run: Any, state: State) -> None:
    """``on_failure`` / ``on_crashed`` hook: POST the run's name, state and message as JSON to
    ``$RNN_FORECAST_ALERT_URL`` (a Slack-style or any HTTP webhook). Nothing is sent without it. A webhook
    that fails is logged, never raised: the run's own failure is what the UI must show. The parameter names
    are those of Prefect's ``FlowStateHook`` protocol."""
    url = os.environ.get(ALERT_URL_ENV)
    if not url:
        return
    payload = {
        "text": f"{flow.name} run {flow_run.name} {state.type.value}: {state.message or ''}".strip(),
        "flow": flow.name,
        "flow_run": flow_run.name,
        "flow_run_id": str(flow_run.id),
        "state": state.type.value,
        "message": state.message,
        "tags": list(flow_run.tags or []),
    }
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors; ValueError: a malformed URL
        logging.getLogger("rnn_forecast.alerts").warning("failure alert to %s not sent: %s", url, exc)
