"""cfn-lint on the synthesized templates: the reference stack (HTTP and HTTPS) and the isolated one
with the termination drain: zero errors; and errors where there are some."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

pytestmark = pytest.mark.compliance


def cfn_lint(*paths: Path) -> tuple[int, list[str], str]:
    """Run cfn-lint; return its exit status, the error lines and the whole output."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable",
         *map(str, paths)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # parseable: file:line:column:end line:end column:RULE:message; E rules are errors.
    errors = [line for line in result.stdout.splitlines() if line.split(":")[5].startswith("E")]
    return result.returncode, errors, result.stdout + result.stderr


def test_cfn_lint_finds_no_errors(
    reference_template: assertions.Template,
    reference_https_template: assertions.Template,
    isolated_drain_template: assertions.Template,
    tmp_path: Path,
) -> None:
    """One cfn-lint run (it loads its specifications slowly) over the reference stack, its HTTPS
    variant and the isolated one with the termination drain (no circular dependency: E3004)."""
    templates = {
        "reference.json": reference_template,
        "reference-https.json": reference_https_template,
        "isolated-drain.json": isolated_drain_template,
    }
    for name, template in templates.items():
        (tmp_path / name).write_text(json.dumps(template.to_json()))
    status, errors, output = cfn_lint(*sorted(tmp_path.iterdir()))
    # Exit status is a bit mask: 2 = errors, 4 = warnings, 8 = informational; 1 = it failed.
    assert status & 0b11 == 0 and not errors, output


def test_cfn_lint_reports_errors(
    reference_template: assertions.Template,
    isolated_drain_template: assertions.Template,
    tmp_path: Path,
) -> None:
    """The check can fail, in one run: an ALB attribute value of the wrong type is an error, and
    so is the drain's group made to wait for the policy that references it (E3004, a circular
    dependency: why the policy is a resource of its own that nothing the group needs waits for)."""
    broken = reference_template.to_json()
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup":
            resource["Properties"]["HealthCheckIntervalSeconds"] = "often"
    cycle: dict[str, Any] = dict(isolated_drain_template.to_json())
    resources = cycle["Resources"]
    (policy,) = (k for k in resources if "TerminationHookPolicy" in k)
    (group,) = (
        k for k, r in resources.items() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    )
    resources[group]["DependsOn"] = [*resources[group].get("DependsOn", []), policy]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    (tmp_path / "cycle.json").write_text(json.dumps(cycle))
    status, errors, output = cfn_lint(tmp_path / "broken.json", tmp_path / "cycle.json")
    assert status & 0b10, output
    assert any(line.startswith(str(tmp_path / "broken.json")) for line in errors), output
    assert any(
        line.startswith(str(tmp_path / "cycle.json")) and ":E3004:" in line for line in errors
    ), output
