"""The limits AWS documents for every value the construct passes to AWS, in one table.

Pure Python, no CDK import. Validation asks :func:`check` for each prop before any resource
exists, so a value AWS would reject at deploy time (after other resources were created, and then
rolled back) fails at synth with the usual message: the Python argument, the value, what is
allowed. Each limit names where AWS documents it. Values that are CloudFormation tokens are
skipped by the caller (``Token.is_unresolved`` first); CloudFormation and the service check them.

Limits that are ours rather than AWS's (keep-alive above the idle timeout, thresholds of the
timeout model) live in :mod:`gunicorn_alb.timeouts`; this table repeats the AWS ranges the model
uses so that one place lists every AWS limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gunicorn_alb.checks import show


@dataclass(frozen=True)
class Range:
    """A whole number within ``[low, high]`` (``high`` None: no documented maximum)."""

    low: int
    high: int | None
    unit: str
    source: str


@dataclass(frozen=True)
class Number:
    """A number, whole or not, greater than ``above`` and at most ``high`` (None: no maximum)."""

    above: float
    high: float | None
    unit: str
    source: str


@dataclass(frozen=True)
class Text:
    """A string: length, allowed characters (a regular expression for the whole value), and
    substrings or prefixes AWS refuses."""

    min_length: int
    max_length: int
    pattern: str
    allowed: str
    source: str
    forbidden: tuple[str, ...] = ()
    forbidden_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """One of a documented set of values."""

    values: tuple[str, ...]
    source: str


ELBV2_ATTRIBUTES = "Elastic Load Balancing API reference, LoadBalancerAttribute"
TARGET_GROUPS = "Elastic Load Balancing API reference, CreateTargetGroup"
LISTENERS = "Elastic Load Balancing API reference, CreateListener"
LIFECYCLE_HOOKS = "EC2 Auto Scaling API reference, PutLifecycleHook"
AUTO_SCALING = "EC2 Auto Scaling API reference, CreateAutoScalingGroup"
S3_LIFECYCLE = "Amazon S3 API reference, LifecycleExpiration (Days: a positive integer)"
ACCESS_LOGS = (
    "Elastic Load Balancing user guide, access logs for your Application Load Balancer: "
    "bucket[/prefix]/AWSLogs/..., the prefix must not include AWSLogs; the attribute value "
    "is at most 1024 characters (LoadBalancerAttribute); S3 user guide, object key naming "
    "(safe characters)"
)
LOG_RETENTION = "CloudWatch Logs API reference, PutRetentionPolicy (retentionInDays)"
TARGET_TRACKING = "EC2 Auto Scaling API reference, TargetTrackingConfiguration (TargetValue)"
INSTANCES_DISTRIBUTION = "EC2 Auto Scaling API reference, InstancesDistribution"
MIXED_INSTANCES = (
    "EC2 Auto Scaling API reference, LaunchTemplate (Overrides): at most 40 instance types "
    "per Auto Scaling group"
)
ACM_DOMAIN = "AWS Certificate Manager API reference, RequestCertificate (DomainName: 1-253)"

LIMITS: dict[str, Range | Number | Text | Choice] = {
    "idle_timeout": Range(1, 4000, "seconds", ELBV2_ATTRIBUTES + " (idle_timeout.timeout_seconds)"),
    "deregistration_delay": Range(
        0,
        3600,
        "seconds",
        "Elastic Load Balancing API reference, TargetGroupAttribute "
        "(deregistration_delay.timeout_seconds)",
    ),
    "health_check_interval": Range(
        5, 300, "seconds", TARGET_GROUPS + " (HealthCheckIntervalSeconds)"
    ),
    "health_check_timeout": Range(
        2, 120, "seconds", TARGET_GROUPS + " (HealthCheckTimeoutSeconds)"
    ),
    "healthy_threshold": Range(2, 10, "", TARGET_GROUPS + " (HealthyThresholdCount)"),
    "unhealthy_threshold": Range(2, 10, "", TARGET_GROUPS + " (UnhealthyThresholdCount)"),
    "health_check_path": Text(
        1,
        1024,
        r"/[A-Za-z0-9._~/-]*",
        "start with / and use only letters, digits and ._~/-",
        TARGET_GROUPS + " (HealthCheckPath: 1-1024 characters)",
    ),
    "health_check_grace_period": Range(
        0, None, "seconds", AUTO_SCALING + " (HealthCheckGracePeriod)"
    ),
    "listener_port": Range(1, 65535, "", LISTENERS + " (Port)"),
    "app_port": Range(1, 65535, "", TARGET_GROUPS + " (Port)"),
    "min_capacity": Range(0, None, "", AUTO_SCALING + " (MinSize)"),
    "max_capacity": Range(0, None, "", AUTO_SCALING + " (MaxSize)"),
    "desired_capacity": Range(0, None, "", AUTO_SCALING + " (DesiredCapacity)"),
    "termination_hook_timeout": Range(30, 7200, "seconds", LIFECYCLE_HOOKS + " (HeartbeatTimeout)"),
    "access_logs_prefix": Text(
        0,
        1024,
        r"[A-Za-z0-9!_.*'()/-]*",
        "use only letters, digits and !_.*'()/-",
        ACCESS_LOGS,
        forbidden=("AWSLogs",),
        forbidden_prefixes=("/",),
    ),
    "access_logs_retention": Range(1, None, "days", S3_LIFECYCLE),
    "requests_per_target_per_minute": Number(
        0, None, "", TARGET_TRACKING + " with ALBRequestCountPerTarget: requests per minute"
    ),
    "cpu_target_utilization_percent": Number(
        0, 100, "percent", TARGET_TRACKING + " with ASGAverageCPUUtilization: a percentage"
    ),
    "instance_types": Range(1, 40, "instance types", MIXED_INSTANCES),
    "spot_percentage": Range(
        0,
        100,
        "percent",
        INSTANCES_DISTRIBUTION + " (OnDemandPercentageAboveBaseCapacity = 100 - spot_percentage)",
    ),
    "on_demand_base_capacity": Range(
        0, None, "instances", INSTANCES_DISTRIBUTION + " (OnDemandBaseCapacity)"
    ),
    "desync_mitigation_mode": Choice(
        ("monitor", "defensive", "strictest"),
        ELBV2_ATTRIBUTES + " (routing.http.desync_mitigation_mode)",
    ),
    "domain_name": Text(
        1,
        253,
        r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{1,63}",
        "be a DNS name of labels of at most 63 letters, digits and hyphens",
        ACM_DOMAIN,
    ),
    "log_retention": Choice(
        tuple(
            str(days)
            for days in (
                1,
                3,
                5,
                7,
                14,
                30,
                60,
                90,
                120,
                150,
                180,
                365,
                400,
                545,
                731,
                1096,
                1827,
                2192,
                2557,
                2922,
                3288,
                3653,
            )
        ),
        LOG_RETENTION,
    ),
}
"""Every AWS limit the construct checks, by the Python argument it applies to."""


def check(
    name: str, value: object, *, limit: Range | Number | Text | Choice | None = None
) -> list[str]:
    """The problems of ``value`` for the argument ``name`` against its documented limit."""
    rule = limit or LIMITS[name]
    if isinstance(rule, Range):
        return _check_range(name, value, rule)
    if isinstance(rule, Number):
        return _check_number(name, value, rule)
    if isinstance(rule, Text):
        return _check_text(name, value, rule)
    return _check_choice(name, value, rule)


def _check_range(name: str, value: object, rule: Range) -> list[str]:
    unit = f" {rule.unit}" if rule.unit else ""
    allowed = (
        f"between {rule.low} and {rule.high}{unit}"
        if rule.high is not None
        else f"at least {rule.low}{unit}"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{name} must be a whole number {allowed}, got {value!r}"]
    if not float(value).is_integer():
        return [f"{name} must be a whole number {allowed}, got {show(value)}"]
    if value < rule.low or (rule.high is not None and value > rule.high):
        return [f"{name} must be {allowed}, got {show(value)}"]
    return []


def _check_number(name: str, value: object, rule: Number) -> list[str]:
    unit = f" {rule.unit}" if rule.unit else ""
    allowed = f"greater than {show(rule.above)}" + (
        f" and at most {show(rule.high)}{unit}" if rule.high is not None else unit
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{name} must be a number {allowed}, got {value!r}"]
    if not value > rule.above or (rule.high is not None and value > rule.high):
        return [f"{name} must be {allowed}, got {show(value)}"]
    return []


def _check_text(name: str, value: object, rule: Text) -> list[str]:
    if not isinstance(value, str):
        return [f"{name} must be a string, got {value!r}"]
    problems = []
    if not rule.min_length <= len(value) <= rule.max_length:
        problems.append(
            f"{name} must be {rule.min_length}-{rule.max_length} characters long, "
            f"got {len(value)} characters"
        )
    if not re.fullmatch(rule.pattern, value):
        problems.append(f"{name} must {rule.allowed}, got {value!r}")
    for prefix in rule.forbidden_prefixes:
        if value.startswith(prefix):
            problems.append(f"{name} must not start with {prefix!r}, got {value!r}")
    for part in rule.forbidden:
        if part in value:
            problems.append(f"{name} must not contain {part!r}, got {value!r}")
    return problems


def _check_choice(name: str, value: object, rule: Choice) -> list[str]:
    if str(value) not in rule.values:
        return [f"{name} must be one of {', '.join(rule.values)}, got {value!r}"]
    return []
