"""What the Prefect UI shows for a pipeline run: its artifacts, read back from the harness API."""

from __future__ import annotations

import base64
import json

from ._support import AS_OF, artifacts_of_run_tree, read_flow_run, run_api

EXPECTED = {  # key -> artifact type; the keys name the half of the run, so train and predict never collide
    "default-train-data-quality": "markdown",
    "default-predict-data-quality": "markdown",
    "default-train-metrics": "table",
    "default-train-metrics-per-step": "table",
    "default-train-promotion": "markdown",
    "default-train-training-progress": "progress",
    "default-predict-forecast-plot": "image",
    "default-predict-fallback": "markdown",
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

    # data quality: once for training, once for prediction, each under its own key
    for half in ("train", "predict"):
        assert len(by_key[f"default-{half}-data-quality"]) == 1 and by_key[f"default-{half}-data-quality"][0].data
    # the fallback artifact is written by every prediction run, also when no series fell back
    assert "0 of 4 series" in by_key["default-predict-fallback"][0].data

    # the metrics table has a row per model
    metrics = by_key["default-train-metrics"][0].data
    rows = metrics if isinstance(metrics, list) else json.loads(metrics)
    assert {"challenger", "naive", "seasonal_naive"} <= {r["model"] for r in rows}

    promotion = by_key["default-train-promotion"][0].data
    assert "v0001" in promotion and "promoted to champion" in promotion

    image = by_key["default-predict-forecast-plot"][0].data
    assert image.startswith("data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"

    progress = by_key["default-train-training-progress"][0].data
    assert float(progress) == 100.0  # training finished


def test_a_run_is_named_and_ends_with_its_outcome(trained):
    """Issue 15.1: the run list shows the flow, model and as_of in the name, the outcome in the state
    message, and the model and outcome in the tags (a promoted pipeline run here)."""
    flow_run = run_api(read_flow_run, trained["flow_run_id"])
    assert flow_run.name == f"pipeline-default-{AS_OF}"
    rows = trained["result"]["predict"]["rows"]
    assert flow_run.state.message == (f"train: v0001 promoted to champion (was none); "
                                      f"predict: wrote {rows} forecasts, model v0001"), flow_run.state.message
    assert {"model:default", "promoted"} <= set(flow_run.tags) and "kept" not in flow_run.tags
