"""The idle timeout as a CloudFormation parameter: both sides reference it, nothing compares it."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from tests.helpers import env_value, new_stack, user_data_text


@pytest.fixture(scope="module")
def synthesized() -> tuple[assertions.Template, ApplicationLoadBalancedGunicornService]:
    stack, vpc = new_stack()
    idle = cdk.CfnParameter(stack, "Idle", type="Number", min_value=1, max_value=4000, default=60)
    service = ApplicationLoadBalancedGunicornService(
        stack,
        "Service",
        vpc=vpc,
        idle_timeout=cdk.Duration.seconds(idle.value_as_number),
        keepalive_margin=cdk.Duration.seconds(7),
    )
    return assertions.Template.from_stack(stack), service


def test_alb_attribute_references_the_parameter(synthesized) -> None:  # type: ignore[no-untyped-def]
    template, _ = synthesized
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": assertions.Match.array_with(
                [{"Key": "idle_timeout.timeout_seconds", "Value": {"Ref": "Idle"}}]
            )
        },
    )


def test_instances_derive_keepalive_from_the_same_parameter(synthesized) -> None:  # type: ignore[no-untyped-def]
    template, service = synthesized
    user_data = user_data_text(template)
    assert env_value(user_data, "IDLE_TIMEOUT_SECONDS") == '{{"Ref": "Idle"}}'
    assert env_value(user_data, "KEEPALIVE_MARGIN_SECONDS") == "7"
    assert env_value(user_data, "SYNTH_KEEPALIVE_SECONDS") == ""
    assert service.gunicorn_keepalive is None


def test_deregistration_delay_takes_the_bound_for_any_idle_timeout(synthesized) -> None:  # type: ignore[no-untyped-def]
    template, _ = synthesized
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "TargetGroupAttributes": assertions.Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "3600"}]
            )
        },
    )
