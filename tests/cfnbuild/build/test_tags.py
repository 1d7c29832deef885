from troposphere import Tags, autoscaling, ec2, s3, ssm

from cfnbuild import Stack
from cfnbuild.build.tags import apply_tags, standard_tags, tag_property


def _stack() -> Stack:
    return Stack("demo", description="d", project="shop", environment="dev", tags={"Owner": "team-a"})


def test_standard_tags_cannot_be_overridden_by_user_tags():
    tags = standard_tags("shop", "dev", {"Environment": "prod", "Owner": "me"})
    assert tags == {"Environment": "dev", "ManagedBy": "cfnbuild", "Owner": "me", "Project": "shop"}


def test_every_taggable_resource_carries_project_environment_managedby_and_user_tags():
    stack = _stack()
    stack.add_resource(ec2.VPC("Vpc", CidrBlock="10.0.0.0/16", Tags=Tags(Name="main")), owner="t")
    stack.add_resource(s3.Bucket("Bucket"), owner="t")
    rendered = stack.to_dict()["Resources"]
    assert rendered["Vpc"]["Properties"]["Tags"] == [
        {"Key": "Environment", "Value": "dev"},
        {"Key": "ManagedBy", "Value": "cfnbuild"},
        {"Key": "Name", "Value": "main"},
        {"Key": "Owner", "Value": "team-a"},
        {"Key": "Project", "Value": "shop"},
    ]
    assert {t["Key"] for t in rendered["Bucket"]["Properties"]["Tags"]} == {
        "Environment",
        "ManagedBy",
        "Owner",
        "Project",
    }


def test_auto_scaling_group_tags_propagate_to_instances():
    stack = _stack()
    stack.add_resource(
        autoscaling.AutoScalingGroup("Asg", MinSize="1", MaxSize="2", VPCZoneIdentifier=["subnet-1"]),
        owner="t",
    )
    tags = stack.to_dict()["Resources"]["Asg"]["Properties"]["Tags"]
    assert all(tag["PropagateAtLaunch"] is True for tag in tags)
    assert {t["Key"] for t in tags} == {"Environment", "ManagedBy", "Owner", "Project"}


def test_map_shaped_tags_are_a_map():
    stack = _stack()
    stack.add_resource(ssm.Parameter("Param", Type="String", Value="x"), owner="t")
    assert stack.to_dict()["Resources"]["Param"]["Properties"]["Tags"] == {
        "Environment": "dev",
        "ManagedBy": "cfnbuild",
        "Owner": "team-a",
        "Project": "shop",
    }


def test_untaggable_resources_get_no_tags_property():
    assert tag_property("AWS::EC2::Route") is None
    properties = {"RouteTableId": "x"}
    apply_tags("AWS::EC2::Route", properties, {"Project": "p"})
    assert properties == {"RouteTableId": "x"}


def test_tags_read_from_the_resource_schema_not_a_table():
    assert tag_property("AWS::Budgets::Budget") == ("ResourceTags", "list")
    assert tag_property("AWS::AutoScaling::AutoScalingGroup") == ("Tags", "list-propagate")
