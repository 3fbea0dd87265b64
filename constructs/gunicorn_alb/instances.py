"""The instance side: the role, the security group, the app asset, the launch template and its
user data, the Auto Scaling group (signals, rolling updates, lifecycle hook, the instance mix) and
the files each instance receives (:mod:`gunicorn_alb.rendering`), in the user data and the
InstanceFiles asset (:mod:`gunicorn_alb.delivery`).

Each builder takes the construct as its scope, so the child ids (and the logical ids) are the
construct's own.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from gunicorn_alb import delivery, rendering, scaling, termination, termination_hook, timeouts
from gunicorn_alb.boot_budget import BOOT
from gunicorn_alb.compliance import acknowledge, acknowledge_control
from gunicorn_alb.props import ServiceProps
from gunicorn_alb.secret import secret_refs
from gunicorn_alb.validation import CheckedProps

SIGNAL_TIMEOUT = cdk.Duration.seconds(BOOT.signal_timeout)
"""How long CloudFormation waits for each new instance's success signal (15 minutes). The boot
script's deadlines (the boot budget, :mod:`gunicorn_alb.boot_budget`) make it signal failure first
(rule boot-within-signal-timeout)."""


@dataclass(frozen=True)
class LaunchParts:
    """What ``new_launch_template`` made; the user data is filled in by ``add_instance_files``."""

    launch_template: ec2.LaunchTemplate
    user_data: ec2.UserData
    app_asset: s3_assets.Asset
    wheelhouse_asset: s3_assets.Asset


def new_launch_template(
    scope: Construct, props: ServiceProps, checked: CheckedProps
) -> LaunchParts:
    """The role (Session Manager, the two assets, the app's secrets), the security group (HTTPS
    out only), the app asset and the launch template (IMDSv2, encrypted gp3, no public IP)."""
    role = iam.Role(scope, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    allow_session_manager(role)
    security_group = ec2.SecurityGroup(
        scope,
        "InstanceSecurityGroup",
        vpc=props.vpc,
        description="Gunicorn instances: the app port from the ALB only; no SSH",
        allow_all_outbound=False,
    )
    # Boot and operation need HTTPS only: dnf repositories and the assets (S3), SSM,
    # CloudFormation (cfn-signal). DNS, NTP and instance metadata are link-local services
    # that security groups do not filter.
    security_group.add_egress_rule(
        ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: packages, S3 asset, SSM, cfn-signal"
    )
    app_asset = s3_assets.Asset(
        scope,
        "AppAsset",
        path=str(checked.app_path),
        exclude=["__pycache__", "*.pyc", ".venv", ".git"],
    )
    # Every Python package the instances install, as wheels for their platform: the boot runs
    # pip without an index (gunicorn_alb.wheelhouse).
    wheelhouse_asset = s3_assets.Asset(scope, "Wheelhouse", path=str(checked.wheelhouse))
    # Read these two objects (and the InstanceFiles asset), nothing else in the asset bucket.
    for asset in (app_asset, wheelhouse_asset):
        _allow_get(role, asset)
    # Read exactly the app's secrets (and decrypt with their keys, where CDK knows them).
    for secret in (props.secrets or {}).values():
        secret.grant_read(role)
    user_data = ec2.UserData.for_linux(shebang=delivery.USER_DATA_SHEBANG)
    launch_template = ec2.LaunchTemplate(
        scope,
        "LaunchTemplate",
        machine_image=checked.machine_image,
        # With instance_types the mixed-instances policy's overrides choose the type.
        instance_type=None if props.instance_types else checked.instance_type,
        security_group=security_group,
        role=role,
        user_data=user_data,
        require_imdsv2=True,
        http_put_response_hop_limit=1,
        # The drain watcher reads its group's name from the instance's aws:autoscaling:groupName
        # tag (a Ref to the group here would be a circular dependency).
        instance_metadata_tags=True if props.termination_hook_timeout is not None else None,
        associate_public_ip_address=False,
        # 1-minute instance metrics: alarms and scaling see a failing instance sooner
        # (Control Tower CT.EC2.PR.10).
        detailed_monitoring=True,
        block_devices=[
            ec2.BlockDevice(
                device_name="/dev/xvda",
                volume=ec2.BlockDeviceVolume.ebs(
                    16, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                ),
            )
        ],
    )
    return LaunchParts(launch_template, user_data, app_asset, wheelhouse_asset)


def _allow_get(role: iam.IRole, asset: s3_assets.Asset) -> None:
    """The role may read exactly this asset's object."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[asset.bucket.arn_for_objects(asset.s3_object_key)],
        )
    )


