"""The reference stack with the termination drain (isolated subnets, a termination_command;
conftest's ``isolated_drain_stack``) checked as the reference stack is: cdk-nag, the Control Tower
controls and cfn-lint, whose E3004 finds circular dependencies (the role's policy references the
group, which must not wait for it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions

from tests.compliance.test_cdk_nag import violations
from tests.compliance.test_cfn_lint import cfn_lint
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


def test_cfn_lint_finds_no_errors_nor_a_circular_dependency(
    isolated_drain_template: assertions.Template, tmp_path: Path
) -> None:
    (tmp_path / "drain.json").write_text(json.dumps(isolated_drain_template.to_json()))
    status, errors, output = cfn_lint(tmp_path / "drain.json")
    assert status & 0b11 == 0 and not errors, output


def test_cfn_lint_finds_a_circular_dependency(
    isolated_drain_template: assertions.Template, tmp_path: Path
) -> None:
    """The check can fail: the group made to wait for the policy that references it."""
    template: dict[str, Any] = dict(isolated_drain_template.to_json())
    resources = template["Resources"]
    (policy,) = (k for k in resources if "TerminationHookPolicy" in k)
    (group,) = (
        k for k, r in resources.items() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    )
    resources[group]["DependsOn"] = [*resources[group].get("DependsOn", []), policy]
    (tmp_path / "cycle.json").write_text(json.dumps(template))
    _, errors, _ = cfn_lint(tmp_path / "cycle.json")
    assert any(":E3004:" in line for line in errors), errors
