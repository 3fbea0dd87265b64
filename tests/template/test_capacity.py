"""Scaling, several instance types, and the instance logs in CloudWatch: the reference template
(session fixture) and one mixed-instances stack (synthesized once for this module)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from gunicorn_alb import ApplicationLoadBalancedGunicornService, instance_logs
from tests.helpers import env_value, instance_file, new_stack, user_data_text

Match = assertions.Match


@pytest.fixture(scope="module")
def mixed() -> tuple[ApplicationLoadBalancedGunicornService, assertions.Template]:
    """Two instance types, half of the capacity above the base on Spot, CPU scaling only, a
    Spot-unfriendly drain (warns), the instance logs under an imported key (warns) for a month,
    recycled workers (warns)."""
    stack, vpc = new_stack()
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    service = ApplicationLoadBalancedGunicornService(
        stack,
        "Service",
        vpc=vpc,
        instance_types=[ec2.InstanceType("t3.small"), ec2.InstanceType("t3a.small")],
        spot_percentage=50,
        requests_per_target_per_minute=None,
        cpu_target_utilization_percent=60,
        deregistration_delay=cdk.Duration.seconds(300),
        idle_timeout=cdk.Duration.seconds(300),
        log_encryption_key=key,
        log_retention=cdk.Duration.days(30),
        min_capacity=2,
        max_capacity=6,
        max_requests=1000,
        max_requests_jitter=50,
    )
    return service, assertions.Template.from_stack(stack)


def test_max_requests_draws_a_warning(mixed) -> None:  # type: ignore[no-untyped-def]
    service, _ = mixed
    warnings = assertions.Annotations.from_stack(cdk.Stack.of(service)).find_warning(
        "*", assertions.Match.string_like_regexp("max_requests=1000")
    )
    assert len(warnings) == 1


def _one(template: assertions.Template, kind: str) -> dict[str, Any]:
    (resource,) = template.find_resources(kind).values()
    return resource


# --- scaling ------------------------------------------------------------------------------------


def test_reference_scales_on_requests_per_target(reference_template: assertions.Template) -> None:
    reference_template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ALBRequestCountPerTarget",
                    "ResourceLabel": Match.any_value(),
                },
                "TargetValue": 1000,
            },
        },
    )
    assert len(reference_template.find_resources("AWS::AutoScaling::ScalingPolicy")) == 1


def test_reference_group_publishes_its_metrics_and_warms_up(
    reference_template: assertions.Template,
) -> None:
    group = _one(reference_template, "AWS::AutoScaling::AutoScalingGroup")
    assert group["Properties"]["MetricsCollection"] == [{"Granularity": "1Minute"}]
    assert group["Properties"]["DefaultInstanceWarmup"] == 300
    assert "MixedInstancesPolicy" not in group["Properties"]
    assert "CapacityRebalance" not in group["Properties"]


def test_reference_dashboard_has_a_capacity_widget(
    reference_template: assertions.Template,
) -> None:
    body = json.dumps(_one(reference_template, "AWS::CloudWatch::Dashboard")["Properties"])
    for metric in ("GroupInServiceInstances", "GroupDesiredCapacity", "RequestCountPerTarget"):
        assert metric in body
    assert '\\"horizontal\\":[{\\"value\\":1000,\\"label\\":\\"scaling target\\"' in body


def test_instance_types_make_a_mixed_instances_policy(mixed) -> None:  # type: ignore[no-untyped-def]
    _, template = mixed
    group = _one(template, "AWS::AutoScaling::AutoScalingGroup")
    properties = group["Properties"]
    assert "LaunchTemplate" not in properties
    policy = properties["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["Overrides"] == [
        {"InstanceType": "t3.small"},
        {"InstanceType": "t3a.small"},
    ]
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "prioritized",
        "OnDemandBaseCapacity": 2,
        "OnDemandPercentageAboveBaseCapacity": 50,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }
    assert properties["CapacityRebalance"] is True
    # The launch template carries no instance type of its own: the overrides choose.
    launch_template = _one(template, "AWS::EC2::LaunchTemplate")
    assert "InstanceType" not in launch_template["Properties"]["LaunchTemplateData"]


def test_a_mixed_group_still_waits_for_signals_and_rolls(mixed) -> None:  # type: ignore[no-untyped-def]
    _, template = mixed
    group = _one(template, "AWS::AutoScaling::AutoScalingGroup")
    assert group["CreationPolicy"]["ResourceSignal"]["Count"] == 2
    rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert rolling["WaitOnResourceSignals"] is True
    assert rolling["MaxBatchSize"] == 1
    spec = group["Properties"]["MixedInstancesPolicy"]["LaunchTemplate"]
    assert "LatestVersionNumber" in json.dumps(spec["LaunchTemplateSpecification"])


def test_cpu_scaling_replaces_request_scaling_when_asked(mixed) -> None:  # type: ignore[no-untyped-def]
    service, template = mixed
    (policy,) = template.find_resources("AWS::AutoScaling::ScalingPolicy").values()
    assert policy["Properties"]["TargetTrackingConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
        "TargetValue": 60,
    }
    assert set(service.scaling_policies) == {"cpu"}


def test_spot_with_a_long_drain_warns(mixed) -> None:  # type: ignore[no-untyped-def]
    service, _ = mixed
    assertions.Annotations.from_stack(cdk.Stack.of(service)).has_warning(
        "*", Match.string_like_regexp("Spot instances get 120 s of notice")
    )


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log_group_id(reference_stack) -> str:  # type: ignore[no-untyped-def]
    """The logical id of the service's log group (the reference VPC's flow logs have their own)."""
    service = reference_stack.node.find_child("Service")
    return str(reference_stack.get_logical_id(service.instance_log_group.node.default_child))


def test_reference_log_group_keeps_a_year_under_its_own_key(
    reference_template: assertions.Template, log_group_id: str
) -> None:
    resources = reference_template.to_json()["Resources"]
    group = resources[log_group_id]
    assert group["Properties"]["RetentionInDays"] == 365
    assert group["DeletionPolicy"] == "RetainExceptOnCreate"
    key = resources[group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (logs_statement,) = [s for s in statements if s.get("Sid", "").startswith("AllowCloudWatch")]
    assert logs_statement["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert "kms:EncryptionContext:aws:logs:arn" in logs_statement["Condition"]["ArnLike"]


def test_reference_instances_may_only_write_to_their_log_group(
    reference_template: assertions.Template, log_group_id: str
) -> None:
    policies = reference_template.find_resources("AWS::IAM::Policy")
    statements = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if log_group_id in json.dumps(statement.get("Resource"))
    ]
    (statement,) = statements
    assert sorted(_list(statement["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == {"Fn::GetAtt": [log_group_id, "Arn"]}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def test_reference_user_data_starts_the_agent_on_the_log_group(
    reference_stack: cdk.Stack, reference_template: assertions.Template, log_group_id: str
) -> None:
    user_data = user_data_text(reference_template)
    # CloudFormation puts the group's name where the template has {"Ref": group}: in boot.env,
    # which the boot puts into the agent's configuration (shipped in the asset, without it).
    shown_ref = "{" + json.dumps({"Ref": log_group_id}, sort_keys=True) + "}"
    assert env_value(user_data, "CLOUDWATCH_LOG_GROUP") == shown_ref
    agent = instance_file(reference_stack, user_data, instance_logs.AGENT_CONFIG_PATH)
    assert agent is not None and shown_ref not in agent
    agent = agent.replace(instance_logs.LOG_GROUP_PLACEHOLDER, "the-log-group")
    entries = json.loads(agent)["logs"]["logs_collected"]["files"]["collect_list"]
    assert {e["log_group_name"] for e in entries} == {"the-log-group"}
    assert json.loads(agent)["logs"]["log_stream_name"] == "{instance_id}"
    assert instance_file(reference_stack, user_data, instance_logs.LOGROTATE_PATH) is not None


def test_reference_instances_keep_https_as_their_only_egress(
    reference_template: assertions.Template,
) -> None:
    groups = reference_template.find_resources("AWS::EC2::SecurityGroup")
    (instances,) = [
        g for g in groups.values() if "Gunicorn instances" in g["Properties"]["GroupDescription"]
    ]
    egress = instances["Properties"]["SecurityGroupEgress"]
    assert [(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in egress] == [("tcp", 443, 443)]


def test_instance_logs_can_be_turned_off() -> None:
    stack, vpc = new_stack()
    service = ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, instance_logs=False)
    assert service.instance_log_group is None and service.instance_log_key is None
    assert service.instance_config.log_group_name == ""  # no agent configured (tests/unit)


def test_an_imported_log_key_draws_a_warning(mixed) -> None:  # type: ignore[no-untyped-def]
    service, template = mixed
    assert service.instance_log_key.key_arn.endswith("1234567890ab")
    assertions.Annotations.from_stack(cdk.Stack.of(service)).has_warning(
        "*", Match.string_like_regexp("log_encryption_key is imported")
    )
    (group,) = template.find_resources("AWS::Logs::LogGroup").values()
    assert group["Properties"] == {
        "KmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "RetentionInDays": 30,
    }


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"requests_per_target_per_minute": 0},
         "requests_per_target_per_minute must be greater than 0, got 0 (or None for no "
         "request-count scaling)"),
        ({"cpu_target_utilization_percent": -5},
         "cpu_target_utilization_percent must be greater than 0 and at most 100 percent, got -5"),
        ({"instance_types": [ec2.InstanceType("t3.small")], "spot_percentage": 120},
         "spot_percentage must be between 0 and 100 percent, got 120"),
        ({"instance_types": [ec2.InstanceType(f"m6i.{n}xlarge") for n in range(41)]},
         "instance_types must be between 1 and 40 instance types, got 41"),
        ({"instance_types": ["t3.small"]},
         "instance_types must hold ec2.InstanceType values such as ec2.InstanceType('t3.small'), "
         "got 't3.small'"),
        ({"spot_percentage": 50}, "spot_percentage (50) needs instance_types"),
        ({"log_retention": cdk.Duration.days(31)},
         "log_retention must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, "
         "731, 1096, 1827, 2192, 2557, 2922, 3288, 3653, got 31"),
        ({"min_capacity": 3, "max_capacity": 3},
         "leave the scaling policy no room: min_capacity equals max_capacity (3)"),
        ({"instance_type": ec2.InstanceType("t3.small"),
          "instance_types": [ec2.InstanceType("t3.small")]},
         "instance_type and instance_types are exclusive"),
        ({"instance_types": [ec2.InstanceType("t3.small"), ec2.InstanceType("t4g.small")]},
         "instance_types must share one architecture (one image, one wheelhouse), got t3.small "
         "(x86_64), t4g.small (aarch64)"),
    ],
)  # fmt: skip
def test_fails_when_capacity_props_are_wrong(props: dict[str, Any], message: str) -> None:
    stack, vpc = new_stack()
    with pytest.raises(ValueError) as error:
        ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)
    assert message in str(error.value)
    assert str(error.value).startswith(
        "ApplicationLoadBalancedGunicornService: invalid properties:"
    )


def test_fails_with_every_capacity_problem_at_once() -> None:
    stack, vpc = new_stack()
    with pytest.raises(ValueError) as error:
        ApplicationLoadBalancedGunicornService(
            stack,
            "Service",
            vpc=vpc,
            requests_per_target_per_minute=0,
            cpu_target_utilization_percent=0,
            spot_percentage=-1,
        )
    assert str(error.value).count("\n- ") == 3


def test_tokens_are_left_to_cloudformation() -> None:
    """A scaling target, a base capacity and a log retention given as parameters pass synth and
    reach the template as Refs."""
    stack, vpc = new_stack()
    target = cdk.CfnParameter(stack, "Target", type="Number", default=1000)
    days = cdk.CfnParameter(stack, "Days", type="Number", default=365)
    ApplicationLoadBalancedGunicornService(
        stack,
        "Service",
        vpc=vpc,
        requests_per_target_per_minute=target.value_as_number,
        log_retention=cdk.Duration.days(days.value_as_number),
    )
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {"TargetTrackingConfiguration": Match.object_like({"TargetValue": {"Ref": "Target"}})},
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": {"Ref": "Days"}})


def test_fails_when_spot_percentage_is_a_token() -> None:
    stack, vpc = new_stack()
    spot = cdk.CfnParameter(stack, "Spot", type="Number", default=50)
    with pytest.raises(ValueError, match="spot_percentage must be known at synth time"):
        ApplicationLoadBalancedGunicornService(
            stack,
            "Service",
            vpc=vpc,
            instance_types=[ec2.InstanceType("t3.small"), ec2.InstanceType("t3a.small")],
            spot_percentage=spot.value_as_number,
        )
