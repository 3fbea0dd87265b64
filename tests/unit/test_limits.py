"""The AWS limits table: each documented range or rule, accepted at its bounds and refused just
outside, with the usual message (argument, value, what is allowed)."""

from __future__ import annotations

import pytest

from gunicorn_alb import limits
from gunicorn_alb.limits import Choice, Number, Range, Text, check


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("idle_timeout", 1, 4000),
        ("deregistration_delay", 0, 3600),
        ("health_check_interval", 5, 300),
        ("health_check_timeout", 2, 120),
        ("healthy_threshold", 2, 10),
        ("unhealthy_threshold", 2, 10),
        ("listener_port", 1, 65535),
        ("app_port", 1, 65535),
        ("termination_hook_timeout", 30, 7200),
    ],
)
def test_documented_ranges(name: str, low: int, high: int) -> None:
    """Each range as the AWS API reference named in the table states it (for example
    PutLifecycleHook: "HeartbeatTimeout ... from 30 to 7200 seconds"; CreateTargetGroup:
    "HealthCheckIntervalSeconds ... 5-300", "HealthCheckTimeoutSeconds ... 2-120",
    thresholds 2-10; LoadBalancerAttribute: idle timeout 1-4000; TargetGroupAttribute:
    deregistration delay 0-3600)."""
    rule = limits.LIMITS[name]
    assert isinstance(rule, Range) and (rule.low, rule.high) == (low, high)
    assert rule.source
    assert check(name, low) == check(name, high) == []
    unit = " seconds" if rule.unit == "seconds" else ""
    for bad in (low - 1, high + 1):
        assert check(name, bad) == [f"{name} must be between {low} and {high}{unit}, got {bad}"]


def test_a_fraction_is_refused() -> None:
    assert check("termination_hook_timeout", 45.5) == [
        "termination_hook_timeout must be a whole number between 30 and 7200 seconds, got 45.5"
    ]


def test_a_non_number_is_refused() -> None:
    assert check("app_port", "80") == [
        "app_port must be a whole number between 1 and 65535, got '80'"
    ]
    assert check("app_port", True) == [
        "app_port must be a whole number between 1 and 65535, got True"
    ]


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("/alb", "access_logs_prefix must not start with '/', got '/alb'"),
        ("alb/AWSLogs", "access_logs_prefix must not contain 'AWSLogs', got 'alb/AWSLogs'"),
        ("alb logs", "access_logs_prefix must use only letters, digits and !_.*'()/-, got"),
        ("a" * 1025, "access_logs_prefix must be 0-1024 characters long, got 1025 characters"),
    ],
)
def test_fails_when_the_access_log_prefix_breaks_a_documented_rule(
    prefix: str, problem: str
) -> None:
    """ALB access logs are written to ``bucket[/prefix]/AWSLogs/<account>/...`` and the prefix
    must not include ``AWSLogs`` (Elastic Load Balancing user guide, "Access logs for your
    Application Load Balancer" and "Enable access logs": bucket requirements); attribute values
    are at most 1024 characters (LoadBalancerAttribute); S3's object-key guidelines name the
    safe characters."""
    problems = check("access_logs_prefix", prefix)
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize("prefix", ["", "alb", "logs/web-1", "a" * 1024])
def test_valid_access_log_prefixes(prefix: str) -> None:
    assert check("access_logs_prefix", prefix) == []


def test_fails_when_the_health_check_path_is_longer_than_1024() -> None:
    """CreateTargetGroup: HealthCheckPath is 1-1024 characters and starts with /."""
    assert check("health_check_path", "/" + "a" * 1023) == []
    assert check("health_check_path", "/" + "a" * 1024) == [
        "health_check_path must be 1-1024 characters long, got 1025 characters"
    ]
    assert check("health_check_path", "healthz") == [
        "health_check_path must start with / and use only letters, digits and ._~/-, got 'healthz'"
    ]


def test_desync_modes_are_the_documented_ones() -> None:
    rule = limits.LIMITS["desync_mitigation_mode"]
    assert isinstance(rule, Choice)
    assert rule.values == ("monitor", "defensive", "strictest")
    assert check("desync_mitigation_mode", "paranoid") == [
        "desync_mitigation_mode must be one of monitor, defensive, strictest, got 'paranoid'"
    ]


def test_log_retention_days_are_the_documented_values() -> None:
    """PutRetentionPolicy accepts only listed day counts (1, 3, 5, 7, 14, ..., 3653)."""
    assert check("log_retention", 30) == []
    assert check("log_retention", 31)[0].startswith("log_retention must be one of 1, 3, 5, 7, 14")


@pytest.mark.parametrize(
    ("name", "ok", "bad"),
    [("domain_name", "app.example.com", "-bad-.example.com"), ("domain_name", "*.example.com", "")],
)
def test_domain_names(name: str, ok: str, bad: str) -> None:
    assert check(name, ok) == []
    assert check(name, bad) != []


def test_every_limit_names_its_source() -> None:
    for name, rule in limits.LIMITS.items():
        assert isinstance(rule, (Range, Number, Text, Choice))
        assert "API reference" in rule.source or "user guide" in rule.source, name


@pytest.mark.parametrize(
    ("name", "ok", "bad", "problem"),
    [
        ("requests_per_target_per_minute", 0.5, 0,
         "requests_per_target_per_minute must be greater than 0, got 0"),
        ("cpu_target_utilization_percent", 100, 100.5,
         "cpu_target_utilization_percent must be greater than 0 and at most 100 percent, "
         "got 100.5"),
        ("spot_percentage", 100, 101,
         "spot_percentage must be between 0 and 100 percent, got 101"),
        ("instance_types", 40, 41,
         "instance_types must be between 1 and 40 instance types, got 41"),
        ("on_demand_base_capacity", 0, -1,
         "on_demand_base_capacity must be at least 0 instances, got -1"),
        ("log_retention", 3653, 3650, "log_retention must be one of 1, 3, 5, 7, 14"),
    ],
)  # fmt: skip
def test_scaling_and_log_limits(name: str, ok: object, bad: object, problem: str) -> None:
    """TargetTrackingConfiguration.TargetValue (a Double above 0; CPU is a percentage),
    InstancesDistribution (OnDemandPercentageAboveBaseCapacity 0-100, OnDemandBaseCapacity at
    least 0), at most 40 instance types per group, PutRetentionPolicy's day counts."""
    assert check(name, ok) == []
    (found,) = check(name, bad)
    assert found.startswith(problem), found
