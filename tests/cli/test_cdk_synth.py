"""The pinned CDK CLI synthesizes the reference app, offline, with the README's context."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.cli


def _cdk(root: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cdk = root / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        pytest.fail("the pinned CDK CLI is not installed: run `make setup` (npm ci)")
    env = {
        **os.environ,
        "PATH": f"{root / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        # No credentials anywhere: synth must not need them.
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_PROFILE": "",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return subprocess.run(
        [str(cdk), "synth", "--no-notices", "--quiet", "-o", str(out), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_synth_couples_the_context_idle_timeout(cli_synths) -> None:  # type: ignore[no-untyped-def]
    """`npx cdk synth -c idleTimeoutSeconds=120` (run once for the session, shared with the boot
    check, without credentials)."""
    out = cli_synths["idleTimeoutSeconds=120"].outdir
    template = json.loads((out / "GunicornAlbReference.template.json").read_text())
    parameter = template["Parameters"]["IdleTimeoutSeconds"]
    assert parameter["Default"] == 120
    assert "(125 s for the default 120 s)" in parameter["Description"]
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS::EC2::LaunchTemplate" in types
    assert "AWS::AutoScaling::LaunchConfiguration" not in types
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["GunicornAlbReference"]["environment"] == (
        "aws://unknown-account/unknown-region"
    )


def test_cli_synth_rejects_a_bad_context_value(root: Path, tmp_path: Path) -> None:
    result = _cdk(root, tmp_path, "-c", "idleTimeoutSeconds=soon")
    assert result.returncode != 0
    assert "context idleTimeoutSeconds must be a whole number of seconds, got 'soon'" in (
        result.stdout + result.stderr
    )
