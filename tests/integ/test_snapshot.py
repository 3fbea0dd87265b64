"""The integration test's snapshot is current, checked offline (no AWS): a change to what the
integration test deploys, or to its assertions, fails here until the snapshot is regenerated on
purpose and reviewed (``make integ-snapshot``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integ import snapshot


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return snapshot.synthesize(tmp_path_factory.mktemp("integ"))


def test_the_integ_app_matches_its_snapshot(synthesized: dict[str, dict[str, Any]]) -> None:
    found = snapshot.check(synthesized)
    assert not found, (
        "the integration test differs from its snapshot:\n"
        + "\n".join(f"- {line}" for line in found)
        + f"\nIf the change is intended, regenerate it: {snapshot.UPDATE_COMMAND}, and commit it."
    )


def test_the_stack_under_test_is_the_reference_stack(
    synthesized: dict[str, dict[str, Any]],
    reference_template,  # type: ignore[no-untyped-def]
) -> None:
    """One snapshot for both: the deployed stack is the reference stack, template for template,
    plus the two outputs the assertions read (the load balancer's DNS name and ARN)."""
    template = synthesized[snapshot.STACK_TEMPLATE]
    assert snapshot.as_reference(template) == reference_template.to_json()
    published = [n for n in template["Outputs"] if n.startswith(snapshot.PUBLISHED)]
    assert len(published) == 2


def test_the_snapshot_keeps_integ_runners_layout() -> None:
    link = snapshot.SNAPSHOT_DIR / snapshot.STACK_TEMPLATE
    assert link.is_symlink() and link.resolve() == snapshot.reference.SNAPSHOT.resolve()
    assert (snapshot.SNAPSHOT_DIR / "integ.json").is_file()
    assert Path(snapshot.SNAPSHOT_DIR.name) == Path("integ_reference.py.snapshot")


def test_the_integ_test_updates_the_idle_timeout_and_checks_the_url_around_it(
    synthesized: dict[str, dict[str, Any]],
) -> None:
    """The assertion stack runs, in order: the health path, UpdateStack with
    IdleTimeoutSeconds=120, UPDATE_COMPLETE, the ALB attribute, the health path again."""
    (assertions,) = [
        t for name, t in synthesized.items()
        if name.endswith(".template.json") and name != snapshot.STACK_TEMPLATE
    ]  # fmt: skip
    calls = {
        logical_id: resource
        for logical_id, resource in assertions["Resources"].items()
        if resource["Type"].startswith("Custom::DeployAssert@")
    }
    (update,) = [r for r in calls.values() if r["Type"].endswith("updateStack")]
    assert (
        '"ParameterKey":"IdleTimeoutSeconds","ParameterValue":"120"'
        in (update["Properties"]["parameters"]["Parameters"])
    )
    (described,) = [r for r in calls.values() if r["Type"].endswith("describeStacks")]
    assert "UPDATE_COMPLETE" in str(described["Properties"]["expected"])
    assert update["DependsOn"] and described["DependsOn"]
    assert sum(r["Type"] == "Custom::DeployAssert@HttpCall" for r in calls.values()) == 2
