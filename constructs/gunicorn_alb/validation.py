"""Every check of the construct's props, run before any resource exists.

``check_props`` gathers all problems and raises one ``ValueError`` listing them; otherwise it
returns what the checks resolved (the coupled timeouts, the listener protocol and port, the app
directory) for the builders. The timeout rules themselves live in :mod:`gunicorn_alb.timeouts`.
A new prop's check is a ``_check_*`` function here, called from ``check_props``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from constructs import Construct

from gunicorn_alb import (
    app_validation,
    architecture,
    capacity,
    instance_logs,
    limits,
    log_group,
    prop_checks,
    termination,
    timeouts,
)
from gunicorn_alb.alarms import check_alarm_thresholds
from gunicorn_alb.props import ServiceProps

DESYNC_MODES = {
    "defensive": elbv2.DesyncMitigationMode.DEFENSIVE,
    "strictest": elbv2.DesyncMitigationMode.STRICTEST,
}


@dataclass(frozen=True)
class CheckedProps:
    """What the checks resolved, for the builders."""

    idle_timeout: cdk.Duration
    """The ALB idle timeout (a token when it is a deploy-time parameter)."""
    idle_timeout_setting: str
    """The idle timeout as the instances receive it: whole seconds, or the parameter's token."""
    timeouts: timeouts.CoupledTimeouts
    """The derived numbers (idle-dependent ones are None when the idle timeout is a token)."""
    protocol: elbv2.ApplicationProtocol
    """The serving listener's protocol."""
    port: int
    """The serving listener's port."""
    app_path: Path
    """The app directory uploaded as the asset."""
    app_requirements: str
    """The requirements file inside it to install, or ``""``."""
    instance_type: ec2.InstanceType
    """The instance type (the default when none was given; the first of ``instance_types``)."""
    machine_image: ec2.IMachineImage
    """The image (the latest Amazon Linux 2023 for the architecture when none was given)."""
    machine: str
    """``x86_64`` or ``aarch64``: the instances' architecture, for the image and the wheels."""
    wheelhouse: Path
    """The local folder of wheels the instances install from (:mod:`gunicorn_alb.wheelhouse`)."""
    threads: int
    """``threads``, or the worker class's default."""
    advisories: list[tuple[str, str]]
    """Warnings a user may accept, as ``(id, message)`` pairs."""


