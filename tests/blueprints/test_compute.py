"""The compute blueprint and its user-data script, asserted the way the CDK's assertions module does."""

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from troposphere import Parameter, Ref, encode_to_dict, kms, logs, s3, secretsmanager

from blueprints import instance_files
from blueprints.compute import (
    AL2023_X86_64,
    ARTIFACT_BUCKET_PARAMETER,
    ARTIFACT_PARAMETER,
    LAUNCH_HOOK_NAME,
    MAX_PAUSE_SECONDS,
    USER_DATA_LIMIT,
    Compute,
    ComputeInputs,
)
from blueprints.encryption import Keys, KeysInputs
from blueprints.instance_files import (
    BOOT_SECONDS,
    BOOTSTRAP_WAITS,
    MAX_SUBSTITUTED_CHARS,
    BootstrapWait,
    launch_hook_timeout,
    render_user_data,
    signal_timeout,
    sub_references,
    substitute,
    user_data_size_bound,
)
from blueprints.loadbalancer import LoadBalancer, LoadBalancerInputs
from blueprints.network import Network, NetworkInputs
from cfnbuild import InputError, Stack, logical_id
from cfnbuild.build.external import StackResource
from cfnbuild.build.grants import (
    Grants,
    grant_bucket_prefixes,
    grant_lifecycle_actions_complete,
    grant_parameter_bucket_read,
)
from cfnbuild.build.lint import cfn_lint, checkov
from cfnbuild.deploy.artifacts import bucket_parameter
from cfnbuild.regions import KNOWN_REGIONS
from tests.assertions import Match, TemplateAssert
from tests.servers import require_executable

REGIONS = ["eu-west-1", "eu-central-1", "us-east-1"]
LOG_GROUP_NAMES = ("app", "nginx-access", "nginx-error", "bootstrap")
# Stand-ins for the resources other blueprints make; they are not this blueprint's to lint with checkov.
HELPERS = ("Assets", "DbSecret", "AppLogs", "NginxAccessLogs", "NginxErrorLogs", "BootstrapLogs", "OtherLogs")
SAMPLE_VALUES = {"AWS::Region": "eu-west-1", "AWS::StackName": "webapp-dev"}


def _stack(*, groups=LOG_GROUP_NAMES, lb_inputs=None, **inputs) -> tuple[Stack, Compute, LoadBalancer]:
    stack = Stack("app", description="d", project="p", environment="dev")
    keys = Keys(stack, KeysInputs())
    net = Network(stack, NetworkInputs(flow_log_key_arn=keys.logs_key_arn))
    for name in ("AlbSecurityGroupId", "AppSecurityGroupId"):
        stack.add_parameter(Parameter(name, Type="AWS::EC2::SecurityGroup::Id"), owner="test")
    stack.add_parameter(Parameter("LogBucketName", Type="String"), owner="test")
    lb = LoadBalancer(
        stack,
        LoadBalancerInputs(
            vpc_id=net.vpc_id,
            subnet_ids=net.public_subnet_ids,
            security_group_id=Ref("AlbSecurityGroupId"),
            log_bucket_name=Ref("LogBucketName"),
            **(lb_inputs or {}),
        ),
    )
    bucket = stack.add_resource(s3.Bucket("Assets"), owner="test", stateful=True)
    secret = stack.add_resource(secretsmanager.Secret("DbSecret"), owner="test", stateful=True)
    stack.add_resource(logs.LogGroup("OtherLogs", RetentionInDays=30), owner="test", stateful=True)
    log_groups = {
        name: stack.add_resource(
            logs.LogGroup("".join(w.title() for w in name.split("-")) + "Logs", RetentionInDays=30),
            owner="test",
            stateful=True,
        )
        for name in groups
    }
    defaults = {
        "subnet_ids": net.app_subnet_ids,
        "security_group_id": Ref("AppSecurityGroupId"),
        "target_group_arn": lb.target_group_arn,
        "assets_bucket": bucket,
        "db_secret": secret,
        "log_groups": log_groups,
    }
    compute = Compute(stack, ComputeInputs(**{**defaults, **inputs}))
    return stack, compute, lb


def _compute(**inputs) -> TemplateAssert:
    return TemplateAssert(_stack(**inputs)[0].to_dict())


def _user_data(t: TemplateAssert) -> tuple[str, dict]:
    (template,) = t.of_type("AWS::EC2::LaunchTemplate").values()
    sub = template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    return sub[0], sub[1]


def _instance_file(t: TemplateAssert, path: str) -> tuple[str, dict]:
    (template,) = t.of_type("AWS::EC2::LaunchTemplate").values()
    content = template["Metadata"]["AWS::CloudFormation::Init"]["config"]["files"][path]["content"]
    return content["Fn::Sub"][0], content["Fn::Sub"][1]


def _files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """blueprints/files/ copied into tmp_path, which the blueprint then reads (to add a custom script)."""
    for source in instance_files.FILES_DIR.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(instance_files, "FILES_DIR", tmp_path)
    return tmp_path


def _statements(t: TemplateAssert) -> list[dict]:
    role = t.of_type("AWS::IAM::Role")["InstanceRole"]["Properties"]
    (policy,) = role["Policies"]
    return policy["PolicyDocument"]["Statement"]


def _sample_values(text: str) -> dict[str, str]:
    values = {**SAMPLE_VALUES, **_literal_variables()}
    for name in sub_references(text) - set(values):
        values[name] = "AutoScalingGroup" if name == "SignalResource" else f"sample-{name.lower()}"
    return values


def _literal_variables() -> dict[str, str]:
    """The user data's values that are known when the template is built (the waits' numbers, the hook's name)."""
    _, compute, _ = _stack()
    return {n: v for n, v in compute.user_data_variables.items() if isinstance(v, str)}


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match, duration
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return 3600 * hours + 60 * minutes + seconds


