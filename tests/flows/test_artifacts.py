"""What the Prefect UI shows for a pipeline run: its artifacts, read back from the harness API."""

from __future__ import annotations

import base64
import json

from ._support import AS_OF, artifacts_of_run_tree, read_flow_run, run_api

EXPECTED = {  # key -> artifact type; the keys name the half of the run, so train and predict never collide
    "default-pipeline-data-quality": "markdown",
    "default-train-metrics": "table",
    "default-train-metrics-per-step": "table",
    "default-train-promotion": "markdown",
    "default-train-progress-fit-1": "progress",
    "default-train-loss-fit-1": "table",
    "default-predict-forecast-plot": "markdown",
    "default-predict-fallback": "markdown",
    "default-pipeline-summary": "markdown",
}


def test_pipeline_run_publishes_its_artifacts(trained):
    artifacts = run_api(artifacts_of_run_tree, trained["flow_run_id"])
    by_key: dict[str, list] = {}
    for a in artifacts:
        by_key.setdefault(a.key, []).append(a)
    missing = set(EXPECTED) - set(by_key)
    assert not missing, f"missing artifacts {missing}; found {sorted(k for k in by_key if k)}"
    for key, kind in EXPECTED.items():
        assert {a.type for a in by_key[key]} == {kind}, (key, [a.type for a in by_key[key]])

    # one ingest for both halves: one data-quality report, and no train or predict one
    assert len(by_key["default-pipeline-data-quality"]) == 1 and by_key["default-pipeline-data-quality"][0].data
    assert not {"default-train-data-quality", "default-predict-data-quality"} & set(by_key)
    # the fallback artifact is written by every prediction run, also when no series fell back
    assert "0 of 4 series" in by_key["default-predict-fallback"][0].data

    # the metrics table has a row per model
    metrics = by_key["default-train-metrics"][0].data
    rows = metrics if isinstance(metrics, list) else json.loads(metrics)
    assert {"challenger", "naive", "seasonal_naive"} <= {r["model"] for r in rows}

    promotion = by_key["default-train-promotion"][0].data
    assert "v0001" in promotion and "promoted to champion" in promotion
    assert "champion before: none; champion now: `v0001`" in promotion and "v0001/decision.json`" in promotion

    plot = by_key["default-predict-forecast-plot"][0].data  # markdown: a title, what is shown, the PNG inline
    assert plot.startswith(f"### Forecasts, as_of {AS_OF}") and "80 % and 95 % intervals" in plot
    url = plot.split("![forecast plot](", 1)[1].rstrip(")")
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width >= 10 * 120  # 10 inches at dpi 120

    progress = by_key["default-train-progress-fit-1"][0]
    assert float(progress.data) == 100.0  # training finished
    assert "fit 1" in progress.description
    # the loss curve of the fit: one row per epoch shown, the kept one marked
    losses = by_key["default-train-loss-fit-1"][0].data
    losses = losses if isinstance(losses, list) else json.loads(losses)
    kept = [r["epoch"] for r in losses if r["kept"]]
    assert len(kept) == 1 and all("loss" in r for r in losses), losses
    assert [r["epoch"] for r in losses] == sorted(r["epoch"] for r in losses) and losses[0]["epoch"] == 1


def test_the_run_summary_says_what_happened_and_where(trained):
    """Issue 15.2: one summary artifact at flow-run level with the decision and versions, as_of and the
    data's span, the metrics with MASE first and the gate's threshold, and the paths of what was written."""
    artifacts = run_api(artifacts_of_run_tree, trained["flow_run_id"])
    summaries = [a for a in artifacts if a.key == "default-pipeline-summary"]
    assert len(summaries) == 1 and summaries[0].task_run_id is None  # the flow run's own, not a task's
    text = summaries[0].data
    print(text)
    result = trained["result"]
    assert "v0001 promoted to champion (was none)" in text
    assert f"| as_of | {AS_OF} |" in text
    data = result["train"]["data"]
    assert data["series"] == 4 and f"{data['first']} .. {data['last']}" in text
    header = next(line for line in text.splitlines() if line.startswith("| model |"))
    assert header.split("|")[2].strip() == "MASE"  # the gate's metric first
    assert "| challenger `v0001` |" in text and "*to promote*" in text and "(seasonal naive)" in text
    evidence = result["train"]["evidence"]
    assert f"< {evidence['seasonal_naive_bar']:.4f}" in text
    assert f"`{result['train']['model_dir']}/decision.json`" in text
    assert f"`{result['predict']['predictions']}`" in text


