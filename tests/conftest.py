"""Shared test set-up.

Synthesizing is the slow part of the suite: templates are built once per module (or once per
session for the reference app) and shared by every assertion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# jsii starts Node.js for aws-cdk-lib: use the pinned Node 22 (package.json), not the machine's.
_NODE = ROOT / "node_modules" / ".bin" / "node"
if "JSII_NODE" not in os.environ and _NODE.exists():
    os.environ["JSII_NODE"] = str(_NODE)


def cdk_json_context() -> dict[str, object]:
    """The context `cdk synth` gives the app: the feature flags in cdk.json."""
    context: dict[str, object] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def reference_stack():  # type: ignore[no-untyped-def]
    """The reference stack, built with the cdk.json context as `cdk synth` builds it (shared)."""
    import aws_cdk as cdk

    from stacks.gunicorn_service_stack import GunicornServiceStack

    return GunicornServiceStack(cdk.App(context=cdk_json_context()), "Reference")


@pytest.fixture(scope="session")
def reference_template(reference_stack):  # type: ignore[no-untyped-def]
    from aws_cdk import assertions

    return assertions.Template.from_stack(reference_stack)


@pytest.fixture(scope="session")
def cli_synths(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`cdk synth` of the reference app with the pinned CLI, once per distinct context the boot
    check needs (the default, and -c idleTimeoutSeconds=120), in parallel, shared by the CLI
    test and the boot check. Keyed by ``Variant.synth_key``."""
    from tools.bootcheck import bootcheck, stack

    try:
        return bootcheck.synthesize(bootcheck.VARIANTS, tmp_path_factory.mktemp("cdk-synth"))
    except stack.BootCheckError as error:
        pytest.fail(str(error))
