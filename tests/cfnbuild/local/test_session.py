"""``cfnbuild local start|status|stop``: a real background emulator, started and checked by separate processes.

Every test runs the CLI as a user would, one process per command, and the fixture kills by pid
whatever server a test started, so nothing outlives a test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from cfnbuild.cli.targets import ONE_SHOT_ENDED
from cfnbuild.local.session import identity, log_path
from tests.cfnbuild.local.conftest import LocalProject, alive, wait_gone

pytestmark = pytest.mark.server


def _listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp gives them) listening on ``port`` over IPv4 and IPv6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def _stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_start_runs_the_emulator_in_the_background_on_loopback_and_records_where(mini_local: LocalProject):
    started = mini_local.cli("local", "start")
    assert started.returncode == 0, started.stderr
    record = mini_local.session()
    assert set(record) == {"pid", "port", "endpoint_url", "started_at", "token", "region"}
    assert record["endpoint_url"] == f"http://localhost:{record['port']}"
    assert record["region"] == "eu-west-1"
    assert f"local session started at {record['endpoint_url']} (pid {record['pid']}, loopback only)" in started.stdout
    assert alive(record["pid"])
    assert identity(record["port"]) == {"token": record["token"], "pid": record["pid"]}
    assert _listening_addresses(record["port"]) == {"0100007F"}  # 127.0.0.1 only, no wildcard, no IPv6


def test_status_says_where_since_when_and_which_stacks_it_holds(mini_local: LocalProject):
    assert mini_local.cli("local", "start").returncode == 0
    record = mini_local.session()
    empty = mini_local.cli("local", "status")
    assert empty.returncode == 0, empty.stderr
    when = record["started_at"].replace("T", " ").replace("+00:00", " UTC")
    assert f"local session running at {record['endpoint_url']} (pid {record['pid']}, since {when})" in empty.stdout
    assert "it holds no stacks (in eu-west-1)" in empty.stdout
    assert mini_local.cli("deploy", "--local").returncode == 0
    holding = mini_local.cli("local", "status")
    assert "│ eu-west-1 │ mini-dev-local │ CREATE_COMPLETE │" in holding.stdout, holding.stdout


def test_stop_ends_the_process_and_leaves_nothing_of_the_session(mini_local: LocalProject):
    assert mini_local.cli("local", "start").returncode == 0
    record = mini_local.session()
    stopped = mini_local.cli("local", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"local session at {record['endpoint_url']} stopped" in stopped.stdout
    assert wait_gone(record["pid"], 1.0)
    assert not mini_local.record.exists()
    assert not log_path(mini_local.root).exists()
    assert identity(record["port"], timeout=0.5) is None
    again = mini_local.cli("local", "stop")
    assert (again.returncode, again.stdout.strip()) == (0, "no local session runs; nothing to stop")
    status = mini_local.cli("local", "status")
    assert status.stdout.strip() == "no local session runs; start one with 'cfnbuild local start'"


def test_stop_kills_a_server_that_does_not_end_on_sigterm_and_a_busy_server_is_not_taken_for_stale(
    mini_local: LocalProject,
):
    assert mini_local.cli("local", "start").returncode == 0
    record = mini_local.session()
    os.kill(record["pid"], signal.SIGSTOP)  # it answers nothing and handles no SIGTERM until continued
    stopped = mini_local.cli("local", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stderr == ""  # not said stale: the process is the server started with the record's token
    assert f"local session at {record['endpoint_url']} killed (it did not end on SIGTERM)" in stopped.stdout
    assert wait_gone(record["pid"], 1.0)
    assert not mini_local.record.exists()


def test_a_second_start_says_one_runs_where_and_exits_0(mini_local: LocalProject):
    assert mini_local.cli("local", "start").returncode == 0
    record = mini_local.session()
    second = mini_local.cli("local", "start")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"a local session already runs at {record['endpoint_url']} (pid {record['pid']}")
    assert mini_local.session() == record  # the same session: nothing new started
    other_port = mini_local.cli("local", "start", "--port", str(_free_port()))
    assert other_port.returncode == 1
    assert _stderr_lines(other_port) == [
        f"error: a local session already runs at {record['endpoint_url']} (pid {record['pid']}, since "
        f"{record['started_at'].replace('T', ' ').replace('+00:00', ' UTC')}), not on port "
        f"{other_port.args[-1]}; stop it with 'cfnbuild local stop' first"
    ]


def test_two_starts_at_once_make_one_session(mini_local: LocalProject):
    # Two `local start` of one project at the same moment: the session lock makes the second wait
    # and find the first's session, instead of a second server that nobody records.
    import subprocess
    import sys

    command = [sys.executable, "-m", "cfnbuild", "--project", str(mini_local.root), "local", "start"]
    env = mini_local.env()
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for _ in range(2)]  # fmt: skip
    results = [process.communicate(timeout=120) for process in both]
    mini_local.note_pid()
    assert [process.returncode for process in both] == [0, 0], results
    record = mini_local.session()
    said = sorted(out.splitlines()[0].split(" at ")[0] for out, _ in results)
    assert said == ["a local session already runs", "local session started"], results
    servers = subprocess.run(["pgrep", "-f", "cfnbuild.local.server"], capture_output=True, text=True, check=False)
    mine = [pid for pid in servers.stdout.split() if _cwd(pid) == mini_local.root.resolve()]  # run in the project
    mini_local.pids.update(int(pid) for pid in mine)  # whatever this test started ends with it
    assert mine == [str(record["pid"])], "one server, the recorded one"


def _cwd(pid: str) -> Path | None:
    try:
        return Path(f"/proc/{pid}/cwd").resolve(strict=True)
    except OSError:
        return None


def test_a_record_whose_process_ended_is_said_removed_and_not_used(mini_local: LocalProject):
    assert mini_local.cli("local", "start").returncode == 0
    record = mini_local.session()
    os.kill(record["pid"], signal.SIGKILL)
    assert wait_gone(record["pid"])
    status = mini_local.cli("local", "status")
    assert status.returncode == 0
    assert _stderr_lines(status) == [
        f"the local session recorded at {record['endpoint_url']} is gone: its process {record['pid']} has ended; "
        "removed its record"
    ]
    assert "no local session runs" in status.stdout
    assert not mini_local.record.exists()
    one_shot = mini_local.cli("status", "--local")  # not the dead session: a one-shot emulator
    assert one_shot.returncode == 0, one_shot.stderr
    assert "the embedded AWS emulator (moto)" in one_shot.stderr


def _answering_server() -> HTTPServer:
    """Another program on a loopback port: it answers every GET, but not as a session's emulator."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"hello": "not moto"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _record(project: LocalProject, pid: int, port: int) -> None:
    project.record.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": pid,
        "port": port,
        "endpoint_url": f"http://localhost:{port}",
        "started_at": "2026-01-01T00:00:00+00:00",
        "token": "0" * 32,
        "region": "eu-west-1",
    }
    project.record.write_text(json.dumps(record))


