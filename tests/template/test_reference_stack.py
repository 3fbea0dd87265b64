"""The reference stack, built with the cdk.json context exactly as `cdk synth` builds it."""

from __future__ import annotations

import re

import pytest
from aws_cdk import assertions
from aws_cdk.assertions import Match

from gunicorn_alb.timeouts import IDLE_TIMEOUT_MAX, IDLE_TIMEOUT_MIN
from stacks.gunicorn_service_stack import IDLE_TIMEOUT_PATTERN, GunicornServiceStack
from tests.conftest import CERTIFICATE_ARN
from tests.helpers import env_value, new_app, user_data_text


@pytest.fixture(scope="module")
def template(reference_template: assertions.Template) -> assertions.Template:
    return reference_template


def test_idle_timeout_is_a_parameter_of_whole_seconds(template: assertions.Template) -> None:
    """A CloudFormation ``Number`` parameter accepts decimals such as ``60.5``, and
    ``AllowedPattern`` applies to ``String`` parameters only (CloudFormation user guide,
    "Parameters": AllowedPattern, "A regular expression that represents the patterns to allow
    for String types"): a String with a pattern is what makes CloudFormation refuse 60.5 before
    it creates anything. The ALB attribute is a string anyway."""
    template.has_parameter(
        "IdleTimeoutSeconds",
        {
            "Type": "String",
            "AllowedPattern": IDLE_TIMEOUT_PATTERN,
            "ConstraintDescription": Match.string_like_regexp(
                "whole number of seconds from 1 to 4000"
            ),
            "Default": "60",
            "Description": Match.string_like_regexp(
                r"this value \+ 5 s \(65 s for the default 60 s\)"
            ),
        },
    )
    assert "MinValue" not in template.to_json()["Parameters"]["IdleTimeoutSeconds"]


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("60.5", False), ("0", False), ("4001", False), ("01", False), ("060", False),
     ("", False), ("-5", False), ("60 ", False), ("1e3", False),
     ("1", True), ("60", True), ("999", True), ("1000", True), ("3999", True), ("4000", True)],
)  # fmt: skip
def test_the_parameter_pattern_allows_exactly_1_to_4000(value: str, allowed: bool) -> None:
    """CloudFormation matches the whole value against the pattern (Java regular expressions);
    the pattern keeps to the subset Python's ``re`` reads the same way: anchors, classes, braces,
    alternation."""
    assert (re.fullmatch(IDLE_TIMEOUT_PATTERN, value) is not None) is allowed
    assert re.fullmatch(r"[\^$()|\[\]0-9{},-]+", IDLE_TIMEOUT_PATTERN)


def test_the_pattern_admits_every_whole_second_the_model_allows() -> None:
    admitted = {str(n) for n in range(0, 10000) if re.fullmatch(IDLE_TIMEOUT_PATTERN, str(n))}
    assert admitted == {str(n) for n in range(IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX + 1)}


def test_alb_and_instances_take_the_same_parameter(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "idle_timeout.timeout_seconds", "Value": {"Ref": "IdleTimeoutSeconds"}}]
            )
        },
    )
    user_data = user_data_text(template)
    assert env_value(user_data, "IDLE_TIMEOUT_SECONDS") == '{{"Ref": "IdleTimeoutSeconds"}}'
    assert env_value(user_data, "KEEPALIVE_MARGIN_SECONDS") == "5"


def test_vpc_has_two_azs_and_one_nat_gateway(template: assertions.Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::Subnet", 4)
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})


def test_url_is_an_output(template: assertions.Template) -> None:
    template.has_output("Url", {"Value": {"Fn::Join": ["", Match.array_with(["http://"])]}})


def test_no_launch_configuration_and_no_lookups(template: assertions.Template) -> None:
    template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
    # An env-agnostic stack: availability zones come from Fn::GetAZs, not a context lookup.
    template.has_resource_properties(
        "AWS::EC2::Subnet", {"AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]}}
    )


def test_the_parameter_default_follows_the_context() -> None:
    template = assertions.Template.from_stack(
        GunicornServiceStack(new_app(), "Reference", idle_timeout_seconds=120)
    )
    template.has_parameter(
        "IdleTimeoutSeconds",
        {
            "Default": "120",
            "Description": Match.string_like_regexp(r"\(125 s for the default 120 s\)"),
        },
    )


def test_fails_when_the_context_idle_timeout_is_out_of_range() -> None:
    with pytest.raises(
        ValueError, match="idle_timeout must be between 1 and 4000 seconds, got 5000"
    ):
        GunicornServiceStack(new_app(), "Reference", idle_timeout_seconds=5000)


@pytest.fixture(scope="module")
def https_protected(reference_https_template: assertions.Template) -> assertions.Template:
    """The reference stack with a certificate and deletion protection on (shared)."""
    return reference_https_template


def test_a_certificate_arn_gives_https_with_a_redirect(
    https_protected: assertions.Template,
) -> None:
    template = https_protected
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [{"CertificateArn": CERTIFICATE_ARN}]},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect"})]},
    )
    template.has_output("Url", {"Value": {"Fn::Join": ["", Match.array_with(["https://"])]}})


def _deletion_protection(template: assertions.Template) -> str:
    (alb,) = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = alb["Properties"]["LoadBalancerAttributes"]
    return str(next(a["Value"] for a in attributes if a["Key"] == "deletion_protection.enabled"))


def test_deletion_protection_is_off_by_default_so_a_failed_create_can_roll_back(
    reference_template: assertions.Template,
) -> None:
    """With ALB deletion protection on, a stack whose first create fails (one instance that
    signals failure is enough) cannot delete the ALB while rolling back: the stack ends in
    ``ROLLBACK_FAILED`` ("Load balancer ... cannot be deleted because deletion protection is
    enabled", Elastic Load Balancing user guide, "Deletion protection"), and ``cdk destroy``
    fails the same way. The reference stack turns it on only when asked
    (``-c deletionProtection=true``), after a first deploy has succeeded."""
    assert _deletion_protection(reference_template) == "false"


def test_deletion_protection_is_on_when_asked(https_protected: assertions.Template) -> None:
    assert _deletion_protection(https_protected) == "true"


def test_the_flow_log_group_is_encrypted_with_its_own_key(
    reference_template: assertions.Template,
) -> None:
    """Control Tower CT.CLOUDWATCH.PR.3. The key lets CloudWatch Logs use it for this account's
    log groups only (CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS
    KMS": the ``kms:EncryptionContext:aws:logs:arn`` condition)."""
    (group,) = [
        group
        for logical_id, group in reference_template.find_resources("AWS::Logs::LogGroup").items()
        if logical_id.startswith("VpcFlowLog")
    ]
    key_id, attribute = group["Properties"]["KmsKeyId"]["Fn::GetAtt"]
    assert attribute == "Arn"
    key = reference_template.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    (logs_statement,) = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchLogs"
    ]
    assert "kms:EncryptionContext:aws:logs:arn" in logs_statement["Condition"]["ArnLike"]
    assert key["EnableKeyRotation"] is True


def test_public_subnets_give_no_public_ip(reference_template: assertions.Template) -> None:
    """Control Tower CT.EC2.PR.11: only the ALB and the NAT gateway (with its Elastic IP) are in
    the public subnets; nothing launched there gets a public IP by default."""
    subnets = reference_template.find_resources("AWS::EC2::Subnet").values()
    public = [
        s
        for s in subnets
        if {"Key": "aws-cdk:subnet-type", "Value": "Public"} in s["Properties"]["Tags"]
    ]
    assert len(public) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in public)
