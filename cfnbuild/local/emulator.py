"""The embedded AWS emulator: moto in server mode on a free loopback port, in this process.

cfnbuild talks to it over HTTP exactly as it talks to AWS; only the endpoint and the throwaway
credentials differ. moto is an optional dependency (``pip install 'cfnbuild[local]'``).
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cfnbuild.errors import UsageError

# Credentials the emulator accepts; they are not secrets and reach nothing but loopback.
THROWAWAY_CREDENTIALS = {
    "aws_access_key_id": "emulator",
    "aws_secret_access_key": "emulator",
}


@dataclass(frozen=True)
class Emulator:
    """A running emulator: where it listens and how to make clients for it."""

    endpoint_url: str
    region: str

    def client(self, service: str, config: Any = None) -> Any:
        """A boto3 client for ``service`` pointed at the emulator (``config``: a botocore ``Config``)."""
        from cfnbuild.sessions import boto3_session  # noqa: PLC0415  (boto3 is imported only when a client is made)

        session = boto3_session(
            aws_access_key_id=THROWAWAY_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=THROWAWAY_CREDENTIALS["aws_secret_access_key"],
            region_name=self.region,
        )
        return session.client(service, endpoint_url=self.endpoint_url, config=config)


def _fix_kms_key_tags() -> None:
    """Let the emulator create a tagged KMS key.

    moto 5 reads an AWS::KMS::Key's Tags as KMS API tags (TagKey/TagValue) and fails on the
    CloudFormation shape (Key/Value); translate them.
    """
    from moto.kms.models import Key  # noqa: PLC0415  (optional dependency)

    original = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties", {})
        tags = properties.get("Tags") or []
        properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in tags]
        return original(cls, resource_name, cloudformation_json, *args, **kwargs)

    create._cfnbuild_fixed = True  # type: ignore[attr-defined]
    Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]  # a patch


def _getazs_lists_the_stacks_region() -> None:
    """Let ``Fn::GetAZs ""`` list the zones of the stack's region, as on AWS.

    moto 5 reads an empty (or ``Ref AWS::Region``) argument as us-east-1, so a subnet falling
    back to ``Fn::GetAZs`` in an eu-west-1 stack got ``us-east-1a``; give it the stack's region
    (an empty string is the stack's region:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-getavailabilityzones.html).
    """
    from moto.cloudformation import parsing  # noqa: PLC0415  (optional dependency)

    if getattr(parsing, "_cfnbuild_getazs", False):  # marked on the module: another fix wraps clean_json too
        return
    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        this_region = ("", None, {"Ref": "AWS::Region"})
        getazs = isinstance(resource_json, dict) and resource_json.keys() == {"Fn::GetAZs"}
        if getazs and resource_json["Fn::GetAZs"] in this_region:
            resource_json = {"Fn::GetAZs": resources_map._region_name}  # moto keeps the region private
        return original(resource_json, resources_map)

    parsing.clean_json = clean_json  # a patch: moto calls it by this module-level name
    parsing._cfnbuild_getazs = True  # type: ignore[attr-defined]


def _cluster_members_are_placeholders() -> None:
    """Leave an Aurora cluster's instances as placeholders, like the cluster.

    moto 5 has no CloudFormation model of AWS::RDS::DBCluster (it leaves a placeholder) but tries
    to create the cluster's AWS::RDS::DBInstance members as stand-alone instances, which fails for
    Aurora engines.
    """
    from moto.cloudformation import parsing  # noqa: PLC0415  (optional dependency)

    original = parsing.parse_resource_and_generate_name
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def parse(logical_id: str, resource_json: dict[str, Any], resources_map: Any) -> Any:
        properties = resource_json.get("Properties") or {}
        if resource_json.get("Type") == "AWS::RDS::DBInstance" and "DBClusterIdentifier" in properties:
            return None
        return original(logical_id, resource_json, resources_map)

    parse._cfnbuild_fixed = True  # type: ignore[attr-defined]
    parsing.parse_resource_and_generate_name = parse


def _stack_set_instances_named_the_aws_way() -> None:
    """Let the emulator create stack set instances whose resources are named after their stack.

    moto 5 names each self-managed instance's stack ``StackSet:<name>``, a name no real stack can
    have (AWS names it ``StackSet-<name>-<id>``), and every resource whose physical name is made
    from the stack name (an SNS topic, a queue) then fails as invalid. This renames it the AWS
    way; nothing else changes. Idempotent.
    """
    from moto.cloudformation import models  # noqa: PLC0415  (optional dependency)

    original = models.CloudFormationBackend.create_stack
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def create_stack(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name", args[0] if args else "")
        if isinstance(name, str) and name.startswith("StackSet:"):
            renamed = f"StackSet-{name.removeprefix('StackSet:')}-{uuid.uuid4()}"
            if "name" in kwargs:
                kwargs["name"] = renamed
            else:
                args = (renamed, *args[1:])
        return original(self, *args, **kwargs)

    create_stack._cfnbuild_fixed = True  # type: ignore[attr-defined]
    models.CloudFormationBackend.create_stack = create_stack  # type: ignore[method-assign]  # a patch


def _stack_instances_name_their_stack() -> None:
    """Let ListStackInstances give each instance the ID of its stack, as on AWS.

    moto 5 answers each instance's StackId with a new random ID made from the stack's name, so it
    names no stack (DescribeStacks of it: "does not exist") and changes with every call. This
    answers the ID of the stack the instance made. Idempotent.
    """
    from moto.cloudformation import models  # noqa: PLC0415  (optional dependency)

    original = models.StackInstance.to_dict
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def to_dict(self: Any) -> dict[str, Any]:
        answer: dict[str, Any] = original(self)
        stack = getattr(self, "stack", None)
        if stack is not None:
            answer["StackId"] = stack.stack_id
        return answer

    to_dict._cfnbuild_fixed = True  # type: ignore[attr-defined]
    models.StackInstance.to_dict = to_dict  # type: ignore[method-assign]  # a patch


def _aurora_clusters_have_identifiers() -> None:
    """Let ``Ref`` of a placeholder Aurora cluster give an identifier, as on AWS.

    moto 5 leaves AWS::RDS::DBCluster a placeholder whose ``Ref`` is nothing, so a name built
    from it (the cluster's log groups, ``/aws/rds/cluster/${Cluster}/error``) is the same
    literal in every stack, and the second stack in one emulator fails on "log group already
    exists". CloudFormation generates the identifier from the stack name and the logical ID
    with a unique suffix; this gives the placeholder ``<stack>-<logical id>-<8 characters of the
    stack's UUID>`` in lower case, the same for the stack's whole life. Idempotent.
    """
    from moto.cloudformation import parsing  # noqa: PLC0415  (optional dependency)

    original = parsing.clean_json
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and list(resource_json) == ["Ref"]:
            logical_id = resource_json["Ref"]
            declared = getattr(resources_map, "_resource_json_map", {})
            resource = declared.get(logical_id) if isinstance(logical_id, str) else None
            if isinstance(resource, dict) and resource.get("Type") == "AWS::RDS::DBCluster":
                stack_name = resources_map["AWS::StackName"]
                suffix = str(resources_map.stack_id).rsplit("/", 1)[-1][:8]
                return f"{stack_name}-{logical_id}-{suffix}".lower()
        return original(resource_json, resources_map)

    clean_json._cfnbuild_fixed = True  # type: ignore[attr-defined]
    parsing.clean_json = clean_json


def _ssm_parameters_answer_their_name() -> None:
    """Let DescribeStacks answer an SSM-typed parameter with its name and its ResolvedValue, as on AWS.

    moto 5 answers the value it read from Parameter Store (an AMI ID) as the ParameterValue, so a
    plan of an unchanged stack saw ``ImageId: ami-… → /aws/service/…``. AWS answers the value as
    passed, and what Parameter Store gave in ``ResolvedValue``:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html. Idempotent.
    """
    from moto.cloudformation.models import Stack  # noqa: PLC0415  (optional dependency)

    original = Stack.__dict__["parameter_list"].fget  # the property's getter (typed as a method by moto)
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def parameter_list(self: Any) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = original(self)
        declared = (getattr(self, "template_dict", None) or {}).get("Parameters") or {}
        given = self.resource_map.input_parameters or {}
        for entry in listed:
            key, resolved = entry["ParameterKey"], entry["ParameterValue"]
            slot = declared.get(key) or {}
            name = given.get(key, slot.get("Default"))
            if str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::") and name and resolved != "****":
                entry["ParameterValue"] = name
                entry["ResolvedValue"] = ",".join(resolved) if isinstance(resolved, list) else resolved
        return listed

    parameter_list._cfnbuild_fixed = True  # type: ignore[attr-defined]
    Stack.parameter_list = property(parameter_list)  # type: ignore[assignment,method-assign]  # a patch


def _route_tables_are_deleted_with_their_stack() -> None:
    """Let the emulator delete a stack's route tables, so that the stack's VPC and the stack delete too.

    moto 5 has no CloudFormation delete for AWS::EC2::RouteTable: it drops the resource from the
    stack but keeps the table, and the VPC then cannot be deleted ("has dependencies"), so
    DeleteStack failed where AWS deletes the stack. This deletes the table, with its subnet
    associations (the stack's AWS::EC2::SubnetRouteTableAssociation resources, which moto cannot
    delete either and which CloudFormation deletes before the table they depend on). Idempotent.
    """
    from moto.ec2.models.route_tables import RouteTable  # noqa: PLC0415  (optional dependency)

    current = RouteTable.__dict__.get("delete_from_cloudformation_json")
    if getattr(getattr(current, "__func__", None), "_cfnbuild_fixed", False):
        return

    def delete(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str) -> None:
        from moto.ec2.models import ec2_backends  # noqa: PLC0415  (optional dependency)

        backend = ec2_backends[account_id][region_name]
        table = backend.route_tables.get(resource_name)
        if table is not None:
            table._associations.clear()  # moto keeps them private
            backend.route_tables.pop(resource_name)

    delete._cfnbuild_fixed = True  # type: ignore[attr-defined]
    RouteTable.delete_from_cloudformation_json = classmethod(delete)  # type: ignore[method-assign,assignment]  # a patch


def _request_certificate(properties: dict[str, Any], account_id: str, region_name: str) -> str:
    """Request a certificate of the emulator's ACM for a template's properties, validated as CloudFormation does.

    DNS validation with a ``HostedZoneId`` for every domain: each domain's validation CNAME is
    written into its zone and the certificate is ISSUED. Otherwise (e-mail validation, the
    default, or a domain without a zone) it stays PENDING_VALIDATION, waiting as on AWS.
    """
    from moto.acm import models as acm  # noqa: PLC0415  (optional dependency)
    from moto.route53.models import route53_backends  # noqa: PLC0415  (optional dependency)
    from moto.utilities.utils import get_partition  # noqa: PLC0415  (optional dependency)

    backend = acm.acm_backends[account_id][region_name]
    domain = properties["DomainName"]
    alternative = [n for n in properties.get("SubjectAlternativeNames") or [] if n != domain]
    tags = properties.get("Tags") or []
    arn = str(backend.request_certificate(domain, None, [domain, *alternative], tags))  # type: ignore[arg-type]  # no token
    if properties.get("ValidationMethod", "EMAIL") != "DNS":
        return arn
    zones = {o.get("DomainName"): o.get("HostedZoneId") for o in properties.get("DomainValidationOptions") or []}
    bundle = backend.get_certificate(arn)
    route53 = route53_backends[account_id][get_partition(region_name)]
    options = bundle.describe()["Certificate"]["DomainValidationOptions"]
    for option in options:
        zone = zones.get(option["DomainName"])
        if zone:
            record = option["ResourceRecord"]
            change = {
                "Name": record["Name"],
                "Type": "CNAME",
                "TTL": 300,
                "ResourceRecords": [{"Value": record["Value"]}],
            }
            route53.change_resource_record_sets(zone, [{"Action": "UPSERT", "ResourceRecordSet": change}])
    if all(zones.get(option["DomainName"]) for option in options):
        bundle.status = "ISSUED"  # every validation record is in place: ACM validates
    return arn


def _update_certificate(original: Any, properties: dict[str, Any], account_id: str, region_name: str) -> str:
    """The ARN of a stack's certificate after an update: the same one with new tags, or its replacement.

    A change of anything but Tags replaces an AWS::CertificateManager::Certificate (the old one is
    deleted once the new one exists).
    """
    from moto.acm import models as acm  # noqa: PLC0415  (optional dependency)

    backend = acm.acm_backends[account_id][region_name]
    if {**original.properties, "Tags": None} == {**properties, "Tags": None}:
        bundle = backend.get_certificate(original.arn)
        bundle.tags.clear()
        bundle.tags.add(properties.get("Tags") or [])
        return str(original.arn)
    replacement = _request_certificate(properties, account_id, region_name)
    backend.delete_certificate(original.arn)
    return replacement


def _certificates_come_from_the_emulators_acm() -> None:
    """Let an AWS::CertificateManager::Certificate be a certificate in the emulator's ACM, validated as on AWS.

    moto 5 has ACM (RequestCertificate, DescribeCertificate) but no CloudFormation model of the
    certificate: it leaves a placeholder whose ``Ref`` is nothing, so an HTTPS listener using it
    is made without its CertificateArn and ExecuteChangeSet fails inside moto's elbv2 (a
    ``KeyError``, an HTML 500). This gives the type a model that requests the certificate from
    moto's ACM (domain, alternative names, tags; ``Ref`` is its ARN) and does what
    CloudFormation does for DNS validation with a ``HostedZoneId``: writes each domain's
    validation CNAME into that zone, after which ACM issues the certificate
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-certificatemanager-certificate.html).
    A domain without a zone to validate in leaves it PENDING_VALIDATION. A change of domain
    replaces it; a change of tags updates it. Deleting the stack deletes it. Idempotent.
    """
    from moto.acm import models as acm  # noqa: PLC0415  (optional dependency)
    from moto.cloudformation import parsing  # noqa: PLC0415  (optional dependency)
    from moto.core.common_models import CloudFormationModel  # noqa: PLC0415  (optional dependency)

    if getattr(acm, "_cfnbuild_certificate", None) is not None:
        return

    class Certificate(CloudFormationModel):
        """A certificate of the emulator's ACM, made by a stack."""

        def __init__(self, arn: str, properties: dict[str, Any]) -> None:
            self.arn = arn
            self.properties = properties

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CertificateManager::Certificate"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False  # a certificate has no Fn::GetAtt attributes, only Ref

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Certificate:
            properties = cloudformation_json["Properties"]
            return cls(_request_certificate(properties, account_id, region_name), properties)

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> Certificate:
            properties = cloudformation_json["Properties"]
            return cls(_update_certificate(original_resource, properties, account_id, region_name), properties)

        def delete(self, account_id: str, region_name: str) -> None:
            backend = acm.acm_backends[account_id][region_name]
            if self.arn in backend._certificates:  # moto keeps them private
                backend.delete_certificate(self.arn)

        def is_created(self) -> bool:
            return True

    acm._cfnbuild_certificate = Certificate  # type: ignore[attr-defined]  # the model, made once
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # moto lists its models once; list this one too


