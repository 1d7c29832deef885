"""The files an app server runs: the user data and the instance files, rendered through ``Fn::Sub``.

Every file is a template in ``blueprints/files/``, the one source for the launch template and for
the end-to-end test that runs them locally. :data:`BOOTSTRAP_WAITS` are the user data's bounded
waits, rendered into the script, from which the launch hook's heartbeat, the signal timeout and
the rolling-update pause are derived (:func:`launch_hook_timeout`, :func:`signal_timeout`);
:func:`user_data_size_bound` proves the rendered script stays under EC2's 16 KB.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from troposphere import (
    AWSHelperFn,
)

FILES_DIR = Path(__file__).resolve().parent / "files"


MAX_SUBSTITUTED_CHARS = 256


_REFERENCE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class BootstrapWait:
    """One bounded wait of the user data: ``retry "${<name>Attempts}" "${<name>Seconds}" "${<name>PauseSeconds}" CMD``.

    The script's ``retry`` runs CMD at most ``attempts`` times, each under ``timeout`` (stopped after
    ``seconds``, killed :data:`TIMEOUT_KILL_SECONDS` later if it ignores that), ``pause`` seconds
    apart; the blueprint renders these numbers into the script, so they are the script's own.
    """

    name: str
    attempts: int
    seconds: int
    pause: int
    doc: str

    @property
    def bound(self) -> int:
        """The longest one use of this wait can take, in seconds."""
        return self.attempts * (self.seconds + TIMEOUT_KILL_SECONDS) + (self.attempts - 1) * self.pause

    def variables(self) -> dict[str, str]:
        """The ``Fn::Sub`` values the script's ``retry`` of this wait references."""
        return {
            f"{self.name}Attempts": str(self.attempts),
            f"{self.name}Seconds": str(self.seconds),
            f"{self.name}PauseSeconds": str(self.pause),
        }


TIMEOUT_KILL_SECONDS = 5


# Every wait of blueprints/files/user-data.sh, the one source of its numbers and of the launch
# hook's timeout. A use in the script counts each time (two service restarts, three identity calls).
BOOTSTRAP_WAITS: tuple[BootstrapWait, ...] = (
    BootstrapWait("HelperScripts", 1, 180, 0, "dnf install of the CloudFormation helper scripts"),
    BootstrapWait("Packages", 1, 300, 0, "dnf install of nginx, Python and the CloudWatch agent"),
    BootstrapWait("InstanceFiles", 1, 90, 0, "cfn-init writing the instance files from the template's metadata"),
    BootstrapWait("Agent", 1, 60, 0, "starting the CloudWatch agent"),
    BootstrapWait("CaBundle", 3, 15, 5, "the RDS certificate bundle"),
    # On a stack's first deploy the deploy command uploads the release once the bucket exists:
    # about eight minutes of pauses, as before, for it to appear.
    BootstrapWait("Release", 24, 15, 20, "the release artifact from S3, awaited while the first deploy uploads it"),
    BootstrapWait("Venv", 1, 180, 0, "pip installing the release's wheels"),
    BootstrapWait("Migrate", 8, 40, 15, "the database migration, retried while the cluster comes up"),
    BootstrapWait("ServiceStart", 1, 90, 0, "one systemctl restart (gunicorn, nginx)"),
    BootstrapWait("Health", 20, 5, 3, "/health through nginx answering 200"),
    BootstrapWait("Imds", 3, 5, 2, "one IMDSv2 call (the token, the instance id)"),
    BootstrapWait("GroupName", 3, 15, 5, "reading the instance's aws:autoscaling:groupName tag"),
    BootstrapWait("CompleteHook", 5, 15, 5, "completing the launch lifecycle hook"),
)


# From the launch (the hook's timer starts when the instance enters Pending:Wait) to the user data's
# first command: EC2 boot and cloud-init. And the script's steps that wait on nothing (users,
# directories, tar, the venv) plus what a CPU-starved instance adds to every step.
BOOT_SECONDS = 180


UNWAITED_STEPS_SECONDS = 120


# The success signal comes after the hook is completed (see user-data.sh): its own time.
SIGNAL_SECONDS = 120


_RETRY_CALL = re.compile(r"(?m)^\s*(?:[A-Za-z_]+=\"\$\()?retry\b(?!\(\))(.*)$")


_RETRY_ARGUMENTS = re.compile(r'"\$\{([A-Za-z]+)Attempts\}" "\$\{\1Seconds\}" "\$\{\1PauseSeconds\}" \S')