def new_auto_scaling_group(
    scope: Construct,
    props: ServiceProps,
    checked: CheckedProps,
    launch_template: ec2.LaunchTemplate,
    alarm_topic: sns.ITopic | None,
) -> autoscaling.AutoScalingGroup:
    """The group in the private subnets (created after their routes to the NAT gateway): ELB
    health checks, creation signals, one-at-a-time
    rolling updates, scaling events to ``alarm_topic``, and the optional termination hook; with
    ``instance_types`` a mixed-instances policy (and capacity rebalancing with Spot). It publishes
    its group metrics (the dashboard's capacity widget) and leaves a new instance out of its
    metrics for the health-check grace period (``DefaultInstanceWarmup``)."""
    min_capacity, max_capacity = props.min_capacity, props.max_capacity
    types = props.instance_types
    spot = bool(types) and props.spot_percentage > 0
    subnets = props.vpc_subnets or ec2.SubnetSelection(
        subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
    )
    group = autoscaling.AutoScalingGroup(
        scope,
        "AutoScalingGroup",
        vpc=props.vpc,
        vpc_subnets=subnets,
        launch_template=None if types else launch_template,
        mixed_instances_policy=scaling.mixed_instances_policy(
            launch_template,
            types,
            spot_percentage=props.spot_percentage,
            on_demand_base_capacity=min_capacity
            if props.on_demand_base_capacity is None
            else props.on_demand_base_capacity,
        )
        if types
        else None,
        capacity_rebalance=True if spot else None,
        group_metrics=scaling.group_metrics(),
        default_instance_warmup=scaling.warmup(checked.timeouts.grace_period),
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        desired_capacity=props.desired_capacity,
        notifications=[
            autoscaling.NotificationConfiguration(
                topic=alarm_topic, scaling_events=autoscaling.ScalingEvents.ALL
            )
        ]
        if alarm_topic is not None
        else None,
        health_checks=autoscaling.HealthChecks.with_additional_checks(
            additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
            grace_period=cdk.Duration.seconds(checked.timeouts.grace_period),
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
    asg = group.node.default_child
    assert isinstance(asg, cdk.CfnResource)
    # Instances boot as soon as the group exists and install over the network: the group waits
    # for its subnets' default routes (the NAT gateway's), as the load balancer waits for the
    # public ones (CloudFormation user guide, "DependsOn attribute"). Isolated subnets have none;
    # their VPC endpoints are the caller's to add (see network.PrivateEndpoints).
    asg.node.add_dependency(_selected(props.vpc, subnets).internet_connectivity_established)
    acknowledge_control(
        asg,
        "CT.AUTOSCALING.PR.1",
        "autoscaling_multiple_az_check",
        "the group spans the Availability Zones of its subnets through VPCZoneIdentifier (the "
        "private subnets with egress of the VPC; two AZs in the reference VPC); the rule reads "
        "only the AvailabilityZones property, which a group in a VPC does not need",
        if_enforced="set AvailabilityZones on the group (auto_scaling_group.node.default_child) "
        "to the Availability Zones of its subnets",
    )
    if len(types or ()) < 2:
        acknowledge_control(
            asg,
            "CT.AUTOSCALING.PR.6",
            "autoscaling_mixed_instances_policy_multiple_instance_types_check",
            "one instance type by default: the worker count and the capacity model assume one "
            "size of instance; several types (instance_types, a mixed-instances policy, with "
            "Spot if wanted) are a deliberate choice of the app's owner",
            if_enforced="pass instance_types with two or more types of one size (a "
            "mixed-instances policy; the docs' Security and compliance page lists types that "
            "meet the other controls)",
        )
    if props.termination_hook_timeout is not None:
        termination_hook.add_termination_hook(
            scope, launch_template, group, props.termination_hook_timeout
        )
    return group


def add_instance_files(
    scope: Construct,
    props: ServiceProps,
    checked: CheckedProps,
    launch: LaunchParts,
    auto_scaling_group: autoscaling.AutoScalingGroup,
    target_group: elbv2.ApplicationTargetGroup,
    log_group: logs.ILogGroup | None = None,
) -> rendering.InstanceConfig:
    """Render the instance files: boot.env, gunicorn.conf.py, the unit and its drop-in, the boot
    script (which signals ``auto_scaling_group``), the coupling agent with its timer, which keep
    keep-alive above the live idle timeout of the load balancers in front of ``target_group``
    (read-only ELB calls, granted to the instance role here), and the CloudWatch agent's
    configuration when there is a ``log_group``. The files without a deploy-time value go into
    the ``InstanceFiles`` asset (read by the role); the user data writes the others and fetches
    the asset (:mod:`gunicorn_alb.delivery`)."""
    allow_live_idle_timeout_reads(launch.launch_template)
    asg_resource = auto_scaling_group.node.default_child
    assert isinstance(asg_resource, cdk.CfnResource)
    config = rendering.InstanceConfig(
        timeouts=checked.timeouts,
        idle_timeout=checked.idle_timeout_setting,
        app_port=props.app_port,
        health_check_path=props.health_check_path,
        wsgi_app=props.wsgi_app,
        app_asset_url=launch.app_asset.s3_object_url,
        app_requirements=checked.app_requirements,
        worker_class=props.worker_class,
        threads=checked.threads,
        workers_per_cpu=props.workers_per_cpu,
        forwarded_allow_ips=props.vpc.vpc_cidr_block,
        extra_pip_packages=timeouts.KEEPALIVE_WORKER_CLASSES[props.worker_class],
        wheelhouse_url=launch.wheelhouse_asset.s3_object_url,
        build_from_source=tuple(props.build_from_source),
        cfn_stack=cdk.Aws.STACK_NAME,
        cfn_resource=cdk.Stack.of(auto_scaling_group).get_logical_id(asg_resource),
        cfn_region=cdk.Aws.REGION,
        target_group_arn=target_group.target_group_arn,
        aws_region=cdk.Aws.REGION,
        environment=tuple((props.environment or {}).items()),
        secrets=secret_refs(props.secrets),
        pre_start_command=props.pre_start_command or "",
        log_group_name=log_group.log_group_name if log_group is not None else "",
        termination_hook_name=termination.HOOK_NAME if props.termination_hook_timeout else "",
        termination_command=props.termination_command or "",
    )
    _, shipped = delivery.split_files(config)
    asset = s3_assets.Asset(
        scope,
        delivery.INSTANCE_FILES_ID,
        path=str(_staged_archive(delivery.instance_files_archive(shipped))),
    )
    role = launch.launch_template.role
    assert role is not None, "new_launch_template gives the template its own role"
    _allow_get(role, asset)
    config = replace(config, instance_files_url=asset.s3_object_url)
    body = delivery.render_user_data_body(config)
    problems = delivery.check_size(config, f"{delivery.USER_DATA_SHEBANG}\n{body}")
    if problems:
        raise ValueError(
            "ApplicationLoadBalancedGunicornService: invalid properties:\n- " + problems[0]
        )
    launch.user_data.add_commands(body)
    return config


def _staged_archive(archive: bytes) -> Path:
    """``archive`` as a file CDK's asset staging can copy into the cloud assembly (the asset's
    hash, and so its S3 key, is the content's): one folder per content under the temporary
    directory, written once (atomically, for parallel synths)."""
    folder = Path(tempfile.gettempdir()) / "gunicorn-alb-instance-files"
    target = folder / hashlib.sha256(archive).hexdigest() / delivery.INSTANCE_FILES_NAME
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{os.getpid()}.partial")
        partial.write_bytes(archive)
        os.replace(partial, target)
    return target


LIVE_IDLE_TIMEOUT_ACTIONS = (
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
)
"""What the boot script and the coupling agent call: target group -> load balancers -> their
idle timeout. Read-only; neither action supports resource-level permissions (the Service
Authorization Reference lists no resource type for them), so the statement names ``*``."""


SESSION_MANAGER_ACTIONS = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)
"""What the SSM agent needs for Session Manager (the only way onto the instances: no SSH, no key
pair) and Run Command, and nothing more: the agent registers (``ssm:UpdateInstanceInformation``),
opens the session channels (``ssmmessages``, Systems Manager user guide, "Create a custom IAM role
for Session Manager") and takes commands (the six ``ec2messages`` actions of the AWS managed policy
``AmazonSSMManagedInstanceCore``). That managed policy also allows ``ssm:GetParameter`` and
``ssm:GetParameters`` on every parameter of the account (SecureStrings included), so it is not
used: the role reads exactly the app's secrets. None of these actions supports resource-level
permissions (Service Authorization Reference: Systems Manager, Session Manager Message Gateway
Service, EC2 Messages), so the statement names ``*``."""


def allow_session_manager(role: iam.Role) -> None:
    """The ``SessionManager`` statement of the instance role (``SESSION_MANAGER_ACTIONS``)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="SessionManager", actions=list(SESSION_MANAGER_ACTIONS), resources=["*"]
        )
    )


def allow_live_idle_timeout_reads(launch_template: ec2.LaunchTemplate) -> None:
    """The instance role may read the live idle timeouts (and nothing else of ELB)."""
    role = launch_template.role
    assert isinstance(role, iam.Role), "new_launch_template gives the template its own role"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="LiveIdleTimeout", actions=list(LIVE_IDLE_TIMEOUT_ACTIONS), resources=["*"]
        )
    )
    # One acknowledgement per rule and construct: it covers both statements that must name "*".
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "two statements name every resource because their actions support no resource-level "
        "permissions (Service Authorization Reference): LiveIdleTimeout, the read-only "
        "elasticloadbalancing:DescribeTargetGroups and DescribeLoadBalancerAttributes the "
        "coupling agent reads the live idle timeout with; SessionManager, the SSM agent's "
        "ssm:UpdateInstanceInformation, ssmmessages channel and ec2messages actions (Systems "
        "Manager user guide, 'Create a custom IAM role for Session Manager'), none of which "
        "reads a parameter or a secret",
    )


def _selected(vpc: ec2.IVpc, selection: ec2.SubnetSelection) -> ec2.SelectedSubnets:
    """``vpc.select_subnets`` for a ``SubnetSelection`` (jsii takes its fields as keywords)."""
    return vpc.select_subnets(
        availability_zones=selection.availability_zones,
        one_per_az=selection.one_per_az,
        subnet_filters=selection.subnet_filters,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        subnet_type=selection.subnet_type,
    )


def _min_in_service(min_capacity: int, max_capacity: int) -> int:
    """Keep at least one instance in service during a rolling update (must be < max size)."""
    if cdk.Token.is_unresolved(min_capacity) or cdk.Token.is_unresolved(max_capacity):
        return 1
    return max(1, min(min_capacity, max_capacity - 1))
