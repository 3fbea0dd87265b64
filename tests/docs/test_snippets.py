"""Every Python snippet of the README and the docs site runs.

The snippets are real files under ``docs/snippets/`` (the pages include them, the README repeats
the quick start verbatim). Each CDK app among them is run as written, from the snippets'
directory, with ``cdk.App()`` handing it a stage of one shared app, and the shared app is
synthesized once (``tests.docs.run_snippets``): one synth for all of them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.docs.sources import CDK_APPS, SNIPPETS, readme_files

_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::[^"]*)?"$')


def python_blocks(markdown: str) -> list[str]:
    return _PYTHON_BLOCK.findall(markdown)


def test_readme_python_blocks_are_the_snippet_files() -> None:
    files = readme_files()
    assert set(files) == {"web/main.py", "app.py"}
    for name, block in files.items():
        assert block == (SNIPPETS / name).read_text(), f"README's {name} differs from docs/snippets"


def test_docs_python_blocks_are_included_files_or_run() -> None:
    """A Python block in a page either includes snippet files (run below) or runs on its own."""
    included: set[str] = set()
    for page in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "ARCHITECTURE.md"]:
        for block in python_blocks(page.read_text()):
            lines = block.strip().splitlines()
            targets = [_INCLUDE.match(line) for line in lines]
            if all(targets):
                included.update(target.group(1) for target in targets if target)
            else:
                exec(compile(block, f"{page.name} (Python block)", "exec"), {})
    assert included <= {*CDK_APPS, "web/main.py"}, included
    assert set(CDK_APPS) - {"app.py"} <= included


def _wsgi_get(app: Any, path: str) -> tuple[str, bytes]:
    status: list[str] = []
    body = b"".join(app({"PATH_INFO": path}, lambda s, headers: status.append(s)))
    return status[0], body


def test_readme_web_app_answers_the_health_path_and_its_factory() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(readme_files()["web/main.py"], "README web/main.py", "exec"), namespace)
    assert _wsgi_get(namespace["application"], "/healthz") == ("200 OK", b"ok\n")
    assert _wsgi_get(namespace["application"], "/") == ("200 OK", b"Hello from Gunicorn\n")
    # your_app.py's wsgi_app: main:create_app("Welcome")
    assert _wsgi_get(namespace["create_app"]("Welcome"), "/")[1] == b"Welcome from Gunicorn\n"


def _stack(stacks: dict[str, Any], name: str) -> tuple[dict[str, Any], list[Any]]:
    (stack,) = stacks[name]
    return stack["template"], stack["messages"]


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


@pytest.mark.parametrize("name", CDK_APPS)
def test_snippet_synthesizes_without_errors_or_unacknowledged_warnings(
    snippet_stacks: dict[str, Any], name: str
) -> None:
    template, messages = _stack(snippet_stacks, name)
    assert _resources(template, "AWS::AutoScaling::AutoScalingGroup")
    problems = [m for m in messages if m[0].lower() in ("error", "warning")]
    assert problems == []


def test_quick_start_couples_keepalive_to_its_idle_timeout(
    snippet_stacks: dict[str, Any],
) -> None:
    template, _ = _stack(snippet_stacks, "app.py")
    (alb,) = _resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["idle_timeout.timeout_seconds"] == "120"
    assert "Url" in template["Outputs"]
    user_data = json.dumps(_resources(template, "AWS::EC2::LaunchTemplate"))
    assert "IDLE_TIMEOUT_SECONDS=120" in user_data
    assert "SYNTH_KEEPALIVE_SECONDS=125" in user_data


def test_production_snippet_configures_the_app_in_isolated_subnets_with_a_gated_roll(
    snippet_stacks: dict[str, Any],
) -> None:
    template, _ = _stack(snippet_stacks, "production.py")
    text = json.dumps(template)
    assert "DATABASE_PASSWORD" in text and "SECRET_KEY" in text  # names and ARNs only
    assert "create_app" in text
    assert not _resources(template, "AWS::EC2::NatGateway")
    assert _resources(template, "AWS::EC2::VPCEndpoint")
    assert "ami-0123456789abcdef0" in text
    (group,) = _resources(template, "AWS::AutoScaling::AutoScalingGroup")
    assert "AutoScalingInstanceRefresh" in group["UpdatePolicy"]
    assert "AutoScalingRollingUpdate" not in group["UpdatePolicy"]
    assert "CreationPolicy" in group
