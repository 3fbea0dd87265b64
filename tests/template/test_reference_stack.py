"""The reference stack, built with the cdk.json context exactly as `cdk synth` builds it."""

from __future__ import annotations

import pytest
from aws_cdk import assertions
from aws_cdk.assertions import Match

from stacks.gunicorn_service_stack import GunicornServiceStack
from tests.helpers import env_value, new_app, user_data_text


@pytest.fixture(scope="module")
def template(reference_template: assertions.Template) -> assertions.Template:
    return reference_template


def test_idle_timeout_is_a_bounded_number_parameter(template: assertions.Template) -> None:
    template.has_parameter(
        "IdleTimeoutSeconds",
        {
            "Type": "Number",
            "MinValue": 1,
            "MaxValue": 4000,
            "Default": 60,
            "Description": Match.string_like_regexp(
                r"this value \+ 5 s \(65 s for the default 60 s\)"
            ),
        },
    )


def test_alb_and_instances_take_the_same_parameter(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "idle_timeout.timeout_seconds", "Value": {"Ref": "IdleTimeoutSeconds"}}]
            )
        },
    )
    user_data = user_data_text(template)
    assert env_value(user_data, "IDLE_TIMEOUT_SECONDS") == '{{"Ref": "IdleTimeoutSeconds"}}'
    assert env_value(user_data, "KEEPALIVE_MARGIN_SECONDS") == "5"


def test_vpc_has_two_azs_and_one_nat_gateway(template: assertions.Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::Subnet", 4)
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})


def test_url_is_an_output(template: assertions.Template) -> None:
    template.has_output("Url", {"Value": {"Fn::Join": ["", Match.array_with(["http://"])]}})


def test_no_launch_configuration_and_no_lookups(template: assertions.Template) -> None:
    template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
    # An env-agnostic stack: availability zones come from Fn::GetAZs, not a context lookup.
    template.has_resource_properties(
        "AWS::EC2::Subnet", {"AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]}}
    )


def test_the_parameter_default_follows_the_context() -> None:
    template = assertions.Template.from_stack(
        GunicornServiceStack(new_app(), "Reference", idle_timeout_seconds=120)
    )
    template.has_parameter(
        "IdleTimeoutSeconds",
        {
            "Default": 120,
            "Description": Match.string_like_regexp(r"\(125 s for the default 120 s\)"),
        },
    )


def test_fails_when_the_context_idle_timeout_is_out_of_range() -> None:
    with pytest.raises(
        ValueError, match="idle_timeout must be between 1 and 4000 seconds, got 5000"
    ):
        GunicornServiceStack(new_app(), "Reference", idle_timeout_seconds=5000)


def test_a_certificate_arn_gives_https_with_a_redirect() -> None:
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234"
    template = assertions.Template.from_stack(
        GunicornServiceStack(new_app(), "Reference", certificate_arn=cert)
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [{"CertificateArn": cert}]},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect"})]},
    )
    template.has_output("Url", {"Value": {"Fn::Join": ["", Match.array_with(["https://"])]}})


def test_reference_stack_protects_the_alb_from_deletion(
    reference_template: assertions.Template,
) -> None:
    reference_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {"LoadBalancerAttributes": Match.array_with(
            [{"Key": "deletion_protection.enabled", "Value": "true"}])},
    )  # fmt: skip