def _commands(text: str) -> list[str]:
    """The script's commands, continuation lines joined, comments and blank lines left out."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


# Stand-ins for what the script's definitions call: IMDS answers, the instance's group tag, and a
# complete-lifecycle-action that fails $HOOK_FAILURES times first. Each call is written to $CALLS.
FAKE_TOOLS = {
    "cfn-signal": 'echo "cfn-signal $*" >> "$CALLS"\n',
    "logger": "cat > /dev/null\n",
    "sleep": 'echo "sleep $*" >> "$CALLS"\n',
    "curl": """echo "curl $*" >> "$CALLS"
case "$*" in
  *api/token*) printf 'token-1' ;;
  *meta-data/instance-id*) printf 'i-0abc' ;;
esac
""",
    "aws": """echo "aws $*" >> "$CALLS"
case "$1 $2" in
  "ec2 describe-tags") printf 'webapp-dev-AutoScalingGroup-1A2B\\n' ;;
  "autoscaling complete-lifecycle-action")
    n=$(cat "$HOOK_FAILURES"); if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$HOOK_FAILURES"; exit 1; fi ;;
esac
""",
}


def _run_definitions(tmp_path: Path, body: str, *, hook_failures: int = 0) -> tuple[int, list[str]]:
    """The user data's prelude and definitions (everything before its first step) then ``body``, with fakes."""
    text = render_user_data()
    definitions = text[: text.index('APP_HOME="${AppHome}"')]
    script = substitute(definitions + body + "\n", _sample_values(text))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, stub in FAKE_TOOLS.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + stub)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    (tmp_path / "hook-failures").write_text(str(hook_failures))
    path = tmp_path / "user-data.sh"
    path.write_text(
        script.replace("/opt/aws/bin/cfn-signal", str(bin_dir / "cfn-signal"))
        .replace("/var/log/cfnbuild-bootstrap.log", str(tmp_path / "bootstrap.log"))
        .replace("/dev/console", str(tmp_path / "console"))
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "HOOK_FAILURES": str(tmp_path / "hook-failures"),
    }
    result = subprocess.run(["bash", str(path)], capture_output=True, text=True, env=env, timeout=60, check=False)
    return result.returncode, calls.read_text().splitlines()


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path):
    stack, _, _ = _stack()
    text = stack.to_json()
    assert cfn_lint(text, REGIONS, file="t.json") == []
    template = json.loads(text)
    for helper in HELPERS:
        del template["Resources"][helper]
    path = tmp_path / "compute.json"
    path.write_text(json.dumps(template, indent=2, sort_keys=True))
    assert checkov([path], root=tmp_path) == []


def test_launch_template_requires_imdsv2_has_no_public_address_and_encrypts_the_root_volume():
    t = _compute()
    t.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": {
                "ImageId": {"Ref": "ImageId"},
                "InstanceType": "t3.small",
                "IamInstanceProfile": {"Arn": {"Fn::GetAtt": ["InstanceProfile", "Arn"]}},
                "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
                "BlockDeviceMappings": [
                    {
                        "DeviceName": "/dev/xvda",
                        "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
                    }
                ],
                "NetworkInterfaces": [
                    {"DeviceIndex": 0, "AssociatePublicIpAddress": False, "Groups": [{"Ref": "AppSecurityGroupId"}]}
                ],
                "Monitoring": {"Enabled": True},
                "KeyName": Match.absent(),
            }
        },
    )


def test_ami_comes_from_the_public_ssm_parameter_never_a_literal_id():
    t = _compute()
    parameter = t.template["Parameters"]["ImageId"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"] == AL2023_X86_64
    assert not re.search(r"ami-[0-9a-f]{8,17}", json.dumps(t.template))


def test_instance_profile_holds_the_role_and_ssm_replaces_ssh():
    t = _compute()
    t.has_resource_properties("AWS::IAM::InstanceProfile", {"Roles": [{"Ref": "InstanceRole"}]})
    role = t.of_type("AWS::IAM::Role")["InstanceRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": ["ec2.amazonaws.com"]}
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    ]


def test_role_reads_releases_reads_and_writes_uploads_and_nothing_else_of_the_bucket():
    statements = {s["Sid"]: s for s in _statements(_compute())}

    def resource(sid: str) -> object:
        return statements[sid]["Resource"][0]

    assert resource("GrantListBucketAssets") == {"Fn::GetAtt": ["Assets", "Arn"]}
    assert resource("GrantReadObjectsAssetsReleases") == {"Fn::Sub": "${Assets.Arn}/releases/*"}
    assert resource("GrantReadObjectsAssetsUploads") == {"Fn::Sub": "${Assets.Arn}/uploads/*"}
    assert resource("GrantWriteObjectsAssetsUploads") == {"Fn::Sub": "${Assets.Arn}/uploads/*"}
    s3_sids = {sid for sid, s in statements.items() if any(a.startswith("s3:") for a in s["Action"])}
    assert s3_sids == {
        "GrantListBucketAssets",
        "GrantReadObjectsAssetsReleases",
        "GrantReadObjectsAssetsUploads",
        "GrantWriteObjectsAssetsUploads",
        "GrantReadObjectsAppArtifactBucketReleases",
    }
    assert statements["GrantReadSecretDbSecret"]["Resource"] == [{"Ref": "DbSecret"}]