def _executed_change_sets_give_their_outputs() -> None:
    """Let a stack made or updated by a change set show the outputs of its new template, as on AWS.

    moto 5's ExecuteChangeSet applies the change set's template to the stack's resources and
    records it as the stack's template, but keeps the outputs parsed from the template the stack
    had before (none, for a stack a CREATE change set made), so DescribeStacks returned none of
    the declared outputs (and ListExports none of its exports). This parses the executed
    template's outputs afresh and registers its exports in the region, as moto's own CreateStack
    and UpdateStack do. Idempotent.
    """
    from moto.cloudformation import models  # noqa: PLC0415  (optional dependency)

    original = models.CloudFormationBackend.execute_change_set
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> Any:
        before = {stack_id: stack.template for stack_id, stack in self.stacks.items()}
        result = original(self, change_set_name, stack_name)
        for stack_id, stack in self.stacks.items():
            if stack.template is not before.get(stack_id):  # the stack the change set was executed on
                stack._parse_template()  # its template_dict, of the template just executed
                stack.output_map = stack._create_output_map()
                for name in getattr(stack, "_cfnbuild_exports", ()):
                    self.exports.pop(name, None)
                exports = stack.exports
                self.exports.update({export.name: export for export in exports})
                stack._cfnbuild_exports = [export.name for export in exports]
        return result

    execute_change_set._cfnbuild_fixed = True  # type: ignore[attr-defined]
    models.CloudFormationBackend.execute_change_set = execute_change_set  # type: ignore[method-assign]  # a patch


