"""The reference stack: a VPC and the construct; the idle timeout is a deploy-time parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from gunicorn_alb import ApplicationLoadBalancedGunicornService, timeouts
from gunicorn_alb.compliance import (
    KEEP_UNLESS_CREATE_FAILS,
    acknowledge_control,
    grants_only_for_aws_services,
)
from gunicorn_alb.network import PrivateEndpoints

IDLE_TIMEOUT_PATTERN = "^([1-9][0-9]{0,2}|[1-3][0-9]{3}|4000)$"
"""The whole numbers 1-4000 without leading zeros. CloudFormation checks ``AllowedPattern`` (Java
regular expressions; this one uses only the subset Python's ``re`` shares) on ``String``
parameters only: a ``Number`` parameter would accept ``60.5``, which the ALB and the boot script
refuse after resources already exist."""


class GunicornServiceStack(cdk.Stack):
    """A VPC (2 AZs, one NAT gateway; or none, with VPC endpoints) and an
    ``ApplicationLoadBalancedGunicornService``.

    The parameter ``IdleTimeoutSeconds`` drives the ALB idle timeout and, at boot, Gunicorn's
    keep-alive: ``cdk deploy --parameters IdleTimeoutSeconds=300`` changes both sides and rolls
    the instances.

    :param idle_timeout_seconds: the parameter's default. Default: - 60
    :param keepalive_margin_seconds: Gunicorn keep-alive = idle timeout + this. Default: - 5
    :param certificate_arn: an ACM certificate for HTTPS (port 80 then redirects).
        Default: - none: HTTP only
    :param deletion_protection: ALB deletion protection. Leave it off until the first deploy has
        succeeded: with it on, a failed first create cannot roll back (``ROLLBACK_FAILED``).
        Default: - False
    :param machine_image_ids: pin the image: an AMI id per region (an Amazon Linux 2023 for the
        instance type's architecture). Default: - none: the latest Amazon Linux 2023, read from
        its SSM public parameter at every deploy
    :param private_isolated: no NAT gateway: the instances run in isolated subnets and reach S3
        (assets, wheelhouse, dnf repositories) and the AWS APIs they call through VPC endpoints.
        Default: - False (private subnets with one NAT gateway)
    :param environment: the sample app's environment (the construct's ``environment``).
        Default: - none
    :param termination_hook_seconds: the construct's ``termination_hook_timeout`` (the drain
        through a termination hook; with ``private_isolated``, an Auto Scaling endpoint too).
        Default: - none: no hook
    :param termination_command: the construct's ``termination_command`` (needs
        ``termination_hook_seconds``). Default: - none
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        idle_timeout_seconds: int = timeouts.IDLE_TIMEOUT_DEFAULT,
        keepalive_margin_seconds: int = timeouts.KEEPALIVE_MARGIN_DEFAULT,
        certificate_arn: str | None = None,
        deletion_protection: bool = False,
        machine_image_ids: Mapping[str, str] | None = None,
        private_isolated: bool = False,
        environment: Mapping[str, str] | None = None,
        termination_hook_seconds: int | None = None,
        termination_command: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        machine_image = _pinned_image(machine_image_ids)
        # Check the default now: CloudFormation would only reject it at deploy time.
        default = timeouts.derive_timeouts(
            idle_timeout_seconds, keepalive_margin=keepalive_margin_seconds
        )
        idle = cdk.CfnParameter(
            self,
            "IdleTimeoutSeconds",
            type="String",
            allowed_pattern=IDLE_TIMEOUT_PATTERN,
            constraint_description=(
                f"must be a whole number of seconds from {timeouts.IDLE_TIMEOUT_MIN} to "
                f"{timeouts.IDLE_TIMEOUT_MAX}, without a decimal point or leading zeros"
            ),
            default=str(idle_timeout_seconds),
            description=(
                f"ALB idle timeout in seconds ({timeouts.IDLE_TIMEOUT_MIN}-"
                f"{timeouts.IDLE_TIMEOUT_MAX}). Gunicorn's keep-alive follows at boot: this value "
                f"+ {keepalive_margin_seconds} s ({default.keepalive} s for the default "
                f"{idle_timeout_seconds} s)."
            ),
        )
        flow_logs = {"FlowLog": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.REJECT)}
        # Without NAT: public subnets for the load balancer, isolated ones for the instances.
        isolated_layout = [
            ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.0.0.0/16"),
            max_azs=2,
            nat_gateways=0 if private_isolated else 1,
            subnet_configuration=isolated_layout if private_isolated else None,
            flow_logs=flow_logs,
        )
        instance_subnets: ec2.SubnetSelection | None = None
        endpoints: PrivateEndpoints | None = None
        if private_isolated:
            instance_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            endpoints = PrivateEndpoints(
                self,
                "Endpoints",
                vpc=vpc,
                subnets=instance_subnets,
                termination_hook=termination_hook_seconds is not None,
            )
        self._harden_vpc(vpc)
        self.idle_timeout = idle
        """The ``IdleTimeoutSeconds`` parameter."""
        service = ApplicationLoadBalancedGunicornService(
            self,
            "Service",
            vpc=vpc,
            vpc_subnets=instance_subnets,
            machine_image=machine_image,
            # A String parameter (for its pattern) used as a number: it renders as the same Ref.
            idle_timeout=cdk.Duration.seconds(cdk.Token.as_number(idle.value_as_string)),
            keepalive_margin=cdk.Duration.seconds(keepalive_margin_seconds),
            certificate=(
                acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
                if certificate_arn
                else None
            ),
            deletion_protection=deletion_protection,
            environment=dict(environment) if environment else None,
            termination_hook_timeout=(
                None
                if termination_hook_seconds is None
                else cdk.Duration.seconds(termination_hook_seconds)
            ),
            termination_command=termination_command,
        )
        if endpoints is not None:
            # The instances' first boot calls S3 and the endpoints' services: no instance before
            # the endpoints exist (the construct orders the group after NAT routes itself).
            service.auto_scaling_group.node.add_dependency(endpoints)
        self.service = service
        """The construct under the reference stack (its load balancer, group, ...)."""
        if not deletion_protection:
            acknowledge_control(
                service.load_balancer,
                "CT.ELASTICLOADBALANCING.PR.5",
                "elbv2_deletion_protection_enabled_check",
                "off until a first deploy has succeeded: with deletion protection on, a failed "
                "first create cannot delete the load balancer and the stack ends in "
                "ROLLBACK_FAILED; deploy with -c deletionProtection=true after that",
                if_enforced="deploy with -c deletionProtection=true from the first deploy, and "
                "turn it off by hand (ALB attributes) if that deploy fails, so the rollback "
                "can delete the load balancer",
            )
        scheme = "https" if certificate_arn else "http"
        cdk.CfnOutput(
            self,
            "Url",
            value=f"{scheme}://{service.load_balancer.load_balancer_dns_name}",
            description="The app behind the Application Load Balancer",
        )

    def _harden_vpc(self, vpc: ec2.Vpc) -> None:
        """The Control Tower controls on the VPC: the flow-log group encrypted with a KMS key
        (CT.CLOUDWATCH.PR.3; both kept unless their first create fails), public subnets that give
        no public IP by default (CT.EC2.PR.11: only the ALB and the NAT gateway, with its Elastic
        IP, live there), and the acknowledged default-security-group custom resource
        (CT.LAMBDA.PR.3)."""
        key = kms.Key(
            self,
            "FlowLogKey",
            description="Encrypts the reference VPC's flow-log group",
            enable_key_rotation=True,
            removal_policy=KEEP_UNLESS_CREATE_FAILS,
        )
        # CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS".
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*",
                         "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:"
                            f"{cdk.Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )  # fmt: skip
        key.add_to_resource_policy(grants_only_for_aws_services())
        log_group = vpc.node.find_child("FlowLog").node.find_child("LogGroup")
        assert isinstance(log_group, logs.LogGroup)
        cfn_log_group = log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.kms_key_id = key.key_arn
        log_group.apply_removal_policy(KEEP_UNLESS_CREATE_FAILS)
        for subnet in vpc.public_subnets:
            cfn_subnet = subnet.node.default_child
            assert isinstance(cfn_subnet, ec2.CfnSubnet)
            cfn_subnet.map_public_ip_on_launch = False
        provider = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is not None:
            acknowledge_control(
                provider,
                "CT.LAMBDA.PR.3",
                "lambda_inside_vpc_check",
                "aws-cdk-lib's provider for the restrictDefaultSecurityGroup feature runs only "
                "while the stack deploys, to remove the VPC default security group's rules; it "
                "calls EC2's API and reaches no resource inside the VPC",
                if_enforced="set the feature flag @aws-cdk/aws-ec2:restrictDefaultSecurityGroup "
                "to false in cdk.json (no custom resource) and remove the default security "
                "group's rules another way (the account's own automation)",
            )


_AMI_ID = re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")


def _pinned_image(ids: Mapping[str, str] | None) -> ec2.IMachineImage | None:
    """A region-to-AMI map as an image (a template mapping: synthesizes without credentials in a
    region-agnostic stack; a deploy to a region not in the map fails), or None."""
    if ids is None:
        return None
    problems = [
        "machine_image_ids must map regions to AMI ids (eu-west-1 -> ami-0123456789abcdef0), "
        f"got {region!r} -> {ami!r}"
        for region, ami in ids.items()
        if not _REGION.match(str(region)) or not _AMI_ID.match(str(ami))
    ]
    if not ids:
        problems.append("machine_image_ids must name at least one region")
    if problems:
        raise ValueError(
            "GunicornServiceStack: invalid properties:\n"
            + "\n".join(f"- {problem}" for problem in problems)
        )
    return ec2.MachineImage.generic_linux(dict(ids))
