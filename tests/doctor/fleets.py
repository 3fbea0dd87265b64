"""Test fleets in a moto account: ALB, target group, launch template and Auto Scaling group,
built with boto3 calls (moto's CloudFormation ignores load-balancer and target-group attributes),
with the user data the construct renders."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import boto3

from gunicorn_alb import delivery, rendering
from gunicorn_alb.timeouts import derive_timeouts

REGION = "us-east-1"
ASSET_BUCKET = "cdk-assets-123456789012-us-east-1"
INSTANCE_FILES: dict[str, bytes] = {}
"""The InstanceFiles archives of the user data rendered here, by S3 key: each fleet publishes the
one its user data names, as ``cdk deploy`` does."""
# What the user data carries for the target group (the doctor reads no value from it).
TARGET_GROUP_TOKEN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/1"


def construct_user_data(
    idle: int = 60,
    margin: int = 5,
    *,
    deregistration_delay: int | None = None,
    graceful_timeout: int | None = None,
    worker_class: str = "gthread",
    threads: int = 4,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
    coupling_agent: bool = False,
) -> str:
    """The user data the construct renders, through gunicorn_alb.rendering (with the coupling
    agent, as the construct writes it since it couples to the live idle timeout; without, as
    earlier versions did).

    ``max_requests`` / ``worker_class`` go straight to the renderer, bypassing the construct's
    validation, to build fleets the construct would refuse (as if the template was edited)."""
    coupled = derive_timeouts(
        idle,
        keepalive_margin=margin,
        deregistration_delay=deregistration_delay,
        graceful_timeout=graceful_timeout,
    )
    coupled = dataclasses.replace(
        coupled, max_requests=max_requests, max_requests_jitter=max_requests_jitter
    )
    config = rendering.InstanceConfig(
        timeouts=coupled,
        idle_timeout=str(idle),
        app_port=8000,
        health_check_path="/healthz",
        wsgi_app="app:application",
        app_asset_url="s3://bucket/key.zip",
        app_requirements="requirements.txt",
        worker_class=worker_class,
        threads=threads,
        workers_per_cpu=2,
        forwarded_allow_ips="10.0.0.0/16",
        cfn_stack="Web",
        cfn_resource="AutoScalingGroup",
        cfn_region=REGION,
        target_group_arn=TARGET_GROUP_TOKEN if coupling_agent else "",
        aws_region=REGION if coupling_agent else "",
    )
    _, shipped = delivery.split_files(config)
    archive = delivery.instance_files_archive(shipped)
    key = hashlib.sha256(archive).hexdigest() + ".tgz"
    INSTANCE_FILES[key] = archive
    config = dataclasses.replace(config, instance_files_url=f"s3://{ASSET_BUCKET}/{key}")
    return delivery.render_user_data(config)


def instance_files_of(user_data: str) -> bytes:
    """The InstanceFiles archive :func:`construct_user_data` rendered for ``user_data``."""
    boot_env = delivery.written_file(user_data, rendering.BOOT_ENV_PATH) or ""
    return INSTANCE_FILES[delivery.parse_env(boot_env)["INSTANCE_FILES_URL"].rsplit("/", 1)[-1]]


@dataclass
class Fleet:
    load_balancer_arn: str
    load_balancer_name: str
    target_group_arn: str
    asg_name: str

    @property
    def dimension(self) -> str:
        return self.load_balancer_arn.split(":loadbalancer/", 1)[1]


class Account:
    """Builds ALB + target group + launch template + ASG fleets in the mocked account."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.elbv2 = boto3.client("elbv2", region_name=REGION)
        self.autoscaling = boto3.client("autoscaling", region_name=REGION)
        self.cloudformation = boto3.client("cloudformation", region_name=REGION)
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"][
                "SubnetId"
            ]
            for cidr, zone in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b"))
        ]

    def _publish_instance_files(self, user_data: str) -> None:
        """The InstanceFiles archive the user data names, in the asset bucket."""
        boot_env = delivery.written_file(user_data, rendering.BOOT_ENV_PATH) or ""
        if "INSTANCE_FILES_URL" in delivery.parse_env(boot_env):
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=ASSET_BUCKET)
            key = delivery.parse_env(boot_env)["INSTANCE_FILES_URL"].rsplit("/", 1)[-1]
            s3.put_object(Bucket=ASSET_BUCKET, Key=key, Body=instance_files_of(user_data))

    def load_balancer(self, name: str = "web", idle: int = 60) -> str:
        arn: str = self.elbv2.create_load_balancer(Name=name, Subnets=self.subnets)[
            "LoadBalancers"
        ][0]["LoadBalancerArn"]
        self.set_idle_timeout(arn, idle)
        return arn

    def set_idle_timeout(self, arn: str, idle: int) -> None:
        self.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn,
            Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": str(idle)}],
        )

    def fleet(
        self,
        load_balancer_arn: str,
        user_data: str,
        *,
        name: str = "web",
        deregistration_delay: int = 60,
        launch_configuration: bool = False,
    ) -> Fleet:
        """A target group forwarded to from port 80, and an ASG whose launch template (or
        launch configuration) carries ``user_data``, registered with it."""
        tg_arn: str = self.elbv2.create_target_group(
            Name=f"{name}-tg",
            Protocol="HTTP",
            Port=8000,
            VpcId=self.vpc,
            HealthCheckPath="/healthz",
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.modify_target_group_attributes(
            TargetGroupArn=tg_arn,
            Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}
            ],
        )
        self.elbv2.create_listener(
            LoadBalancerArn=load_balancer_arn,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
        )
        asg_name = f"{name}-asg"
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            **self._launch_spec(name, user_data, launch_configuration),
            MinSize=1,
            MaxSize=2,
            VPCZoneIdentifier=",".join(self.subnets),
            TargetGroupARNs=[tg_arn],
        )
        name_of_lb = load_balancer_arn.split("/")[-2]
        return Fleet(load_balancer_arn, name_of_lb, tg_arn, asg_name)

    def _launch_spec(self, name: str, user_data: str, configuration: bool) -> dict[str, Any]:
        self._publish_instance_files(user_data)
        machine = {"ImageId": "ami-12c6146b", "InstanceType": "t3.small"}
        encoded = base64.b64encode(user_data.encode()).decode()
        if configuration:  # botocore base64-encodes a launch configuration's user data itself
            self.autoscaling.create_launch_configuration(
                LaunchConfigurationName=f"{name}-lc", UserData=user_data, **machine
            )
            return {"LaunchConfigurationName": f"{name}-lc"}
        template_id = self.ec2.create_launch_template(
            LaunchTemplateName=f"{name}-lt", LaunchTemplateData={**machine, "UserData": encoded}
        )["LaunchTemplate"]["LaunchTemplateId"]
        return {"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "1"}}

    def coupled_fleet(
        self, idle: int = 60, *, deregistration_delay: int = 60, **user_data: Any
    ) -> Fleet:
        """An ALB at ``idle`` and an ASG whose user data the construct rendered for it."""
        arn = self.load_balancer("web", idle)
        return self.fleet(
            arn,
            construct_user_data(idle, **user_data),
            deregistration_delay=deregistration_delay,
        )