def _outputs_of_placeholders_are_left_out() -> None:
    """Leave out an output the emulator cannot compute, instead of failing DescribeStacks on it.

    moto 5 leaves a resource type it has no model of (AWS::RDS::DBCluster) a placeholder, and an
    output or export reading one of its attributes (``Fn::GetAtt DbCluster.Endpoint.Address``)
    raises "references undefined resource" each time the stack is described: one such output
    made every DescribeStacks an HTML 500. This returns the other outputs; the deploy names the
    ones not returned. Idempotent.
    """
    from moto.cloudformation import parsing  # noqa: PLC0415  (optional dependency)
    from moto.cloudformation.exceptions import ValidationError  # noqa: PLC0415  (optional dependency)

    original = parsing.parse_output
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def placeholder(exc: Exception, resources_map: Any) -> bool:
        declared = getattr(resources_map, "_resource_json_map", None) or {}
        words = str(exc).rsplit("references undefined resource ", 1)
        return len(words) == 2 and words[1].strip() in declared

    def parse_output(output_logical_id: str, output_json: Any, resources_map: Any) -> Any:
        try:
            return original(output_logical_id, output_json, resources_map)
        except ValidationError as exc:
            if placeholder(exc, resources_map):
                return None
            raise

    def exports(self: Any) -> list[Any]:
        found = []
        for value in (self._output_json_map or {}).values():
            if value.get("Export"):
                try:
                    name = parsing.clean_json(value["Export"].get("Name"), self._resource_map)
                    exported = parsing.clean_json(value.get("Value"), self._resource_map)
                except ValidationError as exc:
                    if placeholder(exc, self._resource_map):
                        continue
                    raise
                found.append(parsing.Export(self._stack_id, name, exported))
        return found

    parse_output._cfnbuild_fixed = True  # type: ignore[attr-defined]
    parsing.parse_output = parse_output  # a patch: OutputMap calls it by this module-level name
    parsing.OutputMap.exports = property(exports)  # type: ignore[assignment,method-assign]  # a patch


