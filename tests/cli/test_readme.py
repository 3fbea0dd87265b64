"""The README's front door: its quick start runs as copied, and what it says of the reference
stack's deletion protection is what the reference template has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_cdk import assertions


def _section(root: Path, heading: str) -> str:
    text = (root / "README.md").read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_quick_start_runs_as_copied(root: Path, tmp_path: Path) -> None:
    section = _section(root, "## Use the construct in your CDK app")
    (snippet,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[:1]
    out = tmp_path / "cdk.out"
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=tmp_path,
        env={**os.environ, "CDK_OUTDIR": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # It builds and synthesizes a stack, not only defines one.
    templates = [p.name for p in out.glob("*.template.json")]
    assert templates == ["WebStack.template.json"], templates


def test_the_readme_says_deletion_protection_is_off_in_the_reference_stack(
    root: Path, reference_template: assertions.Template
) -> None:
    (alb,) = reference_template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes: list[dict[str, Any]] = alb["Properties"]["LoadBalancerAttributes"]
    protection = {a["Key"]: a["Value"] for a in attributes}["deletion_protection.enabled"]
    assert protection == "false"
    (row,) = [
        line
        for line in (root / "README.md").read_text().splitlines()
        if line.startswith("| `deletion_protection` |")
    ]
    assert "on in the reference stack" not in row
    assert "off in the reference stack" in row