def test_role_reads_the_release_prefix_of_app_artifact_bucket_only_when_it_is_given():
    statement = {s["Sid"]: s for s in _statements(_compute())}["GrantReadObjectsAppArtifactBucketReleases"]
    assert statement["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statement["Resource"] == [
        {
            "Fn::If": [
                "HasArtifactBucket",
                {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AppArtifactBucket}/releases/*"},
                # Empty parameter: the same prefix of the assets bucket, which the role reads anyway.
                {"Fn::Sub": "${Assets.Arn}/releases/*"},
            ]
        }
    ]


def test_app_artifact_bucket_defaults_empty_accepts_bucket_names_and_chooses_the_fetch_bucket():
    stack, compute, _ = _stack()
    template = stack.to_dict()
    parameter = template["Parameters"]["AppArtifactBucket"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == ""
    assert parameter["Description"] == "bucket holding AppArtifactKey; empty: the stack's own assets bucket"
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("", "cfnbuild-staging-111122223333-eu-west-1", "abc", "my.bucket-1"):
        assert pattern.fullmatch(good), good
    for bad in ("Caps", "ab", "-lead", "trail-", "a" * 64, "s3://bucket", "bucket/key"):
        assert not pattern.fullmatch(bad), bad
    assert template["Conditions"]["HasArtifactBucket"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AppArtifactBucket"}, ""]}]
    }
    chosen = {"Fn::If": ["HasArtifactBucket", {"Ref": "AppArtifactBucket"}, {"Ref": "Assets"}]}
    assert compute.artifact_bucket.to_dict() == chosen
    text, variables = _user_data(TemplateAssert(template))
    assert variables["ArtifactBucket"] == chosen
    assert 'aws s3 cp --only-show-errors --region "${AWS::Region}" "s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY"' in text
    assert "${AssetsBucket}" not in text, "the release is fetched from the chosen bucket only"


def test_the_export_finds_the_artifact_bucket_parameter_by_its_name():
    assert bucket_parameter(ARTIFACT_PARAMETER) == ARTIFACT_BUCKET_PARAMETER


def test_grant_parameter_bucket_read_scopes_to_the_prefix_and_refuses_bad_names():
    grants = Grants()
    grant_parameter_bucket_read(grants, "ReleaseBucket", condition="HasIt", prefix="rel/", otherwise=s3.Bucket("Own"))
    (statement,) = encode_to_dict(grants.document())["Statement"]
    assert statement["Sid"] == "GrantReadObjectsReleaseBucketRel"
    assert statement["Resource"][0]["Fn::If"][:2] == [
        "HasIt",
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ReleaseBucket}/rel/*"},
    ]
    with pytest.raises(ValueError, match="plain key prefix"):
        grant_parameter_bucket_read(Grants(), "B", condition="C", prefix="*", otherwise=s3.Bucket("Own"))
    with pytest.raises(ValueError, match="logical ID of a template parameter"):
        grant_parameter_bucket_read(Grants(), "${B}", condition="C", prefix="a/", otherwise=s3.Bucket("Own"))


def test_role_may_put_metrics_only_into_its_namespace_and_describe_tags():
    statements = {s["Sid"]: s for s in _statements(_compute(metrics_namespace="Shop"))}
    assert statements["GrantPutMetricsShop"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Shop"}}
    assert statements["GrantDescribeTagsAny"]["Action"] == ["ec2:DescribeTags"]
    starred = {sid for sid, s in statements.items() if s["Resource"] == ["*"]}
    assert starred == {"GrantPutMetricsShop", "GrantDescribeTagsAny"}


def test_a_customer_managed_key_is_decryptable_only_when_given():
    assert not any(a.startswith("kms:") for s in _statements(_compute()) for a in s["Action"])
    t = _compute(kms_key=kms.Key("SecretKey", KeyPolicy={}))
    (statement,) = [s for s in _statements(t) if any(a.startswith("kms:") for a in s["Action"])]
    assert statement["Action"] == ["kms:Decrypt"]
    assert statement["Resource"] == [{"Fn::GetAtt": ["SecretKey", "Arn"]}]


def test_seed_09_role_writes_exactly_to_the_given_log_groups_and_nothing_else():
    t = _compute()
    log_statements = [s for s in _statements(t) if any(a.startswith("logs:") for a in s["Action"])]
    written = set()
    for statement in log_statements:
        assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        (resource,) = statement["Resource"]
        arn, values = resource["Fn::Sub"]
        assert arn == "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}:*"
        written.add(values["LogGroup"]["Ref"])
    assert written == {"AppLogs", "NginxAccessLogs", "NginxErrorLogs", "BootstrapLogs"}
    assert "OtherLogs" not in json.dumps(_statements(t))
    assert not any(a in ("logs:*", "logs:CreateLogGroup") for s in _statements(t) for a in s["Action"])


def test_seed_09_the_cloudwatch_agent_config_names_each_log_group_from_the_stack():
    _, variables = _instance_file(_compute(), "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json")
    assert variables["AppLogGroup"] == {"Ref": "AppLogs"}
    assert variables["NginxAccessLogGroup"] == {"Ref": "NginxAccessLogs"}
    assert variables["NginxErrorLogGroup"] == {"Ref": "NginxErrorLogs"}
    assert variables["BootstrapLogGroup"] == {"Ref": "BootstrapLogs"}


def test_seed_06_user_data_takes_region_and_stack_from_pseudo_parameters():
    t = _compute()
    text, variables = _user_data(t)
    assert "${AWS::Region}" in text
    assert "${AWS::StackName}" in text
    assert not {"AWS::Region", "AWS::StackName"} & set(variables)
    env_text, env_variables = _instance_file(t, "/etc/webapp/app.env")
    assert "AWS_REGION=${AWS::Region}" in env_text
    variables = {**variables, **env_variables}
    rendered = json.dumps([text, variables, env_text])
    assert not [region for region in KNOWN_REGIONS if region in rendered]
    assert not re.search(r"\b\d{12}\b", rendered)  # no account id
    assert not re.search(r"arn:aws[a-z-]*:", rendered)  # no literal ARN (the secret's is a Ref)
    assert variables["DbSecretArn"] == {"Ref": "DbSecret"}
    assert variables["AssetsBucket"] == {"Ref": "Assets"}


def test_seed_06_the_whole_compute_template_holds_no_literal_region():
    stack, _, _ = _stack()
    rendered = stack.to_json()
    assert not [region for region in KNOWN_REGIONS if region in rendered]


def test_seed_06_the_script_references_only_pseudo_parameters_and_named_variables():
    text = render_user_data()
    pseudo = {n for n in sub_references(text) if n.startswith("AWS::")}
    assert pseudo == {"AWS::Region", "AWS::StackName"}
    assert not [region for region in KNOWN_REGIONS if region in text]


def test_seed_13_user_data_is_strict_logged_signals_failure_from_an_err_trap_and_success_last():
    text = render_user_data()
    lines = [line.strip() for line in text.splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert lines[0] == "#!/bin/bash"
    assert "set -euo pipefail" in commands
    logging = "exec > >(tee -a /var/log/cfnbuild-bootstrap.log | logger -t bootstrap -s 2>/dev/console) 2>&1"
    assert logging in commands
    (trap,) = [c for c in commands if c.startswith("trap ")]
    assert trap.endswith(" ERR")
    assert "/opt/aws/bin/cfn-signal -e 1 " in trap
    for option in ('--stack "${AWS::StackName}"', '--resource "${SignalResource}"', '--region "${AWS::Region}"'):
        assert option in trap
        assert option in commands[-1]
    # Strict mode, logging and the trap come before any real work.
    first_work = next(i for i, c in enumerate(commands) if "dnf install -y aws-cfn-bootstrap" in c)
    assert commands.index(trap) < first_work
    assert commands.index("set -euo pipefail") < commands.index(logging) < commands.index(trap)
    assert commands[-1].startswith("/opt/aws/bin/cfn-signal -e 0 ")
    assert sum("cfn-signal -e 0" in c for c in commands) == 1


def test_seed_13_signal_resource_is_the_groups_logical_id():
    _, variables = _user_data(_compute())
    assert variables["SignalResource"] == "AutoScalingGroup"


def test_seed_13_a_failing_command_signals_failure_through_the_err_trap(tmp_path):
    status, calls = _run_definitions(tmp_path, 'false\necho not reached >> "$CALLS"')
    assert status != 0
    (signal,) = [c for c in calls if c.startswith("cfn-signal")]
    assert signal.startswith("cfn-signal -e 1 --reason bootstrap failed at line ")
    assert signal.endswith("--stack webapp-dev --resource AutoScalingGroup --region eu-west-1")
    assert "not reached" not in calls


def test_seed_13_user_data_is_shellcheck_clean_after_substitution(tmp_path):
    shellcheck = require_executable("shellcheck", "apt-get install shellcheck")
    text = render_user_data()
    script = tmp_path / "user-data.sh"
    script.write_text(substitute(text, _sample_values(text)))
    result = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_user_data_stays_under_the_16_kb_limit_after_substitution():
    text = render_user_data()
    _, compute, _ = _stack()
    variables = compute.user_data_variables
    assert user_data_size_bound(text, variables) < USER_DATA_LIMIT
    # Every value CloudFormation resolves (a Ref) at its longest, the others as the blueprint renders them.
    worst = substitute(
        text,
        {
            name: variables[name] if isinstance(variables.get(name), str) else "x" * MAX_SUBSTITUTED_CHARS
            for name in sub_references(text)
        },
    )
    assert len(worst.encode()) <= user_data_size_bound(text, variables)
    # Without the values, every reference counts as the longest: a bound, and a looser one.
    assert user_data_size_bound(text) > user_data_size_bound(text, variables)


def test_only_the_variables_the_script_references_are_passed_to_fn_sub():
    text, variables = _user_data(_compute())
    assert set(variables) == sub_references(text) - {"AWS::Region", "AWS::StackName"}


def test_substitute_does_what_fn_sub_does():
    assert substitute("${AWS::Region} ${Name} ${!HOME} $PATH", {"AWS::Region": "r", "Name": "n"}) == "r n ${HOME} $PATH"
    with pytest.raises(KeyError, match="Missing is referenced"):
        substitute("${Missing}", {})


def test_seed_08_a_new_instance_waits_in_a_launch_hook_that_abandons_it_unless_its_bootstrap_continues():
    t = _compute(health_check_grace_seconds=90)
    t.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "HealthCheckType": "ELB",
            "HealthCheckGracePeriod": 90,
            "TargetGroupARNs": [{"Ref": "TargetGroup"}],
            "LifecycleHookSpecificationList": [
                {
                    "LifecycleHookName": LAUNCH_HOOK_NAME,
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                    "DefaultResult": "ABANDON",
                    "HeartbeatTimeout": launch_hook_timeout(render_user_data()),
                    "NotificationTargetARN": Match.absent(),
                }
            ],
        },
    )
    # The load balancer still judges generously, now from the end of the bootstrap on.
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckTimeoutSeconds": 10, "HealthCheckIntervalSeconds": 30, "UnhealthyThresholdCount": 5},
    )
    _, variables = _user_data(t)
    assert variables["LifecycleHookName"] == LAUNCH_HOOK_NAME


def test_seed_08_the_hook_outlasts_every_bounded_wait_of_the_user_data_and_the_signal_outlasts_the_hook():
    """The numbers as the template has them: the script's retry calls with the values Fn::Sub puts in."""
    t = _compute()
    text, variables = _user_data(t)
    kill = int(variables["TimeoutKillSeconds"])
    total = 0
    calls = re.findall(r'retry "\$\{(\w+)Attempts\}" "\$\{\1Seconds\}" "\$\{\1PauseSeconds\}"', text)
    assert len(calls) >= 10
    for name in calls:
        attempts, seconds, pause = (int(variables[f"{name}{part}"]) for part in ("Attempts", "Seconds", "PauseSeconds"))
        total += attempts * (seconds + kill) + (attempts - 1) * pause
    (group,) = t.of_type("AWS::AutoScaling::AutoScalingGroup").values()
    (hook,) = group["Properties"]["LifecycleHookSpecificationList"]
    heartbeat = hook["HeartbeatTimeout"]
    # The hook's timer starts at launch, before the user data: the boot comes first.
    assert heartbeat >= BOOT_SECONDS + total
    signal = _seconds(group["CreationPolicy"]["ResourceSignal"]["Timeout"])
    pause_time = _seconds(group["UpdatePolicy"]["AutoScalingRollingUpdate"]["PauseTime"])
    # The success signal comes after the hook: CloudFormation waits at least as long as Auto Scaling.
    assert signal > heartbeat
    assert pause_time > heartbeat
    assert pause_time <= MAX_PAUSE_SECONDS == 3600  # CloudFormation's most: PT1H


def test_seed_08_every_wait_of_the_user_data_is_a_retry_of_the_numbers_the_blueprint_renders():
    text = render_user_data()
    body = text[text.index("retry() {") : text.index("\n}\n", text.index("retry() {"))]
    outside = text.replace(body, "")
    # Only retry waits or stops anything; nothing else sleeps, times out or loops on its own.
    for construct in (r"\bsleep\b", r"\btimeout\b", r"--retry", r"--max-time", r"\bseq\b", r"\bwhile\b", r"\buntil\b"):
        assert not [c for c in _commands(outside) if re.search(construct, re.sub(r'"[^"]*"', '""', c))], construct
    # Every command that reaches the network or waits for a service runs under retry.
    waiting = ("dnf ", "curl ", "aws ", "/bin/pip ", "cfn-init ", "systemd-run ", "systemctl restart", "agent-ctl ")
    for command in _commands(text):
        if any(w in command for w in waiting) and "cfn-signal" not in command:
            assert re.search(r"(^|\$\()retry ", command), command
    used = {w.name for w in instance_files.bootstrap_waits(text)}
    assert used == {w.name for w in BOOTSTRAP_WAITS}, "a wait of BOOTSTRAP_WAITS the script no longer uses"
    # The numbers reach the script only through Fn::Sub: none is written into it.
    _, variables = _user_data(_compute())
    for wait in BOOTSTRAP_WAITS:
        assert {k: variables[k] for k in wait.variables()} == wait.variables()


def test_seed_08_the_bootstrap_completes_the_hook_with_continue_once_retrying_a_failed_call(tmp_path):
    status, calls = _run_definitions(tmp_path, "complete_launch CONTINUE\ncomplete_launch CONTINUE", hook_failures=2)
    assert status == 0
    assert (
        calls[0]
        == "curl -fsS -X PUT -H X-aws-ec2-metadata-token-ttl-seconds: 300 http://169.254.169.254/latest/api/token"
    )
    assert (
        calls[1] == "curl -fsS -H X-aws-ec2-metadata-token: token-1 http://169.254.169.254/latest/meta-data/instance-id"
    )
    assert calls[2].startswith("aws ec2 describe-tags --region eu-west-1 --filters Name=resource-id,Values=i-0abc ")
    completes = [c for c in calls if "complete-lifecycle-action" in c]
    # Two failures, then success; the second complete_launch does nothing.
    assert len(completes) == 3
    assert completes[-1] == (
        "aws autoscaling complete-lifecycle-action --region eu-west-1 --lifecycle-hook-name bootstrap "
        "--auto-scaling-group-name webapp-dev-AutoScalingGroup-1A2B --instance-id i-0abc "
        "--lifecycle-action-result CONTINUE"
    )
    pause = next(w for w in BOOTSTRAP_WAITS if w.name == "CompleteHook").pause
    assert calls.count(f"sleep {pause}") == 2


def test_seed_08_a_failed_bootstrap_signals_failure_first_then_abandons_the_hook(tmp_path):
    status, calls = _run_definitions(tmp_path, 'STEP="migrating the database"\nfalse')
    assert status != 0
    signal = next(i for i, c in enumerate(calls) if c.startswith("cfn-signal -e 1 "))
    (abandon,) = [i for i, c in enumerate(calls) if "complete-lifecycle-action" in c]
    # The signal first: ABANDON terminates the instance, which may cut the script short.
    assert signal < abandon
    assert "(migrating the database)" in calls[signal]
    assert calls[abandon].endswith("--instance-id i-0abc --lifecycle-action-result ABANDON")


def test_seed_08_a_failed_continue_is_not_followed_by_a_second_completion(tmp_path):
    attempts = next(w for w in BOOTSTRAP_WAITS if w.name == "CompleteHook").attempts
    body = 'complete_launch CONTINUE || fail "the launch lifecycle hook could not be completed"'
    status, calls = _run_definitions(tmp_path, body, hook_failures=99)
    assert status != 0
    completes = [c for c in calls if "complete-lifecycle-action" in c]
    assert len(completes) == attempts
    assert all(c.endswith("CONTINUE") for c in completes)  # the hook's timeout abandons it
    (signal,) = [c for c in calls if c.startswith("cfn-signal")]
    assert "(the launch lifecycle hook could not be completed)" in signal


def test_seed_08_the_role_completes_lifecycle_actions_only_of_this_stacks_group():
    # The only Auto Scaling permission of the role.
    (statement,) = [s for s in _statements(_compute()) if any(a.startswith("autoscaling:") for a in s["Action"])]
    assert statement["Action"] == ["autoscaling:CompleteLifecycleAction"]
    assert statement["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:"
            "autoScalingGroup:*:autoScalingGroupName/*"
        }
    ]
    # Tags CloudFormation puts on the group it creates, which no one can set by hand (aws: prefix).
    assert statement["Condition"] == {
        "StringEquals": {
            "autoscaling:ResourceTag/aws:cloudformation:stack-id": {"Ref": "AWS::StackId"},
            "autoscaling:ResourceTag/aws:cloudformation:logical-id": "AutoScalingGroup",
        }
    }


def test_grant_lifecycle_actions_complete_takes_only_a_logical_id():
    with pytest.raises(ValueError, match="logical ID of the stack's Auto Scaling group"):
        grant_lifecycle_actions_complete(Grants(), "my-asg/*")


def test_the_signal_timeout_is_the_hooks_plus_the_signals_own_time_in_whole_minutes():
    text = render_user_data()
    assert launch_hook_timeout(text) % 60 == 0
    assert signal_timeout(text) - launch_hook_timeout(text) == 120
    wait = BootstrapWait("X", attempts=3, seconds=10, pause=4, doc="d")
    assert wait.bound == 3 * (10 + instance_files.TIMEOUT_KILL_SECONDS) + 2 * 4


def test_a_retry_with_numbers_of_its_own_is_rejected(tmp_path, monkeypatch):
    _files_dir(tmp_path, monkeypatch)
    (tmp_path / "own.sh").write_text(render_user_data() + "retry 3 10 5 curl -fsS http://127.0.0.1/\n")
    with pytest.raises(InputError, match=r"'user_data_file': own.sh: 'retry 3 10 5 curl .*' does not name one"):
        _stack(user_data_file="own.sh")


def test_a_script_that_never_completes_the_launch_hook_is_rejected(tmp_path, monkeypatch):
    _files_dir(tmp_path, monkeypatch)
    (tmp_path / "nohook.sh").write_text(render_user_data().replace("${LifecycleHookName}", "bootstrap"))
    with pytest.raises(InputError, match=r"nohook\.sh never completes the launch lifecycle hook"):
        _stack(user_data_file="nohook.sh")


def test_waits_that_cloudformations_pause_cannot_outlast_are_rejected(monkeypatch):
    waits = tuple(dataclasses.replace(w, attempts=60, pause=30) if w.name == "Release" else w for w in BOOTSTRAP_WAITS)
    monkeypatch.setattr(instance_files, "BOOTSTRAP_WAITS", waits)
    with pytest.raises(InputError, match=r"add up to a launch hook of \d+ s .* at most 3600 s: shorten the waits"):
        _stack()


def test_seed_14_instances_serve_the_target_port_that_their_security_group_opens_to_the_alb():
    from blueprints.security import SecurityGroups, SecurityGroupsInputs

    stack = Stack("app", description="d", project="p", environment="dev")
    net = Network(stack, NetworkInputs())
    groups = SecurityGroups(stack, SecurityGroupsInputs(vpc_id=net.vpc_id))
    lb = LoadBalancer(
        stack,
        LoadBalancerInputs(
            vpc_id=net.vpc_id,
            subnet_ids=net.public_subnet_ids,
            security_group_id=groups.alb_group_id,
            log_bucket_name=Ref("AWS::NoValue"),
        ),
    )
    log_groups = {
        name: stack.add_resource(logs.LogGroup(f"LogGroup{index}"), owner="test", stateful=True)
        for index, name in enumerate(LOG_GROUP_NAMES)
    }
    Compute(
        stack,
        ComputeInputs(
            subnet_ids=net.app_subnet_ids,
            security_group_id=groups.app_group_id,
            target_group_arn=lb.target_group_arn,
            assets_bucket=stack.add_resource(s3.Bucket("Assets"), owner="test"),
            db_secret=stack.add_resource(secretsmanager.Secret("DbSecret"), owner="test"),
            log_groups=log_groups,
        ),
    )
    t = TemplateAssert(stack.to_dict())
    (target_group,) = t.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert target_group["Properties"]["Port"] == lb.target_port == 80
    (template,) = t.of_type("AWS::EC2::LaunchTemplate").values()
    (interface,) = template["Properties"]["LaunchTemplateData"]["NetworkInterfaces"]
    app_group = interface["Groups"][0]["Fn::GetAtt"][0]
    alb_group = t.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")["LoadBalancer"]["Properties"]["SecurityGroups"]
    ingress = [
        r["Properties"]
        for r in t.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [app_group, "GroupId"]}
    ]
    assert ingress
    assert ingress[0]["SourceSecurityGroupId"] == alb_group[0]
    assert ingress[0]["FromPort"] == ingress[0]["ToPort"] == 80


def test_group_sizes_launch_template_version_and_signals():
    t = _compute(min_size=1, max_size=3, desired_capacity=2)
    t.has_resource(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "Properties": {
                "MinSize": "1",
                "MaxSize": "3",
                "DesiredCapacity": "2",
                "VPCZoneIdentifier": [{"Ref": "AppSubnet1"}, {"Ref": "AppSubnet2"}],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": "LaunchTemplate"},
                    "Version": {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]},
                },
                "MetricsCollection": [{"Granularity": "1Minute"}],
            },
            "CreationPolicy": {
                "ResourceSignal": {"Count": 2, "Timeout": f"PT{signal_timeout(render_user_data()) // 60}M"}
            },
            "UpdatePolicy": {
                "AutoScalingRollingUpdate": {
                    "MinInstancesInService": 1,
                    "MaxBatchSize": 1,
                    "PauseTime": f"PT{signal_timeout(render_user_data()) // 60}M",
                    "WaitOnResourceSignals": True,
                    "SuspendProcesses": [
                        "HealthCheck",
                        "ReplaceUnhealthy",
                        "AZRebalance",
                        "AlarmNotification",
                        "ScheduledActions",
                    ],
                }
            },
        },
    )


def test_rolling_update_keeps_min_in_service_below_max_size():
    (group,) = (
        _compute(min_size=2, max_size=2, desired_capacity=2).of_type("AWS::AutoScaling::AutoScalingGroup").values()
    )
    assert group["UpdatePolicy"]["AutoScalingRollingUpdate"]["MinInstancesInService"] == 1


def test_cpu_target_tracking_policy():
    _compute(cpu_target_percent=60).has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "AutoScalingGroupName": {"Ref": "AutoScalingGroup"},
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
                "TargetValue": 60.0,
            },
        },
    )


def test_seed_18_group_waits_only_for_what_it_is_told_the_nat_routes():
    t = _compute(depends_on=("PrivateDefaultRoute1", "PrivateDefaultRoute2"))
    t.has_resource(
        "AWS::AutoScaling::AutoScalingGroup", {"DependsOn": ["PrivateDefaultRoute1", "PrivateDefaultRoute2"]}
    )
    compute_types = ("AWS::AutoScaling", "AWS::EC2::LaunchTemplate", "AWS::IAM")
    resources = _compute().resources.values()
    assert not any("DependsOn" in r for r in resources if r["Type"].startswith(compute_types))


def test_extra_environment_reaches_the_script(tmp_path, monkeypatch):
    _files_dir(tmp_path, monkeypatch)
    (tmp_path / "custom.sh").write_text(render_user_data() + 'echo "${DbHost}"\n')
    text, variables = _user_data(_compute(user_data_file="custom.sh", extra_environment={"DbHost": Ref("DbSecret")}))
    assert text.endswith('echo "${DbHost}"\n')
    assert variables["DbHost"] == {"Ref": "DbSecret"}


def test_outputs_and_attributes():
    stack, compute, _ = _stack()
    t = TemplateAssert(stack.to_dict())
    for name in ("AutoScalingGroupName", "LaunchTemplateId", "InstanceRoleArn"):
        t.has_output(name, {"Export": Match.absent(), "Description": Match.any()})
    t.has_output("AutoScalingGroupName", {"Value": {"Ref": "AutoScalingGroup"}})
    t.has_output("LaunchTemplateId", {"Value": {"Ref": "LaunchTemplate"}})
    t.has_output("InstanceRoleArn", {"Value": {"Fn::GetAtt": ["InstanceRole", "Arn"]}})
    assert compute.auto_scaling_group.title == "AutoScalingGroup"
    assert compute.auto_scaling_group_name.to_dict() == {"Ref": "AutoScalingGroup"}
    assert compute.launch_template_id.to_dict() == {"Ref": "LaunchTemplate"}
    assert compute.instance_role.role.title == "InstanceRole"
    assert compute.instance_role_arn.to_dict() == {"Fn::GetAtt": ["InstanceRole", "Arn"]}


def test_grant_bucket_prefixes_gives_each_prefix_its_own_statements():
    grants = Grants()
    bucket = s3.Bucket("Assets")
    grants.grant_bucket_read(bucket, prefix="releases/")
    grants.grant_bucket_read_write(bucket, prefix="uploads/")
    sids = [s["Sid"] for s in encode_to_dict(grants.document())["Statement"]]
    # The existing helpers name statements by bucket only, so the uploads read is lost:
    assert sids == ["GrantListBucketAssets", "GrantReadObjectsAssets", "GrantWriteObjectsAssets"]
    grants = Grants()
    grant_bucket_prefixes(grants, bucket, read=["releases/"], read_write=["uploads/"])
    statements = encode_to_dict(grants.document())["Statement"]
    assert [(s["Sid"], s["Resource"][0]) for s in statements] == [
        ("GrantListBucketAssets", {"Fn::GetAtt": ["Assets", "Arn"]}),
        ("GrantReadObjectsAssetsReleases", {"Fn::Sub": "${Assets.Arn}/releases/*"}),
        ("GrantReadObjectsAssetsUploads", {"Fn::Sub": "${Assets.Arn}/uploads/*"}),
        ("GrantWriteObjectsAssetsUploads", {"Fn::Sub": "${Assets.Arn}/uploads/*"}),
    ]


def test_grant_bucket_prefixes_refuses_bad_or_clashing_prefixes():
    with pytest.raises(ValueError, match="plain key prefix"):
        grant_bucket_prefixes(Grants(), s3.Bucket("Assets"), read=["/releases/"])
    with pytest.raises(ValueError, match="would share statement IDs"):
        grant_bucket_prefixes(Grants(), s3.Bucket("Assets"), read=["a/b/"], read_write=["a-b/"])
    grants = Grants()
    with pytest.raises(ValueError, match="'bad\\*'"):
        grant_bucket_prefixes(grants, s3.Bucket("Assets"), read=["ok/", "bad*"])
    assert grants.statements == []


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"min_size": 5, "max_size": 4, "desired_capacity": 4}, "'min_size': is 5, above max_size 4"),
        ({"desired_capacity": 5}, r"'desired_capacity': is 5, outside min_size..max_size \(2..4\)"),
        ({"min_size": 0, "desired_capacity": 0}, "'desired_capacity': is 0"),
        ({"health_check_grace_seconds": -1}, "'health_check_grace_seconds': is -1; use 0 or more"),
        (
            {"health_check_grace_seconds": 3600},
            r"'health_check_grace_seconds': is 3600, not below the launch hook's \d+ s: the hook holds each new "
            "instance until its bootstrap ends",
        ),
        ({"cpu_target_percent": 95}, "'cpu_target_percent': is 95"),
        ({"instance_type": "big"}, "'instance_type': is 'big'"),
        ({"instance_type": "t4g.small"}, "'ami_parameter': .* does not match the architecture of t4g.small"),
        ({"ami_parameter": AL2023_X86_64.replace("x86_64", "arm64")}, "'ami_parameter': .* of t3.small"),
        ({"root_volume_gib": 4}, "'root_volume_gib': is 4"),
        ({"artifact_prefix": "/releases"}, "'artifact_prefix': is '/releases'"),
        ({"uploads_prefix": "releases/uploads/"}, "'uploads_prefix': 'releases/uploads/' overlaps"),
        ({"metrics_namespace": "AWS/EC2"}, "'metrics_namespace': starts with 'AWS/'"),
        ({"log_groups": {}}, "'log_groups': is empty"),
        ({"log_groups": {"App": logs.LogGroup("X")}}, "'log_groups': name 'App'"),
        ({"log_groups": {"app": s3.Bucket("X")}}, "'log_groups': 'app' is not an AWS::Logs::LogGroup"),
        (
            {"assets_bucket": secretsmanager.Secret("X")},
            "'assets_bucket': is AWS::SecretsManager::Secret; give the AWS::S3::Bucket resource",
        ),
        (
            {"db_secret": StackResource("data", "DbSecret", "AWS::S3::Bucket", "DataDbSecretArn")},
            "'db_secret': is AWS::S3::Bucket; give the AWS::SecretsManager::Secret resource",
        ),
        ({"user_data_file": "../compute.py"}, "'user_data_file': cannot be read"),
        ({"user_data_file": "missing.sh"}, "'user_data_file': cannot be read"),
        ({"extra_environment": {"Unused": "x"}}, "'extra_environment': Unused not referenced"),
        ({"extra_environment": {"DbSecretArn": "x"}}, "'extra_environment': DbSecretArn is already provided"),
        ({"extra_environment": {"bad-name": "x"}}, "'extra_environment': name 'bad-name'"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match="Compute input " + message):
        _stack(**inputs)


def test_a_script_referencing_an_unknown_value_or_account_is_rejected(tmp_path, monkeypatch):
    _files_dir(tmp_path, monkeypatch)
    (tmp_path / "bad.sh").write_text("#!/bin/bash\necho ${HOME} ${AWS::AccountId}\n")
    with pytest.raises(InputError, match=r"references \$\{AWS::AccountId\}, \$\{HOME\}, which nothing provides"):
        _stack(user_data_file="bad.sh")


def test_a_script_that_could_exceed_16_kb_is_rejected(tmp_path, monkeypatch):
    _files_dir(tmp_path, monkeypatch)
    (tmp_path / "big.sh").write_text("#!/bin/bash\n" + "echo ${AssetsBucket}\n" * 70)
    with pytest.raises(InputError, match="may exceed EC2's 16 KB user data limit"):
        _stack(user_data_file="big.sh")


def test_render_user_data_reads_the_single_source_file():
    path = Path(__file__).resolve().parents[2] / "blueprints" / "files" / "user-data.sh"
    assert render_user_data() == path.read_text()


def test_the_readme_states_the_launch_hooks_and_the_signals_timeouts_as_built():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    text = render_user_data()
    assert f"({launch_hook_timeout(text) // 60} minutes)" in readme
    assert f"({signal_timeout(text) // 60} minutes;" in readme


def test_resources_of_other_stacks_are_taken_as_handles_and_granted_by_the_parameters_carrying_them():
    """The split web app: bucket, secret and log groups of the data stack, the key of the network stack."""
    stack = Stack("webapp", description="d", project="p", environment="dev")
    bucket = stack.use_resource(
        "data", "AssetsBucket", "AWS::S3::Bucket", ref="AssetsBucketName", arn="AssetsBucketArn"
    )
    secret = stack.use_resource("data", "DbSecret", "AWS::SecretsManager::Secret", ref="DbSecretArn")
    key = stack.use_resource("network", "LogsKey", "AWS::KMS::Key", ref="LogsKeyArn", arn="LogsKeyArn")
    groups = {
        name: stack.use_resource(
            "data", logical_id(name, "LogGroup"), "AWS::Logs::LogGroup", ref=logical_id(name, "LogGroupName")
        )
        for name in LOG_GROUP_NAMES
    }
    for name in ("AppSubnet", "AppSecurityGroupId", "TargetGroupArn"):
        stack.add_parameter(Parameter(name, Type="String"), owner="test")
    Compute(
        stack,
        ComputeInputs(
            subnet_ids=[Ref("AppSubnet")],
            security_group_id=Ref("AppSecurityGroupId"),
            target_group_arn=Ref("TargetGroupArn"),
            assets_bucket=bucket,
            db_secret=secret,
            log_groups=groups,
            kms_key=key,
        ),
    )
    t = TemplateAssert(stack.to_dict())
    (role,) = t.of_type("AWS::IAM::Role").values()
    statements = {st["Sid"]: st["Resource"] for st in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["GrantReadSecretDbSecret"] == [{"Ref": "DataDbSecretArn"}]
    assert statements["GrantDecryptWithLogsKey"] == [{"Ref": "NetworkLogsKeyArn"}]
    assert statements["GrantWriteObjectsAssetsBucketUploads"] == [{"Fn::Sub": "${DataAssetsBucketArn}/uploads/*"}]
    assert (
        t.template["Metadata"]["cfnbuild"]["artifacts"]["AppArtifactKey"]["bucket_parameter"] == "DataAssetsBucketName"
    )
    _, values = _instance_file(t, "/etc/webapp/app.env")
    assert values["AssetsBucket"] == {"Ref": "DataAssetsBucketName"}
    assert values["DbSecretArn"] == {"Ref": "DataDbSecretArn"}
