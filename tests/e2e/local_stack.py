"""nginx → gunicorn → flask_app on loopback, configured from the instance files themselves.

The nginx site, the gunicorn settings and the app environment are the templates of
``blueprints/files/`` rendered with :func:`blueprints.compute.substitute` (what ``Fn::Sub`` does on
AWS), with a free port and paths in a temporary directory in place of the instance's port 80,
``/run/webapp`` and ``/var/log``. Only the nginx main file is the test's own: it mirrors Amazon
Linux 2023's ``/etc/nginx/nginx.conf`` (including its example server on the same port), with pid,
logs and temporary files in the directory, and runs in the foreground (``daemon off``).

Used by ``tests/e2e`` and ``bench/app.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from blueprints.instance_files import DEFAULT_MAX_BODY_BYTES, render_user_data, substitute

START_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 10
VENV_BIN = Path(sys.executable).parent
# The checkout, whose flask_app/ the servers run: on an instance it is installed from the release
# artifact's wheel (blueprints/artifact.py), here it is imported from the sources (PYTHONPATH).
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_values(base: Path, http_port: int, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, str]:
    """The template values for a local run: what the compute blueprint passes, moved into ``base``."""
    return {
        "AWS::Region": "eu-west-1",
        "AWS::StackName": "local",
        "HttpPort": str(http_port),
        "AppSocket": str(base / "run" / "gunicorn.sock"),
        "AppHome": str(base),
        "AppLogDir": str(base / "log"),
        "NginxLogDir": str(base / "nginx"),
        "MaxBodyBytes": str(max_body_bytes),
        "DbSecretArn": "",
        "AssetsBucket": "",
        "UploadsPrefix": "uploads/",
    }


def render(name: str, values: Mapping[str, str]) -> str:
    """``blueprints/files/<name>`` with ``values`` substituted, as Fn::Sub would."""
    return substitute(render_user_data(name), values)


def parse_environment_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a systemd EnvironmentFile (comments and blank lines skipped)."""
    result = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition("=")
            result[key.strip()] = value.strip()
    return result


