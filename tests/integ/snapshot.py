"""The integration test's committed snapshot, checked offline by ``make test``.

The snapshot keeps ``integ-runner``'s layout, ``integ_reference.py.snapshot/`` beside the test:
``integ.json`` (the test case and the runner's options), the assertion stack's template, and the
stack under test's template. The stack under test is the tests' reference stack (same construct
id and context), so its template is the reference template's own snapshot,
``tests/template/reference.template.json``, less the outputs CDK publishes for the assertion
stack's references: one file, compared by one mechanism
(:func:`tests.template.snapshot.differences`); the snapshot directory links to it.

Update after reviewing a change (``make integ-snapshot`` runs this)::

    .venv/bin/python -m tests.integ.snapshot --update
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from tests.template import snapshot as reference

SNAPSHOT_DIR = Path(__file__).with_name("integ_reference.py.snapshot")
UPDATE_COMMAND = "make integ-snapshot (or .venv/bin/python -m tests.integ.snapshot --update)"


STACK_TEMPLATE = "Reference.template.json"
"""The stack under test's template in the assembly (its construct id is the reference stack's)."""
PUBLISHED = "PublishOutput"
"""The outputs CDK adds to the stack under test for the assertion stack's references (the load
balancer's DNS name and ARN): the one difference from the reference template."""


def without_salt(template: dict[str, Any]) -> dict[str, Any]:
    """The template without the assertions' ``salt`` (the synth time, which makes CloudFormation
    run each assertion again on every deploy): the one volatile value."""
    stripped: dict[str, Any] = json.loads(json.dumps(template))
    for resource in stripped.get("Resources", {}).values():
        if str(resource.get("Type", "")).startswith("Custom::DeployAssert@"):
            resource.get("Properties", {}).pop("salt", None)
    return stripped


def as_reference(template: dict[str, Any]) -> dict[str, Any]:
    """The stack under test's template without the outputs published for the assertions."""
    stripped: dict[str, Any] = json.loads(json.dumps(template))
    outputs = stripped.get("Outputs", {})
    for name in [n for n in outputs if n.startswith(PUBLISHED)]:
        del outputs[name]
    return stripped


def synthesize(outdir: Path) -> dict[str, dict[str, Any]]:
    """Synthesize the integ app; ``integ.json`` and every template, by file name."""
    import aws_cdk as cdk

    from tests.integ import integ_reference

    app = cdk.App(context=integ_reference.context(), outdir=str(outdir))
    integ_reference.build(app)
    app.synth()
    names = ["integ.json", *sorted(path.name for path in outdir.glob("*.template.json"))]
    return {name: json.loads((outdir / name).read_text()) for name in names}


def check(synthesized: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """What differs from the committed snapshot, one line each (empty when current)."""
    if synthesized is None:
        with tempfile.TemporaryDirectory() as tmp:
            synthesized = synthesize(Path(tmp))
    problems = []
    for name, document in synthesized.items():
        committed = reference.SNAPSHOT if name == STACK_TEMPLATE else SNAPSHOT_DIR / name
        if not committed.is_file():
            problems.append(f"{name}: not in the snapshot")
            continue
        expected = json.loads(committed.read_text())
        if name == STACK_TEMPLATE:
            document = as_reference(document)
        found = reference.differences(without_salt(document), without_salt(expected))
        problems += [f"{name}: {line}" for line in found]
    committed_names = {p.name for p in SNAPSHOT_DIR.glob("*.json")} - {STACK_TEMPLATE}
    problems += [f"{name}: in the snapshot, no longer synthesized"
                 for name in sorted(committed_names - set(synthesized))]  # fmt: skip
    return problems


def update() -> None:
    """Rewrite the snapshot (the reference template's too) from a fresh synth."""
    with tempfile.TemporaryDirectory() as tmp:
        synthesized = synthesize(Path(tmp))
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    for stale in SNAPSHOT_DIR.glob("*.json"):
        if stale.name != STACK_TEMPLATE:
            stale.unlink()
    for name, document in synthesized.items():
        if name == STACK_TEMPLATE:
            reference.SNAPSHOT.write_text(reference.render(as_reference(document)))
        else:
            (SNAPSHOT_DIR / name).write_text(reference.render(document))
    link = SNAPSHOT_DIR / STACK_TEMPLATE
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..", "..", "template", reference.SNAPSHOT.name))
    print(f"wrote {SNAPSHOT_DIR} and {reference.SNAPSHOT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the snapshot")
    if parser.parse_args().update:
        update()
        return
    found = check()
    print("\n".join(found) or "the integration test matches its snapshot")
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
