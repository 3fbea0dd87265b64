"""``ApplicationLoadBalancedGunicornService``: an ALB in front of an Auto Scaling group of EC2
instances running a WSGI app under Gunicorn, with Gunicorn's keep-alive derived from the ALB idle
timeout. The numbers come from :mod:`gunicorn_alb.timeouts`; this module only wires resources.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from gunicorn_alb import rendering, timeouts
from gunicorn_alb.access_logs import enable_access_logs, new_log_bucket
from gunicorn_alb.monitoring import AlarmThresholds, ServiceMonitoring, new_alarm_topic

SIGNAL_TIMEOUT = cdk.Duration.minutes(15)
"""How long CloudFormation waits for each new instance's success signal. The boot script gives up
on the health path after ``rendering.HEALTH_WAIT_SECONDS`` (10 min) and signals failure first."""

_WSGI_TARGET = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_REQUIREMENTS = re.compile(r"^[A-Za-z0-9._/-]+$")
_DESYNC_MODES = {
    "defensive": elbv2.DesyncMitigationMode.DEFENSIVE,
    "strictest": elbv2.DesyncMitigationMode.STRICTEST,
}
DEFAULT_SSL_POLICY = elbv2.SslPolicy.TLS13_12_RES_PQ
"""TLS 1.3 and 1.2 with restricted (forward-secret, AEAD) ciphers and post-quantum key exchange."""


def _seconds(value: cdk.Duration | None) -> float | None:
    return None if value is None else value.to_seconds(integral=False)


def _token_error(name: str) -> str:
    return (
        f"{name} must be known at synth time, got a CloudFormation token; only idle_timeout may "
        "be a deploy-time parameter"
    )


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
    :param deletion_protection: ALB deletion protection. Default: - False
    :param access_logs: write ALB access logs to S3 (a new bucket unless ``access_logs_bucket``).
        Default: - True
    :param access_logs_bucket: a bucket for the access logs; must use SSE-S3, not KMS.
        Default: - a new bucket (SSE-S3, public access blocked, TLS-only, logs expire)
    :param access_logs_prefix: the key prefix of the access logs. Default: - ``alb``
    :param access_logs_retention: how long a new log bucket keeps logs. Default: - 90 days
    :param app_port: the port Gunicorn binds on the instances. Default: - 8000
    :param health_check_path: the path the target group and the boot script probe; the app must
        answer it with 200. Default: - ``/healthz``
    :param app_directory: a local directory with the WSGI app, uploaded as an S3 asset.
        Default: - the sample app shipped with this package
    :param wsgi_app: the WSGI target as ``module:callable``, relative to ``app_directory``.
        Default: - ``app:application``
    :param app_requirements: a requirements file inside ``app_directory`` to ``pip install``.
        Default: - ``requirements.txt`` when the directory has one, else nothing
    :param worker_class: a Gunicorn worker class that honours keep-alive (``gthread`` or
        ``gevent``; ``sync`` is refused). Default: - ``gthread``
    :param threads: threads per worker. Default: - 4
    :param workers_per_cpu: Gunicorn workers per CPU of the instance, plus one. Default: - 2
    :param instance_type: the instance type. Default: - t3.small
    :param machine_image: the AMI. Default: - latest Amazon Linux 2023 (SSM public parameter)
    :param min_capacity: Default: - 2
    :param max_capacity: at least 2, so a rolling update keeps an instance in service.
        Default: - 4
    :param desired_capacity: Default: - not set: the ASG starts at ``min_capacity`` and a deploy
        does not reset a scaled group
    :param deregistration_delay: override; see :mod:`gunicorn_alb.timeouts`.
        Default: - min(idle timeout, 3600 s); 3600 s when the idle timeout is a parameter
    :param graceful_timeout: Gunicorn ``graceful_timeout`` override.
        Default: - min(idle timeout, deregistration delay)
    :param stop_timeout: systemd ``TimeoutStopSec`` override. Default: - graceful timeout + 10 s
    :param health_check_interval: Default: - 15 seconds
    :param health_check_timeout: Default: - 5 seconds
    :param healthy_threshold: Default: - 2
    :param unhealthy_threshold: Default: - 3
    :param health_check_grace_period: the ASG's grace before ELB health checks count.
        Default: - 300 seconds
    :param max_requests: Gunicorn ``max_requests``; non-zero draws a warning (worker restarts
        drop the ALB's pooled connections). Default: - 0
    :param max_requests_jitter: Gunicorn ``max_requests_jitter``; at least 1 with max_requests.
        Default: - 0
    :param monitoring: CloudWatch alarms and a dashboard. Default: - True
    :param alarm_thresholds: Default: - ``AlarmThresholds()``
    :param alarm_topic: the SNS topic the alarms and the ASG's scaling events notify.
        Default: - a new topic (TLS-only, encrypted with a customer-managed KMS key CloudWatch
        may use) when ``monitoring`` is on; subscribe to ``alarm_topic``
    :param termination_hook_timeout: add a termination lifecycle hook that holds a terminating
        instance this long (after the ALB has drained it) for your own clean-up; complete the
        lifecycle action to end it early. Default: - no hook
    """

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
        worker_class: str = "gthread",
        threads: int = 4,
        workers_per_cpu: int = 2,
        instance_type: ec2.InstanceType | None = None,
        machine_image: ec2.IMachineImage | None = None,
        min_capacity: int = 2,
        max_capacity: int = 4,
        desired_capacity: int | None = None,
        deregistration_delay: cdk.Duration | None = None,
        graceful_timeout: cdk.Duration | None = None,
        stop_timeout: cdk.Duration | None = None,
        health_check_interval: cdk.Duration | None = None,
        health_check_timeout: cdk.Duration | None = None,
        healthy_threshold: int = timeouts.HEALTHY_THRESHOLD_DEFAULT,
        unhealthy_threshold: int = timeouts.UNHEALTHY_THRESHOLD_DEFAULT,
        health_check_grace_period: cdk.Duration | None = None,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
        monitoring: bool = True,
        alarm_thresholds: AlarmThresholds | None = None,
        alarm_topic: sns.ITopic | None = None,
        termination_hook_timeout: cdk.Duration | None = None,
    ) -> None:
        super().__init__(scope, id)
        idle = (
            cdk.Duration.seconds(timeouts.IDLE_TIMEOUT_DEFAULT)
            if idle_timeout is None
            else idle_timeout
        )
        idle_seconds = idle.to_seconds(integral=False)
        idle_is_token = cdk.Token.is_unresolved(idle_seconds)

        # Every check runs before any resource exists; all problems are reported together.
        problems: list[str] = []
        optional_durations = {
            "keepalive_margin": keepalive_margin,
            "deregistration_delay": deregistration_delay,
            "graceful_timeout": graceful_timeout,
            "stop_timeout": stop_timeout,
            "health_check_interval": health_check_interval,
            "health_check_timeout": health_check_timeout,
            "health_check_grace_period": health_check_grace_period,
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

        coupled: timeouts.CoupledTimeouts | None = None
        try:
            coupled = timeouts.derive_timeouts(
                None if idle_is_token else idle_seconds,
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
                healthy_threshold=healthy_threshold,
                unhealthy_threshold=unhealthy_threshold,
                grace_period=given("health_check_grace_period", timeouts.GRACE_PERIOD_DEFAULT),
                max_requests=max_requests,
                max_requests_jitter=max_requests_jitter,
            )
        except timeouts.TimeoutRuleError as error:
            problems += error.problems
        problems += timeouts.check_worker(worker_class, threads)
        tls = certificate is not None or domain_name is not None
        protocol = listener_protocol or (
            elbv2.ApplicationProtocol.HTTPS if tls else elbv2.ApplicationProtocol.HTTP
        )
        port = listener_port or (443 if protocol == elbv2.ApplicationProtocol.HTTPS else 80)
        problems += _check_listener(
            protocol=protocol,
            certificate=certificate,
            domain_name=domain_name,
            domain_zone=domain_zone,
            port=port,
        )
        problems += _check_ports(listener_port=port, app_port=app_port)
        problems += _check_cidrs(ingress_cidrs)
        if desync_mitigation_mode not in _DESYNC_MODES:
            problems.append(
                "desync_mitigation_mode must be one of "
                f"{', '.join(sorted(_DESYNC_MODES))}, got {desync_mitigation_mode!r}"
            )
        if access_logs_bucket is not None and access_logs_bucket.encryption_key is not None:
            problems.append(
                "access_logs_bucket must use SSE-S3 encryption: ALB access logs cannot be "
                "written to a bucket encrypted with a KMS key, got a bucket with "
                "encryption_key set"
            )
        problems += _check_capacity(min_capacity, max_capacity, desired_capacity)
        if not isinstance(workers_per_cpu, int) or workers_per_cpu < 1:
            problems.append(
                f"workers_per_cpu must be a whole number of at least 1, got {workers_per_cpu!r}"
            )
        if not _HEALTH_PATH.match(health_check_path):
            problems.append(
                f"health_check_path must start with / and use only letters, digits and ._~/-, "
                f"got {health_check_path!r}"
            )
        app_path, requirements = _check_app(problems, app_directory, wsgi_app, app_requirements)
        if problems:
            raise ValueError(
                "ApplicationLoadBalancedGunicornService: invalid properties:\n"
                + "\n".join(f"- {problem}" for problem in problems)
            )
        assert coupled is not None and app_path is not None

        for advisory_id, message in coupled.advisories:
            cdk.Annotations.of(self).add_warning_v2(f"gunicorn-alb:{advisory_id}", message)

        self.timeouts = coupled
        """The derived numbers (idle-dependent ones are None when idle_timeout is a parameter)."""
        self.gunicorn_keepalive: int | None = coupled.keepalive
        """Gunicorn's keep-alive in seconds: idle timeout + margin. None when the idle timeout
        is a deploy-time parameter (the instances derive it at boot)."""

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=not internal,
            idle_timeout=idle,
            drop_invalid_header_fields=True,
            desync_mitigation_mode=_DESYNC_MODES[desync_mitigation_mode],
            deletion_protection=deletion_protection,
        )
        self.access_logs_bucket: s3.IBucket | None = None
        """Where the ALB writes access logs (None when ``access_logs`` is off)."""
        if access_logs:
            if access_logs_bucket is None:
                access_logs_bucket = new_log_bucket(
                    self, "AccessLogsBucket", access_logs_retention or cdk.Duration.days(90)
                )
                _acknowledge(
                    access_logs_bucket,
                    "AwsSolutions-S1",
                    "this bucket receives the ALB's access logs; logging its own accesses would "
                    "need yet another bucket, and it is private, TLS-only and SSE-S3 encrypted",
                )
            self.access_logs_bucket = access_logs_bucket
            enable_access_logs(self.load_balancer, self.access_logs_bucket, access_logs_prefix)

        role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
            ],
        )
        instance_security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            description="Gunicorn instances: the app port from the ALB only; no SSH",
            allow_all_outbound=False,
        )
        # Boot and operation need HTTPS only: dnf repositories, PyPI, the S3 app asset, SSM,
        # CloudFormation (cfn-signal). DNS, NTP and instance metadata are link-local services
        # that security groups do not filter.
        instance_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: packages, S3 asset, SSM, cfn-signal"
        )
        app_asset = s3_assets.Asset(
            self,
            "AppAsset",
            path=str(app_path),
            exclude=["__pycache__", "*.pyc", ".venv", ".git"],
        )
        # Read this one object, nothing else in the CDK asset bucket.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[app_asset.bucket.arn_for_objects(app_asset.s3_object_key)],
            )
        )
        _acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonSSMManagedInstanceCore]",
            "AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager, the "
            "only way onto the instances (no SSH, no key pair)",
        )

        user_data = ec2.UserData.for_linux(shebang=rendering.USER_DATA_SHEBANG)
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=machine_image or ec2.MachineImage.latest_amazon_linux2023(),
            instance_type=instance_type
            or ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL),
            security_group=instance_security_group,
            role=role,
            user_data=user_data,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            associate_public_ip_address=False,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        16, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
        )
        self.alarm_topic: sns.ITopic | None = alarm_topic
        """The SNS topic the alarms and the ASG's scaling events notify, if any."""
        if alarm_topic is None and monitoring:
            self.alarm_topic = new_alarm_topic(self, "AlarmTopic")
        grace = cdk.Duration.seconds(coupled.grace_period)
        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "AutoScalingGroup",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template=self.launch_template,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            desired_capacity=desired_capacity,
            notifications=[
                autoscaling.NotificationConfiguration(
                    topic=self.alarm_topic, scaling_events=autoscaling.ScalingEvents.ALL
                )
            ]
            if self.alarm_topic is not None
            else None,
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=grace,
            ),
            # Creation waits for each instance's signal, sent after Gunicorn answers the health
            # path; any change of the launch template rolls the group one instance at a time.
            signals=autoscaling.Signals.wait_for_min_capacity(timeout=SIGNAL_TIMEOUT),
            update_policy=autoscaling.UpdatePolicy.rolling_update(
                max_batch_size=1,
                min_instances_in_service=_min_in_service(min_capacity, max_capacity),
                wait_on_resource_signals=True,
                pause_time=SIGNAL_TIMEOUT,
            ),
        )
        if termination_hook_timeout is not None:
            self.auto_scaling_group.add_lifecycle_hook(
                "TerminationHook",
                lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
                heartbeat_timeout=termination_hook_timeout,
                default_result=autoscaling.DefaultResult.CONTINUE,
            )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "TargetGroup",
            vpc=vpc,
            port=app_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.INSTANCE,
            targets=[self.auto_scaling_group],
            deregistration_delay=cdk.Duration.seconds(coupled.deregistration_delay),
            health_check=elbv2.HealthCheck(
                path=health_check_path,
                interval=cdk.Duration.seconds(coupled.health_check_interval),
                timeout=cdk.Duration.seconds(coupled.health_check_timeout),
                healthy_threshold_count=coupled.healthy_threshold,
                unhealthy_threshold_count=coupled.unhealthy_threshold,
                healthy_http_codes="200",
            ),
        )
        self._add_listeners(
            vpc=vpc,
            internal=internal,
            protocol=protocol,
            port=port,
            certificate=certificate,
            domain_name=domain_name,
            domain_zone=domain_zone,
            ssl_policy=ssl_policy,
            ingress_cidrs=ingress_cidrs,
        )

        stack = cdk.Stack.of(self)
        asg_resource = self.auto_scaling_group.node.default_child
        assert isinstance(asg_resource, cdk.CfnResource)
        config = rendering.InstanceConfig(
            timeouts=coupled,
            idle_timeout=(
                cdk.Token.as_string(idle_seconds) if idle_is_token else str(int(idle_seconds))
            ),
            app_port=app_port,
            health_check_path=health_check_path,
            wsgi_app=wsgi_app,
            app_asset_url=app_asset.s3_object_url,
            app_requirements=requirements,
            worker_class=worker_class,
            threads=threads,
            workers_per_cpu=workers_per_cpu,
            forwarded_allow_ips=vpc.vpc_cidr_block,
            extra_pip_packages=timeouts.KEEPALIVE_WORKER_CLASSES[worker_class],
            cfn_stack=cdk.Aws.STACK_NAME,
            cfn_resource=stack.get_logical_id(asg_resource),
            cfn_region=cdk.Aws.REGION,
        )
        user_data.add_commands(rendering.render_user_data_body(config))
        self.instance_config = config
        """What the instances receive, for review (``gunicorn_alb.rendering``)."""

        self.monitoring: ServiceMonitoring | None = None
        """Alarms (``monitoring.alarms``) and the dashboard, unless ``monitoring`` is off."""
        if monitoring:
            self.monitoring = ServiceMonitoring(
                self,
                "Monitoring",
                load_balancer=self.load_balancer,
                target_group=self.target_group,
                thresholds=alarm_thresholds or AlarmThresholds(),
                alarm_topic=self.alarm_topic,
            )

    def _add_listeners(
        self,
        *,
        vpc: ec2.IVpc,
        internal: bool,
        protocol: elbv2.ApplicationProtocol,
        port: int,
        certificate: acm.ICertificate | None,
        domain_name: str | None,
        domain_zone: route53.IHostedZone | None,
        ssl_policy: elbv2.SslPolicy,
        ingress_cidrs: Sequence[str] | None,
    ) -> None:
        """The serving listener (HTTPS with a certificate), the HTTP redirect, their ingress."""
        cidrs = list(ingress_cidrs or [vpc.vpc_cidr_block if internal else "0.0.0.0/0"])
        if domain_name is not None and domain_zone is not None and certificate is None:
            certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=domain_name,
                validation=acm.CertificateValidation.from_dns(domain_zone),
            )
        self.certificate = certificate
        """The HTTPS listener's certificate, if any."""
        https = protocol == elbv2.ApplicationProtocol.HTTPS
        self.listener = self.load_balancer.add_listener(
            "HttpsListener" if https else "HttpListener",
            port=port,
            protocol=protocol,
            open=False,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)]
            if https and certificate is not None
            else None,
            ssl_policy=ssl_policy if https else None,
            default_target_groups=[self.target_group],
        )
        """The listener that forwards to the target group."""
        ports = [port]
        self.redirect_listener: elbv2.ApplicationListener | None = None
        """Port 80, redirecting to HTTPS (only with a certificate)."""
        if https:
            self.redirect_listener = self.load_balancer.add_redirect(
                source_port=80, target_port=port, open=False
            )
            ports.append(80)
        else:
            cdk.Annotations.of(self).add_warning_v2(
                "gunicorn-alb:http-only",
                "The ALB serves plain HTTP: give certificate (or domain_name and domain_zone) "
                "for HTTPS with a redirect from port 80.",
            )
        if "0.0.0.0/0" in cidrs:
            _acknowledge(
                self.load_balancer,
                "AwsSolutions-EC23",
                "an internet-facing load balancer serves the public on its listener ports only "
                f"({', '.join(map(str, ports))}); narrow it with ingress_cidrs",
            )
        for cidr in cidrs:
            for listener_port in ports:
                self.load_balancer.connections.allow_from(
                    ec2.Peer.ipv4(cidr), ec2.Port.tcp(listener_port), f"port {listener_port}"
                )
        if domain_name is not None and domain_zone is not None:
            route53.ARecord(
                self,
                "DnsRecord",
                zone=domain_zone,
                record_name=domain_name,
                target=route53.RecordTarget.from_alias(
                    route53_targets.LoadBalancerTarget(self.load_balancer)
                ),
            )

    @property
    def connections(self) -> ec2.Connections:
        """The instances' security group: allow them to reach a database with this."""
        return self.auto_scaling_group.connections


