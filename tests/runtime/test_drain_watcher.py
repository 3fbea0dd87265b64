"""The termination drain's watcher (userdata/drain.sh), the real script in bash with the real curl,
against an IMDSv2 stand-in on 127.0.0.1 (gunicorn_alb.bootcheck.imds: tokens, the target
lifecycle state, the instance id, the instance's tags), the AWS CLI stand-in
(tests/standins/aws_cli.py: CompleteLifecycleAction succeeds once for an instance waiting in the
group's hook, else ValidationError) and a systemctl stand-in that records.

EC2 Auto Scaling user guide, "Retrieve the target lifecycle state through instance metadata"
(``autoscaling/target-lifecycle-state`` reads ``Terminated`` once the group terminates the
instance); API reference, CompleteLifecycleAction (LifecycleHookName, AutoScalingGroupName,
LifecycleActionResult, InstanceId).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import pytest

from gunicorn_alb import rendering, termination
from gunicorn_alb.bootcheck.imds import serve_imds
from tests.standins import aws_cli
from tests.unit.test_rendering import config

pytestmark = pytest.mark.runtime

INSTANCE = "i-0123456789abcdef0"
GROUP = "Reference-ServiceAutoScalingGroupASG4B13455D-Q1w2E3r4T5y6"
CLEANUP = "echo bye"

SYSTEMCTL = """#!/bin/bash
# systemctl stand-in: records the call; exits with the code in the file 'fail-CMD' if there is one.
echo "$*" >>"$STANDIN/systemctl.calls"
if [[ -f "$STANDIN/fail-$1" ]]; then exit "$(<"$STANDIN/fail-$1")"; fi
"""


@dataclass
class Metadata:
    """What the IMDS stand-in answers, and the requests it got."""

    state: str = "InService"
    tags: dict[str, str] = field(default_factory=lambda: {"aws:autoscaling:groupName": GROUP})
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def items(self) -> dict[str, str]:
        found = {"instance-id": INSTANCE, "autoscaling/target-lifecycle-state": self.state}
        found.update({f"tags/instance/{k}": v for k, v in self.tags.items()})
        return found


@dataclass
class Instance:
    root: Path
    standin: Path
    env: dict[str, str]
    metadata: Metadata

    def aws(self, **state: object) -> None:
        (self.standin / "state.json").write_text(json.dumps(state))

    def waiting(self) -> None:
        """The instance waits in the group's termination hook (Terminating:Wait)."""
        self.metadata.state = "Terminated"
        hook = {"group": GROUP, "hook": termination.HOOK_NAME, "instance": INSTANCE}
        self.aws(lifecycle_actions=[hook])

    def calls(self, tool: str) -> list[str]:
        path = self.standin / ("systemctl.calls" if tool == "systemctl" else "calls")
        return path.read_text().splitlines() if path.exists() else []

    def watcher(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.root / "gunicorn-alb-drain"), str(self.root / "boot.env")],
            env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def _instance(tmp_path: Path, metadata: Metadata, command: str) -> Iterator[Instance]:
    root, standin = tmp_path / "root", tmp_path / "standin"
    root.mkdir()
    standin.mkdir()
    files = rendering.render_files(
        replace(
            config(60, aws_region="us-east-1"),
            termination_hook_name=termination.HOOK_NAME,
            termination_command=command,
        )
    )
    (root / "gunicorn-alb-boot").write_text(rendering.boot_script())
    (root / "gunicorn-alb-drain").write_text(files[termination.WATCHER_PATH])
    boot_env = files[rendering.BOOT_ENV_PATH]
    # The boot's backoff, shortened for the test: 2 attempts, 1 s apart.
    boot_env = boot_env.replace("RETRY_ATTEMPTS=4", "RETRY_ATTEMPTS=2")
    boot_env = boot_env.replace("RETRY_DELAY_SECONDS=5", "RETRY_DELAY_SECONDS=1")
    (root / "boot.env").write_text(boot_env)
    (standin / "systemctl").write_text(SYSTEMCTL)
    (standin / "systemctl").chmod(0o755)
    server = serve_imds(
        "127.0.0.1", 0, metadata.items, lambda m, p, s: metadata.requests.append((m, p, s))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        **os.environ,
        **aws_cli.install(standin, standin / "state.json"),
        "STANDIN": str(standin),
        "GUNICORN_ALB_BOOT": str(root / "gunicorn-alb-boot"),
        "GUNICORN_ALB_IMDS": f"http://127.0.0.1:{server.server_address[1]}",
        "STATE_DIRECTORY": str(tmp_path / "state"),
    }
    env["PATH"] = f"{standin}:{env['PATH']}"
    booted = Instance(root, standin, env, metadata)
    booted.aws()
    try:
        yield booted
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    """An instance with a termination hook and a termination_command."""
    yield from _instance(tmp_path, Metadata(), CLEANUP)


@pytest.fixture
def without_command(tmp_path: Path) -> Iterator[Instance]:
    yield from _instance(tmp_path, Metadata(), "")


