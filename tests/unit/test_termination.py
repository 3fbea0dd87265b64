"""The termination drain's numbers and rule hook-covers-drain (gunicorn_alb.termination), and the
files it puts on an instance (only with the hook)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gunicorn_alb import delivery, rendering, termination
from gunicorn_alb.timeouts import derive_timeouts
from tests.unit.test_rendering import config


def test_the_drain_takes_the_watcher_period_the_stop_the_clean_up_and_the_completion() -> None:
    coupled = derive_timeouts(60)  # graceful timeout 65 s (the keep-alive), stop timeout 75 s
    assert termination.drain_seconds(coupled, cleanup=False) == 6 + 75 + 60
    assert termination.drain_seconds(coupled, cleanup=True) == 6 + 75 + 120 + 60


def test_with_a_deploy_time_idle_timeout_the_largest_stop_timeout_counts() -> None:
    """Graceful timeout = the keep-alive (at most 4000 + margin for a parameter), stop = graceful
    + 10."""
    assert termination.stop_bound(derive_timeouts(None)) == 4015
    assert termination.stop_bound(derive_timeouts(None, graceful_timeout=300)) == 310
    assert termination.stop_bound(derive_timeouts(None, stop_timeout=45)) == 45


def test_a_hook_that_covers_the_drain_passes() -> None:
    coupled = derive_timeouts(60)
    assert termination.check_termination(141, coupled, command=False) == []
    assert termination.check_termination(261, coupled, command=True) == []
    assert termination.check_termination(None, coupled, command=False) == []


@pytest.mark.parametrize(
    ("idle", "hook", "command", "message"),
    [
        (
            60,
            140,
            False,
            "termination_hook_timeout (140 s) must be at least 141 s: 6 s to notice the "
            "termination + 75 s stop timeout + 60 s to complete the lifecycle action",
        ),
        (
            None,
            4200,
            True,
            "termination_hook_timeout (4200 s) must be at least 4201 s: 6 s to notice the "
            "termination + 4015 s stop timeout (its largest: the idle timeout is a parameter) + "
            "120 s for termination_command + 60 s to complete the lifecycle action",
        ),
    ],
)
def test_fails_when_the_hook_is_shorter_than_the_drain(
    idle: int | None, hook: int, command: bool, message: str
) -> None:
    (problem,) = termination.check_termination(hook, derive_timeouts(idle), command=command)
    assert problem.startswith(message)
    assert problem.endswith("(rule hook-covers-drain)")


def test_fails_when_a_command_has_no_hook() -> None:
    assert termination.check_termination(None, derive_timeouts(60), command=True) == [
        "termination_command needs termination_hook_timeout: without the termination hook "
        "nothing holds the instance while the command runs"
    ]


def test_the_files_come_only_with_the_hook() -> None:
    plain = rendering.render_files(config(60))
    assert not set(plain) & {termination.WATCHER_PATH, termination.CLEANUP_UNIT_PATH}
    env = delivery.parse_env(plain[rendering.BOOT_ENV_PATH])
    assert (env["TERMINATION_HOOK_NAME"], env["TERMINATION_CLEANUP_UNIT"]) == ("", "")
    hooked = rendering.render_files(
        replace(config(60), termination_hook_name=termination.HOOK_NAME)
    )
    assert {termination.WATCHER_PATH, termination.WATCHER_TIMER_PATH} <= set(hooked)
    assert termination.CLEANUP_UNIT_PATH not in hooked
    env = delivery.parse_env(hooked[rendering.BOOT_ENV_PATH])
    assert env["TERMINATION_HOOK_NAME"] == termination.HOOK_NAME
    assert env["TERMINATION_COMPLETION_SECONDS"] == str(termination.COMPLETION_BUDGET_SECONDS)


def test_the_clean_up_unit_runs_the_command_as_the_app_user_with_its_bound() -> None:
    files = rendering.render_files(
        replace(config(60), termination_hook_name=termination.HOOK_NAME, termination_command="x")
    )
    unit = files[termination.CLEANUP_UNIT_PATH]
    prestart = rendering.render_pre_start_unit(config(60, pre_start_command="x"))
    assert "User=gunicorn-app" in unit
    assert f"TimeoutStartSec={termination.CLEANUP_TIMEOUT_SECONDS}" in unit
    assert "ExecStart=/bin/bash -c ${GUNICORN_ALB_TERMINATION}" in unit
    # The very hardening block of the app's unit (and the release step's).
    hardening = prestart[prestart.index("# Hardening") :]
    assert unit.endswith(hardening)
    assert files[termination.CLEANUP_ENV_PATH].endswith("GUNICORN_ALB_TERMINATION='x'\n")


def test_the_timer_runs_the_watcher_within_its_period() -> None:
    """WATCHER_PERIOD_MAX_SECONDS adds up the timer: 5 s after the last start + 1 s accuracy."""
    timer = rendering.render_files(
        replace(config(60), termination_hook_name=termination.HOOK_NAME)
    )[termination.WATCHER_TIMER_PATH]
    settings = dict(line.split("=", 1) for line in timer.splitlines() if "=" in line)
    period = int(settings["OnUnitActiveSec"].removesuffix("s"))
    accuracy = int(settings["AccuracySec"].removesuffix("s"))
    assert "RandomizedDelaySec" not in settings
    assert period + accuracy == termination.WATCHER_PERIOD_MAX_SECONDS
