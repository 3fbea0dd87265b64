"""``ApplicationLoadBalancedGunicornService``: an ALB in front of an Auto Scaling group of EC2
instances running a WSGI app under Gunicorn, with Gunicorn's keep-alive derived from the ALB idle
timeout. The numbers come from :mod:`gunicorn_alb.timeouts`; this module only wires resources.

The constructor is the plan: check every prop (:mod:`gunicorn_alb.validation`), then build the
parts in order: the load balancer and its access logs (:mod:`gunicorn_alb.load_balancer`,
:mod:`gunicorn_alb.access_logs`), the instances (:mod:`gunicorn_alb.instances`) with their log
group (:mod:`gunicorn_alb.log_group`), the target group and listeners, target tracking
(:mod:`gunicorn_alb.scaling`), the files the instances receive, and the monitoring
(:mod:`gunicorn_alb.monitoring`). A new prop is a keyword here (and in the docstring and
:class:`gunicorn_alb.props.ServiceProps`), a check in ``validation.py`` and a use in one builder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from gunicorn_alb import rendering
from gunicorn_alb.access_logs import add_access_logs
from gunicorn_alb.alarms import AlarmThresholds
from gunicorn_alb.capacity import REQUESTS_PER_TARGET_PER_MINUTE_DEFAULT
from gunicorn_alb.instances import (
    SIGNAL_TIMEOUT,
    add_instance_files,
    new_auto_scaling_group,
    new_launch_template,
)
from gunicorn_alb.load_balancer import (
    DEFAULT_SSL_POLICY,
    add_listeners,
    new_load_balancer,
    new_target_group,
)
from gunicorn_alb.log_group import add_instance_logs
from gunicorn_alb.monitoring import ServiceMonitoring, add_monitoring, alarm_topic_for
from gunicorn_alb.props import ServiceProps
from gunicorn_alb.scaling import add_target_tracking
from gunicorn_alb.secret import Secret
from gunicorn_alb.timeouts import (
    HEALTHY_THRESHOLD_DEFAULT,
    UNHEALTHY_THRESHOLD_DEFAULT,
    CoupledTimeouts,
)
from gunicorn_alb.validation import check_props

__all__ = ["DEFAULT_SSL_POLICY", "SIGNAL_TIMEOUT", "ApplicationLoadBalancedGunicornService"]


@jsii.implements(ec2.IConnectable)
class ApplicationLoadBalancedGunicornService(Construct):
    """An Application Load Balancer in front of EC2 instances that run a WSGI app under Gunicorn.

    One number drives both sides of the ALB-to-target connection: Gunicorn's ``keepalive`` is the
    ALB idle timeout plus ``keepalive_margin``, so Gunicorn never closes a connection the ALB may
    still reuse (the cause of sporadic 502s). The deregistration delay, Gunicorn's graceful
    timeout and systemd's stop timeout are derived from the same number.

    :param scope: the parent construct.
    :param id: the construct id.
    :param vpc: the VPC; the ALB goes into its public subnets (private ones when ``internal``),
        the instances into its private subnets with egress.
    :param idle_timeout: the ALB idle timeout, 1-4000 whole seconds; may be a CloudFormation
        parameter (``Duration.seconds(param.value_as_number)``), in which case the instances
        derive Gunicorn's values at boot. Default: - 60 seconds
    :param keepalive_margin: added to the idle timeout for Gunicorn's ``keepalive``; at least 1 s.
        Default: - 5 seconds
    :param internal: an internal ALB (private subnets). Default: - False (internet-facing)
    :param certificate: a certificate for an HTTPS listener; port 80 then redirects to it.
        Default: - none (or one made from ``domain_name``); without one, HTTP only, with a warning
    :param domain_name: a name to serve on: a DNS-validated certificate is made for it in
        ``domain_zone``, and an alias record points it at the ALB. Default: - none
    :param domain_zone: the hosted zone of ``domain_name``. Default: - none
    :param listener_protocol: ``HTTPS`` (needs a certificate) or ``HTTP``.
        Default: - HTTPS with a certificate, HTTP without
    :param listener_port: the serving listener's port. Default: - 443 for HTTPS, 80 for HTTP
    :param ssl_policy: the HTTPS listener's TLS policy.
        Default: - ``SslPolicy.TLS13_12_RES_PQ`` (TLS 1.3/1.2, restricted ciphers, post-quantum)
    :param ingress_cidrs: IPv4 CIDRs allowed to reach the listeners.
        Default: - 0.0.0.0/0 when internet-facing, the VPC CIDR when internal
    :param desync_mitigation_mode: ``defensive`` or ``strictest``. Default: - ``defensive``
    :param deletion_protection: ALB deletion protection; with it on, a failed first create
        cannot delete the load balancer while rolling back (``ROLLBACK_FAILED``): turn it on
        once the first deploy has succeeded. Default: - False
    :param access_logs: write ALB access logs to S3 (a new bucket unless ``access_logs_bucket``).
        Default: - True
    :param access_logs_bucket: a bucket for the access logs; must use SSE-S3, not KMS.
        Default: - a new bucket (SSE-S3, public access blocked, TLS-only, logs expire)
    :param access_logs_prefix: the key prefix of the access logs. Default: - ``alb``
    :param access_logs_retention: how long a new log bucket keeps logs. Default: - 90 days
    :param app_port: the port Gunicorn binds on the instances, 1024-65535 (Gunicorn runs as an
        unprivileged user, without the capability to bind a lower port). Default: - 8000
    :param health_check_path: the path the target group and the boot script probe; the app must
        answer it with 200. Default: - ``/healthz``
    :param app_directory: a local directory with the WSGI or ASGI app, uploaded as an S3 asset.
        Default: - the sample app shipped with this package
    :param wsgi_app: the app as Gunicorn takes it, relative to ``app_directory``: ``module``,
        ``module:name`` or a factory call ``module:create_app()`` with literal arguments
        (double-quoted strings, numbers, ``True``/``False``/``None``). The module's source is
        read at synth (not imported): a name it does not define fails, naming what it defines
        that looks like an app; what a static read cannot tell (``from x import *``) is the
        warning ``gunicorn-alb:app-target-unchecked``. Default: - ``app:application``
    :param app_requirements: a requirements file inside ``app_directory`` to ``pip install``.
        Default: - ``requirements.txt`` when the directory has one, else nothing
    :param environment: the app's environment variables; values may be tokens. Names must be
        valid variable names and not ``GUNICORN_*`` nor one the unit or systemd sets
        (:mod:`gunicorn_alb.app_config`); values one line, at most 4096 characters each and
        about 10 KB together (the user data keeps 10240 bytes for them, a token counted as 128
        bytes). They reach the app through a root-only file that the systemd unit loads.
        Default: - none
    :param secrets: environment variables whose values the instances read at boot from SSM
        Parameter Store or Secrets Manager (:class:`gunicorn_alb.Secret`) into a root-only file
        the unit loads; the instance role may read exactly these. Default: - none
    :param pre_start_command: the release step: one line of bash run on each instance as the
        app user, with the app's environment and secrets, after the app is installed and before
        Gunicorn starts (e.g. ``python manage.py collectstatic --noinput``); a failure fails the
        boot. Not for database migrations (every instance runs it). Default: - none
    :param worker_class: a Gunicorn worker class that honours keep-alive: ``gthread``,
        ``gevent``, ``asgi`` or ``uvicorn_worker.UvicornWorker`` (``sync`` is refused; uvicorn's
        worker writes its own access-log lines, without the trace id: synth warns).
        Default: - ``gthread``
    :param threads: threads per worker (gthread: at least 2; the ASGI workers: 1).
        Default: - 4 for gthread, 1 for the others
    :param workers_per_cpu: Gunicorn workers per CPU of the instance, plus one. Default: - 2
    :param instance_type: the instance type; its architecture (x86_64, or arm64 for Graviton
        types such as t4g) picks the image and the wheels. Default: - t3.small (unless
        ``instance_types``)
    :param instance_types: several instance types of one architecture (1-40, the first preferred
        for On-Demand), through a mixed-instances policy; exclusive with ``instance_type``.
        Default: - none: one type, ``instance_type``
    :param spot_percentage: with ``instance_types``, the percentage (0-100) of the capacity above
        ``on_demand_base_capacity`` that runs on Spot; above 0 turns capacity rebalancing on.
        Default: - 0 (all On-Demand)
    :param on_demand_base_capacity: with ``instance_types``, how many instances are On-Demand
        before ``spot_percentage`` applies. Default: - ``min_capacity``
    :param machine_image: the AMI, an Amazon Linux 2023 for the instance types' architecture
        (checked where the image says which). Default: - the latest Amazon Linux 2023 for the
        instance types' architecture (SSM public parameter, read at every deploy)
    :param vpc_subnets: the instances' subnets; isolated ones need VPC endpoints
        (``gunicorn_alb.network.PrivateEndpoints``).
        Default: - the VPC's private subnets with egress
    :param build_from_source: packages that have no wheel for the instances' platform, left out
        of the wheelhouse: the boot builds them from PyPI sources (with gcc and the Python
        headers from dnf), so the instances then need a route to PyPI. Default: - none: the boot
        installs every package from the wheelhouse built at synth, without PyPI
    :param min_capacity: Default: - 2
    :param max_capacity: at least 2, so a rolling update keeps an instance in service.
        Default: - 4
    :param desired_capacity: Default: - not set: the ASG starts at ``min_capacity`` and a deploy
        does not reset a scaled group
    :param requests_per_target_per_minute: target-tracking scaling on the ALB's requests per
        target per minute (``ALBRequestCountPerTarget``), above 0; None turns it off.
        Default: - 1000 (the reasoning is in :mod:`gunicorn_alb.capacity`)
    :param cpu_target_utilization_percent: a second target-tracking policy on the group's average
        CPU utilization, above 0 and at most 100. Default: - none
    :param deregistration_delay: override; see :mod:`gunicorn_alb.timeouts`.
        Default: - min(idle timeout, 3600 s); 3600 s when the idle timeout is a parameter
    :param graceful_timeout: Gunicorn ``graceful_timeout`` override; must exceed the idle
        timeout (a stopping worker keeps its idle connections until the ALB closes them).
        Default: - the keep-alive (idle timeout + margin)
    :param stop_timeout: systemd ``TimeoutStopSec`` override. Default: - graceful timeout + 10 s
    :param health_check_interval: Default: - 15 seconds
    :param health_check_timeout: Default: - 5 seconds
    :param healthy_threshold: Default: - 2
    :param unhealthy_threshold: Default: - 3
    :param health_check_grace_period: the ASG's grace before ELB health checks count; at least
        the boot budget (rule grace-covers-boot). Default: - the boot budget, 840 seconds
    :param max_requests: Gunicorn ``max_requests``; non-zero draws a warning (worker restarts
        drop the ALB's pooled connections). Default: - 0
    :param max_requests_jitter: Gunicorn ``max_requests_jitter``; at least 1 with max_requests.
        Default: - 0
    :param monitoring: CloudWatch alarms and a dashboard. Default: - True
    :param alarm_thresholds: each above 0 (:class:`gunicorn_alb.AlarmThresholds`); needs
        ``monitoring``. Default: - ``AlarmThresholds()``
    :param alarm_topic: the SNS topic the alarms and the ASG's scaling events notify.
        Default: - a new topic (TLS-only, encrypted with a customer-managed KMS key CloudWatch
        may use) when ``monitoring`` is on; subscribe to ``alarm_topic``
    :param termination_hook_timeout: add a termination lifecycle hook and drain each instance
        through it: once the ALB has deregistered a terminating instance, a watcher on the
        instance (every 5 s, through the instance metadata) stops Gunicorn gracefully, runs
        ``termination_command`` and completes the lifecycle action with ``CONTINUE`` (the role may,
        for this group only; the metadata gets the instance's tags, which it reads the group's
        name from). This is the longest the hook holds an instance if the drain cannot complete:
        at least 6 s (the watcher) + the stop timeout (with a deploy-time idle timeout, the
        deregistration delay + 10 s) + 60 s (the completion), + 120 s with
        ``termination_command`` (rule hook-covers-drain); 30-7200 s. Default: - no hook
    :param termination_command: the app's clean-up on termination: one line of bash run on a
        terminating instance as the app user, with the app's environment and secrets, after
        Gunicorn has stopped, for at most 120 s; a failure is logged and the instance still
        terminates. Needs ``termination_hook_timeout``. Default: - none
    :param instance_logs: ship Gunicorn's access and error logs and the boot log to a CloudWatch
        Logs log group, one stream per instance, with the CloudWatch agent. Default: - True
    :param log_retention: needs ``instance_logs``; how long the log group keeps logs, in whole
        days that CloudWatch Logs allows (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400,
        545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653). Default: - 365 days (Control
        Tower CT.CLOUDWATCH.PR.2's minimum)
    :param log_encryption_key: needs ``instance_logs``; the KMS key that encrypts the log group
        (its policy must let CloudWatch Logs use it). Default: - a new customer-managed key with
        rotation
    """

    timeouts: CoupledTimeouts
    """The derived numbers (idle-dependent ones are None when idle_timeout is a parameter)."""
    gunicorn_keepalive: int | None
    """Gunicorn's keep-alive in seconds: idle timeout + margin. None when the idle timeout
    is a deploy-time parameter (the instances derive it at boot)."""
    load_balancer: elbv2.ApplicationLoadBalancer
    """The Application Load Balancer."""
    access_logs_bucket: s3.IBucket | None
    """Where the ALB writes access logs (None when ``access_logs`` is off)."""
    launch_template: ec2.LaunchTemplate
    """The instances' launch template (its user data holds the deploy-time instance files and
    fetches the others, the ``InstanceFiles`` asset: :mod:`gunicorn_alb.delivery`)."""
    alarm_topic: sns.ITopic | None
    """The SNS topic the alarms and the ASG's scaling events notify, if any."""
    auto_scaling_group: autoscaling.AutoScalingGroup
    """The instances' Auto Scaling group."""
    scaling_policies: dict[str, autoscaling.TargetTrackingScalingPolicy]
    """The target-tracking policies by name (``request_count``, ``cpu``)."""
    instance_log_group: logs.LogGroup | None
    """The CloudWatch Logs group of Gunicorn's logs and the boot log (None when
    ``instance_logs`` is off)."""
    instance_log_key: kms.IKey | None
    """The KMS key that encrypts ``instance_log_group``."""
    target_group: elbv2.ApplicationTargetGroup
    """The target group of the instances."""
    certificate: acm.ICertificate | None
    """The HTTPS listener's certificate, if any."""
    listener: elbv2.ApplicationListener
    """The listener that forwards to the target group."""
    redirect_listener: elbv2.ApplicationListener | None
    """Port 80, redirecting to HTTPS (only with a certificate)."""
    instance_config: rendering.InstanceConfig
    """What the instances receive, for review (``gunicorn_alb.rendering``)."""
    wheelhouse_path: Path
    """The local folder of wheels shipped as the ``Wheelhouse`` asset (its ``wheelhouse.json``
    lists them)."""
    monitoring: ServiceMonitoring | None
    """Alarms (``monitoring.alarms``) and the dashboard, unless ``monitoring`` is off."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        idle_timeout: cdk.Duration | None = None,
        keepalive_margin: cdk.Duration | None = None,
        internal: bool = False,
        certificate: acm.ICertificate | None = None,
        domain_name: str | None = None,
        domain_zone: route53.IHostedZone | None = None,
        listener_protocol: elbv2.ApplicationProtocol | None = None,
        listener_port: int | None = None,
        ssl_policy: elbv2.SslPolicy = DEFAULT_SSL_POLICY,
        ingress_cidrs: Sequence[str] | None = None,
        desync_mitigation_mode: str = "defensive",
        deletion_protection: bool = False,
        access_logs: bool = True,
        access_logs_bucket: s3.IBucket | None = None,
        access_logs_prefix: str = "alb",
        access_logs_retention: cdk.Duration | None = None,
        app_port: int = 8000,
        health_check_path: str = "/healthz",
        app_directory: str | None = None,
        wsgi_app: str = "app:application",
        app_requirements: str | None = None,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, Secret] | None = None,
        pre_start_command: str | None = None,
        worker_class: str = "gthread",
        threads: int | None = None,
        workers_per_cpu: int = 2,
        instance_type: ec2.InstanceType | None = None,
        instance_types: Sequence[ec2.InstanceType] | None = None,
        spot_percentage: int = 0,
        on_demand_base_capacity: int | None = None,
        machine_image: ec2.IMachineImage | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        build_from_source: Sequence[str] = (),
        min_capacity: int = 2,
        max_capacity: int = 4,
        desired_capacity: int | None = None,
        requests_per_target_per_minute: float | None = REQUESTS_PER_TARGET_PER_MINUTE_DEFAULT,
        cpu_target_utilization_percent: float | None = None,
        deregistration_delay: cdk.Duration | None = None,
        graceful_timeout: cdk.Duration | None = None,
        stop_timeout: cdk.Duration | None = None,
        health_check_interval: cdk.Duration | None = None,
        health_check_timeout: cdk.Duration | None = None,
        healthy_threshold: int = HEALTHY_THRESHOLD_DEFAULT,
        unhealthy_threshold: int = UNHEALTHY_THRESHOLD_DEFAULT,
        health_check_grace_period: cdk.Duration | None = None,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
        monitoring: bool = True,
        alarm_thresholds: AlarmThresholds | None = None,
        alarm_topic: sns.ITopic | None = None,
        termination_hook_timeout: cdk.Duration | None = None,
        termination_command: str | None = None,
        instance_logs: bool = True,
        log_retention: cdk.Duration | None = None,
        log_encryption_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, id)
        props = ServiceProps.of(locals())  # the keyword arguments above, as one value
        # 1. Every check, before any resource exists: one ValueError lists all problems.
        checked = check_props(props, self)
        for advisory_id, message in checked.advisories:
            cdk.Annotations.of(self).add_warning_v2(f"gunicorn-alb:{advisory_id}", message)
        self.timeouts = checked.timeouts
        self.gunicorn_keepalive = checked.timeouts.keepalive
        self.wheelhouse_path = checked.wheelhouse
        # 2. The load balancer and its access logs.
        self.load_balancer = new_load_balancer(self, props, checked)
        self.access_logs_bucket = add_access_logs(self, self.load_balancer, props)
        # 3. The instances: role, security group, app asset, launch template; the log group
        #    they ship their logs to; the alarm topic the group notifies; the group itself (one
        #    instance type, or several through a mixed-instances policy).
        launch = new_launch_template(self, props, checked)
        self.launch_template = launch.launch_template
        self.instance_log_group, self.instance_log_key = add_instance_logs(
            self, props, launch.launch_template
        )
        self.alarm_topic = alarm_topic_for(self, props)
        self.auto_scaling_group = new_auto_scaling_group(
            self, props, checked, self.launch_template, self.alarm_topic
        )
        # 4. The target group, the listeners (certificate, redirect, ingress) and DNS.
        self.target_group = new_target_group(self, props, checked, self.auto_scaling_group)
        listeners = add_listeners(self, props, checked, self.load_balancer, self.target_group)
        self.certificate = listeners.certificate
        self.listener = listeners.listener
        self.redirect_listener = listeners.redirect_listener
        # 5. Target tracking, after the listeners: request-count scaling needs the target group
        #    behind a listener.
        self.scaling_policies = add_target_tracking(self.auto_scaling_group, props)
        # 6. The files each instance receives: the deploy-time ones in the launch template's
        #    user data, the others in the InstanceFiles asset it fetches.
        self.instance_config = add_instance_files(
            self,
            props,
            checked,
            launch,
            self.auto_scaling_group,
            self.target_group,
            self.instance_log_group,
        )
        # 7. Alarms and the dashboard (with the group's capacity).
        self.monitoring = add_monitoring(
            self,
            props,
            self.load_balancer,
            self.target_group,
            self.alarm_topic,
            self.auto_scaling_group,
        )

    @property
    def connections(self) -> ec2.Connections:
        """The instances' security group: allow them to reach a database with this."""
        return self.auto_scaling_group.connections