COMPLETE = (
    f'["autoscaling", "complete-lifecycle-action", "--region", "us-east-1", '
    f'"--lifecycle-hook-name", "{termination.HOOK_NAME}", "--auto-scaling-group-name", '
    f'"{GROUP}", "--lifecycle-action-result", "CONTINUE", "--instance-id", "{INSTANCE}", '
    '"--cli-connect-timeout", "5", "--cli-read-timeout", "10"]'
)


def test_watcher_passes_shellcheck(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "boot.sh").write_text(rendering.boot_script())
    shipped = resources.files("gunicorn_alb.userdata").joinpath("drain.sh")
    (tmp_path / "drain.sh").write_text(shipped.read_text(encoding="utf-8"))
    result = subprocess.run(
        [require("shellcheck"), "--severity=style", "-x", "drain.sh"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def test_in_service_nothing_happens(instance: Instance) -> None:
    result = instance.watcher()
    assert result.returncode == 0, result.stderr
    assert instance.calls("systemctl") == []
    assert instance.calls("aws") == []
    assert result.stderr == ""
    # IMDSv2: a token first, then the state with it.
    assert [(m, p, s) for m, p, s in instance.metadata.requests] == [
        ("PUT", "/latest/api/token", 200),
        ("GET", "/latest/meta-data/autoscaling/target-lifecycle-state", 200),
    ]


def test_terminated_stops_cleans_up_and_completes_with_continue_once(instance: Instance) -> None:
    instance.waiting()
    result = instance.watcher()
    assert result.returncode == 0, result.stderr
    assert instance.calls("systemctl") == [
        "stop gunicorn-app.service",
        f"start {termination.CLEANUP_UNIT}",
    ]
    assert instance.calls("aws") == [COMPLETE]
    # Each step is in the journal, at notice (<5>).
    lines = result.stderr.splitlines()
    assert all(line.startswith("<5>gunicorn-alb-drain: ") for line in lines), lines
    assert any("stopping gunicorn-app.service" in line for line in lines)
    assert any(f"completed: the group terminates {INSTANCE}" in line for line in lines)
    # The next runs (every 5 s until EC2 terminates the instance) do nothing.
    for _ in range(2):
        again = instance.watcher()
        assert again.returncode == 0 and again.stderr == "", again.stderr
    assert len(instance.calls("systemctl")) == 2
    assert instance.calls("aws") == [COMPLETE]


def test_without_a_command_there_is_no_clean_up(without_command: Instance) -> None:
    without_command.waiting()
    result = without_command.watcher()
    assert result.returncode == 0, result.stderr
    assert without_command.calls("systemctl") == ["stop gunicorn-app.service"]
    assert without_command.calls("aws") == [COMPLETE]


def test_a_failed_clean_up_still_completes(instance: Instance) -> None:
    (instance.standin / "fail-start").write_text("1")
    instance.waiting()
    result = instance.watcher()
    assert result.returncode == 0, result.stderr
    assert "<3>gunicorn-alb-drain: termination_command failed (exit 1)" in result.stderr
    assert instance.calls("aws") == [COMPLETE]


def test_a_failed_completion_is_retried_by_the_next_run_without_draining_again(
    instance: Instance,
) -> None:
    """The hook is not waiting yet (ValidationError): the completion's retries fail, the run
    fails (the unit shows it); the next run completes, without stopping Gunicorn again."""
    instance.metadata.state = "Terminated"  # no lifecycle action waits in the stand-in yet
    first = instance.watcher()
    assert first.returncode != 0
    assert "No active Lifecycle Action found" in first.stderr
    assert "could not complete; the next run tries again" in first.stderr
    assert len(instance.calls("aws")) == 2  # RETRY_ATTEMPTS in this boot.env
    instance.waiting()
    second = instance.watcher()
    assert second.returncode == 0, second.stderr
    assert instance.calls("systemctl") == [
        "stop gunicorn-app.service",
        f"start {termination.CLEANUP_UNIT}",
    ]
    assert instance.calls("aws")[-1] == COMPLETE


def test_no_group_tag_in_the_metadata_is_an_error(instance: Instance) -> None:
    """Without instance tags in the metadata (the launch template's InstanceMetadataTags), the
    watcher cannot name its group: it says so, and calls nothing."""
    instance.metadata.tags = {}
    instance.waiting()
    result = instance.watcher()
    assert result.returncode != 0
    assert "cannot read instance-id and tag aws:autoscaling:groupName" in result.stderr
    assert instance.calls("aws") == []


def test_an_unreachable_metadata_service_is_logged_and_tried_again(instance: Instance) -> None:
    instance.env["GUNICORN_ALB_IMDS"] = "http://127.0.0.1:9"  # discard: nothing listens
    result = instance.watcher()
    assert result.returncode == 0
    assert "<3>gunicorn-alb-drain: cannot read the target lifecycle state" in result.stderr
    assert instance.calls("systemctl") == [] and instance.calls("aws") == []


def test_a_boot_env_without_the_hook_is_refused(instance: Instance) -> None:
    env = (instance.root / "boot.env").read_text()
    env = env.replace(f"TERMINATION_HOOK_NAME={termination.HOOK_NAME}", "TERMINATION_HOOK_NAME=")
    (instance.root / "boot.env").write_text(env)
    result = instance.watcher()
    assert result.returncode != 0
    assert "lacks TERMINATION_HOOK_NAME" in result.stderr
