"""``flask_app.wsgi:app`` under a real gunicorn, as the instances run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.flask_app.conftest import REPO_ROOT
from tests.flask_app.mariadb import free_port


def http(method: str, url: str, body: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return int(response.status), dict(response.headers)


def test_gunicorn_serves_the_wsgi_app_with_json_logs(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "APP_INSTANCE_PATH": str(tmp_path / "instance")}
    stderr_path = tmp_path / "gunicorn.err"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "flask_app.wsgi:app",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    status, _ = http("GET", f"{base}/health")
                    break
                except (urllib.error.URLError, ConnectionError):
                    assert process.poll() is None, stderr_path.read_text()
                    assert time.monotonic() < deadline, stderr_path.read_text()
                    time.sleep(0.1)
            created, headers = http("POST", f"{base}/api/notes", {"title": "from gunicorn"})
            ready, _ = http("GET", f"{base}/ready")
        finally:
            process.terminate()
            process.wait(30)

    assert status == 200
    assert created == 201
    assert headers["Location"].startswith("/api/notes/")
    assert ready == 200
    app_lines = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.startswith("{")]
    assert any(line["message"] == "request" and line["status"] == 201 and line["request_id"] for line in app_lines)