def test_a_record_whose_port_answers_as_another_program_is_not_trusted_and_that_program_is_left_alone(
    mini_local: LocalProject,
):
    other = _answering_server()
    try:
        port = other.server_address[1]
        _record(mini_local, os.getpid(), port)  # a pid that runs (this test), as when a pid is reused
        status = mini_local.cli("local", "status")
        assert status.returncode == 0
        assert _stderr_lines(status) == [
            f"the local session recorded at http://localhost:{port} is gone: port {port} does not answer as the "
            f"session's emulator (another program has it, or process {os.getpid()} is another program now); that "
            "process was left alone; removed its record"
        ]
        assert not mini_local.record.exists()
        stop = mini_local.cli("local", "stop")  # nothing to stop: the other program is not signalled
        assert stop.stdout.strip() == "no local session runs; nothing to stop"
        assert alive(os.getpid())
    finally:
        other.shutdown()
        other.server_close()


def test_a_record_whose_port_nobody_listens_on_is_said_and_removed(mini_local: LocalProject):
    port = _free_port()
    _record(mini_local, os.getpid(), port)
    status = mini_local.cli("local", "status")
    assert _stderr_lines(status) == [
        f"the local session recorded at http://localhost:{port} is gone: nothing listens on port {port} (process "
        f"{os.getpid()} is another program now); removed its record"
    ]


def test_a_damaged_record_is_said_and_removed(mini_local: LocalProject):
    mini_local.record.parent.mkdir(parents=True, exist_ok=True)
    mini_local.record.write_text('{"pid": "12"')
    status = mini_local.cli("local", "status")
    assert status.returncode == 0
    assert _stderr_lines(status) == [
        f"the local session record {mini_local.record} cannot be read (Expecting ',' delimiter: line 1 column 13 "
        "(char 12)); removed it"
    ]
    assert not mini_local.record.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_start_on_a_port_in_use_names_the_port_and_the_fix_and_starts_nothing(mini_local: LocalProject):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = mini_local.cli("local", "start", "--port", str(port))
    assert result.returncode == 1
    assert _stderr_lines(result) == [
        f"error: cannot start the local session: port {port} on 127.0.0.1 is in use by another program; choose a "
        "free one with --port N, or leave --port out to take any free port"
    ]
    assert not mini_local.record.exists()


def test_start_on_a_free_port_listens_there(mini_local: LocalProject):
    port = _free_port()
    result = mini_local.cli("local", "start", "--port", str(port))
    assert result.returncode == 0, result.stderr
    assert mini_local.session()["port"] == port
    assert identity(port) is not None


def test_a_server_that_cannot_start_is_one_line_with_what_it_said(mini_local: LocalProject, tmp_path: Path):
    broken = tmp_path / "broken"
    (broken / "moto").mkdir(parents=True)
    (broken / "moto/__init__.py").write_text("raise ImportError('moto is broken here')\n")
    env = mini_local.env()
    env["PYTHONPATH"] = os.pathsep.join([str(broken), env["PYTHONPATH"]])  # before the installed moto
    result = mini_local.cli("local", "start", env=env)
    assert result.returncode == 1
    assert _stderr_lines(result) == [
        "error: cannot start the local session: the emulator ended at once (exit 2), saying: the embedded emulator "
        "needs moto: pip install 'cfnbuild[local]'"
    ]
    assert not mini_local.record.exists()


def test_one_shot_local_is_unchanged_and_its_last_line_says_the_state_ended(mini_local: LocalProject):
    deployed = mini_local.cli("deploy", "--local")
    assert deployed.returncode == 0, deployed.stderr
    assert "the embedded AWS emulator (moto)" in deployed.stderr
    assert "mini-dev-local: CREATE_COMPLETE" in deployed.stdout
    assert _stderr_lines(deployed)[-1] == ONE_SHOT_ENDED
    status = mini_local.cli("status", "--local")  # the stack went with the last command's emulator
    assert status.stdout.strip() == "mini-dev-local: not deployed"
    assert _stderr_lines(status)[-1] == ONE_SHOT_ENDED
    assert not mini_local.record.exists()
