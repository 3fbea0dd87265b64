"""Alarm thresholds: each a number above 0 (the alarms fire at or above it); tokens are left to
CloudFormation."""

from __future__ import annotations

import pytest

from gunicorn_alb.alarms import AlarmThresholds, check_alarm_thresholds


def test_the_defaults_and_none_pass() -> None:
    assert check_alarm_thresholds(AlarmThresholds()) == []
    assert check_alarm_thresholds(None) == []


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        (AlarmThresholds(elb_504=0), "alarm_thresholds.elb_504 must be greater than 0"),
        (AlarmThresholds(unhealthy_hosts=-1), "alarm_thresholds.unhealthy_hosts must be greater"),
        (
            AlarmThresholds(target_connection_errors=True),
            "must be a number greater than 0, got True",
        ),  # type: ignore[arg-type]
        ({"elb_502": 1}, "alarm_thresholds must be a gunicorn_alb.AlarmThresholds"),
    ],
)
def test_fails_when_a_threshold_cannot_work(thresholds: object, message: str) -> None:
    (problem,) = check_alarm_thresholds(thresholds)
    assert message in problem


def test_a_token_threshold_is_left_to_cloudformation() -> None:
    token = -1.8881545897087626e289  # how a CDK number token looks in Python
    thresholds = AlarmThresholds(elb_502=token)
    assert check_alarm_thresholds(thresholds, lambda value: value == token) == []
    assert check_alarm_thresholds(thresholds) != []
