"""The construct's properties as one value, so each part reads the props it needs by name.

``ApplicationLoadBalancedGunicornService.__init__`` keeps its explicit keyword-only signature
(the public API, documented in its docstring) and gathers the arguments here; a test keeps the
fields and the signature's keywords identical, in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from gunicorn_alb.alarms import AlarmThresholds
from gunicorn_alb.secret import Secret

DEFAULT_SSL_POLICY = elbv2.SslPolicy.TLS13_12_RES_PQ
"""TLS 1.3 and 1.2 with restricted (forward-secret, AEAD) ciphers and post-quantum key exchange."""


@dataclass(frozen=True)
class ServiceProps:
    """The keyword arguments of ``ApplicationLoadBalancedGunicornService`` as given (see its
    docstring for each one and its default)."""

    vpc: ec2.IVpc
    idle_timeout: cdk.Duration | None
    keepalive_margin: cdk.Duration | None
    internal: bool
    certificate: acm.ICertificate | None
    domain_name: str | None
    domain_zone: route53.IHostedZone | None
    listener_protocol: elbv2.ApplicationProtocol | None
    listener_port: int | None
    ssl_policy: elbv2.SslPolicy
    ingress_cidrs: Sequence[str] | None
    desync_mitigation_mode: str
    deletion_protection: bool
    access_logs: bool
    access_logs_bucket: s3.IBucket | None
    access_logs_prefix: str
    access_logs_retention: cdk.Duration | None
    app_port: int
    health_check_path: str
    app_directory: str | None
    wsgi_app: str
    app_requirements: str | None
    environment: Mapping[str, str] | None
    secrets: Mapping[str, Secret] | None
    pre_start_command: str | None
    worker_class: str
    threads: int | None
    workers_per_cpu: int
    instance_type: ec2.InstanceType | None
    instance_types: Sequence[ec2.InstanceType] | None
    spot_percentage: int
    on_demand_base_capacity: int | None
    machine_image: ec2.IMachineImage | None
    vpc_subnets: ec2.SubnetSelection | None
    build_from_source: Sequence[str]
    min_capacity: int
    max_capacity: int
    desired_capacity: int | None
    requests_per_target_per_minute: float | None
    cpu_target_utilization_percent: float | None
    deregistration_delay: cdk.Duration | None
    graceful_timeout: cdk.Duration | None
    stop_timeout: cdk.Duration | None
    health_check_interval: cdk.Duration | None
    health_check_timeout: cdk.Duration | None
    healthy_threshold: int
    unhealthy_threshold: int
    health_check_grace_period: cdk.Duration | None
    max_requests: int
    max_requests_jitter: int
    monitoring: bool
    alarm_thresholds: AlarmThresholds | None
    alarm_topic: sns.ITopic | None
    termination_hook_timeout: cdk.Duration | None
    termination_command: str | None
    instance_logs: bool
    log_retention: cdk.Duration | None
    log_encryption_key: kms.IKey | None

    @classmethod
    def of(cls, arguments: Mapping[str, Any]) -> ServiceProps:
        """The props among ``arguments`` (the constructor's ``locals()``)."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})
