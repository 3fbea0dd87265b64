"""The reference template equals the committed snapshot, resource by resource.

Logical ids are public API: a refactor must leave every resource, its type and its properties
as they are, or a deployed stack would see an update or a replacement. A deliberate change
regenerates the snapshot (``python -m tests.template.snapshot --update``) and commits it with
the change.
"""

from __future__ import annotations

import json

from tests.template import snapshot


def test_reference_template_matches_the_snapshot(reference_template) -> None:  # type: ignore[no-untyped-def]
    expected = json.loads(snapshot.SNAPSHOT.read_text())
    found = snapshot.differences(reference_template.to_json(), expected)
    assert not found, (
        f"the reference template differs from {snapshot.SNAPSHOT.name}:\n"
        + "\n".join(f"- {line}" for line in found)
        + f"\nIf the change is intended, regenerate it: {snapshot.UPDATE_COMMAND}, and commit it."
    )


def test_the_snapshot_names_what_differs() -> None:
    """The comparison itself can fail, and says where."""
    expected = json.loads(snapshot.SNAPSHOT.read_text())
    changed = json.loads(json.dumps(expected))
    logical_id = next(iter(changed["Resources"]))
    changed["Resources"][logical_id]["Properties"] = {"Changed": True}
    changed["Resources"]["Extra"] = {"Type": "AWS::SNS::Topic"}
    found = snapshot.differences(changed, expected)
    assert "Resources.Extra: new (not in the snapshot)" in found
    assert any(line.startswith(f"Resources.{logical_id}: differs in Properties") for line in found)
    assert snapshot.differences(expected, expected) == []
