"""The reference stack with the termination drain (isolated subnets, a termination_command;
conftest's ``isolated_drain_stack``) checked as the reference stack is: cdk-nag and the Control
Tower controls (cfn-lint, whose E3004 finds circular dependencies, lints it with the other
templates in test_cfn_lint.py)."""

from __future__ import annotations

import re

import aws_cdk as cdk

from tests.compliance.test_cdk_nag import violations
from tests.compliance.test_control_tower import ACKNOWLEDGED, HTTP_ONLY, _findings, _report


def test_the_drain_stack_passes_cdk_nag(isolated_drain_stack: cdk.Stack) -> None:
    """The isolated layout's interface endpoints draw AwsSolutions-EC23 (their security groups
    admit the VPC's CIDR, a GetAtt cdk-nag cannot read), the Auto Scaling one as the others; the
    drain adds no other finding (the policy's ``autoScalingGroup:*`` is acknowledged)."""
    found = violations(isolated_drain_stack)
    endpoints = re.compile(
        r"^AwsSolutions-EC23: \[('Reference/Endpoints/\w+/SecurityGroup/Resource'(, )?)+\]$"
    )
    assert [v for v in found if not endpoints.match(v)] == []
    assert any("Endpoints/AutoScaling" in v for v in found)


def test_the_drain_stack_meets_the_control_tower_controls(isolated_drain_stack: cdk.Stack) -> None:
    report = _report(isolated_drain_stack)
    found = _findings(report["violations"], isolated_drain_stack)
    assert found <= ACKNOWLEDGED | HTTP_ONLY, sorted(found - ACKNOWLEDGED - HTTP_ONLY)
