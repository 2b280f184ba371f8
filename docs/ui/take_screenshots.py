"""Screenshots of the Prefect UI for the README's monitoring section (issue 15).

    .venv/bin/python docs/ui/take_screenshots.py            # writes docs/ui/*.png
    .venv/bin/python docs/ui/take_screenshots.py --out /tmp/ui --runs 2

Starts ``prefect server start`` on 127.0.0.1 (its own PREFECT_HOME in a temporary folder, no analytics),
runs ``rnn-forecast run`` on the embedded sample against it (``--runs`` times, one as_of apart, so the
second run has a champion to beat), then screenshots with headless Chromium (Debian's ``chromium``:
``apt-get install chromium``): the last run's page, its summary artifact and the forecast plot. Everything stays on this machine; Chromium's background networking is off.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"prefect server exited with {server.returncode}")
        try:
            api(url, "/health")
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"prefect server not healthy after {timeout} s")


def screenshot(chromium: str, page: str, out: Path, size: str, profile: Path) -> None:
    cmd = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={size}",
        "--virtual-time-budget=20000",
        f"--screenshot={out}",
        page,
    ]
    subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"  {out.name}: {page}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "ui"), help="folder for the PNGs (default: docs/ui)")
    ap.add_argument("--runs", type=int, default=2, help="pipeline runs before the screenshots (default: 2)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args(argv)
    if not Path(args.chromium).exists():
        raise SystemExit(f"no Chromium at {args.chromium}: apt-get install chromium, or pass --chromium PATH")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rnn-ui-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": url,
        "PREFECT_UI_STATIC_DIRECTORY": str(work / "ui"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start"],
        env=env,
        cwd=work,
        stdout=open(work / "server.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_healthy(url, server)
        print(f"server at {url}", flush=True)
        client = {**env, "PREFECT_API_URL": url}
        dates = ["2026-02-18", "2026-02-25"][-args.runs :] if args.runs <= 2 else [None] * args.runs
        for as_of in dates:
            cmd = [str(BIN / "rnn-forecast"), "run", "--store", str(work / "store")] + (
                ["--as-of", as_of] if as_of else []
            )
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, env=client, check=True, cwd=ROOT, timeout=900)
        runs = api(
            url,
            "/flow_runs/filter",
            {"sort": "START_TIME_DESC", "limit": 1, "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}},
        )
        run = runs[0]
        artifacts = api(url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 100})
        by_key = {a["key"]: a["id"] for a in artifacts if a.get("key")}
        ui = f"http://127.0.0.1:{port}"
        profile = work / "chromium"
        pages = [
            ("run-page.png", f"{ui}/runs/flow-run/{run['id']}", "1400,1000"),
            ("summary-artifact.png", f"{ui}/artifacts/artifact/{by_key['default-pipeline-summary']}", "1600,1400"),
            ("forecast-plot.png", f"{ui}/artifacts/artifact/{by_key['default-predict-forecast-plot']}", "1400,1500"),
        ]
        print(f"run {run['name']}: {run['state']['message']}", flush=True)
        for name, page, size in pages:
            screenshot(args.chromium, page, out / name, size, profile)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
