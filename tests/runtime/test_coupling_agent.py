"""The coupling agent (userdata/coupling.sh) and the boot script's live read, run in bash with
their functions sourced, against a PATH stand-in for the AWS CLI (tests/standins/aws_cli.py: the
ELBv2 responses, the scripts' real ``--query`` expressions) and one for ``systemctl`` that records.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from gunicorn_alb import delivery, rendering, timeouts
from tests.standins import aws_cli
from tests.unit.test_rendering import config

pytestmark = pytest.mark.runtime

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
LB1 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1111111111111111"
LB2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/api/2222222222222222"

SYSTEMCTL = """#!/bin/bash
# systemctl stand-in: records the call; `is-active` answers from the file 'active'.
echo "$*" >>"$STANDIN/systemctl.calls"
if [[ $1 == is-active ]]; then [[ -f "$STANDIN/active" ]]; fi
"""


@dataclass
class Instance:
    """An instance's files under ``root``, the stand-ins, and a way to run bash against them."""

    root: Path
    standin: Path
    env: dict[str, str]

    @property
    def coupling(self) -> dict[str, str]:
        return delivery.parse_env((self.root / "coupling.env").read_text())

    def aws(self, **state: object) -> None:
        (self.standin / "state.json").write_text(json.dumps(state))

    def idle(self, *timeouts: int) -> None:
        """The target group behind one load balancer per idle timeout."""
        balancers = [LB1, LB2][: len(timeouts)]
        self.aws(
            target_groups={TG: balancers},
            load_balancers={
                arn: {"idle_timeout": t} for arn, t in zip(balancers, timeouts, strict=True)
            },
        )

    def calls(self, tool: str) -> list[str]:
        path = self.standin / f"{tool}.calls" if tool == "systemctl" else self.standin / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def bash(self, script: str) -> subprocess.CompletedProcess[str]:
        prelude = f"set -euo pipefail\nsource {self.root}/gunicorn-alb-coupling\n"
        return subprocess.run(
            ["bash", "-c", prelude + script],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def agent(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.root / "gunicorn-alb-coupling"), str(self.root / "boot.env")],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    """Booted with idle timeout 60 s: coupling.env as the boot script writes it."""
    root, standin = tmp_path / "root", tmp_path / "standin"
    root.mkdir()
    standin.mkdir()
    (root / "gunicorn-alb-boot").write_text(rendering.boot_script())
    (root / "gunicorn-alb-coupling").write_text(rendering.coupling_agent())
    (root / "boot.env").write_text(
        rendering.render_boot_env(config(60, target_group_arn=TG, aws_region="us-east-1"))
    )
    (standin / "systemctl").write_text(SYSTEMCTL)
    (standin / "systemctl").chmod(0o755)
    (standin / "active").touch()
    env = {
        **os.environ,
        **aws_cli.install(standin, standin / "state.json"),
        "STANDIN": str(standin),
        "GUNICORN_ALB_BOOT": str(root / "gunicorn-alb-boot"),
        "GUNICORN_ALB_COUPLING_FILE": str(root / "coupling.env"),
        "STATE_DIRECTORY": str(tmp_path / "state"),
    }
    env["PATH"] = f"{standin}:{env['PATH']}"
    booted = Instance(root, standin, env)
    booted.idle(60)
    result = booted.bash(
        f"source {root}/boot.env; derive_timeouts\n"
        f'printf "GUNICORN_ALB_IDLE_TIMEOUT=%s\\nGUNICORN_ALB_KEEPALIVE=%s\\n'
        f'GUNICORN_ALB_GRACEFUL_TIMEOUT=%s\\n" "$IDLE_TIMEOUT_SECONDS" "$KEEPALIVE" '
        f'"$GRACEFUL_TIMEOUT" >{root}/coupling.env'
    )
    assert result.returncode == 0, result.stderr
    return booted