def _acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """Acknowledge a compliance rule (cdk-nag) on ``scope``, with the reason it does not apply."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def _min_in_service(min_capacity: int, max_capacity: int) -> int:
    """Keep at least one instance in service during a rolling update (must be < max size)."""
    if cdk.Token.is_unresolved(min_capacity) or cdk.Token.is_unresolved(max_capacity):
        return 1
    return max(1, min(min_capacity, max_capacity - 1))


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


def _check_app(
    problems: list[str], app_directory: str | None, wsgi_app: str, app_requirements: str | None
) -> tuple[Path | None, str]:
    """Return the app's directory and requirements file; append any problem found."""
    if not _WSGI_TARGET.match(wsgi_app):
        problems.append(
            f"wsgi_app must be a WSGI target of the form module:callable "
            f"(for example app:application), got {wsgi_app!r}"
        )
    if app_directory is None:
        directory = Path(str(resources.files("gunicorn_alb").joinpath("sample_app")))
    else:
        directory = Path(app_directory)
        if not directory.is_dir():
            problems.append(f"app_directory must be an existing directory, got {app_directory!r}")
            return None, ""
    if _WSGI_TARGET.match(wsgi_app):
        module = wsgi_app.split(":", 1)[0].replace(".", "/")
        if not (
            (directory / f"{module}.py").is_file() or (directory / module / "__init__.py").is_file()
        ):
            problems.append(
                f"wsgi_app {wsgi_app!r} names module {module.replace('/', '.')!r}, but "
                f"app_directory {str(directory)!r} has no {module}.py or {module}/__init__.py"
            )
    if app_requirements is None:
        return directory, "requirements.txt" if (directory / "requirements.txt").is_file() else ""
    if not _REQUIREMENTS.match(app_requirements) or ".." in app_requirements.split("/"):
        problems.append(
            "app_requirements must be a relative path inside app_directory, "
            f"got {app_requirements!r}"
        )
    elif not (directory / app_requirements).is_file():
        problems.append(
            f"app_requirements {app_requirements!r} is not a file in app_directory "
            f"{str(directory)!r}"
        )
    return directory, app_requirements
