"""The reference stack: a VPC and the construct; the idle timeout is a deploy-time parameter."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from gunicorn_alb import ApplicationLoadBalancedGunicornService, timeouts


class GunicornServiceStack(cdk.Stack):
    """A VPC (2 AZs, one NAT gateway) and an ``ApplicationLoadBalancedGunicornService``.

    The parameter ``IdleTimeoutSeconds`` drives the ALB idle timeout and, at boot, Gunicorn's
    keep-alive: ``cdk deploy --parameters IdleTimeoutSeconds=300`` changes both sides and rolls
    the instances.

    :param idle_timeout_seconds: the parameter's default. Default: - 60
    :param keepalive_margin_seconds: Gunicorn keep-alive = idle timeout + this. Default: - 5
    :param certificate_arn: an ACM certificate for HTTPS (port 80 then redirects).
        Default: - none: HTTP only
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        idle_timeout_seconds: int = timeouts.IDLE_TIMEOUT_DEFAULT,
        keepalive_margin_seconds: int = timeouts.KEEPALIVE_MARGIN_DEFAULT,
        certificate_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Check the default now: CloudFormation would only reject it at deploy time.
        default = timeouts.derive_timeouts(
            idle_timeout_seconds, keepalive_margin=keepalive_margin_seconds
        )
        idle = cdk.CfnParameter(
            self,
            "IdleTimeoutSeconds",
            type="Number",
            min_value=timeouts.IDLE_TIMEOUT_MIN,
            max_value=timeouts.IDLE_TIMEOUT_MAX,
            default=idle_timeout_seconds,
            description=(
                f"ALB idle timeout in seconds ({timeouts.IDLE_TIMEOUT_MIN}-"
                f"{timeouts.IDLE_TIMEOUT_MAX}). Gunicorn's keep-alive follows at boot: this value "
                f"+ {keepalive_margin_seconds} s ({default.keepalive} s for the default "
                f"{idle_timeout_seconds} s)."
            ),
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.0.0.0/16"),
            max_azs=2,
            nat_gateways=1,
            flow_logs={"FlowLog": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.REJECT)},
        )
        service = ApplicationLoadBalancedGunicornService(
            self,
            "Service",
            vpc=vpc,
            idle_timeout=cdk.Duration.seconds(idle.value_as_number),
            keepalive_margin=cdk.Duration.seconds(keepalive_margin_seconds),
            certificate=(
                acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
                if certificate_arn
                else None
            ),
            deletion_protection=True,
        )
        scheme = "https" if certificate_arn else "http"
        cdk.CfnOutput(
            self,
            "Url",
            value=f"{scheme}://{service.load_balancer.load_balancer_dns_name}",
            description="The app behind the Application Load Balancer",
        )