def bootstrap_waits(script: str) -> list[BootstrapWait]:
    """The wait of each ``retry`` call in ``script``, in order (a wait used twice is listed twice).

    Raises ``ValueError`` for a call whose numbers are not one wait of :data:`BOOTSTRAP_WAITS`:
    its bound would be unknown, and the launch hook could end before the bootstrap does.
    """
    by_name = {w.name: w for w in BOOTSTRAP_WAITS}
    waits = []
    for match in _RETRY_CALL.finditer(script):
        arguments = _RETRY_ARGUMENTS.match(match.group(1).strip())
        if arguments is None or arguments.group(1) not in by_name:
            raise ValueError(
                f"'retry{match.group(1)}' does not name one of the blueprint's waits; write "
                'retry "${NameAttempts}" "${NameSeconds}" "${NamePauseSeconds}" COMMAND with a Name of '
                + ", ".join(by_name)
            )
        waits.append(by_name[arguments.group(1)])
    return waits


def _whole_minutes(seconds: int) -> int:
    return 60 * math.ceil(seconds / 60)


def launch_hook_timeout(script: str) -> int:
    """Seconds the launch hook holds an instance: the boot, every bounded wait of ``script`` and its other steps."""
    return _whole_minutes(BOOT_SECONDS + sum(w.bound for w in bootstrap_waits(script)) + UNWAITED_STEPS_SECONDS)


def signal_timeout(script: str) -> int:
    """Seconds CloudFormation waits for an instance's signal: the hook's timeout, then the signal itself."""
    return launch_hook_timeout(script) + _whole_minutes(SIGNAL_SECONDS)


def iso_duration(seconds: int) -> str:
    """``PT<minutes>M``: whole minutes, as CloudFormation's signal timeout and pause time take them."""
    if seconds % 60:
        raise ValueError(f"{seconds} s is not a whole number of minutes")
    return f"PT{seconds // 60}M"


# Where things live on an instance: the values of the instance files' local template names. The
# end-to-end test renders the same files with its own port and temporary paths instead.
APP_HOME = "/opt/webapp"


APP_SOCKET = "/run/webapp/gunicorn.sock"  # in the unit's RuntimeDirectory


APP_LOG_DIR = "/var/log/webapp"


NGINX_LOG_DIR = "/var/log/nginx"


# flask_app's default MAX_CONTENT_LENGTH; nginx and the app get the same value from the template.
DEFAULT_MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class InstanceFile:
    """A file ``cfn-init`` writes on each instance: its ``Fn::Sub`` template in blueprints/files/ and its place."""

    source: str
    path: str
    mode: str = "000644"
    owner: str = "root"
    group: str = "root"


# The files of the launch template's AWS::CloudFormation::Init metadata, applied by the user data.
INSTANCE_FILES: tuple[InstanceFile, ...] = (
    InstanceFile("nginx-webapp.conf", "/etc/nginx/conf.d/webapp.conf"),
    InstanceFile("gunicorn_conf.py", "/etc/webapp/gunicorn.conf.py"),
    InstanceFile("webapp.service", "/etc/systemd/system/webapp.service"),
    # Read by systemd (as root), never by the app's user: where the secret is, not the secret.
    InstanceFile("app.env", "/etc/webapp/app.env", mode="000640"),
    InstanceFile("cloudwatch-agent.json", "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"),
    InstanceFile("logrotate-webapp", "/etc/logrotate.d/webapp"),
)


def render_user_data(name: str = "user-data.sh") -> str:
    """The text of ``blueprints/files/<name>``: the ``Fn::Sub`` template of the user data or an instance file.

    The one source of each file, for the template and for tests that run it locally (through
    :func:`substitute`).
    """
    path = (FILES_DIR / name).resolve()
    if path.parent != FILES_DIR:
        raise ValueError(f"user data file {name!r}: give a file name inside {FILES_DIR}")
    return path.read_text(encoding="utf-8")


def sub_references(text: str) -> set[str]:
    """Every name ``text`` references as ``${Name}`` in ``Fn::Sub`` syntax (``${!Literal}`` excluded)."""
    return {name for name in _REFERENCE.findall(text) if not name.startswith("!")}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """What ``Fn::Sub`` makes of ``text`` with ``values`` (pseudo parameters included, e.g. ``AWS::Region``).

    ``${!Literal}`` becomes ``${Literal}``; a reference without a value raises ``KeyError``.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name not in values:
            raise KeyError(f"{name} is referenced but has no value")
        return values[name]

    return _REFERENCE.sub(replace, text)


def user_data_size_bound(text: str, values: Mapping[str, AWSHelperFn | str] | None = None) -> int:
    """Most bytes ``text`` can take after substitution, with each value at most ``MAX_SUBSTITUTED_CHARS``.

    A value in ``values`` that is a plain string (a number, a path: known when the template is
    built) counts as its own length; one CloudFormation resolves (a ``Ref``) counts as the maximum.
    """
    references = [n for n in _REFERENCE.findall(text) if not n.startswith("!")]
    escapes = len(_REFERENCE.findall(text)) - len(references)
    known = values or {}
    substituted = sum(
        len(value.encode("utf-8")) if isinstance(value := known.get(name), str) else MAX_SUBSTITUTED_CHARS
        for name in references
    )
    return len(text.encode("utf-8")) - escapes - sum(len(n) + 3 for n in references) + substituted
