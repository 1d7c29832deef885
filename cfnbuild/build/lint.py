"""The gates every template passes: cfn-lint (E, W and I rules) and checkov.

cfn-lint runs through its Python API, in the worker processes of :mod:`cfnbuild.build.gates`
(or in-process through :func:`cfn_lint`); each process loads cfn-lint's rules once and reuses
them for every template it lints. Results are cached by a hash of the template, the regions,
cfn-lint's version and the rule selection, so a rebuild with no change spends no time linting;
this module imports cfn-lint only when a template is really linted. checkov runs as its own
process (it has no stable in-process API) over the written files, offline, with the
``cloudformation`` and ``secrets`` frameworks. Suppressions are honoured only from a resource's
Metadata with a reason (:meth:`cfnbuild.Stack.skip_check`); cfn-lint suppressions are not
honoured at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cfnbuild.files import json_kind, read_cache_entry, write_cache_entry

MIN_REASON = 10
# The rule selection: cfn-lint's E and W rules run by default, I rules only when included. Part
# of the cache key, so that changing it re-lints every template.
INCLUDE_CHECKS = ("I",)


@dataclass(frozen=True)
class Finding:
    """One problem in one template: which tool, which rule, where, and what it says."""

    file: str
    tool: str
    rule: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.tool} {self.rule}: {self.message}"


@cache
def cfn_lint_version() -> str:
    """The installed cfn-lint's version, read from its metadata (without importing cfn-lint)."""
    return version("cfn-lint")


