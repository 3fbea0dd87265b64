"""The reference template's committed snapshot, and how to regenerate it on purpose.

``tests/template/test_reference_snapshot.py`` compares the reference stack's template with
``reference.template.json`` resource by resource, so a refactor that changes a logical id, a
type or a property fails with the id named. When a change to the template is intended, rewrite
the snapshot and commit it with the change (review its diff: every changed resource is one a
deployed stack updates or replaces)::

    .venv/bin/python -m tests.template.snapshot --update   # from the repo root

Without ``--update`` it prints what differs (the test says the same).

Nothing in the template is volatile, so nothing is normalised: the asset hashes are the content
hashes of the app directory (``__pycache__`` excluded) and of the wheelhouse (the pinned Gunicorn,
which has no dependencies, and its manifest: PyPI never changes a released file), and the user
data embeds the instance files themselves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("reference.template.json")
UPDATE_COMMAND = ".venv/bin/python -m tests.template.snapshot --update  (from the repo root)"


def reference_template_json() -> dict[str, Any]:
    """Synthesize the reference stack as ``tests/conftest.py`` does and return its template."""
    import aws_cdk as cdk
    from aws_cdk import assertions

    from stacks.gunicorn_service_stack import GunicornServiceStack
    from tests.conftest import cdk_json_context

    stack = GunicornServiceStack(cdk.App(context=cdk_json_context()), "Reference")
    template: dict[str, Any] = dict(assertions.Template.from_stack(stack).to_json())
    return template


def render(template: dict[str, Any]) -> str:
    return json.dumps(template, indent=1, sort_keys=True) + "\n"


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What differs, one line per section or logical id (empty when identical)."""
    problems: list[str] = []
    for section in sorted(set(actual) | set(expected)):
        got, want = actual.get(section), expected.get(section)
        if got == want:
            continue
        if not isinstance(got, dict) or not isinstance(want, dict):
            problems.append(f"{section}: {_short(got)} != snapshot {_short(want)}")
            continue
        for key in sorted(set(got) | set(want)):
            if key not in want:
                problems.append(f"{section}.{key}: new (not in the snapshot)")
            elif key not in got:
                problems.append(f"{section}.{key}: missing (in the snapshot)")
            elif got[key] != want[key]:
                problems.append(f"{section}.{key}: {_what_differs(got[key], want[key])}")
    return problems


def _what_differs(got: Any, want: Any) -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        if "Type" in keys:
            return f"Type {got.get('Type')!r} != snapshot {want.get('Type')!r}"
        if keys == ["Properties"] and isinstance(got["Properties"], dict):
            inner = got["Properties"]
            snap = want.get("Properties") or {}
            keys = [
                f"Properties.{k}"
                for k in sorted(set(inner) | set(snap))
                if inner.get(k) != snap.get(k)
            ]
        return "differs in " + ", ".join(keys)
    return f"{_short(got)} != snapshot {_short(want)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:200] + "..."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the snapshot")
    args = parser.parse_args()
    template = reference_template_json()
    if args.update:
        SNAPSHOT.write_text(render(template))
        print(f"wrote {SNAPSHOT}")
        return
    found = differences(template, json.loads(SNAPSHOT.read_text()))
    print("\n".join(found) or "the reference template matches the snapshot")
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
