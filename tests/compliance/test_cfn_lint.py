"""cfn-lint on every synthesized template: the reference stack (HTTP and HTTPS) and the construct
with its options turned: zero errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import assertions

from stacks.gunicorn_service_stack import GunicornServiceStack
from tests.helpers import new_app

pytestmark = pytest.mark.compliance

CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234"


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


def test_cfn_lint_finds_no_errors(reference_template: assertions.Template, tmp_path: Path) -> None:
    https = GunicornServiceStack(new_app(), "ReferenceHttps", certificate_arn=CERT)
    templates = {
        "reference.json": reference_template.to_json(),
        "reference-https.json": assertions.Template.from_stack(https).to_json(),
    }
    for name, template in templates.items():
        (tmp_path / name).write_text(json.dumps(template))
    status, errors, output = cfn_lint(*sorted(tmp_path.iterdir()))
    # Exit status is a bit mask: 2 = errors, 4 = warnings, 8 = informational; 1 = it failed.
    assert status & 0b11 == 0 and not errors, output


def test_cfn_lint_reports_an_error(reference_template: assertions.Template, tmp_path: Path) -> None:
    """The check can fail: an ALB attribute value of the wrong type is an error."""
    template = reference_template.to_json()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup":
            resource["Properties"]["HealthCheckIntervalSeconds"] = "often"
    (tmp_path / "broken.json").write_text(json.dumps(template))
    status, errors, output = cfn_lint(tmp_path / "broken.json")
    assert status & 0b10 and errors, output
