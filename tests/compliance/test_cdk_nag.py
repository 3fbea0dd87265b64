"""cdk-nag AwsSolutions over the reference stack and a minimal stack: no unacknowledged finding,
every acknowledgement with a reason, and the check fails when a hardening default is removed."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from cdk_nag import AwsSolutionsChecks

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from tests.helpers import new_app

pytestmark = pytest.mark.compliance


def violations(stack: cdk.Stack) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(stack)
    return [
        f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}"
        for v in report.violations
    ]


def minimal_stack(**props: Any) -> cdk.Stack:
    """The construct with its defaults in a VPC with flow logs (the VPC is the caller's)."""
    stack = cdk.Stack(new_app(), "Minimal")
    vpc = ec2.Vpc(
        stack, "Vpc", max_azs=2, nat_gateways=1, flow_logs={"FlowLog": ec2.FlowLogOptions()}
    )
    ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)
    return stack


def test_reference_stack_has_no_unacknowledged_findings(reference_stack: cdk.Stack) -> None:
    assert violations(reference_stack) == []


def test_minimal_stack_has_no_unacknowledged_findings() -> None:
    assert violations(minimal_stack()) == []


@pytest.mark.parametrize(
    ("props", "rule"),
    [({"access_logs": False}, "AwsSolutions-ELB2"), ({"monitoring": False}, "AwsSolutions-AS3")],
)
def test_removing_a_hardening_default_fails_the_check(props: dict[str, Any], rule: str) -> None:
    assert any(v.startswith(f"{rule}:") for v in violations(minimal_stack(**props)))


def test_every_acknowledgement_has_a_specific_reason(reference_stack: cdk.Stack) -> None:
    reasons: dict[str, str] = {}
    for construct in reference_stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                reasons.update(entry.data)
    ours = {
        rule.removeprefix("Annotation::"): reason
        for rule, reason in reasons.items()
        if "AwsSolutions-" in rule
    }
    # No IAM4 (AWS managed policy): the instance role carries its own Session Manager statement.
    assert {rule.split("[")[0] for rule in ours} == {
        "AwsSolutions-IAM5",
        "AwsSolutions-S1",
        "AwsSolutions-EC23",
    }
    for rule, reason in ours.items():
        assert len(reason) > 60, f"{rule}: the reason is not specific: {reason!r}"
