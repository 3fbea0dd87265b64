"""What the docs say of the reference stack's deletion protection is what the reference template
has. (The README's quick start, which this file ran before the docs site, is run as copied by
tests/docs/test_snippets.py, in the docs tests' one synth.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import assertions


def test_the_docs_say_deletion_protection_is_off_in_the_reference_stack(
    root: Path, reference_template: assertions.Template
) -> None:
    (alb,) = reference_template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes: list[dict[str, Any]] = alb["Properties"]["LoadBalancerAttributes"]
    protection = {a["Key"]: a["Value"] for a in attributes}["deletion_protection.enabled"]
    assert protection == "false"
    docs = root / "docs"
    deploying = " ".join((docs / "deploying.md").read_text().split())
    assert "ALB deletion protection is **off** by default in the reference stack" in deploying
    (note,) = [
        line
        for line in (docs / "reference.md").read_text().splitlines()
        if "`deletion_protection`" in line
    ]
    assert "off in the reference stack" in note
    (row,) = [
        line
        for line in (docs / "security.md").read_text().splitlines()
        if line.startswith("| ELB.6 ")
    ]
    assert "turns it on with" not in row and "in the reference stack too" in row
    for page in docs.glob("*.md"):
        assert "on in the reference stack" not in page.read_text().replace("\n", " "), page.name
