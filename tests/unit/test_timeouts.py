"""The timeout model: derivation, every ordering rule over the whole idle range, bad input."""

from __future__ import annotations

import re

import pytest

from gunicorn_alb import timeouts
from gunicorn_alb.timeouts import TimeoutRuleError, check_worker, derive_timeouts


def test_defaults_couple_keepalive_to_the_default_idle_timeout() -> None:
    coupled = derive_timeouts(60)
    assert coupled.keepalive == 65
    assert coupled.deregistration_delay == 60
    assert coupled.graceful_timeout == 65
    assert coupled.stop_timeout == 75
    assert (coupled.health_check_interval, coupled.health_check_timeout) == (15, 5)
    assert (coupled.healthy_threshold, coupled.unhealthy_threshold) == (2, 3)
    assert coupled.grace_period == timeouts.BOOT.total == 840
    assert coupled.max_requests == 0
    assert coupled.advisories == []


@pytest.mark.parametrize(
    ("idle", "margin", "keepalive"), [(1, 1, 2), (120, 5, 125), (4000, 30, 4030)]
)
def test_keepalive_is_idle_plus_margin(idle: int, margin: int, keepalive: int) -> None:
    assert derive_timeouts(idle, keepalive_margin=margin).keepalive == keepalive


def test_every_rule_holds_for_every_idle_timeout() -> None:
    """Exhaustive over 1..4000 s and several margins: the orderings docs/deploying.md promises."""
    for margin in (1, 5, 30):
        for idle in range(timeouts.IDLE_TIMEOUT_MIN, timeouts.IDLE_TIMEOUT_MAX + 1):
            c = derive_timeouts(idle, keepalive_margin=margin)
            assert c.keepalive is not None and c.graceful_timeout is not None
            assert c.stop_timeout is not None
            assert c.keepalive == idle + margin > idle, idle
            assert 1 <= c.deregistration_delay <= 3600
            assert c.deregistration_delay == min(idle, 3600)
            assert c.graceful_timeout == c.keepalive > idle
            assert c.stop_timeout > c.graceful_timeout
            assert c.health_check_timeout < c.health_check_interval
            assert c.grace_period >= c.health_check_interval * c.healthy_threshold


def test_parameter_mode_leaves_idle_dependent_values_to_the_instance() -> None:
    c = derive_timeouts(None, keepalive_margin=7)
    assert (c.idle_timeout, c.keepalive, c.graceful_timeout, c.stop_timeout) == (None,) * 4
    assert c.keepalive_margin == 7
    # CloudFormation cannot compute min(idle, 3600): the bound for any allowed idle timeout.
    assert c.deregistration_delay == 3600


def test_overrides_are_used_when_they_keep_the_order() -> None:
    c = derive_timeouts(60, deregistration_delay=30, graceful_timeout=61, stop_timeout=75)
    assert (c.deregistration_delay, c.graceful_timeout, c.stop_timeout) == (30, 61, 75)
    assert (c.graceful_timeout_override, c.stop_timeout_override) == (61, 75)


def test_graceful_timeout_outlasts_the_idle_timeout_whatever_the_drain() -> None:
    """A stopping worker keeps its idle connections until the ALB closes them (up to the idle
    timeout); at scale-in the ALB has drained the target first, so the drain does not bound it."""
    c = derive_timeouts(300, deregistration_delay=30)
    assert (c.graceful_timeout, c.stop_timeout) == (305, 315)


def test_max_requests_with_jitter_is_allowed_with_an_advisory() -> None:
    c = derive_timeouts(60, max_requests=1000, max_requests_jitter=100)
    ((advisory_id, message),) = c.advisories
    assert advisory_id == "max-requests"
    # The race is gone (userdata/gunicorn_alb_*.py); what remains is the capacity while a worker
    # lingers.
    assert "502" not in message
    assert "one worker fewer" in message


