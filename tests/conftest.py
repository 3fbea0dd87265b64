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
