"""The boot script's retries: every network step retries with the model's bounded backoff and
stops at its deadline, so a failed boot still signals CloudFormation in time."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gunicorn_alb import rendering
from gunicorn_alb.boot_budget import BOOT
from tests.unit.test_rendering import config

pytestmark = pytest.mark.runtime

# The backoff waits are recorded instead of slept: the tests never wait for them.
_RECORD_SLEEP = 'sleep() { echo "wait $1" >>"$RECORD"; }'


def _run(script: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    boot = tmp_path / "boot.sh"
    boot.write_text(rendering.boot_script())
    env_file = tmp_path / "boot.env"
    env_file.write_text(rendering.render_boot_env(config(60)))
    record = tmp_path / "record"
    record.touch()
    # flaky N CODE: fails with CODE for its first N calls, then succeeds; each call is recorded.
    flaky = tmp_path / "flaky"
    flaky.write_text(
        '#!/bin/bash\necho "call $*" >>"$RECORD"\n'
        'n=$(grep -c "^call" "$RECORD")\n(( n > $1 )) || exit "$2"\n'
    )
    flaky.chmod(0o755)
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"set -euo pipefail\nsource {boot}\nsource {env_file}\ncheck_boot_budget\n"
            f"{_RECORD_SLEEP}\nFLAKY={flaky}\n{script}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "RECORD": str(record)},
    )
    return result, record.read_text().splitlines()


def test_a_step_that_keeps_failing_is_tried_as_often_as_the_model_says(tmp_path: Path) -> None:
    result, record = _run(
        'rc=0; retry $((SECONDS + 60)) "$FLAKY" 99 3 || rc=$?; echo "rc=$rc"', tmp_path
    )
    assert result.stdout.strip() == "rc=3", result.stderr
    assert [line for line in record if line.startswith("call")] == ["call 99 3"] * 4
    assert [int(line.split()[1]) for line in record if line.startswith("wait")] == (
        BOOT.retry_waits
    )
    assert "attempt 1 of 4 failed (exit 3), retrying in 5 s" in result.stderr
    assert "failed 4 times (exit 3)" in result.stderr


def test_a_step_that_fails_once_succeeds_on_the_second_attempt(tmp_path: Path) -> None:
    result, record = _run('retry $((SECONDS + 60)) "$FLAKY" 1 1; echo ok', tmp_path)
    assert result.stdout.strip() == "ok", result.stderr
    assert record == ["call 1 1", "wait 5", "call 1 1"]


def test_no_attempt_runs_past_the_deadline(tmp_path: Path) -> None:
    """The attempt in flight is stopped at the deadline (timeout's exit 124), and no retry
    follows, so the boot moves on to signal failure."""
    result, record = _run(
        'rc=0; retry $((SECONDS + 1)) /bin/sleep 30 || rc=$?; echo "rc=$rc"', tmp_path
    )
    assert result.stdout.strip() == "rc=124", result.stderr
    assert not [line for line in record if line.startswith("wait")]


def test_no_wait_runs_past_the_deadline(tmp_path: Path) -> None:
    result, record = _run(
        'RETRY_DELAY_SECONDS=30; rc=0; retry $((SECONDS + 10)) "$FLAKY" 99 2 || rc=$?; '
        'echo "rc=$rc"',
        tmp_path,
    )
    assert result.stdout.strip() == "rc=2", result.stderr
    assert record == ["call 99 2"]
    assert "no time left to retry" in result.stderr


def test_a_command_that_cannot_run_is_not_retried(tmp_path: Path) -> None:
    result, record = _run(
        'rc=0; retry $((SECONDS + 60)) /nonexistent/cfn-signal || rc=$?; echo "rc=$rc"', tmp_path
    )
    assert result.stdout.strip() == "rc=127", result.stderr
    assert record == []


def test_an_install_step_that_gives_up_fails_the_boot(tmp_path: Path) -> None:
    result, _ = _run('INSTALL_DEADLINE=$((SECONDS + 60)); install_step "$FLAKY" 99 7', tmp_path)
    assert result.returncode == 1
    assert "gave up (install budget 450 s)" in result.stderr


def test_the_signal_retries_too(tmp_path: Path) -> None:
    """cfn-signal is a network call as well: a failed first attempt is retried."""
    result, record = _run(
        # A cfn-signal stand-in that fails its first call.
        'printf \'#!/bin/bash\\nexec %s 1 1 "$@"\\n\' "$FLAKY" >"$FLAKY-signal"\n'
        'chmod +x "$FLAKY-signal"\n'
        'CFN_STACK=s CFN_RESOURCE=r CFN_REGION=eu-west-1 CFN_SIGNAL="$FLAKY-signal"\n'
        "signal_cloudformation 1; echo done",
        tmp_path,
    )
    assert result.stdout.strip() == "done", result.stderr
    calls = [line for line in record if line.startswith("call")]
    assert len(calls) == 2
    assert calls[1] == "call 1 1 --exit-code 1 --stack s --resource r --region eu-west-1"


def test_every_network_step_of_the_boot_script_retries() -> None:
    """dnf, pip, aws and cfn-signal each run through retry (install_step is retry within the
    install budget): a transient network error must not fail the boot."""
    script = rendering.boot_script()
    network = re.compile(r'\bdnf install\b|/bin/pip" install\b|\baws s3\b|CFN_SIGNAL')
    lines = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    calls = [line for line in lines if network.search(line)]
    # 8: one `aws s3 cp` (fetch_asset, for the wheelhouse and the app), the source-build
    # toolchain (build_from_source) and the log agent's packages (logrotate,
    # amazon-cloudwatch-agent) among them.
    assert len(calls) == 8, calls
    for line in calls:
        assert line.startswith(("install_step ", "retry ")), line
