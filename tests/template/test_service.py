"""Template assertions on the construct, synthesized once per stack shape and shared."""

from __future__ import annotations

import re

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk.assertions import Match

from gunicorn_alb import ApplicationLoadBalancedGunicornService, rendering
from gunicorn_alb.instances import SESSION_MANAGER_ACTIONS
from tests.helpers import (
    env_value,
    instance_file,
    instance_role_managed_policies,
    new_stack,
    secret_reads_on_every_resource,
    user_data_text,
)

# (construct id, idle timeout, margin): several services in one stack, one synth for all.
COUPLED = [("Idle1", 1, 1), ("Default", 60, 5), ("Idle120", 120, 5), ("Idle4000", 4000, 30)]


@pytest.fixture(scope="module")
def coupled() -> tuple[assertions.Template, dict[str, ApplicationLoadBalancedGunicornService]]:
    stack, vpc = new_stack()
    services = {}
    for name, idle, margin in COUPLED:
        kwargs = (
            {}
            if name == "Default"
            else {
                "idle_timeout": cdk.Duration.seconds(idle),
                "keepalive_margin": cdk.Duration.seconds(margin),
            }
        )
        services[name] = ApplicationLoadBalancedGunicornService(stack, name, vpc=vpc, **kwargs)
    return assertions.Template.from_stack(stack), services


@pytest.fixture(scope="module")
def template(coupled) -> assertions.Template:  # type: ignore[no-untyped-def]
    return coupled[0]


def _logical_id(service: ApplicationLoadBalancedGunicornService, child: cdk.IResource) -> str:
    resource = child.node.default_child
    assert isinstance(resource, cdk.CfnElement)
    return cdk.Stack.of(service).resolve(resource.logical_id)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "idle", "margin"), COUPLED)
def test_alb_idle_timeout_and_keepalive_are_coupled(
    coupled, name: str, idle: int, margin: int
) -> None:  # type: ignore[no-untyped-def]
    template, services = coupled
    service = services[name]
    albs = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = albs[_logical_id(service, service.load_balancer)]["Properties"][
        "LoadBalancerAttributes"
    ]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": str(idle)} in attributes
    user_data = user_data_text(template, _logical_id(service, service.launch_template))
    assert env_value(user_data, "IDLE_TIMEOUT_SECONDS") == str(idle)
    assert env_value(user_data, "KEEPALIVE_MARGIN_SECONDS") == str(margin)
    assert env_value(user_data, "SYNTH_KEEPALIVE_SECONDS") == str(idle + margin)
    assert service.gunicorn_keepalive == idle + margin
    conf = instance_file(cdk.Stack.of(service), user_data, rendering.GUNICORN_CONF_PATH)
    assert conf is not None and 'worker_class = "gunicorn_alb_gthread.GthreadWorker"' in conf


def test_deregistration_delay_follows_the_idle_timeout(coupled) -> None:  # type: ignore[no-untyped-def]
    template, services = coupled
    groups = template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    for name, idle, _ in COUPLED:
        service = services[name]
        attributes = groups[_logical_id(service, service.target_group)]["Properties"][
            "TargetGroupAttributes"
        ]
        assert {
            "Key": "deregistration_delay.timeout_seconds",
            "Value": str(min(idle, 3600)),
        } in attributes


def test_launch_template_not_launch_configuration(template: assertions.Template) -> None:
    template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
    template.resource_count_is("AWS::EC2::LaunchTemplate", len(COUPLED))
    template.all_resources_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"LaunchTemplate": {"LaunchTemplateId": Match.any_value(), "Version": Match.any_value()}},
    )


def test_instances_require_imdsv2_and_encrypt_their_root_volume(
    template: assertions.Template,
) -> None:
    template.all_resources_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "BlockDeviceMappings": [
                        {
                            "DeviceName": "/dev/xvda",
                            "Ebs": {"Encrypted": True, "VolumeSize": 16, "VolumeType": "gp3"},
                        }
                    ],
                    "NetworkInterfaces": [Match.object_like({"AssociatePublicIpAddress": False})],
                    "ImageId": {"Ref": Match.string_like_regexp("al2023")},
                }
            )
        },
    )
    for launch_template in template.find_resources("AWS::EC2::LaunchTemplate").values():
        assert "KeyName" not in launch_template["Properties"]["LaunchTemplateData"]


def test_asg_uses_elb_health_checks_with_a_grace_period_in_private_subnets(
    template: assertions.Template,
) -> None:
    template.all_resources_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "HealthCheckType": "ELB",
            "HealthCheckGracePeriod": 840,
            "MinSize": "2",
            "MaxSize": "4",
            "VPCZoneIdentifier": Match.array_with([{"Ref": Match.string_like_regexp("Private")}]),
        },
    )


def test_target_group_health_check_on_the_dedicated_path(template: assertions.Template) -> None:
    template.all_resources_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": 8000,
            "Protocol": "HTTP",
            "HealthCheckPath": "/healthz",
            "HealthCheckIntervalSeconds": 15,
            "HealthCheckTimeoutSeconds": 5,
            "HealthyThresholdCount": 2,
            "UnhealthyThresholdCount": 3,
            "Matcher": {"HttpCode": "200"},
        },
    )


