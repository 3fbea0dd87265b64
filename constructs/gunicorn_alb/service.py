"""``ApplicationLoadBalancedGunicornService``: an ALB in front of an Auto Scaling group of EC2
instances running a WSGI app under Gunicorn, with Gunicorn's keep-alive derived from the ALB idle
timeout. The numbers come from :mod:`gunicorn_alb.timeouts`; this module only wires resources.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from gunicorn_alb import rendering, timeouts

SIGNAL_TIMEOUT = cdk.Duration.minutes(15)
"""How long CloudFormation waits for each new instance's success signal. The boot script gives up
on the health path after ``rendering.HEALTH_WAIT_SECONDS`` (10 min) and signals failure first."""

_WSGI_TARGET = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_REQUIREMENTS = re.compile(r"^[A-Za-z0-9._/-]+$")


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
    :param internal: an internal ALB (private subnets, reachable from the VPC only).
        Default: - False (internet-facing)
    :param listener_port: the HTTP listener's port. Default: - 80
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
    :param max_capacity: Default: - 4
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
        listener_port: int = 80,
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
        problems += _check_ports(listener_port=listener_port, app_port=app_port)
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
        )
        if internal:
            self.load_balancer.connections.allow_from(
                ec2.Peer.ipv4(vpc.vpc_cidr_block),
                ec2.Port.tcp(listener_port),
                "HTTP from the VPC",
            )

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
            allow_all_outbound=True,
        )
        app_asset = s3_assets.Asset(
            self,
            "AppAsset",
            path=str(app_path),
            exclude=["__pycache__", "*.pyc", ".venv", ".git"],
        )
        app_asset.grant_read(role)

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
        self.listener = self.load_balancer.add_listener(
            "HttpListener",
            port=listener_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=not internal,
            default_target_groups=[self.target_group],
        )

        stack = cdk.Stack.of(self)
        asg_resource = self.auto_scaling_group.node.default_child
        assert isinstance(asg_resource, cdk.CfnResource)
        config = rendering.InstanceConfig(
            timeouts=coupled,
            idle_timeout=cdk.Token.as_string(idle_seconds)
            if idle_is_token
            else str(int(idle_seconds)),
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

    @property
    def connections(self) -> ec2.Connections:
        """The instances' security group: allow them to reach a database with this."""
        return self.auto_scaling_group.connections


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