def test_agent_passes_shellcheck(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "boot.sh").write_text(rendering.boot_script())
    (tmp_path / "coupling.sh").write_text(rendering.coupling_agent())
    result = subprocess.run(
        [require("shellcheck"), "--severity=style", "-x", "coupling.sh"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def test_agent_recouples_at_once_when_the_idle_timeout_rises(instance: Instance) -> None:
    instance.idle(120)
    result = instance.agent()
    assert result.returncode == 0, result.stderr
    assert instance.coupling == {
        "GUNICORN_ALB_IDLE_TIMEOUT": "120",
        "GUNICORN_ALB_KEEPALIVE": "125",
        "GUNICORN_ALB_GRACEFUL_TIMEOUT": "125",  # follows the keep-alive
    }
    assert (
        "gunicorn-alb-coupling: re-coupled: idle timeout 60 s -> 120 s, keep-alive 65 s -> 125 s"
        in result.stderr
    )
    assert instance.calls("systemctl") == [
        "is-active --quiet gunicorn-app.service",
        "reload gunicorn-app.service",
    ]
    assert oct((instance.root / "coupling.env").stat().st_mode & 0o777) == "0o644"


def test_agent_follows_the_largest_idle_timeout_in_front_of_the_target_group(
    instance: Instance,
) -> None:
    instance.idle(90, 300)
    assert instance.agent().returncode == 0
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "305"
    queried = [json.loads(call) for call in instance.calls("aws")]
    assert [call[:2] for call in queried] == [
        ["elbv2", "describe-target-groups"],
        ["elbv2", "describe-load-balancer-attributes"],
        ["elbv2", "describe-load-balancer-attributes"],
    ]
    assert all(call[call.index("--region") + 1] == "us-east-1" for call in queried)


def test_agent_leaves_everything_alone_while_nothing_changes(instance: Instance) -> None:
    before = (instance.root / "coupling.env").read_text()
    result = instance.agent()
    assert (result.returncode, result.stderr) == (0, "")
    assert (instance.root / "coupling.env").read_text() == before
    assert instance.calls("systemctl") == []


def test_agent_keeps_the_configured_value_when_no_load_balancer_forwards_yet(
    instance: Instance,
) -> None:
    instance.aws(target_groups={TG: []}, load_balancers={})
    assert instance.agent().returncode == 0
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "65"
    assert instance.calls("systemctl") == []


@pytest.mark.parametrize(
    "state",
    [
        {
            "error": "An error occurred (Throttling) when calling the DescribeTargetGroups "
            "operation (reached max retries: 2): Rate exceeded"
        },
        {
            "error": "An error occurred (AccessDenied) when calling the DescribeTargetGroups "
            "operation: not authorized to perform: elasticloadbalancing:DescribeTargetGroups"
        },
        {"target_groups": {}, "load_balancers": {}},  # target group not found
        {"target_groups": {TG: [LB1]}, "load_balancers": {LB1: {"idle_timeout": "sixty"}}},
    ],
    ids=["throttled", "access-denied", "target-group-gone", "not-a-number"],
)
def test_an_aws_error_keeps_the_current_values_and_is_logged(
    instance: Instance, state: dict[str, object]
) -> None:
    instance.idle(120)
    assert instance.agent().returncode == 0  # coupled to 120 s
    instance.aws(**state)
    result = instance.agent()
    assert result.returncode == 0, "an AWS error must not fail the agent's unit"
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "125"
    assert (
        "could not read the live idle timeout; keeping idle timeout 120 s, keep-alive 125 s"
        in result.stderr
    )
    assert instance.calls("systemctl").count("reload gunicorn-app.service") == 1


def test_a_decrease_waits_until_the_lower_value_has_held_for_the_old_idle_timeout(
    instance: Instance,
) -> None:
    instance.idle(300)
    instance.agent()
    instance.idle(60)
    first = instance.agent()
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "305"
    assert "fell to 60 s (coupled: 300 s); keep-alive follows once it has held for 300 s" in (
        first.stderr
    )
    mark = Path(instance.env["STATE_DIRECTORY"]) / "decrease"
    then = time.time() - 280
    os.utime(mark, (then, then))
    instance.agent()
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "305"
    then = time.time() - 301
    os.utime(mark, (then, then))
    result = instance.agent()
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "65"
    assert "re-coupled: idle timeout 300 s -> 60 s, keep-alive 305 s -> 65 s" in result.stderr
    assert instance.calls("systemctl").count("reload gunicorn-app.service") == 2


def test_a_decrease_that_reverses_is_forgotten(instance: Instance) -> None:
    instance.idle(300)
    instance.agent()
    instance.idle(60)
    instance.agent()
    instance.idle(300)
    instance.agent()
    assert not (Path(instance.env["STATE_DIRECTORY"]) / "decrease").exists()


def test_the_agent_never_goes_below_the_configured_idle_timeout(instance: Instance) -> None:
    instance.idle(30)
    instance.agent()
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "65"
    assert instance.calls("systemctl") == []


def test_a_stopped_app_gets_the_file_but_no_reload(instance: Instance) -> None:
    (instance.standin / "active").unlink()
    instance.idle(120)
    result = instance.agent()
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "125"
    assert instance.calls("systemctl") == ["is-active --quiet gunicorn-app.service"]
    assert "is not running; it reads keep-alive 125 s when it starts" in result.stderr


def test_a_missing_coupling_file_counts_as_the_configured_value(instance: Instance) -> None:
    (instance.root / "coupling.env").unlink()
    instance.idle(120)
    assert instance.agent().returncode == 0
    assert instance.coupling["GUNICORN_ALB_KEEPALIVE"] == "125"


@pytest.mark.parametrize(
    ("live", "keepalive"), [(300, "305"), (60, "65"), (30, "65"), (None, "65")]
)
def test_boot_couples_to_the_larger_of_configured_and_live(
    instance: Instance, live: int | None, keepalive: str
) -> None:
    if live is None:
        instance.aws(error="Could not connect to the endpoint URL")
    else:
        instance.idle(live)
    result = instance.bash(
        f"source {instance.root}/boot.env; derive_timeouts; check_synth_values; "
        "follow_live_idle_timeout; echo $IDLE_TIMEOUT_SECONDS $KEEPALIVE"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == keepalive
    live_idles = [] if live is None else [live]
    assert int(keepalive) == timeouts.live_keepalive(60, live_idles, 5)  # the Python model
    if live is None:
        assert "could not read the live idle timeout; coupling to the configured 60 s" in (
            result.stderr
        )


def test_boot_without_a_target_group_makes_no_aws_call(instance: Instance) -> None:
    result = instance.bash(
        f"source {instance.root}/boot.env; TARGET_GROUP_ARN=; derive_timeouts; "
        "follow_live_idle_timeout; echo $KEEPALIVE"
    )
    assert result.stdout.split() == ["65"]
    assert instance.calls("aws") == []


def test_boot_starts_the_agent_only_once_gunicorn_answers() -> None:
    script = rendering.boot_script()
    body = script[script.index("main() {") :]
    assert body.index("wait_healthy") < body.index("start_coupling_agent")
    assert body.index("check_synth_values") < body.index("follow_live_idle_timeout")
    assert body.index("follow_live_idle_timeout") < body.index("write_coupling_files")


def _analyze(require, tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """``systemd-analyze`` on the agent's units at their real paths, in a bubblewrap sandbox."""
    bwrap = require("bwrap")
    require("systemd-analyze")
    units, sbin = tmp_path / "system", tmp_path / "sbin"
    units.mkdir()
    sbin.mkdir()
    files = rendering.render_files(config(target_group_arn=TG))
    for path in (
        rendering.COUPLING_SERVICE_PATH,
        rendering.COUPLING_TIMER_PATH,
        rendering.UNIT_PATH,
    ):
        (units / Path(path).name).write_text(files[path])
    agent = sbin / "gunicorn-alb-coupling"
    agent.write_text(files[rendering.COUPLING_AGENT_PATH])
    agent.chmod(0o755)
    return subprocess.run(
        [bwrap, "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--tmpfs", "/etc/systemd/system", "--ro-bind", str(units), "/etc/systemd/system",
         "--ro-bind", str(sbin), "/usr/local/sbin", *command],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_agent_units_pass_systemd_analyze_verify(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _analyze(
        require, tmp_path, "systemd-analyze", "verify",
        "/etc/systemd/system/gunicorn-alb-coupling.service",
        "/etc/systemd/system/gunicorn-alb-coupling.timer",
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_agent_unit_is_hardened_like_the_app_unit(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`systemd-analyze security`: root without capabilities, read-only system but for
    /etc/gunicorn-alb; fail if its exposure rises above 2.5."""
    result = _analyze(
        require, tmp_path, "systemd-analyze", "security", "--offline=true",
        "/etc/systemd/system/gunicorn-alb-coupling.service",
    )  # fmt: skip
    match = re.search(r"Overall exposure level for gunicorn-alb-coupling.service: (\d+\.\d+)",
                      result.stdout)  # fmt: skip
    assert match, result.stdout + result.stderr
    print(match.group(0))
    assert float(match.group(1)) <= 2.5, result.stdout


def test_a_graceful_override_the_raise_reaches_gives_way_to_the_keepalive(
    instance: Instance,
) -> None:
    """graceful-outlasts-idle: booted with graceful_timeout 70 s (> 60 s); the idle timeout goes
    to 120 s, so 70 s no longer outlasts it and the agent couples the keep-alive instead."""
    boot_env = instance.root / "boot.env"
    text = boot_env.read_text()
    assert "GRACEFUL_TIMEOUT_SECONDS=\n" in text
    boot_env.write_text(
        text.replace("GRACEFUL_TIMEOUT_SECONDS=\n", "GRACEFUL_TIMEOUT_SECONDS=70\n")
    )
    instance.idle(120)
    result = instance.agent()
    assert result.returncode == 0, result.stderr
    assert instance.coupling["GUNICORN_ALB_GRACEFUL_TIMEOUT"] == "125"
    assert "graceful timeout 70 s does not outlast idle timeout 120 s" in result.stderr
