"""The pinned CDK CLI synthesizes the reference app, offline, with the README's context."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gunicorn_alb import delivery, rendering
from gunicorn_alb.bootcheck import stack
from tools.bootcheck import reference

pytestmark = pytest.mark.cli


def _cdk(root: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The pinned CLI, as the boot check runs it (same PATH, no AWS credentials)."""
    if not (root / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is not installed: run `make setup` (npm ci)")
    context = dict(arg.split("=", 1) for arg in args)
    return subprocess.run(
        reference.synth_command(context, out), cwd=root, env=reference.synth_env(),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _synth_of(cli_synths, variant: str):  # type: ignore[no-untyped-def]
    (found,) = [v for v in reference.VARIANTS if v.name == variant]
    return cli_synths[found.synth_key]


def test_cli_synth_couples_the_context_idle_timeout(cli_synths) -> None:  # type: ignore[no-untyped-def]
    """`npx cdk synth -c idleTimeoutSeconds=120` (run once for the session, shared with the boot
    check, without credentials)."""
    out = _synth_of(cli_synths, "context-120").outdir
    template = json.loads((out / "GunicornAlbReference.template.json").read_text())
    parameter = template["Parameters"]["IdleTimeoutSeconds"]
    assert parameter["Default"] == "120"
    assert "(125 s for the default 120 s)" in parameter["Description"]
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS::EC2::LaunchTemplate" in types
    assert "AWS::AutoScaling::LaunchConfiguration" not in types
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["GunicornAlbReference"]["environment"] == (
        "aws://unknown-account/unknown-region"
    )


def test_cli_synth_carries_ten_environment_values_of_1000_characters(cli_synths) -> None:  # type: ignore[no-untyped-def]
    """`-c environmentFile=long_environment.json` (the boot check's context-120 variant): the
    environment budget (docs/your-app.md) holds them, and the user data carries them."""
    synth = _synth_of(cli_synths, "context-120")
    user_data = stack.resolve_user_data(synth, {}).text
    app_env = delivery.parse_env(delivery.written_file(user_data, rendering.APP_ENV_PATH) or "")
    assert len(app_env) == 10 and all(len(value) == 1000 for value in app_env.values())
    assert len(user_data.encode()) <= delivery.USER_DATA_LIMIT


def test_cli_synth_rejects_a_bad_context_value(root: Path, tmp_path: Path) -> None:
    result = _cdk(root, tmp_path, "idleTimeoutSeconds=soon")
    assert result.returncode != 0
    assert "context idleTimeoutSeconds must be a whole number of seconds, got 'soon'" in (
        result.stdout + result.stderr
    )