def test_listener_on_port_80_forwards_to_the_target_group(template: assertions.Template) -> None:
    template.all_resources_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": Match.any_value()}],
        },
    )
    template.all_resources_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )


def test_instances_take_the_app_port_from_the_alb_only(coupled) -> None:  # type: ignore[no-untyped-def]
    template, services = coupled
    service = services["Default"]
    instance_sg = _logical_id(service, service.auto_scaling_group.connections.security_groups[0])
    alb_sg = _logical_id(service, service.load_balancer.connections.security_groups[0])
    ingress = template.find_resources(
        "AWS::EC2::SecurityGroupIngress",
        {"Properties": {"GroupId": {"Fn::GetAtt": [instance_sg, "GroupId"]}}},
    )
    ((rule),) = [r["Properties"] for r in ingress.values()]
    assert rule["FromPort"] == rule["ToPort"] == 8000
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [alb_sg, "GroupId"]}
    instance_group = template.find_resources("AWS::EC2::SecurityGroup")[instance_sg]["Properties"]
    assert "SecurityGroupIngress" not in instance_group  # no SSH, nothing from anywhere else
    alb_group = template.find_resources("AWS::EC2::SecurityGroup")[alb_sg]["Properties"]
    assert [(r["CidrIp"], r["FromPort"]) for r in alb_group["SecurityGroupIngress"]] == [
        ("0.0.0.0/0", 80)
    ]


def test_instance_role_has_ssm_access_and_reads_only_its_three_assets(
    template: assertions.Template,
) -> None:
    """Session Manager through the minimal statement AWS documents, not the managed policy
    ``AmazonSSMManagedInstanceCore``, which may read every SSM parameter of the account (Systems
    Manager user guide, "Create a custom IAM role for Session Manager"; AWS Managed Policy
    Reference, AmazonSSMManagedInstanceCore)."""
    assert instance_role_managed_policies(template) == []
    session_manager = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "SessionManager"
    ]
    assert len(session_manager) == len(COUPLED)  # one per service's role
    for statement in session_manager:
        assert set(statement["Action"]) == set(SESSION_MANAGER_ACTIONS)
        assert (statement["Effect"], statement["Resource"]) == ("Allow", "*")
    assert secret_reads_on_every_resource(template) == []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        reads = [s for s in statements if "s3" in str(s["Action"])]
        if not reads:
            continue
        (statement,) = reads
        assert statement["Action"] == "s3:GetObject"
        # Three objects: the app asset, the wheelhouse and the instance files.
        assert len(statement["Resource"]) == 3
        keys = []
        for arn in statement["Resource"]:
            resource = arn["Fn::Join"][1]
            keys.append(resource[-1].rsplit(".", 1)[1])
            assert "*" not in "".join(part for part in resource if isinstance(part, str))
        assert sorted(keys) == ["tgz", "zip", "zip"]


def test_rolling_update_and_creation_wait_for_the_boot_signal(coupled) -> None:  # type: ignore[no-untyped-def]
    template, services = coupled
    service = services["Default"]
    asg_id = _logical_id(service, service.auto_scaling_group)
    asg = template.find_resources("AWS::AutoScaling::AutoScalingGroup")[asg_id]
    assert asg["CreationPolicy"] == {"ResourceSignal": {"Count": 2, "Timeout": "PT15M"}}
    rolling = asg["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert rolling["MaxBatchSize"] == 1
    assert rolling["MinInstancesInService"] >= 1
    assert rolling["WaitOnResourceSignals"] is True
    assert rolling["PauseTime"] == "PT15M"
    user_data = user_data_text(template, _logical_id(service, service.launch_template))
    assert env_value(user_data, "CFN_RESOURCE") == asg_id
    assert env_value(user_data, "CFN_STACK") == '{{"Ref": "AWS::StackName"}}'


def test_user_data_installs_python_312_and_the_pinned_gunicorn(
    template: assertions.Template,
) -> None:
    from gunicorn_alb.rendering import GUNICORN_VERSION

    for launch_template_id in template.find_resources("AWS::EC2::LaunchTemplate"):
        user_data = user_data_text(template, launch_template_id)
        assert env_value(user_data, "PYTHON") == "python3.12"
        assert env_value(user_data, "GUNICORN_VERSION") == GUNICORN_VERSION
        assert re.search(r'^exec "\$root/usr/local/sbin/gunicorn-alb-boot"', user_data, re.M)
        assert env_value(user_data, "APP_ASSET_URL").startswith('{{"Fn::Sub": "s3://')
        assert env_value(user_data, "INSTANCE_FILES_URL").startswith('{{"Fn::Sub": "s3://')


def test_internal_alb_is_reachable_from_the_vpc_only() -> None:
    stack, vpc = new_stack()
    service = ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, internal=True)
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
    )
    alb_sg = _logical_id(service, service.load_balancer.connections.security_groups[0])
    rules = template.find_resources("AWS::EC2::SecurityGroup")[alb_sg]["Properties"][
        "SecurityGroupIngress"
    ]
    assert [(r["CidrIp"], r["FromPort"]) for r in rules] == [
        ({"Fn::GetAtt": [_logical_id(service, vpc), "CidrBlock"]}, 80)
    ]