def _fails(match: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(TimeoutRuleError, match=match):
        derive_timeouts(*args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("idle", [0, 4001, 5000])
def test_fails_when_idle_timeout_is_out_of_range(idle: int) -> None:
    _fails(rf"idle_timeout must be between 1 and 4000 seconds, got {idle}$", idle)


def test_fails_when_idle_timeout_is_not_whole_seconds() -> None:
    _fails(r"idle_timeout must be a whole number of seconds between 1 and 4000, got 60\.5", 60.5)


@pytest.mark.parametrize("margin", [0, -5])
def test_fails_when_keepalive_margin_is_below_one_second(margin: int) -> None:
    _fails(
        rf"keepalive_margin must be at least 1 seconds, got {margin}", 60, keepalive_margin=margin
    )


def test_fails_when_keepalive_margin_is_a_fraction() -> None:
    _fails(
        r"keepalive_margin must be a whole number of seconds at least 1, got 0\.5",
        60,
        keepalive_margin=0.5,
    )


@pytest.mark.parametrize("delay", [0, 3601])
def test_fails_when_deregistration_delay_is_out_of_range(delay: int) -> None:
    _fails(
        rf"deregistration_delay must be between 1 and 3600 seconds, got {delay}",
        60,
        deregistration_delay=delay,
    )


@pytest.mark.parametrize("graceful", [30, 60])
def test_fails_when_graceful_timeout_does_not_outlast_the_idle_timeout(graceful: int) -> None:
    _fails(
        rf"graceful_timeout \({graceful} s\) must be greater than idle_timeout \(60 s\).*"
        r"graceful-outlasts-idle",
        60,
        graceful_timeout=graceful,
    )


def test_fails_when_stop_timeout_does_not_exceed_graceful_timeout() -> None:
    _fails(
        r"stop_timeout \(65 s\) must be greater than graceful_timeout \(65 s\).*"
        r"stop-after-graceful",
        60,
        stop_timeout=65,
    )


def test_fails_when_health_check_timeout_is_not_below_the_interval() -> None:
    _fails(
        r"health_check_timeout \(10 s\) must be less than health_check_interval \(10 s\)",
        60,
        health_check_interval=10,
        health_check_timeout=10,
    )


@pytest.mark.parametrize(("name", "value"), [("healthy_threshold", 1), ("unhealthy_threshold", 11)])
def test_fails_when_a_threshold_is_out_of_range(name: str, value: int) -> None:
    _fails(rf"{name} must be between 2 and 10, got {value}", 60, **{name: value})


def test_fails_when_grace_period_is_shorter_than_becoming_healthy() -> None:
    _fails(
        r"grace_period \(20 s\) must be at least health_check_interval x healthy_threshold "
        r"\(15 s x 2 = 30 s\)",
        60,
        grace_period=20,
    )


def test_fails_when_max_requests_has_no_jitter() -> None:
    _fails(r"max_requests \(1000\) needs max_requests_jitter >= 1, got 0", 60, max_requests=1000)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(TimeoutRuleError) as caught:
        derive_timeouts(0, keepalive_margin=0, max_requests=5)
    assert len(caught.value.problems) == 3
    assert all(line.startswith("- ") for line in str(caught.value).splitlines())


def test_fails_when_worker_class_is_sync() -> None:
    (problem,) = check_worker("sync", 4)
    assert re.search(
        r"worker_class must be one that honours keep-alive "
        r"\(asgi, gevent, gthread, uvicorn_worker.UvicornWorker\), "
        r"got 'sync': the sync worker ignores keepalive",
        problem,
    )


def test_fails_when_gthread_has_one_thread() -> None:
    (problem,) = check_worker("gthread", 1)
    assert problem.startswith("threads must be at least 2 for the gthread worker, got 1")


def test_keepalive_worker_classes_pass() -> None:
    assert check_worker("gthread", 4) == []
    assert check_worker("gevent", 1) == []


def test_every_rule_is_documented_in_the_coupled_values_table(root) -> None:  # type: ignore[no-untyped-def]
    page = (root / "docs" / "deploying.md").read_text()
    for rule in timeouts.RULES:
        assert f"`{rule}`" in page, rule


def test_keepalive_follows_the_larger_of_configured_and_live_idle_timeouts() -> None:
    assert timeouts.live_keepalive(60, [], 5) == 65
    assert timeouts.live_keepalive(60, [300], 5) == 305
    assert timeouts.live_keepalive(60, [30, 120], 5) == 125
    assert timeouts.live_keepalive(300, [60], 5) == 305  # a lower live value never lowers it here
