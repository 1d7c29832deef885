"""The instance files of blueprints/files/: each one's essentials, checked by the tool that reads it.

nginx parses the rendered site (``nginx -t``), systemd verifies the unit and rates its sandbox,
gunicorn validates its settings, the CloudWatch agent config is JSON naming only the stack's log
groups, and shellcheck passes the rendered user data, which also runs here end to end against
stand-ins for every command it calls (dnf, cfn-init, aws, systemctl, curl, cfn-signal, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from blueprints import compute, instance_files
from blueprints.artifact import REQUIREMENTS_NAME, TARGET_PYTHON
from blueprints.compute import USER_DATA_LIMIT, Compute
from blueprints.instance_files import (
    APP_LOG_DIR,
    APP_SOCKET,
    DEFAULT_MAX_BODY_BYTES,
    INSTANCE_FILES,
    MAX_SUBSTITUTED_CHARS,
    NGINX_LOG_DIR,
    render_user_data,
    sub_references,
    substitute,
    user_data_size_bound,
)
from cfnbuild.build.lint import cfn_lint, checkov
from flask_app.config import Settings
from tests.blueprints.test_compute import HELPERS, REGIONS, _stack
from tests.e2e import local_stack
from tests.servers import require_executable

CW_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
BOOTSTRAP_LOG = "/var/log/cfnbuild-bootstrap.log"
SIGNAL_TAIL = "--stack webapp-dev --resource AutoScalingGroup --region eu-west-1"


def _init_files(stack_dict: dict[str, Any]) -> dict[str, Any]:
    template = stack_dict["Resources"]["LaunchTemplate"]
    files: dict[str, Any] = template["Metadata"]["AWS::CloudFormation::Init"]["config"]["files"]
    return files


def _template_values(compute_blueprint: Compute) -> dict[str, str]:
    """What Fn::Sub would put in for each name on AWS, with stand-ins for the Refs."""
    values = {"AWS::Region": "eu-west-1", "AWS::StackName": "webapp-dev"}
    for name, value in compute_blueprint.user_data_variables.items():
        values[name] = value if isinstance(value, str) else f"sample-{name.lower()}"
    return values


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, Any], Compute]:
    stack, compute_blueprint, _ = _stack()
    return stack.to_dict(), compute_blueprint


# --- the template --------------------------------------------------------------------


def test_gate_zero_cfn_lint_and_checkov_findings_with_the_instance_files(tmp_path):
    stack, _, _ = _stack()
    text = stack.to_json()
    assert cfn_lint(text, REGIONS, file="t.json") == []
    template = json.loads(text)
    for helper in HELPERS:
        del template["Resources"][helper]
    path = tmp_path / "compute.json"
    path.write_text(json.dumps(template, indent=2, sort_keys=True))
    assert checkov([path], root=tmp_path) == []


def test_every_instance_file_reaches_the_launch_template_through_fn_sub_with_its_mode(built):
    stack_dict, compute_blueprint = built
    files = _init_files(stack_dict)
    assert set(files) == {f.path for f in INSTANCE_FILES}
    for f in INSTANCE_FILES:
        entry = files[f.path]
        assert (entry["mode"], entry["owner"], entry["group"]) == (f.mode, "root", "root")
        text, values = entry["content"]["Fn::Sub"]
        assert text == render_user_data(f.source)  # the one source, unchanged
        assert set(values) == sub_references(text) - {"AWS::Region", "AWS::StackName"}
    assert files["/etc/webapp/app.env"]["mode"] == "000640"
    # cfn-init is pointed at the resource that holds the metadata.
    assert compute_blueprint.user_data_variables["InitResource"] == "LaunchTemplate"


def test_seed_06_instance_files_hold_no_literal_region_account_or_secret(built):
    stack_dict, _ = built
    rendered = json.dumps(stack_dict["Resources"]["LaunchTemplate"])
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il)-[a-z]+-\d\b", rendered)
    assert not re.search(r"\b\d{12}\b", rendered)
    assert not re.search(r"arn:aws[a-z-]*:", rendered)
    assert "password" not in rendered.lower()
    _, env_values = _init_files(stack_dict)["/etc/webapp/app.env"]["content"]["Fn::Sub"]
    assert env_values["DbSecretArn"] == {"Ref": "DbSecret"}  # where the secret is, read by the app at start


def test_a_changed_instance_file_changes_the_user_data_so_the_group_rolls(tmp_path, monkeypatch):
    _, before, _ = _stack()
    for source in instance_files.FILES_DIR.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    site = tmp_path / "nginx-webapp.conf"
    site.write_text(site.read_text().replace("gzip_comp_level 5;", "gzip_comp_level 6;"))
    monkeypatch.setattr(instance_files, "FILES_DIR", tmp_path)
    _, after, _ = _stack()
    digest = before.user_data_variables["InstanceFilesDigest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", str(digest))
    assert after.user_data_variables["InstanceFilesDigest"] != digest
    assert "${InstanceFilesDigest}" in render_user_data()


def test_artifact_key_parameter_defaults_empty_and_accepts_only_release_keys(built):
    stack_dict, compute_blueprint = built
    parameter = stack_dict["Parameters"]["AppArtifactKey"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("releases/0123456789abcdef/app.tar.gz")
    assert not pattern.fullmatch("uploads/evil.tar.gz")
    assert compute_blueprint.user_data_variables["ArtifactKey"].to_dict() == {"Ref": "AppArtifactKey"}
    assert compute_blueprint.artifact_key.to_dict() == {"Ref": "AppArtifactKey"}


# --- nginx ---------------------------------------------------------------------------


def test_seed_14_nginx_listens_on_the_target_groups_port_and_proxies_to_gunicorns_socket():
    _, compute_blueprint, lb = _stack()
    assert compute_blueprint.user_data_variables["HttpPort"] == str(lb.target_port) == "80"
    site = render_user_data("nginx-webapp.conf")
    assert re.search(r"^\s*listen \$\{HttpPort\} default_server;", site, re.M)
    assert "server unix:${AppSocket} fail_timeout=0;" in site
    gunicorn = render_user_data("gunicorn_conf.py")
    assert '"unix:${AppSocket}"' in gunicorn  # the same template value on both sides
    assert compute_blueprint.user_data_variables["AppSocket"] == APP_SOCKET
    # Another port for nginx (and so the target group) flows into the site the same way.
    _, other, _ = _stack(http_port=8080)
    assert other.user_data_variables["HttpPort"] == "8080"


def test_nginx_parses_the_rendered_site_inside_the_distros_main_file(tmp_path):
    nginx = require_executable("nginx", "apt-get install nginx")
    base = Path(tmp_path)
    values = local_stack.local_values(base, 80)
    main = local_stack.write_nginx_files(base, values)
    result = subprocess.run(
        local_stack.nginx_command(nginx, base, main, "-t"), capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert "[warn]" not in result.stderr  # e.g. a conflicting server name with the distro's server


def test_nginx_site_sets_the_proxy_headers_limits_gzip_timeouts_and_json_log():
    site = render_user_data("nginx-webapp.conf")
    directives = {line.strip() for line in site.splitlines()}
    for header, value in {
        "Host": "$host",
        "X-Real-IP": "$remote_addr",
        "X-Forwarded-For": "$proxy_add_x_forwarded_for",
        "X-Forwarded-Proto": "$webapp_forwarded_proto",
        "X-Request-Id": "$webapp_request_id",
    }.items():
        assert f"proxy_set_header {header} {value};" in directives
    assert "client_max_body_size ${MaxBodyBytes};" in directives
    assert {"gzip on;", "server_tokens off;", "proxy_http_version 1.1;"} <= directives
    assert {"proxy_connect_timeout 5s;", "proxy_read_timeout 35s;", "client_body_timeout 15s;"} <= directives
    assert "keepalive_timeout 75s;" in directives  # above the ALB's 60 s idle timeout
    assert "access_log ${NginxLogDir}/access.log webapp_json;" in directives
    assert "log_format webapp_json escape=json" in directives
    health = site[site.index("location = /health") :]
    assert "proxy_pass http://webapp_gunicorn;" in health[: health.index("}")]


def test_nginx_and_the_app_refuse_the_same_body_size():
    # One template value: nginx's client_max_body_size and the app's APP_MAX_CONTENT_LENGTH.
    assert "client_max_body_size ${MaxBodyBytes};" in render_user_data("nginx-webapp.conf")
    assert "APP_MAX_CONTENT_LENGTH=${MaxBodyBytes}" in render_user_data("app.env").splitlines()
    assert Settings().max_content_length == DEFAULT_MAX_BODY_BYTES
    _, compute_blueprint, _ = _stack(max_body_bytes=1024 * 1024)
    assert compute_blueprint.user_data_variables["MaxBodyBytes"] == "1048576"


# --- gunicorn ------------------------------------------------------------------------


def _gunicorn_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in list(os.environ):
        if name.startswith("GUNICORN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(substitute(render_user_data("gunicorn_conf.py"), {"AppSocket": APP_SOCKET}))
    return runpy.run_path(str(path))


def test_gunicorn_settings_bind_the_socket_size_workers_from_cpus_and_are_accepted(tmp_path, monkeypatch):
    settings = _gunicorn_settings(tmp_path, monkeypatch)
    config = Config()
    for name, value in settings.items():
        if name in config.settings:
            config.set(name, value)  # gunicorn's own validators
    assert config.bind == [f"unix:{APP_SOCKET}"]
    assert config.workers == 2 * len(os.sched_getaffinity(0)) + 1
    assert (config.timeout, config.graceful_timeout, config.keepalive) == (30, 30, 5)
    assert config.forwarded_allow_ips == ["127.0.0.1", "::1"]
    assert config.umask == 0o007
    assert (config.accesslog, config.errorlog) == ("-", "-")
    assert issubclass(config.logger_class, glogging.Logger)
    overridden = _gunicorn_settings(tmp_path, monkeypatch, GUNICORN_BIND="127.0.0.1:9000", GUNICORN_WORKERS="3")
    assert (overridden["bind"], overridden["workers"]) == (["127.0.0.1:9000"], 3)


def test_gunicorn_timeouts_nest_inside_nginx_and_systemd():
    site = render_user_data("nginx-webapp.conf")
    unit = render_user_data("webapp.service")
    gunicorn = render_user_data("gunicorn_conf.py")
    # nginx closes idle upstream connections before gunicorn does; waits longer than gunicorn's kill.
    assert "keepalive_timeout 4s;" in site
    assert "keepalive = 5" in gunicorn
    assert "proxy_read_timeout 35s;" in site
    assert "timeout = 30" in gunicorn
    # systemd waits longer than gunicorn's graceful stop.
    assert "graceful_timeout = 30" in gunicorn
    assert "TimeoutStopSec=45" in unit.splitlines()


# --- systemd -------------------------------------------------------------------------


def _unit_options(text: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            options.setdefault(key, []).append(value)
    return options


def test_the_unit_runs_gunicorn_as_its_own_user_sandboxed_restarting_with_the_bootstraps_environment():
    options = _unit_options(render_user_data("webapp.service"))
    expected = {
        "User": "webapp",
        "Group": "webapp",
        "Type": "notify",
        "Restart": "always",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ReadWritePaths": "/run/webapp",
        "RuntimeDirectory": "webapp",
        "EnvironmentFile": "/etc/webapp/app.env",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert options[key] == [value], key
    assert options["ExecStart"] == [
        "${AppHome}/venv/bin/gunicorn --config /etc/webapp/gunicorn.conf.py flask_app.wsgi:app"
    ]
    # The socket lives in the unit's runtime directory; the env file and config are the ones cfn-init writes.
    assert APP_SOCKET.startswith("/run/" + options["RuntimeDirectory"][0] + "/")
    paths = {f.path for f in INSTANCE_FILES}
    assert {"/etc/webapp/app.env", "/etc/webapp/gunicorn.conf.py"} <= paths


def test_systemd_verifies_the_rendered_unit_and_rates_its_sandbox_ok(tmp_path):
    analyze = require_executable("systemd-analyze", "apt-get install systemd")
    (tmp_path / "app" / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "app" / "venv" / "bin" / "gunicorn").symlink_to(local_stack.VENV_BIN / "gunicorn")
    unit = tmp_path / "webapp.service"
    unit.write_text(
        substitute(render_user_data("webapp.service"), {"AppHome": str(tmp_path / "app"), "AppLogDir": str(tmp_path)})
    )
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False, timeout=60)
    # verify exits 0 even for unknown or misspelt options: it reports them on stderr.
    assert verify.returncode == 0
    assert verify.stderr.strip() == ""
    security = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for webapp.service: (\d+\.\d+)", security.stdout + security.stderr)
    assert match, security.stdout + security.stderr
    assert float(match.group(1)) <= 2.0  # systemd's scale: 0 (locked down) .. 10 (exposed)


# --- CloudWatch agent ----------------------------------------------------------------


def test_seed_09_cloudwatch_agent_config_is_json_shipping_each_log_to_the_stacks_group(built):
    stack_dict, compute_blueprint = built
    text, values = _init_files(stack_dict)[CW_CONFIG]["content"]["Fn::Sub"]
    config = json.loads(substitute(text, _template_values(compute_blueprint)))
    collected = config["logs"]["logs_collected"]["files"]["collect_list"]
    groups = {entry["file_path"]: entry["log_group_name"] for entry in collected}
    assert groups == {
        f"{APP_LOG_DIR}/app.log": "sample-apploggroup",
        f"{NGINX_LOG_DIR}/access.log": "sample-nginxaccessloggroup",
        f"{NGINX_LOG_DIR}/error.log": "sample-nginxerrorloggroup",
        BOOTSTRAP_LOG: "sample-bootstraploggroup",
        "/var/log/cfn-init.log": "sample-bootstraploggroup",
    }
    # Only the stack's own log groups, by Ref; none is created or retained by the agent.
    assert {n: values[n] for n in values if n.endswith("LogGroup")} == {
        "AppLogGroup": {"Ref": "AppLogs"},
        "NginxAccessLogGroup": {"Ref": "NginxAccessLogs"},
        "NginxErrorLogGroup": {"Ref": "NginxErrorLogs"},
        "BootstrapLogGroup": {"Ref": "BootstrapLogs"},
    }
    assert not any("retention_in_days" in entry for entry in collected)
    assert {entry["log_stream_name"].split("/")[0] for entry in collected} == {"{instance_id}"}


def test_cloudwatch_agent_puts_memory_and_disk_into_the_stacks_namespace_by_group(built):
    stack_dict, compute_blueprint = built
    text, values = _init_files(stack_dict)[CW_CONFIG]["content"]["Fn::Sub"]
    metrics = json.loads(substitute(text, _template_values(compute_blueprint)))["metrics"]
    assert metrics["namespace"] == "WebApp" == values["MetricsNamespace"]
    # The agent's own placeholder, escaped from Fn::Sub as ${!aws:...}.
    assert metrics["append_dimensions"]["AutoScalingGroupName"] == "${aws:AutoScalingGroupName}"
    assert metrics["aggregation_dimensions"] == [["AutoScalingGroupName"]]
    assert metrics["metrics_collected"]["mem"]["measurement"] == ["mem_used_percent"]
    assert "used_percent" in metrics["metrics_collected"]["disk"]["measurement"]


def test_the_log_files_shipped_are_the_ones_written():
    unit = _unit_options(render_user_data("webapp.service"))
    assert unit["StandardOutput"] == unit["StandardError"] == ["append:${AppLogDir}/app.log"]
    assert "${AppLogDir}/app.log {" in render_user_data("logrotate-webapp")
    assert "copytruncate" in render_user_data("logrotate-webapp")
    cw = render_user_data("cloudwatch-agent.json")
    for path in ("${AppLogDir}/app.log", "${NginxLogDir}/access.log", "${NginxLogDir}/error.log", BOOTSTRAP_LOG):
        assert f'"file_path": "{path}"' in cw
    assert f"tee -a {BOOTSTRAP_LOG} " in render_user_data()


# --- user data -----------------------------------------------------------------------


def test_seed_13_rendered_user_data_is_shellcheck_clean(tmp_path, built):
    shellcheck = require_executable("shellcheck", "apt-get install shellcheck")
    _, compute_blueprint = built
    for key in ("releases/0123456789abcdef/app.tar.gz", ""):
        values = {**_template_values(compute_blueprint), "ArtifactKey": key}
        script = tmp_path / "user-data.sh"
        script.write_text(substitute(render_user_data(), values))
        result = subprocess.run(
            [shellcheck, "--shell=bash", "--severity=style", str(script)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout


def test_seed_13_user_data_fits_ec2s_16_kb_with_every_value_at_its_longest(built):
    _, compute_blueprint = built
    text = render_user_data()
    variables = compute_blueprint.user_data_variables
    assert user_data_size_bound(text, variables) < USER_DATA_LIMIT
    # Every value CloudFormation resolves at its longest; the ones fixed at build time as rendered.
    longest = {
        n: v if isinstance(v := variables.get(n), str) else "x" * MAX_SUBSTITUTED_CHARS for n in sub_references(text)
    }
    worst = substitute(text, longest)
    assert len(worst.encode()) < USER_DATA_LIMIT


STUB = """#!/bin/bash
printf '%s\\n' "$(/usr/bin/basename "$0") $*" >> "$CALLS"
"""
STUBS = {
    "cfn-signal": 'printf \'%s\\n\' "$*" >> "$SIGNALS"\n',
    "id": "exit 1\n",
    "logger": "/usr/bin/cat > /dev/null\n",
    # The health probe answers the next code of $CODES (the last one once they run out), failing
    # unless it is 200 as 'curl -f' does; IMDS answers a token and an instance id.
    "curl": """case " $* " in *"/health "*)
  code=$(/usr/bin/head -n 1 "$CODES"); /usr/bin/sed -i 1d "$CODES"
  if [ -z "$code" ]; then code=$(/usr/bin/cat "$LAST_CODE"); fi
  printf '%s' "$code" > "$LAST_CODE"; [ "$code" = 200 ] || exit 22;;
  *api/token*) printf 'token-1';;
  *meta-data/instance-id*) printf 'i-0abc';;
