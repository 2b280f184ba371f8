"""Failure alerts (issue 15.8): a failed or crashed run POSTs to the webhook at $RNN_FORECAST_ALERT_URL, a
real HTTP server on 127.0.0.1 here; nothing is sent without it, and a dead webhook never hides the failure."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.predict import predict
from tasks.outcome import ALERT_URL_ENV


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/forecast", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def not_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("unique_id,ds,y\ns0,2026-01-01,1.0\n")  # CSV under a Parquet name: the run fails at load
    return path


def test_a_failed_run_posts_its_name_state_and_message(webhook, not_parquet, tmp_path, monkeypatch):
    url, received = webhook
    monkeypatch.setenv(ALERT_URL_ENV, url)
    state = predict(data=str(not_parquet), store=str(tmp_path / "store"), as_of="2026-01-02", return_state=True)
    assert state.is_failed()
    assert len(received) == 1, received
    alert = received[0]
    assert alert["path"] == "/hooks/forecast" and alert["type"] == "application/json"
    body = alert["body"]
    assert body["flow"] == "predict" and body["state"] == "FAILED"
    assert body["flow_run"] == "predict-default-2026-01-02" and body["flow_run_id"] == str(
        state.state_details.flow_run_id
    )
    assert "Parquet" in body["message"] and body["text"].startswith("predict run predict-default-2026-01-02 FAILED: ")


def test_no_alert_without_a_url_and_a_dead_webhook_keeps_the_failure(webhook, not_parquet, tmp_path, monkeypatch):
    url, received = webhook
    monkeypatch.delenv(ALERT_URL_ENV, raising=False)
    assert predict(data=str(not_parquet), store=str(tmp_path / "a"), return_state=True).is_failed()
    assert received == []
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    monkeypatch.setenv(ALERT_URL_ENV, dead)
    state = predict(data=str(not_parquet), store=str(tmp_path / "b"), return_state=True)
    assert state.is_failed() and "Parquet" in state.message
