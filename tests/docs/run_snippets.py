"""Runs the docs' CDK app snippets as a user runs them: from the snippets' directory (``cdk
synth`` runs in the app's directory, and jsii's Node.js resolves asset paths against the
process's working directory), each as written, into a stage of one shared app, synthesized once.

``python -m tests.docs.run_snippets OUT_DIR SNIPPET=FILE...`` (cwd: docs/snippets) writes the
cloud assembly to OUT_DIR and prints, as JSON, each snippet's stacks: template and messages.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from tests.conftest import cdk_json_context


def main(out_dir: str, snippets: list[str]) -> dict[str, Any]:
    shared = cdk.App(context=cdk_json_context(), outdir=out_dir)
    stages = {}
    real_app = cdk.App
    for spec in snippets:
        name, _, path = spec.partition("=")
        # What the snippet's cdk.App() returns: a stage of the shared app. Its app.synth()
        # synthesizes the stage, which the shared app's synth then reuses (Stage caches it).
        stage = cdk.Stage(shared, Path(name).stem.title().replace("_", ""))
        cdk.App = lambda *args, stage=stage, **kwargs: stage  # type: ignore[misc]
        try:
            exec(compile(Path(path).read_text(), name, "exec"), {"__name__": "__main__"})
        finally:
            cdk.App = real_app  # type: ignore[misc]
        stages[name] = stage
    assembly = shared.synth()
    result = {}
    for name, stage in stages.items():
        nested = assembly.get_nested_assembly(stage.artifact_id)
        result[name] = [
            {
                "name": stack.stack_name,
                "template": stack.template,
                "messages": [[m.level.value, m.id, m.entry.data] for m in stack.messages],
            }
            for stack in nested.stacks
        ]
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:]), default=str))