def _cache_key(text: str, regions: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(cfn_lint_version().encode())
    digest.update(b"\0" + ",".join(INCLUDE_CHECKS).encode())
    digest.update(b"\0" + ",".join(sorted(regions)).encode() + b"\0")
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


# cfn-lint data files that more than one rule decodes on its own, and that every rule only reads:
# decoded once while the rules load (Policies.json, 2 MB, is read by W3037 and I3510; decoding it
# costs about 0.1 s of CPU and 10 MiB each time).
_SHARED_DATA = frozenset({("cfnlint.data.AdditionalSpecs", "Policies.json")})


@cache
def _rules() -> Any:
    """cfn-lint's rule collection, loaded once per process (loading it costs about half a second)."""
    import cfnlint.helpers  # noqa: PLC0415  (cfn-lint is imported only where a template is linted)
    from cfnlint.api import ManualArgs  # noqa: PLC0415
    from cfnlint.config import ConfigMixIn  # noqa: PLC0415
    from cfnlint.runner import Runner  # noqa: PLC0415

    load_resource = cfnlint.helpers.load_resource
    decoded: dict[tuple[str, str], Any] = {}

    def load_shared(package: Any, filename: str = "us-east-1.json") -> Any:
        key = (getattr(package, "__name__", str(package)), filename)
        if key not in _SHARED_DATA:
            return load_resource(package, filename)
        if key not in decoded:
            decoded[key] = load_resource(package, filename)
        return decoded[key]

    # The rule modules bind cfnlint.helpers.load_resource when the collection imports them.
    cfnlint.helpers.load_resource = load_shared
    try:
        rules = Runner(ConfigMixIn(**ManualArgs(include_checks=list(INCLUDE_CHECKS)))).rules
    finally:
        cfnlint.helpers.load_resource = load_resource
    from cfnbuild.build.lint_speedups import install  # noqa: PLC0415  (with cfn-lint, as above)

    install(rules)
    return rules


def warm_up() -> None:
    """Import cfn-lint and load its rules now, so that the first template lints at full speed."""
    _rules()


def cfn_lint(text: str, regions: Sequence[str], *, file: str) -> list[Finding]:
    """Lint one template body with every E, W and I rule, for every region in ``regions``."""
    decoded, matches = decode_template(text)
    if not matches and _has_cfn_lint_suppression(decoded):
        return [
            Finding(
                file,
                "cfn-lint",
                "cfnbuild",
                "Metadata",
                "cfn-lint suppressions are not allowed; fix the template",
            )
        ]
    from cfnlint.api import ManualArgs  # noqa: PLC0415  (as in _rules)
    from cfnlint.config import ConfigMixIn  # noqa: PLC0415
    from cfnlint.helpers import REGIONS  # noqa: PLC0415
    from cfnlint.runner import run_template_by_data  # noqa: PLC0415

    unknown = sorted(set(regions) - set(REGIONS))
    if unknown:
        return [
            Finding(
                file,
                "cfn-lint",
                "cfnbuild",
                "regions",
                f"the installed cfn-lint {cfn_lint_version()} cannot lint for {', '.join(unknown)}; "
                "upgrade cfn-lint (pip install -U cfn-lint)",
            )
        ]
    # What cfnlint.api.lint does, with the rules this process loaded once (lint() takes only the
    # older RulesCollection and otherwise loads every rule again, about half a second a call).
    if not matches:
        config = ConfigMixIn(**ManualArgs(regions=list(regions), include_checks=list(INCLUDE_CHECKS)))
        matches = list(run_template_by_data(decoded, config, _rules()))
    findings = {  # one finding per rule and place, whichever region found it
        Finding(file, "cfn-lint", match.rule.id, _place(match), match.message) for match in matches
    }
    return sorted(findings, key=lambda f: (f.path, f.rule, f.message))


def _place(match: Any) -> str:
    """Where a match is: its path in the template, or the line of a parse error (which has no path)."""
    path = getattr(match, "path", None)
    if path:
        return "/".join(str(p) for p in path)
    return f"line {getattr(match, 'linenumber', '?')}"


def decode_template(text: str) -> tuple[Any, list[Any]]:
    """cfn-lint's decoded form of a template body, and the parse problems it found (as its matches).

    A template that is JSON (every one cfnbuild renders) is read with cfn-lint's JSON reader,
    which keeps its duplicate-key check and marks, as CloudFormation reads a JSON template;
    cfn-lint's own entry point would read it with its YAML reader first, at several times the
    cost. Anything that reader refuses goes through that entry point, for its own messages.
    """
    from cfnlint.decode import cfn_json  # noqa: PLC0415  (as in _rules)
    from cfnlint.decode.decode import decode_str  # noqa: PLC0415

    try:
        return cfn_json.loads(text), []
    except Exception:  # any refusal: cfn-lint's own reader says what is wrong
        decoded, matches = decode_str(text)
        return decoded, list(matches)


def _has_cfn_lint_suppression(template: Any) -> bool:
    if not isinstance(template, dict):
        return False  # not a template at all: cfn-lint says so
    if "cfn-lint" in _mapping(template.get("Metadata")):
        return True
    resources = _mapping(template.get("Resources")).values()
    return any("cfn-lint" in _mapping(res.get("Metadata")) for res in resources if isinstance(res, dict))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class LintCache:
    """cfn-lint results by template hash, kept under ``directory``.

    An entry that cannot be read or is not a list of findings is a miss (warned about once): the
    template is linted again and the entry overwritten. A directory that cannot be written is
    warned about once and the results are not cached; linting goes on.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0

    def cfn_lint(self, text: str, regions: Sequence[str], *, file: str) -> list[Finding]:
        """:func:`cfn_lint`, answered from the cache when this exact template was linted before."""
        cached = self.lookup(text, regions, file=file)
        if cached is not None:
            return cached
        findings = cfn_lint(text, regions, file=file)
        self.store(text, regions, findings)
        return findings

    def lookup(self, text: str, regions: Sequence[str], *, file: str) -> list[Finding] | None:
        """The cached findings of this exact template and regions (counted as a hit), or ``None`` (a miss)."""
        cached = self._read(self._entry(text, regions), file)
        if cached is None:
            self.misses += 1
        else:
            self.hits += 1
        return cached

    def store(self, text: str, regions: Sequence[str], findings: Sequence[Finding]) -> None:
        """Cache the findings cfn-lint gave for this template and regions."""
        write_cache_entry(self._entry(text, regions), json.dumps([asdict(f) for f in findings], sort_keys=True))

    def _entry(self, text: str, regions: Sequence[str]) -> Path:
        return self.directory / f"{_cache_key(text, regions)}.json"

    @staticmethod
    def _read(entry: Path, file: str) -> list[Finding] | None:
        data = read_cache_entry(entry, _findings_problem)
        if data is None:
            return None
        return [Finding(**{**item, "file": file}) for item in data]


_FINDING_FIELDS = frozenset(f.name for f in fields(Finding))


def _findings_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a cached list of findings; ``None`` when it is one."""
    if not isinstance(data, list):
        return f"{json_kind(data)}, not an array of findings"
    for index, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != _FINDING_FIELDS:
            return f"item {index} is not a finding with {', '.join(sorted(_FINDING_FIELDS))}"
        if not all(isinstance(value, str) for value in item.values()):
            return f"item {index} has a value that is not a string"
    return None


def skip_problems(text: str, *, file: str) -> list[Finding]:
    """Every checkov skip in a template that lacks a reason a reviewer can judge."""
    template = json.loads(text)
    problems = []
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            if len(str(skip.get("comment", "")).strip()) < MIN_REASON:
                problems.append(
                    Finding(
                        file,
                        "checkov",
                        str(skip.get("id")),
                        f"Resources/{logical_id}/Metadata",
                        "skip without a reason; add a comment saying why the check does not apply",
                    )
                )
    return problems


def checkov_command(files: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run checkov over ``files``, offline."""
    command = [
        sys.executable,
        "-m",
        "checkov.main",
        "--framework",
        "cloudformation",
        "secrets",
        "--output",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
    ]
    for path in files:
        command += ["--file", path]
    # checkov runs its checks in a pool of one forked process per CPU by default. It runs here
    # beside cfn-lint's pool, on the one CPU the gates leave it, so its own pool only adds forks
    # and pickling: about a fifth more CPU for the same findings, in no less time (13 templates:
    # 14.5 s of CPU against 11.9 s, 12.0 s against 11.9 s elapsed). A user's own setting wins.
    defaults = {"CHECKOV_PARALLELIZATION_TYPE": "none"}
    return command, {**defaults, **os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


def checkov(files: Iterable[Path], *, root: Path) -> list[Finding]:
    """Run checkov over ``files`` (offline) and return its failed checks."""
    paths = [str(p) for p in files]
    if not paths:
        return []
    command, env = checkov_command(paths)
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, check=False)  # noqa: S603  (our own interpreter running checkov)
    return checkov_findings(result.stdout, result.stderr, result.returncode, root)


def checkov_findings(stdout: str, stderr: str, returncode: int, root: Path) -> list[Finding]:
    """The failed checks in checkov's JSON report, sorted; a run that did not report is an error."""
    try:
        reports = json.loads(stdout) if stdout.strip() else []
    except json.JSONDecodeError:
        raise RuntimeError(f"checkov failed (exit {returncode}): {stderr.strip()[-2000:]}") from None
    if isinstance(reports, dict):
        reports = [reports]
    findings = []
    for report in reports:
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            file = os.path.relpath(check.get("file_abs_path") or check["file_path"], root)
            findings.append(
                Finding(
                    file,
                    "checkov",
                    check["check_id"],
                    check.get("resource", ""),
                    check.get("check_name", ""),
                )
            )
        for error in results.get("parsing_errors", []):
            findings.append(Finding(str(error), "checkov", "parse", "", "checkov could not parse the file"))
    if returncode not in (0, 1):
        raise RuntimeError(f"checkov failed (exit {returncode}): {stderr.strip()[-2000:]}")
    return sorted(findings, key=lambda f: (f.file, f.path, f.rule))
