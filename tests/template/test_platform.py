"""What the instances install and where they run: the wheelhouse asset, Graviton (arm64), the
subnets, and the reference stack without a NAT gateway."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match

from gunicorn_alb import ApplicationLoadBalancedGunicornService, rendering, wheelhouse
from gunicorn_alb.network import (
    AL2023_REPOSITORY_BUCKET,
    INTERFACE_ENDPOINTS,
    SSM_AGENT_BUCKETS,
    TERMINATION_HOOK_ENDPOINTS,
)
from stacks.gunicorn_service_stack import GunicornServiceStack
from tests.helpers import env_value, new_app, new_stack, user_data_text


def manifest(service: ApplicationLoadBalancedGunicornService) -> dict[str, Any]:
    folder = service.wheelhouse_path
    result: dict[str, Any] = json.loads((folder / wheelhouse.MANIFEST).read_text())
    return result


@pytest.fixture(scope="module")
def arm() -> tuple[ApplicationLoadBalancedGunicornService, assertions.Template]:
    stack, vpc = new_stack()
    service = ApplicationLoadBalancedGunicornService(
        stack, "Service", vpc=vpc, instance_type=ec2.InstanceType("t4g.small")
    )
    return service, assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def isolated(isolated_drain_template: assertions.Template) -> assertions.Template:
    """``-c privateIsolated=true`` (with the termination drain, whose Auto Scaling endpoint it
    adds: one synth for both kinds of test)."""
    return isolated_drain_template


def test_the_boot_installs_from_the_wheelhouse_asset(
    reference_stack: cdk.Stack, reference_template: assertions.Template
) -> None:
    user_data = user_data_text(reference_template)
    url = env_value(user_data, "WHEELHOUSE_URL")
    found = re.search(r"s3://[^/]+/([0-9a-f]{64}\.zip)", url)
    assert found, url
    assert env_value(user_data, "BUILD_FROM_SOURCE") == ""
    # The instance role reads exactly the app, the wheelhouse and the instance files objects.
    reads = [
        json.dumps(resource)
        for policy in reference_template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "s3:GetObject"
        for resource in statement["Resource"]
    ]
    assert len(reads) == 3 and any(found.group(1) in read for read in reads), reads
    service = reference_stack.node.find_child("Service")
    assert isinstance(service, ApplicationLoadBalancedGunicornService)
    content = manifest(service)
    assert content["architecture"] == "x86_64"
    assert f"gunicorn-{rendering.GUNICORN_VERSION}-py3-none-any.whl" in content["wheels"]


def test_a_graviton_instance_type_selects_the_arm64_image_and_aarch64_wheels(
    arm: tuple[ApplicationLoadBalancedGunicornService, assertions.Template],
) -> None:
    service, template = arm
    assert manifest(service)["architecture"] == "aarch64"
    (image_parameter,) = [
        name for name in template.to_json()["Parameters"] if "al2023" in name.lower()
    ]
    assert "arm64" in image_parameter
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {"InstanceType": "t4g.small", "ImageId": {"Ref": image_parameter}}
            )
        },
    )


def build(**props: Any) -> ApplicationLoadBalancedGunicornService:
    stack, vpc = new_stack()
    return ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)


def test_fails_when_the_image_is_for_another_architecture() -> None:
    with pytest.raises(
        ValueError,
        match=r"machine_image is an x86_64 image, but instance_type t4g.small is aarch64.*"
        r"AmazonLinuxCpuType.ARM_64",
    ):
        build(
            instance_type=ec2.InstanceType("t4g.small"),
            machine_image=ec2.MachineImage.latest_amazon_linux2023(),
        )


def test_fails_when_a_requirement_has_no_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline: pip looks only in a folder with the pinned Gunicorn's wheels (from the cache),
    as it would find no psycopg2 wheel on PyPI (psycopg2 publishes none for Linux)."""
    pinned = wheelhouse.build(
        wheelhouse.WheelhouseSpec(requirements=(f"gunicorn=={rendering.GUNICORN_VERSION}",))
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(pinned))
    monkeypatch.setenv(wheelhouse.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "app.py").write_text("def application(environ, start_response): ...\n")
    (tmp_path / "requirements.txt").write_text("psycopg2==2.9.10\n")
    with pytest.raises(
        ValueError,
        match=r"invalid properties:\n- app_requirements: psycopg2==2.9.10 has no wheel for "
        r"CPython 3.12 on manylinux \(glibc <= 2.34\) x86_64.*build_from_source=\['psycopg2'\]",
    ):
        build(app_directory=str(tmp_path))


def test_fails_when_source_builds_need_pypi_but_the_subnets_are_isolated() -> None:
    with pytest.raises(
        ValueError,
        match=r"build_from_source needs a route to PyPI at boot, but vpc_subnets selects "
        r"PRIVATE_ISOLATED subnets",
    ):
        build(
            build_from_source=["psycopg2"],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )


def test_the_no_nat_variant_has_isolated_instances_and_the_endpoints_they_call(
    isolated: assertions.Template,
) -> None:
    isolated.resource_count_is("AWS::EC2::NatGateway", 0)
    isolated.resource_count_is("AWS::EC2::InternetGateway", 1)  # the ALB's public subnets
    subnets = isolated.find_resources("AWS::EC2::Subnet")
    isolated_ids = {
        logical_id
        for logical_id, subnet in subnets.items()
        if {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in subnet["Properties"]["Tags"]
    }
    assert len(isolated_ids) == 2
    (group,) = isolated.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    assert {ref["Ref"] for ref in group["Properties"]["VPCZoneIdentifier"]} == isolated_ids
    # S3 (assets, wheelhouse, dnf repositories): a gateway endpoint whose policy lets dnf read
    # the Amazon Linux 2023 repositories.
    (s3,) = [
        e["Properties"]
        for e in isolated.find_resources("AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Gateway"
    ]
    policy = json.dumps(s3["PolicyDocument"])
    assert AL2023_REPOSITORY_BUCKET.split("{")[0] in policy and "de612dc2/*" in policy
    assert "aws:ResourceAccount" in policy
    # Every service the instances call, privately, in the instances' subnets.
    interface = [
        e["Properties"]
        for e in isolated.find_resources("AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Interface"
    ]
    names = {json.dumps(e["ServiceName"]) for e in interface}
    for service, _caller in INTERFACE_ENDPOINTS.values():
        assert any(f".{service.short_name}" in name for name in names), service.short_name
    assert all(e["PrivateDnsEnabled"] for e in interface)
    assert all({ref["Ref"] for ref in e["SubnetIds"]} == isolated_ids for e in interface)


def test_the_isolated_group_waits_for_the_endpoints(isolated: assertions.Template) -> None:
    """Isolated instances reach S3 and the AWS APIs through the endpoints only: the group is
    created after every one of them (CloudFormation user guide, "DependsOn attribute")."""
    endpoints = set(isolated.find_resources("AWS::EC2::VPCEndpoint"))
    assert len(endpoints) == 1 + len(INTERFACE_ENDPOINTS) + len(TERMINATION_HOOK_ENDPOINTS)
    (group,) = isolated.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    assert endpoints <= set(group.get("DependsOn", []))


def test_the_s3_endpoint_admits_the_ssm_agents_buckets(isolated: assertions.Template) -> None:
    """The SSM agent reads AWS-owned buckets of its region (agent updates, Run Command documents,
    patch baselines); through an S3 endpoint whose policy does not admit them it is refused
    (Systems Manager user guide, "SSM Agent communications with AWS managed S3 buckets")."""
    (s3,) = [
        e["Properties"]
        for e in isolated.find_resources("AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Gateway"
    ]
    (statement,) = [
        s for s in s3["PolicyDocument"]["Statement"] if s.get("Sid") == "SsmAgentBuckets"
    ]
    assert statement["Action"] == "s3:GetObject"
    arns = {json.dumps(arn) for arn in statement["Resource"]}
    assert len(arns) == len(SSM_AGENT_BUCKETS)
    for bucket in SSM_AGENT_BUCKETS:
        # amazon-ssm-{region} -> "amazon-ssm-", {"Ref": "AWS::Region"}, "/*" in an Fn::Join
        before, after = bucket.split("{region}")
        assert any(
            f'":s3:::{before}", {{"Ref": "AWS::Region"}}, "{after}/*"' in arn for arn in arns
        ), bucket


def test_no_endpoint_for_cloudwatch_metrics(isolated: assertions.Template) -> None:
    """The CloudWatch agent ships logs only: a ``monitoring`` endpoint would bill every hour in
    each zone for nothing."""
    endpoints = isolated.find_resources("AWS::EC2::VPCEndpoint").values()
    names = json.dumps([e["Properties"]["ServiceName"] for e in endpoints])
    assert ".monitoring" not in names and ".logs" in names


def test_the_docs_price_the_endpoints_the_variant_has(root: Path) -> None:
    """docs/instances.md's cost table counts the interface endpoints there are (0.01 USD per
    endpoint and zone-hour, us-east-1), without and with the termination hook's endpoints, so an
    endpoint added or removed updates the figure."""
    page = (root / "docs" / "instances.md").read_text()
    without_hook = len(INTERFACE_ENDPOINTS)
    with_hook = without_hook + len(TERMINATION_HOOK_ENDPOINTS)
    for count, label in (
        (without_hook, "the reference variant's"),
        (with_hook, "with a termination hook,"),
    ):
        row = f"| {label} {count} interface endpoints x 2 AZs | "
        assert row in page, row
        cells = page.split(row)[1].splitlines()[0]
        assert f"{count} x 2 x 0.01 = {count * 2 * 0.01:.2f} USD" in cells, cells
        assert f"| {count * 2 * 0.01 * 730:.2f} USD |" in cells, cells


def test_the_reference_stack_pins_the_image_per_region() -> None:
    template = assertions.Template.from_stack(
        GunicornServiceStack(
            new_app(), "Pinned", machine_image_ids={"eu-west-1": "ami-0123456789abcdef0"}
        )
    )
    mappings = json.dumps(template.to_json()["Mappings"])
    assert '"eu-west-1": {"ami": "ami-0123456789abcdef0"}' in mappings
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {"ImageId": {"Fn::FindInMap": Match.any_value()}}
            )
        },
    )
    assert not [p for p in template.to_json()["Parameters"] if "al2023" in p.lower()]


def test_fails_when_a_pinned_image_id_is_not_an_ami() -> None:
    with pytest.raises(
        ValueError, match=r"machine_image_ids must map regions to AMI ids .*got 'eu-west-1' -> 'x'"
    ):
        GunicornServiceStack(new_app(), "Pinned", machine_image_ids={"eu-west-1": "x"})