esac
""",
    # 'python3.11 -m venv DIR' makes DIR/bin/pip and DIR/bin/python, stubs like this one.
    "python3.11": '/usr/bin/mkdir -p "$3/bin"; for t in pip python; do /usr/bin/cp "$0.stub" "$3/bin/$t"; done\n',
    # Fails as many times as $MIGRATE_FAILURES says, then succeeds.
    "systemd-run": """n=$(/usr/bin/cat "$MIGRATE_FAILURES")
if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$MIGRATE_FAILURES"; exit 1; fi
""",
    # 'aws s3 cp SRC DEST' fails $S3_FAILURES times, then writes RELEASE to DEST; the instance's
    # group tag is read, and the lifecycle hook completed, at once.
    "aws": """case "$1 $2" in
  "ec2 describe-tags") printf 'webapp-dev-AutoScalingGroup-1A2B\\n'; exit 0;;
  "autoscaling complete-lifecycle-action") exit 0;;
esac
n=$(/usr/bin/cat "$S3_FAILURES")
if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$S3_FAILURES"; exit 1; fi
printf '%s' "$RELEASE" > "${*: -1}"
""",
}
RELEASE = "the release's bytes"
RELEASE_KEY = f"releases/{hashlib.sha256(RELEASE.encode()).hexdigest()[:16]}/app.tar.gz"
# Real tools the script may use; everything else it calls must be a stub, or it fails.
REAL_TOOLS = ("tee", "rm", "seq", "cat", "sha256sum", "cut", "timeout")


def _wait_values() -> dict[str, str]:
    """The waits' numbers and the hook's name, as the blueprint renders them into the user data."""
    values = {
        "LifecycleHookName": compute.LAUNCH_HOOK_NAME,
        "TimeoutKillSeconds": str(instance_files.TIMEOUT_KILL_SECONDS),
    }
    for wait in instance_files.BOOTSTRAP_WAITS:
        values.update(wait.variables())
    return values


def _attempts(wait: str) -> int:
    return next(w.attempts for w in instance_files.BOOTSTRAP_WAITS if w.name == wait)


def _run_user_data(
    tmp_path: Path, *, artifact_key: str = RELEASE_KEY, codes=("200",), migrate_failures=0, s3_failures=0
) -> tuple[int, list[str], list[str], str]:
    """Run the rendered user data with every command stubbed: (status, calls, signals, log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubbed = {
        "dnf", "id", "useradd", "usermod", "install", "cfn-init", "amazon-cloudwatch-agent-ctl", "curl", "chmod",
        "aws", "tar", "python3.11", "systemd-run", "systemctl", "nginx", "sleep", "logger", "cfn-signal",
    }  # fmt: skip
    for name in stubbed:
        (bin_dir / name).write_text(STUB + STUBS.get(name, ""))
        (bin_dir / name).chmod(0o755)
    (bin_dir / "python3.11.stub").write_text(STUB)
    (bin_dir / "python3.11.stub").chmod(0o755)
    for name in REAL_TOOLS:
        (bin_dir / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    files = {name: tmp_path / name for name in ("calls", "signals", "codes", "last", "failures", "s3")}
    files["codes"].write_text("".join(f"{c}\n" for c in codes))
    files["last"].write_text("000")
    files["failures"].write_text(str(migrate_failures))
    files["s3"].write_text(str(s3_failures))
    for name in ("calls", "signals"):
        files[name].touch()
    (tmp_path / "app").mkdir()
    values = {
        "AWS::Region": "eu-west-1",
        "AWS::StackName": "webapp-dev",
        "SignalResource": "AutoScalingGroup",
        "InitResource": "LaunchTemplate",
        "InstanceFilesDigest": "sha256:0123456789abcdef",
        "AppHome": str(tmp_path / "app"),
        "AppLogDir": str(tmp_path / "log"),
        "ArtifactKey": artifact_key,
        "AssetsBucket": "assets-bucket",
        "ArtifactBucket": "assets-bucket",
        "HttpPort": "80",
        **_wait_values(),
    }
    script = substitute(render_user_data(), values)
    for path, stub in {
        "/opt/aws/bin/cfn-signal": "cfn-signal",
        "/opt/aws/bin/cfn-init": "cfn-init",
        "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl": "amazon-cloudwatch-agent-ctl",
    }.items():
        assert path in script
        script = script.replace(path, str(bin_dir / stub))
    log = tmp_path / "bootstrap.log"
    script = script.replace(BOOTSTRAP_LOG, str(log)).replace("/dev/console", str(tmp_path / "console"))
    (tmp_path / "user-data.sh").write_text(script)
    env = {
        "PATH": str(bin_dir),
        "CALLS": str(files["calls"]),
        "SIGNALS": str(files["signals"]),
        "CODES": str(files["codes"]),
        "LAST_CODE": str(files["last"]),
        "MIGRATE_FAILURES": str(files["failures"]),
        "S3_FAILURES": str(files["s3"]),
        "RELEASE": RELEASE,
    }
    result = subprocess.run(
        ["/bin/bash", str(tmp_path / "user-data.sh")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    # The logger and cfn-signal stubs' own lines: the signals file has what matters of them.
    calls = [c for c in files["calls"].read_text().splitlines() if not c.startswith(("logger", "cfn-signal"))]
    assert "command not found" not in result.stderr, result.stderr
    return result.returncode, calls, files["signals"].read_text().splitlines(), log.read_text()


def _index(calls: list[str], prefix: str) -> int:
    return next(i for i, call in enumerate(calls) if call.startswith(prefix))


def test_seed_13_user_data_installs_configures_migrates_starts_and_signals_success_last(tmp_path):
    status, calls, signals, log = _run_user_data(tmp_path)
    assert status == 0, log
    assert signals == [f"-e 0 --reason bootstrap complete: /health answers 200 through nginx {SIGNAL_TAIL}"]
    app = tmp_path / "app"
    steps = [
        "dnf install -y aws-cfn-bootstrap",
        f"dnf install -y nginx python{TARGET_PYTHON} python{TARGET_PYTHON}-pip amazon-cloudwatch-agent",
        "useradd --system --no-create-home",
        "usermod -a -G webapp nginx",
        "cfn-init -v --stack webapp-dev --resource LaunchTemplate --region eu-west-1",
        "amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:" + CW_CONFIG,
        "curl -fsS -o /etc/webapp/rds-ca.pem",
        f"aws s3 cp --only-show-errors --region eu-west-1 s3://assets-bucket/{RELEASE_KEY} {app}/app.tar.gz",
        f"tar -xzf {app}/app.tar.gz -C {app}/release --no-same-owner",
        f"python{TARGET_PYTHON} -m venv {app}/venv",
        f"pip install --quiet --no-cache-dir --disable-pip-version-check --no-input --only-binary=:all: "
        f"-r {app}/release/{REQUIREMENTS_NAME} {app}/release/*.whl",
        "systemd-run --quiet --wait --pipe --collect --uid=webapp --gid=webapp --property=RuntimeMaxSec=40 "
        f"--property=EnvironmentFile=/etc/webapp/app.env {app}/venv/bin/python -m flask_app migrate",
        "systemctl daemon-reload",
        "systemctl restart webapp.service",
        "nginx -t",
        "systemctl restart nginx.service",
        "curl -fsS -o /dev/null http://127.0.0.1:80/health",
        "aws autoscaling complete-lifecycle-action --region eu-west-1 --lifecycle-hook-name bootstrap "
        "--auto-scaling-group-name webapp-dev-AutoScalingGroup-1A2B --instance-id i-0abc "
        "--lifecycle-action-result CONTINUE",
    ]
    positions = [_index(calls, step) for step in steps]
    assert positions == sorted(positions), calls
    # The hook is completed once, last, and only then is success signalled.
    assert [c for c in calls if "complete-lifecycle-action" in c] == [calls[-1]]
    assert log.index("completing the launch lifecycle hook") < log.index("bootstrap: signalling success")


def test_seed_13_success_waits_for_health_through_nginx_and_retries_a_bounded_number_of_times(tmp_path):
    status, calls, signals, log = _run_user_data(tmp_path, codes=("000", "502", "502", "200"))
    assert status == 0, log
    assert len([c for c in calls if c.startswith("curl") and "/health" in c]) == 4
    assert [s.split()[1] for s in signals] == ["0"]
    assert f"curl failed or took over 5 s (attempt 3 of {_attempts('Health')})" in log


def test_seed_13_no_success_signal_when_health_never_answers_200_only_a_failure_with_the_reason(tmp_path):
    status, calls, signals, _ = _run_user_data(tmp_path, codes=("502",))
    assert status != 0
    assert len([c for c in calls if c.startswith("curl") and "/health" in c]) == _attempts("Health")
    (signal,) = signals
    assert signal.startswith("-e 1 --reason bootstrap failed at line ")
    assert f"(/health did not answer 200 through nginx in {_attempts('Health')} attempts; curl's errors" in signal
    assert signal.endswith(SIGNAL_TAIL)
    # Not in service: the hook is abandoned, and Auto Scaling replaces the instance.
    assert calls[-1].endswith("--lifecycle-action-result ABANDON")


def test_seed_13_an_empty_artifact_key_fails_fast_with_a_reason_that_says_how_to_deploy(tmp_path):
    status, calls, signals, _ = _run_user_data(tmp_path, artifact_key="")
    assert status != 0
    (signal,) = signals
    assert "AppArtifactKey is empty, so there is no release to install" in signal
    assert "cfnbuild deploy" in signal
    # Only the helper scripts (for the signal) were installed: no packages, no cfn-init, no app;
    # then the launch hook was abandoned (the instance's id and group looked up first).
    assert [c.split()[0] for c in calls] == ["dnf", "curl", "curl", "aws", "aws"]
    assert calls[-1].endswith("--lifecycle-action-result ABANDON")


def test_seed_13_migration_is_retried_while_the_database_comes_up_then_fails_with_the_reason(tmp_path):
    status, calls, signals, _ = _run_user_data(tmp_path, migrate_failures=2)
    assert status == 0
    assert len([c for c in calls if c.startswith("systemd-run")]) == 3
    (tmp_path / "again").mkdir()
    status, calls, signals, _ = _run_user_data(tmp_path / "again", migrate_failures=99)
    assert status != 0
    assert len([c for c in calls if c.startswith("systemd-run")]) == _attempts("Migrate")
    assert f"the database migration failed {_attempts('Migrate')} times" in signals[0]
    assert not [c for c in calls if c.startswith("systemctl restart")]


def test_user_data_downloads_the_ca_bundle_the_app_environment_names():
    env = local_stack.parse_environment_file(render_user_data("app.env"))
    assert f"-o {env['APP_DB_TLS_CA']}" in render_user_data()


def test_seed_13_the_release_is_awaited_while_the_first_deploy_uploads_it(tmp_path):
    status, calls, signals, log = _run_user_data(tmp_path, s3_failures=3)
    assert status == 0, log
    assert len([c for c in calls if c.startswith("aws s3 cp")]) == 4
    assert f"aws failed or took over 15 s (attempt 3 of {_attempts('Release')})" in log
    assert [s.split()[1] for s in signals] == ["0"]


def test_seed_13_a_release_that_does_not_match_its_content_addressed_key_is_refused(tmp_path):
    status, calls, signals, _ = _run_user_data(tmp_path, artifact_key="releases/0123456789abcdef/app.tar.gz")
    assert status != 0
    (signal,) = signals
    digest = hashlib.sha256(RELEASE.encode()).hexdigest()[:16]
    assert f"the release's sha256 begins {digest}, which its key releases/0123456789abcdef/app.tar.gz" in signal
    assert not [c for c in calls if c.startswith(("tar", "pip", "systemctl"))]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"http_port": 0}, "'http_port': is 0; give the target group's TCP port"),
        ({"max_body_bytes": 10}, "'max_body_bytes': is 10; use 1024 to 104857600 bytes"),
    ],
)
def test_a_port_or_body_limit_nginx_cannot_use_is_rejected(inputs, message):
    from cfnbuild import InputError

    with pytest.raises(InputError, match="Compute input " + message):
        _stack(**inputs)


def test_an_instance_file_referencing_an_unknown_value_is_rejected_naming_the_file(tmp_path, monkeypatch):
    from cfnbuild import InputError

    for source in instance_files.FILES_DIR.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    (tmp_path / "app.env").write_text("APP_X=${Nowhere}\n")
    monkeypatch.setattr(instance_files, "FILES_DIR", tmp_path)
    with pytest.raises(InputError, match=r"app.env references \$\{Nowhere\}, which nothing provides"):
        _stack()