def check_props(props: ServiceProps, scope: Construct) -> CheckedProps:
    """Check every prop; raise one ValueError listing all problems, else return what resolved.
    Last, once the props are sound, resolve the wheelhouse (pip, or the cache): a requirement
    without a wheel for the instances is a problem too."""
    props, problems = prop_checks.check_kinds(props)
    idle = (
        cdk.Duration.seconds(timeouts.IDLE_TIMEOUT_DEFAULT)
        if props.idle_timeout is None
        else props.idle_timeout
    )
    idle_seconds = idle.to_seconds(integral=False)
    idle_is_token = cdk.Token.is_unresolved(idle_seconds)
    coupled = _check_timeouts(problems, props, None if idle_is_token else idle_seconds)
    threads = (
        timeouts.default_threads(props.worker_class) if props.threads is None else props.threads
    )
    problems += timeouts.check_worker(props.worker_class, threads)
    problems += app_validation.check_app_config(props)
    tls = props.certificate is not None or props.domain_name is not None
    protocol = props.listener_protocol or (
        elbv2.ApplicationProtocol.HTTPS if tls else elbv2.ApplicationProtocol.HTTP
    )
    port = props.listener_port
    if port is None:
        port = 443 if protocol == elbv2.ApplicationProtocol.HTTPS else 80
    problems += _check_listener(
        protocol=protocol,
        certificate=props.certificate,
        domain_name=props.domain_name,
        domain_zone=props.domain_zone,
        port=port,
    )
    problems += _check_ports(listener_port=port, app_port=props.app_port)
    problems += prop_checks.check_app_port(props.app_port)
    problems += prop_checks.check_unused(props, https=protocol == elbv2.ApplicationProtocol.HTTPS)
    problems += check_alarm_thresholds(props.alarm_thresholds, cdk.Token.is_unresolved)
    problems += _check_cidrs(props.ingress_cidrs)
    problems += _check_load_balancer(props)
    problems += _check_capacity(props.min_capacity, props.max_capacity, props.desired_capacity)
    problems += _check_instances(props)
    problems += _check_aws_limits(props)
    if coupled is not None:
        problems += _check_termination(props, coupled)
    problems += _check_scaling(props)
    app_path, requirements = app_validation.check_app(
        problems, props.app_directory, props.wsgi_app, props.app_requirements
    )
    target_advisories = app_validation.check_target_defined(problems, app_path, props.wsgi_app)
    types = instance_types_of(props)
    instance_type = types[0]
    problems += architecture.check_architecture(scope, types, props.machine_image)
    machine = architecture.machine_of(instance_type)
    problems += app_validation.check_source_builds(props)
    _raise_if_any(problems)
    assert coupled is not None and app_path is not None
    found, problems = app_validation.resolve_wheelhouse(
        props, machine, app_path / requirements if requirements else None
    )
    _raise_if_any(problems)
    assert found is not None
    return CheckedProps(
        idle_timeout=idle,
        idle_timeout_setting=(
            cdk.Token.as_string(idle_seconds) if idle_is_token else str(int(idle_seconds))
        ),
        timeouts=coupled,
        protocol=protocol,
        port=port,
        app_path=app_path,
        app_requirements=requirements,
        instance_type=instance_type,
        machine_image=props.machine_image or architecture.default_machine_image(machine),
        machine=machine,
        wheelhouse=found,
        threads=threads,
        advisories=coupled.advisories
        + capacity.spot_advisories(
            props.spot_percentage if props.instance_types else 0, coupled.deregistration_delay
        )
        + instance_logs.access_log_advisories(props.worker_class, props.instance_logs)
        + target_advisories,
    )


def _raise_if_any(problems: list[str]) -> None:
    if problems:
        raise ValueError(
            "ApplicationLoadBalancedGunicornService: invalid properties:\n"
            + "\n".join(f"- {problem}" for problem in problems)
        )


def _seconds(value: cdk.Duration | None) -> float | None:
    return None if value is None else value.to_seconds(integral=False)


def _token_error(name: str) -> str:
    return (
        f"{name} must be known at synth time, got a CloudFormation token; only idle_timeout may "
        "be a deploy-time parameter"
    )


def _check_timeouts(
    problems: list[str], props: ServiceProps, idle_seconds: float | None
) -> timeouts.CoupledTimeouts | None:
    """Derive the coupled timeouts (None when a rule fails); append any problem found."""
    optional_durations = {
        "keepalive_margin": props.keepalive_margin,
        "deregistration_delay": props.deregistration_delay,
        "graceful_timeout": props.graceful_timeout,
        "stop_timeout": props.stop_timeout,
        "health_check_interval": props.health_check_interval,
        "health_check_timeout": props.health_check_timeout,
        "health_check_grace_period": props.health_check_grace_period,
    }
    seconds: dict[str, float | None] = {}
    for name, duration in optional_durations.items():
        value = _seconds(duration)
        if value is not None and cdk.Token.is_unresolved(value):
            problems.append(_token_error(name))
            value = None
        seconds[name] = value

    def given(name: str, default: float) -> float:
        value = seconds[name]
        return default if value is None else value

    try:
        return timeouts.derive_timeouts(
            idle_seconds,
            keepalive_margin=given("keepalive_margin", timeouts.KEEPALIVE_MARGIN_DEFAULT),
            deregistration_delay=seconds["deregistration_delay"],
            graceful_timeout=seconds["graceful_timeout"],
            stop_timeout=seconds["stop_timeout"],
            health_check_interval=given(
                "health_check_interval", timeouts.HEALTH_CHECK_INTERVAL_DEFAULT
            ),
            health_check_timeout=given(
                "health_check_timeout", timeouts.HEALTH_CHECK_TIMEOUT_DEFAULT
            ),
            healthy_threshold=props.healthy_threshold,
            unhealthy_threshold=props.unhealthy_threshold,
            grace_period=seconds["health_check_grace_period"],
            max_requests=props.max_requests,
            max_requests_jitter=props.max_requests_jitter,
        )
    except timeouts.TimeoutRuleError as error:
        problems += error.problems
        return None


