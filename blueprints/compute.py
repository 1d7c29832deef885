"""The app servers: an Auto Scaling group of Amazon Linux 2023 instances behind the load balancer.

Inputs: :class:`ComputeInputs`. Outputs: ``auto_scaling_group`` (the resource),
``auto_scaling_group_name`` and ``launch_template_id`` (``Ref``), ``instance_role`` (the
:class:`~cfnbuild.ServiceRole`, so later blueprints may grant it more), ``instance_role_arn``,
``user_data_variables`` (every value the user-data script and the instance files may reference),
``artifact_key`` (``Ref`` of the ``AppArtifactKey`` parameter), ``artifact_bucket`` (the bucket
the release is fetched from: ``AppArtifactBucket`` when given, else the assets bucket); and the
exported Outputs
``AutoScalingGroupName``, ``LaunchTemplateId`` and ``InstanceRoleArn``.

Instances have no public address and no SSH key: operators reach them through SSM Session
Manager. The role is granted exactly what the app needs: read the release artifacts, read and
write the uploads prefix, read the DB secret, write to the given log groups and nowhere else
(failure-analysis item 9), put metrics into one namespace. The AMI comes from AWS's public SSM
parameter through a template parameter (no literal AMI id).

Each instance runs as a production service (item 13): nginx on ``http_port`` (the target group's
port, item 14) in front of gunicorn on a unix socket, gunicorn under a sandboxed systemd unit, the
logs shipped by the CloudWatch agent. Every file involved is a template in ``blueprints/files/``
rendered through ``Fn::Sub`` (item 6: region and stack come from pseudo parameters, never
literals), the one source for the template and for the end-to-end test that runs them locally:
``user-data.sh`` is the user data; the others (:data:`INSTANCE_FILES`) are
``AWS::CloudFormation::Init`` metadata of the launch template, which the user data applies with
``cfn-init`` and which keeps it far below EC2's 16 KB. The user data installs the release named by
the ``AppArtifactKey`` parameter (see :mod:`blueprints.artifact`; the deploy command sets it and
uploads the release to the assets bucket), from the bucket ``AppArtifactBucket`` names when it is
not empty (a Service Catalog product: ``cfnbuild export --service-catalog --upload`` stages the
release and makes both its parameters' defaults; the role may then read that bucket's release
prefix too),
migrates the database, starts the services and signals the group's creation and rolling-update
policies: failure at once from an ERR trap, with the step, success only once ``/health`` answers
200 through nginx.

An instance is judged only after its bootstrap (item 8): a launch lifecycle hook holds each new
instance in ``Pending:Wait`` while the user data runs, and the user data completes it (CONTINUE
on success, ABANDON from the ERR trap), so the instance is registered with the target group and
its health check grace period starts only then. Every wait of the user data is a bounded
``retry`` whose numbers are rendered from :data:`BOOTSTRAP_WAITS`; the hook's heartbeat timeout is
derived from the same numbers, and the signal timeout and rolling-update pause from the hook's.
The grace period now covers only the load balancer's first checks of a running app.
AWS docs: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-autoscaling-autoscalinggroup.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-init.html
https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html
https://docs.aws.amazon.com/autoscaling/ec2/userguide/health-check-grace-period.html
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import awacs.ec2
from troposphere import (
    AWSHelperFn,
    Base64,
    Equals,
    GetAtt,
    If,
    Not,
    Ref,
    Sub,
    autoscaling,
    ec2,
    encode_to_dict,
    iam,
)
from troposphere.policies import (
    AutoScalingRollingUpdate,
    CreationPolicy,
    ResourceSignal,
    UpdatePolicy,
)

from blueprints import instance_files
from blueprints.instance_files import (
    APP_HOME,
    APP_LOG_DIR,
    APP_SOCKET,
    DEFAULT_MAX_BODY_BYTES,
    INSTANCE_FILES,
    NGINX_LOG_DIR,
    TIMEOUT_KILL_SECONDS,
    iso_duration,
    launch_hook_timeout,
    render_user_data,
    signal_timeout,
    sub_references,
    user_data_size_bound,
)
from cfnbuild import Blueprint, ServiceRole, logical_id, setting
from cfnbuild.build.external import Resource, ref_of, type_of
from cfnbuild.build.grants import grant_bucket_prefixes, grant_lifecycle_actions_complete, grant_parameter_bucket_read

AL2023_X86_64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
AL2023_ARM64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
# EC2 refuses user data over 16 KB (before base64). Substituted values are names and ARNs the
# stack makes; none is longer than this, so the raw script plus this much per reference is a bound.
USER_DATA_LIMIT = 16 * 1024
PSEUDO_PARAMETERS = frozenset({"AWS::Region", "AWS::StackName"})
_VARIABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_PREFIX = re.compile(r"([A-Za-z0-9._-]+/)+")
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
# The processes AWS recommends suspending during a rolling update, so that health checks, alarms
# and schedules do not replace or resize instances while CloudFormation is doing so.
ROLLING_UPDATE_SUSPENDED = ["HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions"]


# CloudFormation refuses a rolling-update PauseTime over one hour (PT1H), and the pause must outlast
# the hook: so must the bootstrap.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatepolicy.html
MAX_PAUSE_SECONDS = 3600
# Lifecycle hook heartbeat timeouts EC2 Auto Scaling accepts; at the timeout it takes the hook's
# DefaultResult, ABANDON here: a launching instance is then terminated, and the group launches another.
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html
HEARTBEAT_RANGE = (30, 7200)
# How the user data completes the hook, as AWS's tutorial does from a user data script: the
# instance id from IMDSv2 (the launch template requires tokens), the group's name from the
# aws:autoscaling:groupName tag Auto Scaling puts on every instance it launches (ec2:DescribeTags,
# which the role has for the CloudWatch agent).
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/tutorial-lifecycle-hook-instance-metadata.html
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
# https://docs.aws.amazon.com/AutoScaling/latest/DeveloperGuide/ASTagging.html ("Auto Scaling automatically tags each
# one with the group name ... aws:autoscaling:groupName")
LAUNCH_HOOK_NAME = "bootstrap"  # unique within its group, which is all a hook name must be
LAUNCH_TRANSITION = "autoscaling:EC2_INSTANCE_LAUNCHING"
DEFAULT_GRACE_SECONDS = 120


ARTIFACT_PARAMETER = "AppArtifactKey"
ARTIFACT_BUILDER = "blueprints.artifact:build_artifact"  # called by cfnbuild deploy
# The bucket holding AppArtifactKey when it is not the stack's own (a Service Catalog launch: the
# export stages the artifact and makes this its default). The export finds it by this name:
# see cfnbuild.deploy.artifacts.bucket_parameter.
ARTIFACT_BUCKET_PARAMETER = "AppArtifactBucket"
ARTIFACT_BUCKET_CONDITION = "HasArtifactBucket"
# An S3 bucket name (3 to 63 lower-case letters, digits, '.' and '-'), or empty.
ARTIFACT_BUCKET_PATTERN = r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$"


@dataclass(frozen=True)
class ComputeInputs:
    """Inputs of :class:`Compute`."""

    subnet_ids: Sequence[AWSHelperFn] = setting(doc="Private app subnets the instances run in, one per zone.")
    security_group_id: AWSHelperFn = setting(doc="Security group of the instances (the target port from the ALB).")
    target_group_arn: AWSHelperFn = setting(doc="ARN of the ALB target group the instances register with.")
    assets_bucket: Resource = setting(
        doc="The s3.Bucket holding the release artifacts and the uploads (or a handle on one of another stack)."
    )
    db_secret: Resource = setting(
        doc="The secretsmanager.Secret holding the database credentials (or a handle on one of another stack)."
    )
    log_groups: Mapping[str, Resource] = setting(
        doc="Log groups the instances write to, by short name (app, nginx-access, nginx-error, bootstrap)."
    )
    instance_type: str = setting("t3.small", "EC2 instance type; must match the AMI's architecture.")
    min_size: int = setting(2, "Fewest instances (0 to 100).")
    max_size: int = setting(4, "Most instances (1 to 100, at least min_size).")
    desired_capacity: int = setting(2, "Instances at creation, between min_size and max_size.")
    cpu_target_percent: int = setting(50, "Average CPU the target-tracking policy keeps, 10 to 90.")
    health_check_grace_seconds: int = setting(
        DEFAULT_GRACE_SECONDS,
        "Seconds after an instance goes in service (its bootstrap done) before ELB health checks count: the "
        "load balancer's first checks of a running app; below the launch hook's timeout.",
    )
    root_volume_gib: int = setting(20, "Size of the encrypted gp3 root volume, 8 to 1024 GiB.")
    ami_parameter: str = setting(AL2023_X86_64, "Public SSM parameter naming the AMI: Default of ImageId.")
    artifact_prefix: str = setting("releases/", "Key prefix of the release artifacts: instances may only read it.")
    uploads_prefix: str = setting("uploads/", "Key prefix of user uploads: instances read and write it.")
    http_port: int = setting(80, "Port nginx listens on: the load balancer's target port (failure-analysis item 14).")
    max_body_bytes: int = setting(
        DEFAULT_MAX_BODY_BYTES,
        "Largest request body in bytes: nginx's client_max_body_size and the app's APP_MAX_CONTENT_LENGTH alike.",
    )
    kms_key: Resource | None = setting(
        None, "Customer managed KMS key encrypting the DB secret or the bucket; None: AWS managed keys."
    )
    metrics_namespace: str = setting("WebApp", "The only CloudWatch namespace the instances may put metrics into.")
    user_data_file: str = setting("user-data.sh", "The bootstrap script in blueprints/files/, an Fn::Sub template.")
    extra_environment: Mapping[str, AWSHelperFn | str] = setting(
        doc="More values the script references as ${Name}, by name.", factory=dict
    )
    depends_on: tuple[str, ...] = setting(
        (),
        "Logical IDs the group waits for: the app subnets' NAT routes, without which a new instance cannot "
        "install packages or signal, and which nothing the group references implies.",
    )


class Compute(Blueprint[ComputeInputs]):
    """Launch template, instance role and profile, Auto Scaling group and its CPU target tracking."""

    auto_scaling_group: autoscaling.AutoScalingGroup
    auto_scaling_group_name: Ref
    launch_template: ec2.LaunchTemplate
    launch_template_id: Ref
    instance_role: ServiceRole
    instance_role_arn: GetAtt
    user_data_variables: dict[str, AWSHelperFn | str]
    user_data: str
    launch_hook_seconds: int
    signal_seconds: int
    instance_files: dict[str, str]
    artifact_key: Ref
    artifact_bucket: If

    def validate(self) -> None:
        """Sizes that fit together, prefixes that do not overlap, and a script the template can render."""
        i = self.inputs
        if not 0 <= i.min_size <= 100 or not 1 <= i.max_size <= 100:
            raise self.invalid("min_size", f"min_size {i.min_size}, max_size {i.max_size}: use 0..100 and 1..100")
        if i.min_size > i.max_size:
            raise self.invalid("min_size", f"is {i.min_size}, above max_size {i.max_size}; make it at most max_size")
        if not i.min_size <= i.desired_capacity <= i.max_size:
            raise self.invalid(
                "desired_capacity",
                f"is {i.desired_capacity}, outside min_size..max_size ({i.min_size}..{i.max_size}); choose one within",
            )
        if i.desired_capacity < 1:
            raise self.invalid("desired_capacity", "is 0; the creation policy waits for at least one instance's signal")
        if not 10 <= i.cpu_target_percent <= 90:
            raise self.invalid("cpu_target_percent", f"is {i.cpu_target_percent}; use 10 to 90")
        if i.health_check_grace_seconds < 0:
            raise self.invalid("health_check_grace_seconds", f"is {i.health_check_grace_seconds}; use 0 or more")
        if not 8 <= i.root_volume_gib <= 1024:
            raise self.invalid("root_volume_gib", f"is {i.root_volume_gib}; use 8 to 1024 GiB")
        if not _INSTANCE_TYPE.fullmatch(i.instance_type):
            raise self.invalid("instance_type", f"is {i.instance_type!r}; give an EC2 type like 't3.small'")
        if _is_graviton(i.instance_type) != i.ami_parameter.endswith("arm64"):
            raise self.invalid(
                "ami_parameter",
                f"{i.ami_parameter!r} does not match the architecture of {i.instance_type}; use "
                f"{AL2023_ARM64 if _is_graviton(i.instance_type) else AL2023_X86_64}",
            )
        if not i.ami_parameter.startswith("/aws/service/"):
            raise self.invalid("ami_parameter", f"is {i.ami_parameter!r}; name a public /aws/service/... parameter")
        self._validate_resources()
        self._validate_prefixes()
        if not re.fullmatch(r"[A-Za-z0-9_./#:-]{1,255}", i.metrics_namespace):
            raise self.invalid("metrics_namespace", f"is {i.metrics_namespace!r}; use letters, digits and ._/#:-")
        if i.metrics_namespace.startswith("AWS/"):
            raise self.invalid("metrics_namespace", "starts with 'AWS/', which is reserved for AWS services")
        self._validate_service()
        self._validate_user_data()

    def _validate_service(self) -> None:
        i = self.inputs
        if not 1 <= i.http_port <= 65535:
            raise self.invalid("http_port", f"is {i.http_port}; give the target group's TCP port (80)")
        if not 1024 <= i.max_body_bytes <= 100 * 1024 * 1024:
            raise self.invalid("max_body_bytes", f"is {i.max_body_bytes}; use 1024 to 104857600 bytes (100 MiB)")

    def _validate_resources(self) -> None:
        i = self.inputs
        expected = {"assets_bucket": "AWS::S3::Bucket", "db_secret": "AWS::SecretsManager::Secret"}
        for field, resource_type in expected.items():
            got = type_of(getattr(i, field))
            if got != resource_type:
                raise self.invalid(
                    field, f"is {got or type(getattr(i, field)).__name__}; give the {resource_type} resource"
                )
        if i.kms_key is not None and type_of(i.kms_key) != "AWS::KMS::Key":
            raise self.invalid("kms_key", "give the AWS::KMS::Key resource, or None")
        if not i.log_groups:
            raise self.invalid("log_groups", "is empty; give the groups the instances write to, by short name")
        for name, group in i.log_groups.items():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
                raise self.invalid("log_groups", f"name {name!r}: use lower-case words joined by '-' (nginx-access)")
            if type_of(group) != "AWS::Logs::LogGroup":
                raise self.invalid("log_groups", f"{name!r} is not an AWS::Logs::LogGroup resource")

    def _validate_prefixes(self) -> None:
        i = self.inputs
        for field in ("artifact_prefix", "uploads_prefix"):
            value = getattr(i, field)
            if not _PREFIX.fullmatch(value):
                raise self.invalid(field, f"is {value!r}; give a folder-like key prefix such as 'releases/'")
        if i.uploads_prefix.startswith(i.artifact_prefix) or i.artifact_prefix.startswith(i.uploads_prefix):
            raise self.invalid(
                "uploads_prefix",
                f"{i.uploads_prefix!r} overlaps artifact_prefix {i.artifact_prefix!r}; instances could then "
                "overwrite releases: choose prefixes that do not contain each other",
            )

    def _validate_user_data(self) -> None:
        i = self.inputs
        try:
            self.user_data = render_user_data(i.user_data_file)
        except (OSError, ValueError) as exc:
            raise self.invalid(
                "user_data_file", f"cannot be read ({exc}); put the script in blueprints/files/"
            ) from None
        self.instance_files = {f.source: render_user_data(f.source) for f in INSTANCE_FILES}
        for name in i.extra_environment:
            if not _VARIABLE_NAME.fullmatch(name):
                raise self.invalid(
                    "extra_environment", f"name {name!r}: use letters and digits, starting with a letter"
                )
        self.user_data_variables = self.variables()
        references: set[str] = set()
        for source, text in [(i.user_data_file, self.user_data), *self.instance_files.items()]:
            used = sub_references(text)
            references |= used
            unknown = sorted(n for n in used if n not in PSEUDO_PARAMETERS and n not in self.user_data_variables)
            if unknown:
                raise self.invalid(
                    "user_data_file",
                    f"{source} references {', '.join('${' + n + '}' for n in unknown)}, which nothing provides; "
                    "use ${AWS::Region}, ${AWS::StackName} or one of "
                    f"{', '.join(sorted(self.user_data_variables))} "
                    "(a shell expansion with braces is written ${!name})",
                )
        unused = sorted(set(i.extra_environment) - references)
        if unused:
            raise self.invalid(
                "extra_environment",
                f"{', '.join(unused)} not referenced by {i.user_data_file} or an instance file; reference them or "
                "drop them",
            )
        if user_data_size_bound(self.user_data, self.user_data_variables) >= USER_DATA_LIMIT:
            raise self.invalid(
                "user_data_file",
                f"{i.user_data_file} may exceed EC2's 16 KB user data limit after substitution; move work into "
                "the instance files (cfn-init) or the release artifact and keep the script a short bootstrap",
            )
        self._validate_timing()

    def _validate_timing(self) -> None:
        """A script that completes the launch hook, waits the hook outlasts, and a grace period after them."""
        i = self.inputs
        if "${LifecycleHookName}" not in self.user_data:
            raise self.invalid(
                "user_data_file",
                f"{i.user_data_file} never completes the launch lifecycle hook (it does not reference "
                "${LifecycleHookName}), so every instance would be abandoned at the hook's timeout; complete it "
                "as blueprints/files/user-data.sh does (complete_launch)",
            )
        try:
            self.launch_hook_seconds = launch_hook_timeout(self.user_data)
        except ValueError as exc:
            raise self.invalid("user_data_file", f"{i.user_data_file}: {exc}") from None
        self.signal_seconds = signal_timeout(self.user_data)
        if not HEARTBEAT_RANGE[0] <= self.launch_hook_seconds <= HEARTBEAT_RANGE[1] or (
            self.signal_seconds > MAX_PAUSE_SECONDS
        ):
            raise self.invalid(
                "user_data_file",
                f"the waits of {i.user_data_file} add up to a launch hook of {self.launch_hook_seconds} s and a "
                f"signal timeout of {self.signal_seconds} s; CloudFormation's rolling-update pause, which must "
                f"outlast them, is at most {MAX_PAUSE_SECONDS} s: shorten the waits in BOOTSTRAP_WAITS",
            )
        if i.health_check_grace_seconds >= self.launch_hook_seconds:
            raise self.invalid(
                "health_check_grace_seconds",
                f"is {i.health_check_grace_seconds}, not below the launch hook's {self.launch_hook_seconds} s: the "
                "hook holds each new instance until its bootstrap ends, so the grace period only covers the load "
                f"balancer's first checks after that; use 0 to {self.launch_hook_seconds - 1} "
                f"(default {DEFAULT_GRACE_SECONDS})",
            )

    def variables(self) -> dict[str, AWSHelperFn | str]:
        """Every value the script may reference, by ``Fn::Sub`` name (only the referenced ones are passed)."""
        i = self.inputs
        builtin: dict[str, AWSHelperFn | str] = {
            "AssetsBucket": ref_of(i.assets_bucket),
            "ArtifactPrefix": i.artifact_prefix,
            "UploadsPrefix": i.uploads_prefix,
            "DbSecretArn": ref_of(i.db_secret),
            "MetricsNamespace": i.metrics_namespace,
            # cfn-signal names the group by logical ID; a Ref would make the group depend on itself.
            "SignalResource": self.lid("AutoScalingGroup"),
            # cfn-init reads the instance files from the launch template's metadata, by logical ID too.
            "InitResource": self.lid("LaunchTemplate"),
            "ArtifactKey": Ref(self.lid(ARTIFACT_PARAMETER)),
            "ArtifactBucket": self._artifact_bucket(),
            "HttpPort": str(i.http_port),
            "MaxBodyBytes": str(i.max_body_bytes),
            "AppHome": APP_HOME,
            "AppSocket": APP_SOCKET,
            "AppLogDir": APP_LOG_DIR,
            "NginxLogDir": NGINX_LOG_DIR,
            "LifecycleHookName": LAUNCH_HOOK_NAME,
            "TimeoutKillSeconds": str(TIMEOUT_KILL_SECONDS),
        }
        for wait in instance_files.BOOTSTRAP_WAITS:  # read at build time: one place to change (or patch) them
            builtin.update(wait.variables())
        for name, group in sorted(i.log_groups.items()):
            builtin[logical_id(name, "LogGroup")] = ref_of(group)
        builtin["InstanceFilesDigest"] = ""  # a placeholder that claims the name; set below
        clash = sorted(set(builtin) & set(i.extra_environment))
        if clash:
            raise self.invalid("extra_environment", f"{', '.join(clash)} is already provided by the blueprint")
        values = {**builtin, **i.extra_environment}
        values["InstanceFilesDigest"] = self._instance_files_digest(values)
        return values

    def _artifact_bucket(self) -> If:
        """The bucket the release is fetched from: ``AppArtifactBucket`` when given, else the assets bucket."""
        return If(
            self.lid(ARTIFACT_BUCKET_CONDITION),
            Ref(self.lid(ARTIFACT_BUCKET_PARAMETER)),
            ref_of(self.inputs.assets_bucket),
        )

    def _instance_files_digest(self, values: Mapping[str, AWSHelperFn | str]) -> str:
        """A digest of the instance files as rendered: the user data carries it, so a change rolls the group.

        cfn-init metadata is not part of the launch template's data: without this, a new nginx
        site would reach only instances launched later, never the running ones.
        """
        rendered = [
            {
                "file": dataclasses.asdict(f),
                "text": self.instance_files[f.source],
                "values": self._file_values(f.source, values),
            }
            for f in INSTANCE_FILES
        ]
        return "sha256:" + hashlib.sha256(json.dumps(rendered, sort_keys=True).encode()).hexdigest()[:16]

    def _file_values(self, source: str, values: Mapping[str, AWSHelperFn | str]) -> dict[str, Any]:
        used = sub_references(self.instance_files[source])
        return {name: encode_to_dict(value) for name, value in sorted(values.items()) if name in used}

    def build(self) -> None:
        """Role and profile, AMI and artifact parameters, launch template, group and scaling policy."""
        self.artifact_key = self.artifact_parameter()
        self.artifact_bucket = self.artifact_bucket_parameter()
        profile = self.role()
        image = self.image_parameter()
        self.launch_template = self.template(profile, image)
        self.auto_scaling_group = self.group(self.launch_template)
        self.scaling_policy(self.auto_scaling_group)

    def role(self) -> iam.InstanceProfile:
        """The instance role, granted exactly what the app needs, and its instance profile."""
        i = self.inputs
        role = ServiceRole(
            self,
            "Instance",
            services=["ec2.amazonaws.com"],
            managed_policies=["AmazonSSMManagedInstanceCore"],
            # https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-instance-permissions.html
            managed_policy_reason=(
                "AmazonSSMManagedInstanceCore is the policy AWS maintains for the SSM Agent (Session "
                "Manager instead of SSH, patching); AWS changes it when the agent needs new actions, "
                "which a copy in the template would miss."
            ),
        )
        grant_bucket_prefixes(role, i.assets_bucket, read=[i.artifact_prefix], read_write=[i.uploads_prefix])
        # The release prefix of the bucket AppArtifactBucket names, only when it names one.
        grant_parameter_bucket_read(
            role,
            self.lid(ARTIFACT_BUCKET_PARAMETER),
            condition=self.lid(ARTIFACT_BUCKET_CONDITION),
            prefix=i.artifact_prefix,
            otherwise=i.assets_bucket,
        )
        role.grant_secret_read(i.db_secret)
        if i.kms_key is not None:
            role.grant_key_decrypt(i.kms_key)
        for _, group in sorted(i.log_groups.items()):
            role.grant_log_group_write(group)
        role.grant_metrics_put(i.metrics_namespace)
        # The CloudWatch agent reads the instance's tags for metric dimensions, and the bootstrap its
        # aws:autoscaling:groupName tag, to complete the launch hook of this group (and no other).
        role.grant_unscoped("DescribeTags", [awacs.ec2.DescribeTags])
        grant_lifecycle_actions_complete(role, self.lid("AutoScalingGroup"))
        self.instance_role = role
        self.instance_role_arn = role.arn
        self.output("InstanceRoleArn", self.instance_role_arn, "ARN of the app instances' IAM role.")
        return self.add(iam.InstanceProfile(self.lid("InstanceProfile"), Roles=[role.ref]))

    def image_parameter(self) -> Ref:
        """The AMI, resolved by CloudFormation from AWS's public SSM parameter at each deploy."""
        parameter = self.parameter(
            "ImageId",
            Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            Default=self.inputs.ami_parameter,
            # AWS's public Amazon Linux 2023 parameters only: the bootstrap is written for AL2023.
            AllowedPattern=r"^/aws/service/ami-amazon-linux-latest/al2023-ami-[a-z0-9._-]+$",
            ConstraintDescription="a public Amazon Linux 2023 AMI parameter (/aws/service/ami-amazon-linux-latest/...)",
            Description="SSM parameter naming the app instances' AMI (Amazon Linux 2023, latest).",
        )
        return Ref(parameter)

    def artifact_parameter(self) -> Ref:
        """``AppArtifactKey``: the S3 key of the release the instances install, set by the deploy command.

        Empty (the default) when the stack is deployed any other way: the instances then fail their
        bootstrap at once, with a signal reason that says so, instead of timing out.
        """
        prefix = self.inputs.artifact_prefix
        parameter = self.parameter(
            ARTIFACT_PARAMETER,
            Type="String",
            Default="",
            AllowedPattern=f"^({re.escape(prefix)}[A-Za-z0-9._/-]+)?$",
            ConstraintDescription=f"an S3 key under {prefix} (cfnbuild deploy sets it), or empty",
            Description=(
                f"S3 key of the app release in the assets bucket ({prefix}<sha256>/app.tar.gz), set by cfnbuild "
                "deploy after it uploads the artifact. Empty: the instances fail their bootstrap at once."
            ),
        )
        self.stack.add_artifact(
            parameter.title, bucket=self.inputs.assets_bucket, builder=ARTIFACT_BUILDER, prefix=prefix
        )
        return Ref(parameter)

    def artifact_bucket_parameter(self) -> If:
        """``AppArtifactBucket`` and its condition: where the release is when it is not in the assets bucket.

        Empty (the default, and what ``cfnbuild deploy`` leaves it): the assets bucket, where the
        deploy uploads the release. A Service Catalog product gets the staging bucket the export
        put the release in as its default, since a launched product's own bucket starts empty.
        """
        parameter = self.parameter(
            ARTIFACT_BUCKET_PARAMETER,
            Type="String",
            Default="",
            AllowedPattern=ARTIFACT_BUCKET_PATTERN,
            ConstraintDescription="an S3 bucket name (3 to 63 lower-case letters, digits, '.' and '-'), or empty",
            Description=f"bucket holding {self.lid(ARTIFACT_PARAMETER)}; empty: the stack's own assets bucket",
        )
        self.condition(ARTIFACT_BUCKET_CONDITION, Not(Equals(Ref(parameter), "")))
        return self._artifact_bucket()

    def init_metadata(self) -> dict[str, Any]:
        """The launch template's ``AWS::CloudFormation::Init``: each instance file, rendered through Fn::Sub."""
        files: dict[str, dict[str, Any]] = {}
        for f in INSTANCE_FILES:
            text = self.instance_files[f.source]
            used = sub_references(text)
            values = {n: v for n, v in sorted(self.user_data_variables.items()) if n in used}
            content: Sub | str = (Sub(text, values) if values else Sub(text)) if "${" in text else text
            files[f.path] = {"content": content, "mode": f.mode, "owner": f.owner, "group": f.group}
        return {"AWS::CloudFormation::Init": {"config": {"files": files}}}

    def rendered_user_data(self) -> Base64:
        """The script through Fn::Sub with the values it references, base64-encoded."""
        used = sub_references(self.user_data)
        values = {name: value for name, value in sorted(self.user_data_variables.items()) if name in used}
        return Base64(Sub(self.user_data, values) if values else Sub(self.user_data))

    def template(self, profile: iam.InstanceProfile, image: Ref) -> ec2.LaunchTemplate:
        """IMDSv2 only, no public address, an encrypted gp3 root volume, detailed monitoring."""
        i = self.inputs
        template = self.add(
            ec2.LaunchTemplate(
                self.lid("LaunchTemplate"),
                Metadata=self.init_metadata(),
                LaunchTemplateData=ec2.LaunchTemplateData(
                    ImageId=image,
                    InstanceType=i.instance_type,
                    IamInstanceProfile=ec2.IamInstanceProfile(Arn=GetAtt(profile, "Arn")),
                    MetadataOptions=ec2.MetadataOptions(
                        HttpEndpoint="enabled", HttpTokens="required", HttpPutResponseHopLimit=1
                    ),
                    BlockDeviceMappings=[
                        ec2.LaunchTemplateBlockDeviceMapping(
                            DeviceName="/dev/xvda",  # the root device of Amazon Linux 2023
                            Ebs=ec2.EBSBlockDevice(
                                VolumeSize=i.root_volume_gib,
                                VolumeType="gp3",
                                Encrypted=True,
                                DeleteOnTermination=True,
                            ),
                        )
                    ],
                    NetworkInterfaces=[
                        ec2.NetworkInterfaces(
                            DeviceIndex=0,
                            AssociatePublicIpAddress=False,
                            Groups=[i.security_group_id],
                            DeleteOnTermination=True,
                        )
                    ],
                    Monitoring=ec2.Monitoring(Enabled=True),
                    UserData=self.rendered_user_data(),
                ),
            )
        )
        self.launch_template_id = Ref(template)
        self.output("LaunchTemplateId", self.launch_template_id, "ID of the app instances' launch template.")
        return template

    def group(self, template: ec2.LaunchTemplate) -> autoscaling.AutoScalingGroup:
        """The group: a launch hook the bootstrap completes, ELB health checks after it, signals on create and update.

        The launch hook holds each new instance in Pending:Wait until the user data completes it
        or its timeout abandons the instance (DefaultResult ABANDON: terminated and replaced). Only
        after the hook is the instance registered with the target group and put InService, and the
        grace period starts at InService; AWS: "If you use lifecycle hooks for instance launch,
        you can set the health check grace period to 0"
        (https://docs.aws.amazon.com/autoscaling/ec2/userguide/health-check-grace-period.html,
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html).
        The user data completes the hook before it signals (an instance still held by the hook is
        not behind the load balancer, and a counted signal lets a rolling update remove the old
        instances), so CloudFormation waits the hook's timeout plus the signal's time.
        """
        i = self.inputs
        timeout = iso_duration(self.signal_seconds)
        # Instances bootstrap over NAT; the routes are not referenced by the group, so without
        # DependsOn the first instances can boot before they can reach the internet.
        group = self.add(
            autoscaling.AutoScalingGroup(
                self.lid("AutoScalingGroup"),
                VPCZoneIdentifier=list(i.subnet_ids),
                LaunchTemplate=autoscaling.LaunchTemplateSpecification(
                    LaunchTemplateId=Ref(template), Version=GetAtt(template, "LatestVersionNumber")
                ),
                MinSize=str(i.min_size),
                MaxSize=str(i.max_size),
                DesiredCapacity=str(i.desired_capacity),
                TargetGroupARNs=[i.target_group_arn],
                HealthCheckType="ELB",
                HealthCheckGracePeriod=i.health_check_grace_seconds,
                LifecycleHookSpecificationList=[
                    autoscaling.LifecycleHookSpecification(
                        LifecycleHookName=LAUNCH_HOOK_NAME,
                        LifecycleTransition=LAUNCH_TRANSITION,
                        DefaultResult="ABANDON",
                        HeartbeatTimeout=self.launch_hook_seconds,
                    )
                ],
                MetricsCollection=[autoscaling.MetricsCollection(Granularity="1Minute")],
                Tags=autoscaling.Tags(Name=Sub("${AWS::StackName}-app")),
                CreationPolicy=CreationPolicy(ResourceSignal=ResourceSignal(Count=i.desired_capacity, Timeout=timeout)),
                UpdatePolicy=UpdatePolicy(
                    AutoScalingRollingUpdate=AutoScalingRollingUpdate(
                        # Keep serving while replacing; MinInstancesInService must stay below MaxSize.
                        MinInstancesInService=max(0, min(i.min_size, i.max_size - 1)),
                        MaxBatchSize=1,
                        PauseTime=timeout,
                        WaitOnResourceSignals=True,
                        SuspendProcesses=ROLLING_UPDATE_SUSPENDED,
                    )
                ),
            ),
            depends_on=i.depends_on,
        )
        self.accept_finding(
            group,
            ["AwsSolutions-AS3"],
            "Every launch and termination is in the group's activity history and its 1-minute group "
            "metrics; a failed launch fails the deploy (the creation signal or the rolling update) and an "
            "instance that stops answering raises the UnhealthyTargets alarm. An e-mail per scaling event "
            "would bury the alarms in the same topic.",
        )
        self.auto_scaling_group_name = Ref(group)
        self.output("AutoScalingGroupName", self.auto_scaling_group_name, "Name of the app Auto Scaling group.")
        return group

    def scaling_policy(self, group: autoscaling.AutoScalingGroup) -> None:
        """Target tracking on the group's average CPU.

        The warm-up, like the grace period, counts from InService, which an instance reaches only
        after its bootstrap (the launch hook): the same few seconds of a running app settling.
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html
        """
        self.add(
            autoscaling.ScalingPolicy(
                self.lid("CpuScalingPolicy"),
                AutoScalingGroupName=Ref(group),
                PolicyType="TargetTrackingScaling",
                EstimatedInstanceWarmup=self.inputs.health_check_grace_seconds,
                TargetTrackingConfiguration=autoscaling.TargetTrackingConfiguration(
                    PredefinedMetricSpecification=autoscaling.PredefinedMetricSpecification(
                        PredefinedMetricType="ASGAverageCPUUtilization"
                    ),
                    TargetValue=float(self.inputs.cpu_target_percent),
                ),
            )
        )


def _is_graviton(instance_type: str) -> bool:
    """Whether the type's family is an AWS Graviton (arm64) one: a1, or a 'g' after the generation (t4g, c7gn)."""
    family = instance_type.split(".", 1)[0]
    return bool(re.fullmatch(r"a1|[a-z]+\d+g[a-z]*", family))
