"""The alarm thresholds a user may set, and their checks. Pure Python (no CDK import), so that
``props.py`` and ``monitoring.py`` both import it and neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from gunicorn_alb.checks import show


@dataclass(frozen=True)
class AlarmThresholds:
    """Alarm thresholds; each alarm looks at 5-minute periods unless said otherwise.

    :param elb_502: load-balancer 502s per 5 minutes (the keep-alive race). Default: 1
    :param elb_504: load-balancer 504s per 5 minutes. Default: 5
    :param target_5xx: app 5XX responses per 5 minutes. Default: 10
    :param target_connection_errors: failed connections to targets per 5 minutes. Default: 1
    :param unhealthy_hosts: unhealthy targets (maximum over 1 minute, 3 minutes running).
        Default: 1
    :param response_time_p99: p99 target response time in seconds (3 periods running).
        Default: 2.0
    """

    elb_502: float = 1
    elb_504: float = 5
    target_5xx: float = 10
    target_connection_errors: float = 1
    unhealthy_hosts: float = 1
    response_time_p99: float = 2.0


def check_alarm_thresholds(
    thresholds: object, is_token: Callable[[object], bool] = lambda _: False
) -> list[str]:
    """Each threshold is a number above 0: every alarm fires at or above its threshold, so 0
    (or less) keeps it in alarm whenever its metric reports, and a negative count never means
    anything. Tokens are CloudFormation's to check."""
    if thresholds is None:
        return []
    if not isinstance(thresholds, AlarmThresholds):
        return [
            "alarm_thresholds must be a gunicorn_alb.AlarmThresholds such as "
            f"AlarmThresholds(elb_502=3), got {thresholds!r}"
        ]
    problems = []
    for field in fields(thresholds):
        value = getattr(thresholds, field.name)
        if is_token(value):
            continue
        name = f"alarm_thresholds.{field.name}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name} must be a number greater than 0, got {value!r}")
        elif not value > 0:
            problems.append(
                f"{name} must be greater than 0 (the alarm fires at or above it, so "
                f"{show(value)} keeps it in alarm), got {show(value)}"
            )
    return problems