def _outputs_of_unmodelled_types_are_not_validated() -> None:
    """Let a stack be made with CreateStack (a stack set instance) when an output reads a placeholder's attribute.

    Before it makes a stack, moto 5 checks each output's ``Fn::GetAtt`` against the model of the
    resource's type; a type it has no model of (AWS::RDS::DBCluster, AWS::WAFv2::WebACL) has
    none, and the check fails on ``None`` (AttributeError: 'NoneType' object has no attribute
    'has_cfn_attr'), so CreateStack and CreateStackInstances of the flagship answered an HTML
    500. The change-set path never runs the check. This leaves such outputs out of the check
    (AWS checks them against the type's schema; moto has none to check with) and checks the
    others as before; their values are left out as :func:`_outputs_of_placeholders_are_left_out`
    says. Idempotent.
    """
    from moto.cloudformation import parsing  # noqa: PLC0415  (optional dependency)

    original = parsing.ResourceMap.validate_outputs
    if getattr(original, "_cfnbuild_fixed", False):
        return

    def unmodelled(resources: Mapping[str, Any], output: Any) -> bool:
        value = output.get("Value") if isinstance(output, dict) else None
        if not (isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list) and value["Fn::GetAtt"]):
            return False
        resource = resources.get(value["Fn::GetAtt"][0])
        return isinstance(resource, dict) and parsing.resource_class_from_type(resource.get("Type", "")) is None

    def validate_outputs(self: Any) -> None:
        template = self._template
        outputs = template.get("Outputs") or {}
        checked = {k: v for k, v in outputs.items() if not unmodelled(self._resource_json_map, v)}
        if len(checked) == len(outputs):
            original(self)
            return
        self._template = {**template, "Outputs": checked}
        try:
            original(self)
        finally:
            self._template = template

    validate_outputs._cfnbuild_fixed = True  # type: ignore[attr-defined]
    parsing.ResourceMap.validate_outputs = validate_outputs  # type: ignore[method-assign]  # a patch