def _check_load_balancer(props: ServiceProps) -> list[str]:
    problems = []
    if props.desync_mitigation_mode not in DESYNC_MODES:
        problems.append(
            "desync_mitigation_mode must be one of "
            f"{', '.join(sorted(DESYNC_MODES))}, got {props.desync_mitigation_mode!r}"
        )
    bucket = props.access_logs_bucket
    if bucket is not None and bucket.encryption_key is not None:
        problems.append(
            "access_logs_bucket must use SSE-S3 encryption: ALB access logs cannot be "
            "written to a bucket encrypted with a KMS key, got a bucket with "
            "encryption_key set"
        )
    return problems


def _check_scaling(props: ServiceProps) -> list[str]:
    """Target tracking and the instance mix (:mod:`gunicorn_alb.capacity`); values that are
    tokens are CloudFormation's to check."""
    sizes = (props.min_capacity, props.max_capacity)
    known = not any(cdk.Token.is_unresolved(size) for size in sizes)
    types = None if props.instance_types is None else list(props.instance_types)
    names = [t.to_string() if isinstance(t, ec2.InstanceType) else repr(t) for t in types or []]
    problems = [
        "instance_types must hold ec2.InstanceType values such as "
        f"ec2.InstanceType('t3.small'), got {t!r}"
        for t in types or []
        if not isinstance(t, ec2.InstanceType)
    ]
    problems += capacity.check_scaling(
        props.requests_per_target_per_minute,
        props.cpu_target_utilization_percent,
        min_capacity=props.min_capacity if known else None,
        max_capacity=props.max_capacity if known else None,
        is_token=cdk.Token.is_unresolved,
    )
    problems += capacity.check_instance_mix(
        None if types is None else names,
        instance_type_given=props.instance_type is not None,
        spot_percentage=props.spot_percentage,
        on_demand_base_capacity=props.on_demand_base_capacity,
        max_capacity=props.max_capacity if known else None,
        is_token=cdk.Token.is_unresolved,
    )
    return problems


def instance_types_of(props: ServiceProps) -> list[ec2.InstanceType]:
    """The instance types the group launches: ``instance_types`` (those that are instance types),
    else ``instance_type``, else the default."""
    given = [t for t in props.instance_types or () if isinstance(t, ec2.InstanceType)]
    return given or [props.instance_type or architecture.default_instance_type()]


def _check_instances(props: ServiceProps) -> list[str]:
    problems = []
    workers_per_cpu = props.workers_per_cpu
    if (
        isinstance(workers_per_cpu, bool)
        or not isinstance(workers_per_cpu, int)
        or workers_per_cpu < 1
    ):
        problems.append(
            f"workers_per_cpu must be a whole number of at least 1, got {workers_per_cpu!r}"
        )
    return problems


def _check_aws_limits(props: ServiceProps) -> list[str]:
    """The values passed to AWS that no other check covers, against the documented limits in
    :mod:`gunicorn_alb.limits` (the timeout model checks the health-check and drain ranges, the
    capacities and ports are checked above). Tokens are left to CloudFormation."""
    hook, retention = props.termination_hook_timeout, props.access_logs_retention
    values: dict[str, object] = {
        "termination_hook_timeout": None if hook is None else hook.to_seconds(integral=False),
        "access_logs_prefix": props.access_logs_prefix,
        "access_logs_retention": (None if retention is None else retention.to_days(integral=False)),
        "log_retention": log_retention_days(props),
        "health_check_path": props.health_check_path,
        "domain_name": props.domain_name,
    }
    problems: list[str] = []
    required = ("access_logs_prefix", "health_check_path")  # str props: None cannot work
    for name, value in values.items():
        if (value is not None or name in required) and not cdk.Token.is_unresolved(value):
            problems += limits.check(name, value)
    return problems


