"""Every value the construct passes to AWS is checked against the service's documented limit at
synth, before any resource exists (``gunicorn_alb.limits``; the sources are in its table). Each
case here is a value AWS would refuse at deploy time, after other resources were created."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from tests.helpers import new_stack


@pytest.fixture(scope="module")
def vpc() -> ec2.Vpc:
    """One VPC: every construction below fails before it creates anything."""
    return new_stack()[1]


def fails(vpc: ec2.Vpc, match: str, **props: Any) -> None:
    stack = cdk.Stack.of(vpc)
    with pytest.raises(ValueError, match=match):
        ApplicationLoadBalancedGunicornService(
            stack, f"S{len(stack.node.children)}", vpc=vpc, **props
        )


@pytest.mark.parametrize("seconds", [29, 7201])
def test_fails_when_the_termination_hook_timeout_is_outside_30_to_7200(
    vpc: ec2.Vpc, seconds: int
) -> None:
    """EC2 Auto Scaling API reference, PutLifecycleHook: HeartbeatTimeout "from 30 to 7200
    seconds"."""
    fails(
        vpc,
        rf"termination_hook_timeout must be between 30 and 7200 seconds, got {seconds}",
        termination_hook_timeout=cdk.Duration.seconds(seconds),
    )


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("/alb", r"access_logs_prefix must not start with '/', got '/alb'"),
        ("alb/AWSLogs", r"access_logs_prefix must not contain 'AWSLogs', got 'alb/AWSLogs'"),
    ],
)
def test_fails_when_the_access_log_prefix_breaks_the_alb_rules(
    vpc: ec2.Vpc, prefix: str, message: str
) -> None:
    """Elastic Load Balancing user guide, access logs for your Application Load Balancer: logs go
    to ``bucket[/prefix]/AWSLogs/<account>/...`` and the prefix must not include ``AWSLogs``."""
    fails(vpc, message, access_logs_prefix=prefix)


def test_fails_when_the_health_check_path_is_longer_than_1024(vpc: ec2.Vpc) -> None:
    """Elastic Load Balancing API reference, CreateTargetGroup: HealthCheckPath 1-1024."""
    fails(
        vpc,
        r"health_check_path must be 1-1024 characters long, got 1026 characters",
        health_check_path="/" + "a" * 1025,
    )


def test_fails_when_the_log_retention_is_not_whole_days(vpc: ec2.Vpc) -> None:
    """Amazon S3 API reference, LifecycleExpiration: Days is a positive whole number."""
    fails(
        vpc,
        r"access_logs_retention must be a whole number at least 1 days, got 0\.5",
        access_logs_retention=cdk.Duration.hours(12),
    )


def test_fails_when_the_domain_name_is_not_a_dns_name(vpc: ec2.Vpc) -> None:
    """AWS Certificate Manager API reference, RequestCertificate: DomainName 1-253 characters of
    DNS labels."""
    from aws_cdk import aws_route53 as route53

    zone = route53.HostedZone.from_hosted_zone_attributes(
        cdk.Stack.of(vpc), "Zone", hosted_zone_id="Z123", zone_name="example.com"
    )
    fails(
        vpc,
        r"domain_name must be a DNS name of labels",
        domain_name="-bad-.example.com",
        domain_zone=zone,
    )


def test_every_limit_problem_is_reported_together(vpc: ec2.Vpc) -> None:
    with pytest.raises(ValueError) as caught:
        ApplicationLoadBalancedGunicornService(
            cdk.Stack.of(vpc),
            "Together",
            vpc=vpc,
            termination_hook_timeout=cdk.Duration.seconds(10),
            access_logs_prefix="/AWSLogs",
        )
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 3, lines
    assert all(line.startswith("- ") for line in lines)


def test_tokens_are_left_to_cloudformation(vpc: ec2.Vpc) -> None:
    stack = cdk.Stack.of(vpc)
    prefix = cdk.CfnParameter(stack, "Prefix", type="String", default="alb")
    ApplicationLoadBalancedGunicornService(
        stack, "WithTokens", vpc=vpc, access_logs_prefix=prefix.value_as_string
    )
