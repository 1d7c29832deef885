import pytest
from troposphere import encode_to_dict, logs, s3, secretsmanager

from cfnbuild.build.grants import Grants, key_policy


def _render(grants: Grants) -> list[dict]:
    return encode_to_dict(grants.document())["Statement"]


def test_bucket_read_grants_list_on_the_bucket_and_get_on_its_objects_only():
    grants = Grants()
    grants.grant_bucket_read(s3.Bucket("Assets"))
    assert _render(grants) == [
        {
            "Sid": "GrantListBucketAssets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [{"Fn::GetAtt": ["Assets", "Arn"]}],
        },
        {
            "Sid": "GrantReadObjectsAssets",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [{"Fn::Sub": "${Assets.Arn}/*"}],  # the form rule packs follow back to the bucket
        },
    ]


def test_bucket_read_write_adds_object_writes_but_never_bucket_deletion():
    grants = Grants()
    grants.grant_bucket_read_write(s3.Bucket("Assets"))
    actions = [a for st in _render(grants) for a in st["Action"]]
    assert "s3:PutObject" in actions
    assert "s3:DeleteObject" in actions
    assert "s3:DeleteBucket" not in actions
    assert not any(a.endswith("*") for a in actions)


def test_secret_read_is_scoped_to_the_secret_arn():
    grants = Grants()
    grants.grant_secret_read(secretsmanager.Secret("DbSecret"))
    assert _render(grants) == [
        {
            "Sid": "GrantReadSecretDbSecret",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": [{"Ref": "DbSecret"}],
        }
    ]


def test_log_group_write_is_scoped_to_the_group_streams():
    grants = Grants()
    grants.grant_log_group_write(logs.LogGroup("AppLogs"))
    (statement,) = _render(grants)
    assert statement["Action"] == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    ]
    assert statement["Resource"] == [
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}:*",
                {"LogGroup": {"Ref": "AppLogs"}},
            ]
        }
    ]


def test_metrics_put_uses_star_only_with_a_namespace_condition():
    grants = Grants()
    grants.grant_metrics_put("WebApp")
    (statement,) = _render(grants)
    assert statement["Resource"] == ["*"]
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "WebApp"}}


def test_star_is_refused_for_actions_with_resource_level_permissions():
    from awacs import s3 as s3_actions

    grants = Grants()
    with pytest.raises(ValueError, match="s3:GetObject support resource-level permissions"):
        grants._allow("Everything", "all", [s3_actions.GetObject], ["*"])


def test_the_same_grant_twice_is_one_statement():
    grants = Grants()
    bucket = s3.Bucket("Assets")
    grants.grant_bucket_read(bucket)
    grants.grant_bucket_read(bucket)
    assert len(grants.statements) == 2


def test_every_grant_statement_sid_starts_with_grant():
    policy = key_policy(logs=True, services=["sns.amazonaws.com"])
    statements = encode_to_dict(policy)["Statement"]
    assert [s["Sid"] for s in statements] == [
        "GrantAccountAdministersKey",
        "GrantCloudWatchLogsEncrypts",
        "GrantServicesEncrypt",
    ]
    assert statements[1]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    }


def test_action_resource_types_come_from_the_service_authorization_reference_cfn_lint_ships():
    from cfnbuild.build.provisioning import action_resource_types

    assert action_resource_types("iam:PassRole") == ("role",)
    assert action_resource_types("IAM:GetInstanceProfile") == ("instance-profile",), "without regard to case"
    assert action_resource_types("iam:ListRoles") == (), "takes only '*'"
    assert action_resource_types("kms:CreateKey") == (), "a key has no ARN before it is made"
    with pytest.raises(ValueError, match="iam:MadeUp is not an IAM action cfn-lint knows"):
        action_resource_types("iam:MadeUp")


def test_key_policy_gives_budgets_its_documented_statement_and_the_other_services_the_source_condition():
    statements = encode_to_dict(key_policy(services=["sns.amazonaws.com", "budgets.amazonaws.com"]))["Statement"]
    assert [s["Sid"] for s in statements] == [
        "GrantAccountAdministersKey",
        "GrantServicesEncrypt",
        "GrantBudgetsEncryptsTopicMessages",
    ]
    assert statements[1]["Principal"] == {"Service": ["sns.amazonaws.com"]}
    assert statements[1]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert statements[2]["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    assert "Condition" not in statements[2]


def test_key_policy_without_services_has_no_service_statement():
    statements = encode_to_dict(key_policy())["Statement"]
    assert [s["Sid"] for s in statements] == ["GrantAccountAdministersKey"]


def test_queue_policy_denies_every_sqs_request_without_tls_on_each_queue():
    from troposphere import sqs

    from cfnbuild.build.grants import ResourcePolicy

    queues = [sqs.Queue("Work"), sqs.Queue("DeadLetters")]
    policy = ResourcePolicy()
    policy.deny_insecure_queue_access(queues)
    policy.deny_insecure_queue_access(queues)  # the same statement once
    (statement,) = encode_to_dict(policy.document())["Statement"]
    assert statement == {
        "Sid": "GrantDenyInsecureAccessWorkDeadLetters",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["sqs:*"],
        "Resource": [{"Fn::GetAtt": ["Work", "Arn"]}, {"Fn::GetAtt": ["DeadLetters", "Arn"]}],
        "Condition": {"Bool": {"aws:SecureTransport": False}},
    }