def _check_termination(props: ServiceProps, coupled: timeouts.CoupledTimeouts) -> list[str]:
    """The termination hook covers the drain (rule hook-covers-drain); a termination_command
    needs the hook. A token hook timeout is left to CloudFormation."""
    hook = props.termination_hook_timeout
    seconds = None if hook is None else hook.to_seconds(integral=False)
    if seconds is not None and (
        cdk.Token.is_unresolved(seconds) or limits.check("termination_hook_timeout", seconds)
    ):
        return []  # a token is left to CloudFormation; a value out of AWS's range is reported
    return termination.check_termination(
        seconds, coupled, command=props.termination_command is not None
    )


def log_retention_days(props: ServiceProps) -> float:
    """The instance log group's retention in days (the default: a year), a token if given as one."""
    retention = props.log_retention or log_group.DEFAULT_RETENTION
    return retention.to_days(integral=False)


def _check_ports(**ports: int) -> list[str]:
    return [
        f"{name} must be a port between 1 and 65535, got {port!r}"
        for name, port in ports.items()
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ]


def _check_listener(
    *,
    protocol: elbv2.ApplicationProtocol,
    certificate: acm.ICertificate | None,
    domain_name: str | None,
    domain_zone: route53.IHostedZone | None,
    port: int,
) -> list[str]:
    problems = []
    tls = certificate is not None or domain_name is not None
    if (domain_name is None) != (domain_zone is None):
        problems.append(
            "domain_name and domain_zone go together (a DNS-validated certificate needs the "
            f"zone), got domain_name={domain_name!r} and "
            f"domain_zone={'set' if domain_zone is not None else None}"
        )
    if protocol == elbv2.ApplicationProtocol.HTTP and tls:
        problems.append(
            "listener_protocol HTTP cannot use a certificate: leave listener_protocol unset "
            "(HTTPS) or drop the certificate/domain_name, got listener_protocol=HTTP with a "
            "certificate"
        )
    if protocol == elbv2.ApplicationProtocol.HTTPS and not tls:
        problems.append(
            "listener_protocol HTTPS needs a certificate (or domain_name and domain_zone)"
        )
    if protocol == elbv2.ApplicationProtocol.HTTPS and port == 80:
        problems.append("listener_port must not be 80 for HTTPS: port 80 redirects to it")
    return problems


def _check_cidrs(cidrs: Sequence[str] | None) -> list[str]:
    problems = []
    for cidr in cidrs or []:
        if cdk.Token.is_unresolved(cidr):
            continue
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            problems.append(
                f"ingress_cidrs must hold IPv4 CIDRs such as 203.0.113.0/24, got {cidr!r}"
            )
    if cidrs is not None and not list(cidrs):
        problems.append("ingress_cidrs must not be empty: nobody could reach the ALB")
    return problems


def _check_capacity(minimum: int, maximum: int, desired: int | None) -> list[str]:
    values = [v for v in (minimum, maximum, desired) if v is not None]
    if any(cdk.Token.is_unresolved(v) for v in values):
        return []  # CloudFormation checks the sizes of a parameterised group.
    problems = [
        f"{name} must be a whole number of at least {low}, got {value!r}"
        for name, value, low in (
            ("min_capacity", minimum, 0),
            ("max_capacity", maximum, 2),
            ("desired_capacity", desired, 0),
        )
        if value is not None
        and (isinstance(value, bool) or not isinstance(value, int) or value < low)
    ]
    if problems:
        return problems
    if desired is not None and not minimum <= desired <= maximum:
        problems.append(
            "capacities must satisfy min_capacity <= desired_capacity <= max_capacity, got "
            f"min_capacity={minimum}, desired_capacity={desired}, max_capacity={maximum}"
        )
    elif minimum > maximum:
        problems.append(
            "capacities must satisfy min_capacity <= max_capacity, got "
            f"min_capacity={minimum}, max_capacity={maximum}"
        )
    return problems
