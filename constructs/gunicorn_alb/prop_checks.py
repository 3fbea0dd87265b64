"""The checks of each prop's kind, and of props that another prop leaves unused.

A value of the wrong kind would otherwise fail deep inside a builder, or worse, work wrongly:
the string ``"false"`` is true, and the string ``"numpy"`` is five one-letter packages. A prop
that another prop makes unused (``log_encryption_key`` with ``instance_logs=False``) is refused
too: the user meant something the construct would silently not do. :func:`check_kinds` returns
the props with each value of the wrong kind replaced by its default, so the other checks run on
values they can read and every problem is still reported together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from gunicorn_alb.props import DEFAULT_SSL_POLICY, ServiceProps

BOOLEANS = ("internal", "deletion_protection", "access_logs", "monitoring", "instance_logs")
DURATIONS = (
    "idle_timeout",
    "keepalive_margin",
    "access_logs_retention",
    "deregistration_delay",
    "graceful_timeout",
    "stop_timeout",
    "health_check_interval",
    "health_check_timeout",
    "health_check_grace_period",
    "termination_hook_timeout",
    "log_retention",
)
STRINGS = {"worker_class": "gthread", "desync_mitigation_mode": "defensive"}
"""String props a later check looks up (a list there would not even hash), with their
defaults."""
SEQUENCES: dict[str, tuple[str, str, tuple[()] | None]] = {
    "ingress_cidrs": ("IPv4 CIDRs", "['203.0.113.0/24']", None),
    "instance_types": (
        "instance types",
        "[ec2.InstanceType('t3.small'), ec2.InstanceType('t3a.small')]",
        None,
    ),
    "build_from_source": ("distribution names", "['psycopg2']", ()),
}
"""Sequence props: what they hold, an example, and the default a wrong kind is replaced by."""
ACCESS_LOGS_PREFIX_DEFAULT = "alb"
APP_PORT_MIN = 1024
"""Gunicorn runs as the unprivileged app user, and the unit grants no capability
(``CapabilityBoundingSet=``, ``AmbientCapabilities=`` empty), so it cannot bind a port below
1024 (``CAP_NET_BIND_SERVICE``): the boot would fail."""


def check_kinds(props: ServiceProps) -> tuple[ServiceProps, list[str]]:
    """Problems with the kind of each value; the props with every wrongly-kinded value replaced
    by its default (for the other checks)."""
    problems: list[str] = []
    replaced: dict[str, object] = {}
    for name in BOOLEANS:
        value = getattr(props, name)
        if not isinstance(value, bool) and not cdk.Token.is_unresolved(value):
            problems.append(f"{name} must be True or False, got {value!r}")
    for name, default in STRINGS.items():
        value = getattr(props, name)
        if not isinstance(value, str):
            problems.append(f"{name} must be a string, got {value!r}")
            replaced[name] = default
    for name in DURATIONS:
        value = getattr(props, name)
        if value is not None and not isinstance(value, cdk.Duration):
            problems.append(
                f"{name} must be a cdk.Duration such as Duration.seconds(60), got {value!r}"
            )
            replaced[name] = None
    for name, (what, example, empty) in SEQUENCES.items():
        value = getattr(props, name)
        if value is None:
            continue
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            shown = f"the string {value!r}" if isinstance(value, str) else repr(value)
            problems.append(
                f"{name} must be a list of {what} such as {example}, got {shown}"
                + (" (a string is read as one-letter items)" if isinstance(value, str) else "")
            )
            replaced[name] = empty
    cidrs = props.ingress_cidrs if "ingress_cidrs" not in replaced else None
    problems += [
        f"ingress_cidrs must hold strings such as '203.0.113.0/24', got {cidr!r}"
        for cidr in cidrs or ()
        if not isinstance(cidr, str)
    ]
    if cidrs and any(not isinstance(cidr, str) for cidr in cidrs):
        replaced["ingress_cidrs"] = None
    problems += _check_objects(props, replaced)
    return dataclasses.replace(props, **replaced), problems  # type: ignore[arg-type]


def _check_objects(props: ServiceProps, replaced: dict[str, object]) -> list[str]:
    """The props that take a CDK object: a string there (an ARN, a type name) is the usual
    mistake."""
    problems = []
    if props.instance_type is not None and not isinstance(props.instance_type, ec2.InstanceType):
        problems.append(
            "instance_type must be an ec2.InstanceType such as ec2.InstanceType('t3.small'), "
            f"got {props.instance_type!r}"
        )
        replaced["instance_type"] = None
    protocol = props.listener_protocol
    if protocol is not None and not isinstance(protocol, elbv2.ApplicationProtocol):
        problems.append(
            "listener_protocol must be elbv2.ApplicationProtocol.HTTPS or "
            f"elbv2.ApplicationProtocol.HTTP, got {protocol!r}"
        )
        replaced["listener_protocol"] = None
    if not isinstance(props.ssl_policy, elbv2.SslPolicy):
        problems.append(
            "ssl_policy must be an elbv2.SslPolicy such as elbv2.SslPolicy.TLS13_RES, "
            f"got {props.ssl_policy!r}"
        )
    subnets = props.vpc_subnets
    if subnets is not None and not isinstance(subnets, ec2.SubnetSelection):
        problems.append(
            "vpc_subnets must be an ec2.SubnetSelection such as "
            f"ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS), got {subnets!r}"
        )
        replaced["vpc_subnets"] = None
    for name, example in (
        ("vpc", "ec2.Vpc.from_lookup(self, 'Vpc', vpc_id='vpc-...')"),
        ("certificate", "acm.Certificate.from_certificate_arn(self, 'Certificate', arn)"),
        ("access_logs_bucket", "s3.Bucket.from_bucket_name(self, 'Logs', name)"),
        ("alarm_topic", "sns.Topic.from_topic_arn(self, 'Alarms', arn)"),
        ("log_encryption_key", "kms.Key.from_key_arn(self, 'LogKey', arn)"),
        ("domain_zone", "route53.HostedZone.from_lookup(self, 'Zone', domain_name=...)"),
        ("machine_image", "ec2.MachineImage.generic_linux({'eu-west-1': 'ami-...'})"),
    ):
        value = getattr(props, name)
        if isinstance(value, str | int | float | Mapping | Sequence):
            problems.append(f"{name} must be a CDK object such as {example}, got {value!r}")
            replaced[name] = None
    return problems


def check_app_port(app_port: int) -> list[str]:
    """Gunicorn cannot bind a privileged port (see :data:`APP_PORT_MIN`)."""
    if isinstance(app_port, int) and not isinstance(app_port, bool) and 1 <= app_port < 1024:
        return [
            f"app_port must be between {APP_PORT_MIN} and 65535, got {app_port}: Gunicorn runs "
            "as an unprivileged user without CAP_NET_BIND_SERVICE and cannot bind a port "
            f"below {APP_PORT_MIN} (the ALB's listener_port is the public one)"
        ]
    return []


def check_unused(props: ServiceProps, *, https: bool) -> list[str]:
    """Props that another prop leaves unused: each would be silently ignored."""
    problems = []
    if not props.instance_logs:
        problems += [
            f"{name} applies to the instances' log group, but instance_logs=False: drop "
            f"{name} or turn instance_logs on, got {name}={getattr(props, name)!r}"
            for name in ("log_encryption_key", "log_retention")
            if getattr(props, name) is not None
        ]
    if not props.monitoring and props.alarm_thresholds is not None:
        problems.append(
            "alarm_thresholds applies to the alarms, but monitoring=False: drop "
            "alarm_thresholds or turn monitoring on"
        )
    if not props.access_logs:
        given = [
            name
            for name, unused in (
                ("access_logs_bucket", props.access_logs_bucket is not None),
                ("access_logs_retention", props.access_logs_retention is not None),
                ("access_logs_prefix", props.access_logs_prefix != ACCESS_LOGS_PREFIX_DEFAULT),
            )
            if unused
        ]
        problems += [
            f"{name} applies to the ALB's access logs, but access_logs=False: drop {name} or "
            "turn access_logs on"
            for name in given
        ]
    elif props.access_logs_bucket is not None and props.access_logs_retention is not None:
        problems.append(
            "access_logs_retention applies to the log bucket the construct makes, not to "
            "access_logs_bucket: set the expiry on your bucket and drop access_logs_retention"
        )
    if not https and props.ssl_policy is not DEFAULT_SSL_POLICY:
        problems.append(
            "ssl_policy applies to an HTTPS listener, but the listener is HTTP (no certificate "
            f"or domain_name): drop ssl_policy or give a certificate, got {props.ssl_policy}"
        )
    if (
        props.instance_types is not None
        and props.on_demand_base_capacity is not None
        and props.spot_percentage == 0
    ):
        problems.append(
            "on_demand_base_capacity applies with spot_percentage above 0 (it is the On-Demand "
            "part before Spot starts); with spot_percentage=0 every instance is On-Demand, got "
            f"on_demand_base_capacity={props.on_demand_base_capacity!r}: drop it or set "
            "spot_percentage"
        )
    if props.worker_class == "gevent" and props.threads is not None:
        problems.append(
            f"threads applies to the gthread worker; the gevent worker ignores it, got "
            f"threads={props.threads!r} with worker_class='gevent': drop threads"
        )
    if props.max_requests == 0 and props.max_requests_jitter not in (0, False):
        problems.append(
            "max_requests_jitter applies only with max_requests above 0 (Gunicorn ignores it "
            f"otherwise), got max_requests_jitter={props.max_requests_jitter!r} with "
            "max_requests=0"
        )
    return problems
