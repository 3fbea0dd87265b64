"""The boot budget: the grace period, the boot script's deadlines and the signal timeout agree."""

from __future__ import annotations

import pytest

from gunicorn_alb import boot_budget, rendering, timeouts
from gunicorn_alb.boot_budget import BOOT
from gunicorn_alb.timeouts import TimeoutRuleError, derive_timeouts


def test_the_boot_budget_fits_in_the_signal_timeout_with_time_to_signal() -> None:
    """CloudFormation waits ``SIGNAL_TIMEOUT_SECONDS`` for each instance's signal, then fails the
    create (creation policy ``ResourceSignal.Timeout``, CloudFormation user guide, "CreationPolicy
    attribute"): a boot that gives up must have signalled failure before then."""
    assert (BOOT.start, BOOT.install, BOOT.health_wait, BOOT.signal) == (90, 450, 300, 60)
    assert BOOT.total == 840
    assert BOOT.total + BOOT.signal <= BOOT.signal_timeout == 900


def test_the_grace_period_defaults_to_the_boot_budget() -> None:
    """EC2 Auto Scaling user guide, "Set the health check grace period for an Auto Scaling
    group": the grace period is the minimum time a new instance stays in service before a failed
    health check terminates it, counted from ``InService``, and ELB health checks start as soon as
    the instance is registered. A grace period shorter than the boot lets the ASG replace an
    instance that is still installing (the seed had 300 s against a 600 s health wait)."""
    assert derive_timeouts(60).grace_period == BOOT.total
    assert derive_timeouts(None).grace_period == BOOT.total
    assert BOOT.total == timeouts.GRACE_PERIOD_DEFAULT


def test_a_longer_grace_period_is_accepted() -> None:
    assert derive_timeouts(60, grace_period=BOOT.total + 60).grace_period == BOOT.total + 60


def test_fails_when_the_grace_period_is_shorter_than_the_boot_budget() -> None:
    with pytest.raises(
        TimeoutRuleError,
        match=r"health_check_grace_period \(300 s\) must be at least the boot budget \(840 s: "
        r"90 s to start \+ 450 s to install \+ 300 s health wait\).*\(rule grace-covers-boot\)",
    ):
        derive_timeouts(60, grace_period=300)


def test_fails_when_the_boot_cannot_signal_before_the_signal_timeout() -> None:
    with pytest.raises(
        TimeoutRuleError,
        match=r"the boot budget \(90 s to start \+ 450 s to install \+ 600 s health wait = "
        r"1140 s\) plus 60 s to signal exceeds the signal timeout \(900 s\).*"
        r"\(rule boot-within-signal-timeout\)",
    ):
        boot_budget.boot_budget(health_wait=600)


def test_retry_waits_double_up_to_the_cap() -> None:
    assert BOOT.retry_waits == [5, 10, 20]
    assert boot_budget.boot_budget(retry_attempts=6).retry_waits == [5, 10, 20, 40, 40]


def test_fails_when_the_retry_waits_take_half_the_install_budget() -> None:
    with pytest.raises(TimeoutRuleError, match=r"rule retries-within-install-budget"):
        boot_budget.boot_budget(retry_attempts=10)


def test_fails_when_a_budget_part_is_not_a_whole_number() -> None:
    with pytest.raises(TimeoutRuleError, match=r"install must be a whole number, got 1\.5"):
        boot_budget.boot_budget(install=1.5)  # type: ignore[arg-type]


def test_boot_env_carries_the_budget() -> None:
    from tests.unit.test_rendering import config, env

    values = env(rendering.render_boot_env(config(60)))
    assert values["HEALTH_WAIT_SECONDS"] == str(BOOT.health_wait) == "300"
    assert values["INSTALL_BUDGET_SECONDS"] == "450"
    assert values["SIGNAL_BUDGET_SECONDS"] == "60"
    assert (values["RETRY_ATTEMPTS"], values["RETRY_DELAY_SECONDS"]) == ("4", "5")
    assert values["RETRY_MAX_DELAY_SECONDS"] == "40"