def nginx_main_conf(base: Path, site: Path, http_port: int, *, workers: int = 1) -> str:
    """The main file around the site: AL2023's nginx.conf, with every path inside ``base``."""
    nginx_dir = base / "nginx"
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    mime_types = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").is_file() else ""
    temp = "\n".join(
        f"    {kind}_temp_path {nginx_dir / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes {workers};
pid {nginx_dir / "nginx.pid"};
error_log {nginx_dir / "error.log"} info;
events {{
    worker_connections 1024;
}}
http {{
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    types_hash_max_size 4096;
    {mime_types}
    default_type application/octet-stream;
    access_log {nginx_dir / "default-access.log"};
{temp}
    include {site};
    # The distro's example server on the same port: the site's default_server must win.
    server {{
        listen {http_port};
        server_name _;
        return 418;
    }}
}}
"""


def write_nginx_files(base: Path, values: Mapping[str, str], *, workers: int = 1) -> Path:
    """Render the site into ``base``, write the main file around it; return the main file's path."""
    nginx_dir = base / "nginx"
    (nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
    site = base / "webapp.conf"
    site.write_text(render("nginx-webapp.conf", values))
    main = base / "nginx.conf"
    main.write_text(nginx_main_conf(base, site, int(values["HttpPort"]), workers=workers))
    return main


def nginx_command(nginx: str, base: Path, main: Path, *args: str) -> list[str]:
    """nginx with its prefix, main file and early error log in ``base``."""
    return [nginx, "-p", f"{base / 'nginx'}/", "-e", str(base / "nginx" / "error.log"), "-c", str(main), *args]


@dataclass
class LocalStack:
    """A running nginx and gunicorn; :meth:`stop` ends both."""

    base: Path
    http_port: int
    values: dict[str, str]
    environment: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def app_log(self) -> Path:
        """What systemd would append the service's stdout and stderr to."""
        return Path(self.values["AppLogDir"]) / "app.log"

    @property
    def access_log(self) -> Path:
        """nginx's JSON access log."""
        return Path(self.values["NginxLogDir"]) / "access.log"

    @property
    def error_log(self) -> Path:
        """nginx's error log."""
        return Path(self.values["NginxLogDir"]) / "error.log"

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        """A new HTTP connection to nginx."""
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request through nginx: status, headers (lower-case names), body."""
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def logs(self) -> str:
        """The tails of the logs, for a failure message."""
        parts = []
        for path in (self.app_log, self.error_log):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """nginx and gunicorn stop gracefully (SIGQUIT, SIGTERM); killed if they linger."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if "nginx" in str(process.args) else signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)
        self.processes.clear()


def start(
    nginx: str,
    *,
    database_url: str,
    tls_ca: str | None = None,
    assets_bucket: str | None = None,
    aws_endpoint_url: str | None = None,
    workers: int = 2,
    nginx_workers: int = 1,
    extra_environment: Mapping[str, str] | None = None,
    wsgi_app: str = "flask_app.wsgi:app",
    python_path: Path | None = None,
) -> LocalStack:
    """Start gunicorn (the rendered settings) and nginx (the rendered site) in a new temporary directory.

    ``wsgi_app`` (on ``python_path``) replaces the app, e.g. for a benchmark's baseline.
    """
    # A short path: a unix socket's path is limited to about 100 characters.
    base = Path(tempfile.mkdtemp(prefix="e2e-"))
    http_port = free_port()
    values = local_values(base, http_port)
    for directory in ("run", "log"):
        (base / directory).mkdir()
    stack = LocalStack(base=base, http_port=http_port, values=values, environment={})
    try:
        stack.environment = _app_environment(
            values,
            database_url=database_url,
            tls_ca=tls_ca,
            assets_bucket=assets_bucket,
            aws_endpoint_url=aws_endpoint_url,
            workers=workers,
            extra=extra_environment,
        )
        gunicorn_conf = base / "gunicorn.conf.py"
        gunicorn_conf.write_text(render("gunicorn_conf.py", values))
        with stack.app_log.open("ab") as log:
            stack.processes.append(
                subprocess.Popen(
                    [
                        str(VENV_BIN / "gunicorn"),
                        "--config",
                        str(gunicorn_conf),
                        *(["--pythonpath", str(python_path)] if python_path else []),
                        wsgi_app,
                    ],
                    cwd=base,
                    env=stack.environment,
                    stdout=log,
                    stderr=log,
                )
            )
        _wait_for(stack, lambda: Path(values["AppSocket"]).exists(), "gunicorn's socket")
        main = write_nginx_files(base, values, workers=nginx_workers)
        stack.processes.append(
            subprocess.Popen(
                nginx_command(nginx, base, main, "-g", "daemon off;"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_for(stack, lambda: _answers(stack), "/health through nginx")
    except BaseException:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    return stack


def _app_environment(
    values: Mapping[str, str],
    *,
    database_url: str,
    tls_ca: str | None,
    assets_bucket: str | None,
    aws_endpoint_url: str | None,
    workers: int,
    extra: Mapping[str, str] | None,
) -> dict[str, str]:
    """The rendered app.env (what systemd gives the service) with the local database and AWS endpoint."""
    environment = parse_environment_file(render("app.env", values))
    # Locally there is no secret to read: the URL takes precedence; nor a bucket unless one is given.
    for name in ("APP_DB_SECRET_ARN", "APP_DB_TLS_CA", "APP_ASSETS_BUCKET"):
        environment.pop(name)
    environment["APP_DATABASE_URL"] = database_url
    if tls_ca:
        environment["APP_DB_TLS_CA"] = tls_ca
    if assets_bucket:
        environment["APP_ASSETS_BUCKET"] = assets_bucket
    if aws_endpoint_url:
        environment["APP_AWS_ENDPOINT_URL"] = aws_endpoint_url
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": values["AppHome"],
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GUNICORN_WORKERS": str(workers),
        "PYTHONPATH": str(ROOT),
        **environment,
        **(extra or {}),
    }


def migrate(environment: Mapping[str, str]) -> str:
    """``python -m flask_app migrate``, as the bootstrap runs it (the service's environment); its output."""
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "flask_app", "migrate"],
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def _answers(stack: LocalStack) -> bool:
    try:
        status, _, _ = stack.request("GET", "/health")
    except OSError:
        return False
    return status == 200


def _wait_for(stack: LocalStack, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        for process in stack.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited ({process.returncode}) before {what}:\n{stack.logs()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} in {START_TIMEOUT_SECONDS} s:\n{stack.logs()}")
        time.sleep(0.05)