def test_a_run_is_named_and_ends_with_its_outcome(trained):
    """Issue 15.1: the run list shows the flow, model and as_of in the name, the outcome in the state
    message, and the model and outcome in the tags (a promoted pipeline run here)."""
    flow_run = run_api(read_flow_run, trained["flow_run_id"])
    assert flow_run.name == f"pipeline-default-{AS_OF}"
    rows = trained["result"]["predict"]["rows"]
    assert flow_run.state.message == (
        f"train: v0001 promoted to champion (was none); predict: wrote {rows} forecasts, model v0001"
    ), flow_run.state.message
    assert {"model:default", "promoted"} <= set(flow_run.tags) and "kept" not in flow_run.tags


def test_the_loss_table_marks_the_kept_epoch_and_stays_short():
    from tasks.training import loss_curve

    validated = [{"loss": 1.0 / (i + 1), "val_loss": abs(i - 6) + 0.5} for i in range(10)]
    rows = loss_curve(validated)
    assert [r["epoch"] for r in rows] == list(range(1, 11))  # 10 epochs: all shown
    assert [r["epoch"] for r in rows if r["kept"]] == [7]  # early stopping restores the lowest val_loss
    budget = [{"loss": 1.0 / (i + 1)} for i in range(500)]  # a fixed budget: the final weights are kept
    rows = loss_curve(budget)
    assert len(rows) <= 22 and rows[0]["epoch"] == 1 and rows[-1]["epoch"] == 500
    assert [r["epoch"] for r in rows if r["kept"]] == [500]


def test_summaries_of_a_rollback_and_a_backfill_name_what_happened():
    from tasks.outcome import summary_markdown

    text = summary_markdown("train", "train-default-x", {"champion": "v0001", "promoted": False, "rollback": True})
    assert "champion rolled back to v0001" in text and "`v0001`" in text
    runs = [
        {
            "train": {"version": "v0002", "promoted": True, "champion_before": "v0001", "as_of": "2026-01-02"},
            "predict": {"rows": 12, "model_version": "v0002"},
        }
    ]
    text = summary_markdown("backfill", "backfill-default-a..b", runs)
    assert "| 2026-01-02 | v0002 promoted to champion (was v0001) | wrote 12 forecasts, model v0002 |" in text


def test_metric_tables_put_mase_first_and_one_row_per_step():
    import pandas as pd

    from tasks.evaluation import _mase_by_step, _records

    overall = pd.DataFrame(
        {
            "model": ["challenger", "naive"],
            "mae": [1.234567, 2.0],
            "rmse": [1.5, 2.5],
            "smape": [12.3456, 20.0],
            "mase": [0.812345, 1.1],
        }
    )
    rows = _records(overall)
    assert list(rows[0]) == ["model", "mase", "mae", "rmse", "smape"]
    assert rows[0]["mase"] == 0.8123 and rows[0]["smape"] == 12.35
    per_step = pd.DataFrame(
        {
            "horizon_step": [1, 1, 2, 2],
            "model": ["challenger", "naive"] * 2,
            "mase": [0.5, 1.0, 0.6, 1.2],
            "mae": 1.0,
            "rmse": 1.0,
            "smape": 1.0,
        }
    )
    assert _mase_by_step(per_step) == [
        {"horizon_step": 1, "challenger mase": 0.5, "naive mase": 1.0},
        {"horizon_step": 2, "challenger mase": 0.6, "naive mase": 1.2},
    ]
