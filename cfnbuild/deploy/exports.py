"""The exports an update removes, and the stacks that still import them.

An output loses its ``Export`` when the new template drops the output, drops its ``Export`` (the
default since outputs are exported only where asked) or renames it. Removing an export is an
ordinary update, but CloudFormation refuses it while another stack imports the value with
``Fn::ImportValue``: the update fails and rolls back
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html).
So the plan lists each removed export with the stacks ListImports names
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListImports.html), and
``deploy`` refuses in one line while any stack imports one (:func:`refuse_imported`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.deploy.aws import error_code, error_message
from cfnbuild.deploy.model import Refused
from cfnbuild.deploy.plan import Plan, RemovedExport

# The emulator (moto) has no ListImports: it answers with an HTML error page, after retries.
EMULATOR_UNCHECKED = "the emulator has no ListImports"


def new_export_name(output: Mapping[str, Any], stack_name: str) -> str | None:
    """The name a template's output is exported as in stack ``stack_name``; None when it has no Export.

    A literal name is itself, a ``Fn::Sub`` of ``${AWS::StackName}`` and text is resolved; a name
    built otherwise cannot be known before the deploy and is returned as ``"?"``.
    """
    export = output.get("Export")
    if not isinstance(export, Mapping):
        return None
    name = export.get("Name")
    if isinstance(name, str):
        return name
    if isinstance(name, Mapping) and isinstance(name.get("Fn::Sub"), str):
        text = name["Fn::Sub"].replace("${AWS::StackName}", stack_name)
        return text if "${" not in text else "?"
    return "?"


def removed_exports(deployed: Mapping[str, str], template: Mapping[str, Any], stack_name: str) -> list[tuple[str, str]]:
    """(export name, output) for each export of the deployed stack the new template no longer makes.

    ``deployed`` maps each output to the name it is exported as (DescribeStacks ``ExportName``).
    An Export whose new name cannot be known (``"?"``) is taken as kept.
    """
    outputs = template.get("Outputs") or {}
    removed = []
    for output, name in sorted(deployed.items()):
        new = new_export_name(outputs.get(output) or {}, stack_name)
        if new is None or new not in (name, "?"):
            removed.append((name, output))
    return removed


def importers(cloudformation: Any, export_name: str) -> tuple[str, ...]:
    """The stacks that import ``export_name`` (ListImports, every page).

    ListImports answers a ValidationError "… is not imported by any stack" for an export nobody
    imports: that is no stack, not a failure.
    """
    found: list[str] = []
    token: str | None = None
    while True:
        try:
            page = cloudformation.list_imports(ExportName=export_name, **({"NextToken": token} if token else {}))
        except ClientError as exc:
            if error_code(exc) == "ValidationError" and "not imported" in error_message(exc):
                return ()
            raise
        found += page.get("Imports", [])
        token = page.get("NextToken")
        if not token:
            return tuple(found)


def with_importers(cloudformation: Any, removed: list[tuple[str, str]], *, local: bool) -> tuple[RemovedExport, ...]:
    """Each removed export with the stacks that import it; on the emulator, marked as not asked."""
    if local:
        return tuple(RemovedExport(name, output, (), EMULATOR_UNCHECKED) for name, output in removed)
    return tuple(RemovedExport(name, output, importers(cloudformation, name)) for name, output in removed)


def refuse_imported(plan: Plan) -> None:
    """Refuse, in one line, a plan that removes an export another stack imports."""
    imported = [export for export in plan.removed_exports if export.imported_by]
    if not imported:
        return
    what = "; ".join(f"export {e.name} (output {e.output}) is imported by {', '.join(e.imported_by)}" for e in imported)
    stacks = ", ".join(dict.fromkeys(s for e in imported for s in e.imported_by))
    raise Refused(
        f"{plan.stack_name}: the update removes exports other stacks import ({what}, ListImports); CloudFormation "
        f"would fail the update; nothing was changed. Replace the Fn::ImportValue in {stacks} first, "
        "or keep the output exported (export=True)"
    )
