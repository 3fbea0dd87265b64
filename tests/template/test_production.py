"""Production defaults and options: TLS, ALB hygiene, access logs, instance egress."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from tests.helpers import new_stack

CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234"


def build(**props: Any) -> tuple[cdk.Stack, ApplicationLoadBalancedGunicornService]:
    stack, vpc = new_stack()
    return stack, ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)


@pytest.fixture(scope="module")
def default() -> assertions.Template:
    stack, _ = build()
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def https() -> tuple[assertions.Template, cdk.Stack]:
    """One stack with the TLS and hygiene options turned."""
    stack, vpc = new_stack()
    ApplicationLoadBalancedGunicornService(
        stack,
        "Service",
        vpc=vpc,
        certificate=acm.Certificate.from_certificate_arn(stack, "Cert", CERT),
        ingress_cidrs=["203.0.113.0/24", "198.51.100.0/24"],
        desync_mitigation_mode="strictest",
        deletion_protection=True,
        termination_hook_timeout=cdk.Duration.minutes(5),
    )
    return assertions.Template.from_stack(stack), stack


def _attributes(template: assertions.Template) -> dict[str, Any]:
    (alb,) = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    return {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}


def test_https_listener_with_a_current_tls_policy_and_a_redirect(https) -> None:  # type: ignore[no-untyped-def]
    template, _ = https
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": CERT}],
            "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
            "DefaultActions": [Match.object_like({"Type": "forward"})],
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": {
                        "Port": "443",
                        "Protocol": "HTTPS",
                        "StatusCode": "HTTP_301",
                    },
                }
            ],
        },
    )


def test_ingress_is_limited_to_the_given_cidrs_on_both_ports(https) -> None:  # type: ignore[no-untyped-def]
    template, _ = https
    groups = template.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("LoadBalancer")}},
    )
    (group,) = groups.values()
    rules = {(r["CidrIp"], r["FromPort"]) for r in group["Properties"]["SecurityGroupIngress"]}
    assert rules == {
        (cidr, port) for cidr in ("203.0.113.0/24", "198.51.100.0/24") for port in (443, 80)
    }


def test_alb_hygiene_defaults(default: assertions.Template) -> None:
    attributes = _attributes(default)
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["routing.http.desync_mitigation_mode"] == "defensive"
    assert attributes["deletion_protection.enabled"] == "false"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.prefix"] == "alb"


def test_alb_hygiene_options(https) -> None:  # type: ignore[no-untyped-def]
    attributes = _attributes(https[0])
    assert attributes["routing.http.desync_mitigation_mode"] == "strictest"
    assert attributes["deletion_protection.enabled"] == "true"


def test_http_only_draws_a_warning_a_user_can_acknowledge(default: assertions.Template) -> None:
    stack, _ = build()
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("serves plain HTTP")
    )
    assert len(warnings) == 1
    assert "gunicorn-alb:http-only" in str(warnings[0].entry.data)


def test_access_log_bucket_is_private_tls_only_sse_s3_and_expires(
    default: assertions.Template,
) -> None:
    default.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {"Rules": [{"ExpirationInDays": 90, "Status": "Enabled"}]},
        },
    )
    (policy,) = default.find_resources("AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    (delivery,) = [s for s in statements if s.get("Sid") == "AlbAccessLogDelivery"]
    assert delivery["Principal"]["Service"] == "logdelivery.elasticloadbalancing.amazonaws.com"
    # The region's ELB account, where it has one, from a mapping: no region needed at synth.
    assert "Fn::If" in delivery["Principal"]["AWS"]
    assert default.to_json()["Mappings"]["GunicornAlbElbLogAccounts"]["us-east-1"] == {
        "account": "127311923021"
    }


def test_a_users_log_bucket_is_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack, vpc = new_stack()
    bucket = s3.Bucket(stack, "Logs", encryption=s3.BucketEncryption.S3_MANAGED)
    service = ApplicationLoadBalancedGunicornService(
        stack, "Service", vpc=vpc, access_logs_bucket=bucket
    )
    assert service.access_logs_bucket is bucket
    template = assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::S3::Bucket", 1)


def test_an_imported_log_bucket_draws_a_warning_about_its_policy() -> None:
    stack, vpc = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Logs", "my-alb-logs")
    ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, access_logs_bucket=bucket)
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("access-log bucket is imported")
    )
    assert len(warnings) == 1


def test_instances_may_only_reach_https(default: assertions.Template) -> None:
    groups = default.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("Gunicorn instances")}},
    )
    (group,) = groups.values()
    assert [
        (r["CidrIp"], r["IpProtocol"], r["FromPort"], r["ToPort"])
        for r in group["Properties"]["SecurityGroupEgress"]
    ] == [("0.0.0.0/0", "tcp", 443, 443)]


def test_domain_name_makes_a_dns_validated_certificate_and_an_alias() -> None:
    stack, vpc = new_stack()
    zone = route53.HostedZone.from_hosted_zone_attributes(
        stack, "Zone", hosted_zone_id="Z123", zone_name="example.com"
    )
    ApplicationLoadBalancedGunicornService(
        stack, "Service", vpc=vpc, domain_name="app.example.com", domain_zone=zone
    )
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {"DomainName": "app.example.com", "ValidationMethod": "DNS"},
    )
    template.has_resource_properties(
        "AWS::Route53::RecordSet", {"Name": "app.example.com.", "Type": "A"}
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Port": 443, "Protocol": "HTTPS"}
    )


def test_termination_hook_holds_instances_after_draining(https) -> None:  # type: ignore[no-untyped-def]
    https[0].has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": 300,
            "DefaultResult": "CONTINUE",
        },
    )


def _fails(match: str, **props: Any) -> None:
    with pytest.raises(ValueError, match=match):
        build(**props)


def test_fails_when_a_certificate_is_given_with_an_http_only_listener() -> None:
    stack, vpc = new_stack()
    with pytest.raises(ValueError, match="listener_protocol HTTP cannot use a certificate"):
        ApplicationLoadBalancedGunicornService(
            stack,
            "Service",
            vpc=vpc,
            certificate=acm.Certificate.from_certificate_arn(stack, "Cert", CERT),
            listener_protocol=cdk.aws_elasticloadbalancingv2.ApplicationProtocol.HTTP,
        )


def test_fails_when_https_has_no_certificate() -> None:
    _fails(
        "listener_protocol HTTPS needs a certificate",
        listener_protocol=cdk.aws_elasticloadbalancingv2.ApplicationProtocol.HTTPS,
    )


def test_fails_when_desync_mode_is_not_allowed() -> None:
    _fails(
        r"desync_mitigation_mode must be one of defensive, strictest, got 'monitor'",
        desync_mitigation_mode="monitor",
    )


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "everyone", "10.0.0.1/8"])
def test_fails_when_an_ingress_cidr_does_not_parse(cidr: str) -> None:
    _fails(
        rf"ingress_cidrs must hold IPv4 CIDRs such as 203.0.113.0/24, got '{cidr}'",
        ingress_cidrs=[cidr],
    )


def test_fails_when_the_log_bucket_uses_kms() -> None:
    stack, vpc = new_stack()
    bucket = s3.Bucket(stack, "Logs", encryption_key=kms.Key(stack, "Key"))
    with pytest.raises(ValueError, match="access_logs_bucket must use SSE-S3 encryption"):
        ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, access_logs_bucket=bucket)


def test_fails_when_domain_name_has_no_zone() -> None:
    _fails("domain_name and domain_zone go together", domain_name="app.example.com")
