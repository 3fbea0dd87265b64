"""The load-balancer side: the ALB, the target group, the listeners and their ingress, the
certificate made from ``domain_name`` and the DNS record.

Each builder takes the construct as its scope, so the child ids (and the logical ids) are the
construct's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from gunicorn_alb.compliance import acknowledge, acknowledge_control
from gunicorn_alb.props import DEFAULT_SSL_POLICY, ServiceProps
from gunicorn_alb.validation import DESYNC_MODES, CheckedProps

__all__ = [
    "DEFAULT_SSL_POLICY",
    "Listeners",
    "add_listeners",
    "new_load_balancer",
    "new_target_group",
]


def new_load_balancer(
    scope: Construct, props: ServiceProps, checked: CheckedProps
) -> elbv2.ApplicationLoadBalancer:
    """The ALB (``LoadBalancer``): the idle timeout, invalid headers dropped, desync mitigation."""
    return elbv2.ApplicationLoadBalancer(
        scope,
        "LoadBalancer",
        vpc=props.vpc,
        internet_facing=not props.internal,
        idle_timeout=checked.idle_timeout,
        drop_invalid_header_fields=True,
        desync_mitigation_mode=DESYNC_MODES[props.desync_mitigation_mode],
        deletion_protection=props.deletion_protection,
    )


def new_target_group(
    scope: Construct,
    props: ServiceProps,
    checked: CheckedProps,
    auto_scaling_group: autoscaling.AutoScalingGroup,
) -> elbv2.ApplicationTargetGroup:
    """The target group (``TargetGroup``) of the group's instances: the derived deregistration
    delay and health check."""
    coupled = checked.timeouts
    return elbv2.ApplicationTargetGroup(
        scope,
        "TargetGroup",
        vpc=props.vpc,
        port=props.app_port,
        protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.INSTANCE,
        targets=[auto_scaling_group],
        deregistration_delay=cdk.Duration.seconds(coupled.deregistration_delay),
        health_check=elbv2.HealthCheck(
            path=props.health_check_path,
            interval=cdk.Duration.seconds(coupled.health_check_interval),
            timeout=cdk.Duration.seconds(coupled.health_check_timeout),
            healthy_threshold_count=coupled.healthy_threshold,
            unhealthy_threshold_count=coupled.unhealthy_threshold,
            healthy_http_codes="200",
        ),
    )


@dataclass(frozen=True)
class Listeners:
    """What ``add_listeners`` made."""

    listener: elbv2.ApplicationListener
    redirect_listener: elbv2.ApplicationListener | None
    certificate: acm.ICertificate | None


def add_listeners(
    scope: Construct,
    props: ServiceProps,
    checked: CheckedProps,
    load_balancer: elbv2.ApplicationLoadBalancer,
    target_group: elbv2.ApplicationTargetGroup,
) -> Listeners:
    """The serving listener (HTTPS with a certificate), the HTTP redirect, their ingress, and
    the DNS record for ``domain_name``."""
    vpc, domain_name, domain_zone = props.vpc, props.domain_name, props.domain_zone
    port = checked.port
    cidrs = list(props.ingress_cidrs or [vpc.vpc_cidr_block if props.internal else "0.0.0.0/0"])
    certificate = props.certificate
    if domain_name is not None and domain_zone is not None and certificate is None:
        certificate = acm.Certificate(
            scope,
            "Certificate",
            domain_name=domain_name,
            validation=acm.CertificateValidation.from_dns(domain_zone),
        )
    https = checked.protocol == elbv2.ApplicationProtocol.HTTPS
    listener = load_balancer.add_listener(
        "HttpsListener" if https else "HttpListener",
        port=port,
        protocol=checked.protocol,
        open=False,
        certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)]
        if https and certificate is not None
        else None,
        ssl_policy=props.ssl_policy if https else None,
        default_target_groups=[target_group],
    )
    ports = [port]
    redirect_listener: elbv2.ApplicationListener | None = None
    if https:
        redirect_listener = load_balancer.add_redirect(source_port=80, target_port=port, open=False)
        ports.append(80)
    else:
        cdk.Annotations.of(scope).add_warning_v2(
            "gunicorn-alb:http-only",
            "The ALB serves plain HTTP: give certificate (or domain_name and domain_zone) "
            "for HTTPS with a redirect from port 80.",
        )
        acknowledge_control(
            listener,
            "CT.ELASTICLOADBALANCING.PR.1",
            "alb_http_to_https_redirection_check",
            "no certificate was given (certificate, or domain_name and domain_zone), so there is "
            "no HTTPS listener to redirect to; the synth warning gunicorn-alb:http-only says so",
            if_enforced="give certificate (or domain_name and domain_zone): port 80 then "
            "redirects to HTTPS",
        )
    if "0.0.0.0/0" in cidrs:
        acknowledge(
            load_balancer,
            "AwsSolutions-EC23",
            "an internet-facing load balancer serves the public on its listener ports only "
            f"({', '.join(map(str, ports))}); narrow it with ingress_cidrs",
        )
    for cidr in cidrs:
        for listener_port in ports:
            load_balancer.connections.allow_from(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(listener_port), f"port {listener_port}"
            )
    if domain_name is not None and domain_zone is not None:
        route53.ARecord(
            scope,
            "DnsRecord",
            zone=domain_zone,
            record_name=domain_name,
            target=route53.RecordTarget.from_alias(
                route53_targets.LoadBalancerTarget(load_balancer)
            ),
        )
    return Listeners(listener, redirect_listener, certificate)