# Known emulator defects, each corrected so that a correct template deploys as it would on AWS.
# Nothing here invents behaviour moto does not have.
_FIXES = (
    _fix_kms_key_tags,
    _getazs_lists_the_stacks_region,
    _cluster_members_are_placeholders,
    _stack_set_instances_named_the_aws_way,
    _stack_instances_name_their_stack,
    _aurora_clusters_have_identifiers,
    _ssm_parameters_answer_their_name,
    _route_tables_are_deleted_with_their_stack,
    _certificates_come_from_the_emulators_acm,
    _executed_change_sets_give_their_outputs,
    _outputs_of_placeholders_are_left_out,
    _outputs_of_unmodelled_types_are_not_validated,
)


def prepare_emulator() -> None:
    """Make this process ready to serve the emulator: moto importable, its corrections applied, its logs quiet.

    Shared by the one-shot emulator (:func:`run_emulator`) and a session's server process
    (:mod:`cfnbuild.local.server`), so both answer the same way.
    """
    try:
        import moto.server  # noqa: F401, PLC0415  (optional dependency; imported here to say so clearly)
    except ImportError:
        raise UsageError("the embedded emulator needs moto: pip install 'cfnbuild[local]'") from None
    # moto reads these to pick its default account and region; keep them local to the emulator run.
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    for fix in _FIXES:
        fix()
    # werkzeug logs a line per request, and a traceback for every API moto lacks (the client
    # gets the error anyway).
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    # moto warns (in its log and as UserWarnings) of every resource type it leaves as a
    # placeholder; the deploy reports what the emulator did not return itself.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"moto\.")


@contextmanager
def run_emulator(region: str) -> Iterator[Emulator]:
    """Start moto's server on 127.0.0.1 and a free port; stop it on exit."""
    prepare_emulator()
    from moto.server import ThreadedMotoServer  # noqa: PLC0415  (optional dependency)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        # "localhost" rather than the address: moto reads a TemplateURL path-style only then.
        yield Emulator(endpoint_url=f"http://localhost:{port}", region=region)
    finally:
        server.stop()
