"""The alarm path as AWS decides it: who may publish to the alarm topic and use its key.

Each test states the AWS requirement it encodes and where AWS documents it. They read the shared
reference template (no synth of their own).
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import assertions

ROLE_ARN_TAIL = ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


@pytest.fixture(scope="module")
def template(reference_template: assertions.Template) -> assertions.Template:
    return reference_template


def _only(template: assertions.Template, resource_type: str) -> dict[str, Any]:
    (resource,) = template.find_resources(resource_type).values()
    return resource


def _topic(template: assertions.Template) -> tuple[str, dict[str, Any]]:
    ((topic_id, topic),) = template.find_resources("AWS::SNS::Topic").items()
    return topic_id, topic["Properties"]


def _topic_key(template: assertions.Template) -> dict[str, Any]:
    """The key policy of the alarm topic's KMS key."""
    key_id, attribute = _topic(template)[1]["KmsMasterKeyId"]["Fn::GetAtt"]
    assert attribute == "Arn"
    key: dict[str, Any] = template.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    return key["KeyPolicy"]


def _statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement.get("Sid", ""): statement for statement in document["Statement"]}


def _joined(value: Any) -> str:
    """An ``Fn::Join`` of literals and pseudo parameters as one string, e.g. arn:${AWS::...}."""
    if isinstance(value, str):
        return value
    delimiter, parts = value["Fn::Join"]
    return delimiter.join(
        part if isinstance(part, str) else "${" + part["Ref"] + "}" for part in parts
    )


def test_cloudwatch_alarms_may_publish_to_the_topic(template: assertions.Template) -> None:
    """``AWS::SNS::TopicPolicy`` replaces the topic's default policy, so without an Allow for
    ``cloudwatch.amazonaws.com`` every alarm action fails with "not authorized to perform:
    SNS:Publish". AWS documents the statement, and its narrowing to the account's alarms with
    ``aws:SourceArn`` (re:Post knowledge center, "Why didn't I receive an SNS notification for my
    CloudWatch alarm trigger?", cloudwatch-receive-sns-for-alarm-trigger)."""
    policy = _only(template, "AWS::SNS::TopicPolicy")["Properties"]
    allow = _statements(policy["PolicyDocument"])["AllowCloudWatchAlarms"]
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": _topic(template)[0]}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert _joined(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    )


def test_the_topic_stays_tls_only(template: assertions.Template) -> None:
    """The TLS-only deny stays beside the Allow (Security Hub SNS controls; aws:SecureTransport)."""
    policy = _only(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_cloudwatch_may_use_the_topic_key(template: assertions.Template) -> None:
    """A service that publishes to an encrypted topic needs ``kms:GenerateDataKey*`` and
    ``kms:Decrypt`` on the topic's customer-managed key (Amazon SNS developer guide, "Key
    management": enable compatibility between event sources from AWS services and encrypted
    topics; CloudWatch is one of those sources)."""
    cloudwatch = _statements(_topic_key(template))["AllowCloudWatchAlarmsToPublish"]
    assert cloudwatch["Effect"] == "Allow"
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_the_auto_scaling_service_linked_role_may_use_the_topic_key(
    template: assertions.Template,
) -> None:
    """EC2 Auto Scaling publishes the group's notifications as its service-linked role
    ``AWSServiceRoleForAutoScaling``, whose permissions include AWS managed keys but not
    customer-managed ones: the key policy must grant it (EC2 Auto Scaling user guide,
    "Service-linked roles for Amazon EC2 Auto Scaling" and "Required AWS KMS key policy for use
    with encrypted volumes"). It is named through ``aws:PrincipalArn``, not as a principal: the
    role is created on first use, and KMS rejects a key policy whose principal does not exist
    ("MalformedPolicyDocumentException"), which would fail the first deploy in a fresh account."""
    policy = _topic_key(template)
    statement = _statements(policy)["AllowAutoScalingNotifications"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": "*"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    arn = _joined(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    assert arn == f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}{ROLE_ARN_TAIL}"
    # No statement names the role as a principal.
    assert "AWSServiceRoleForAutoScaling" not in str([s["Principal"] for s in policy["Statement"]])


def test_the_notifications_go_through_that_role(template: assertions.Template) -> None:
    """Without ``ServiceLinkedRoleARN`` the group uses the default service-linked role
    ``AWSServiceRoleForAutoScaling`` (EC2 Auto Scaling user guide, "Service-linked roles"), the
    one the key policy grants; the notifications go to the encrypted alarm topic."""
    group = _only(template, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert "ServiceLinkedRoleARN" not in group
    (notification,) = group["NotificationConfigurations"]
    topic_id, topic = _topic(template)
    assert notification["TopicARN"] == {"Ref": topic_id}
    assert topic["KmsMasterKeyId"]["Fn::GetAtt"][1] == "Arn"


def test_grants_of_the_topic_key_are_only_for_aws_services(template: assertions.Template) -> None:
    """Control Tower proactive control CT.KMS.PR.3: a key policy denies ``kms:CreateGrant`` to
    every principal unless the grant is for an AWS resource or the caller is an AWS service
    (AWS Control Tower user guide, "AWS KMS controls")."""
    deny = _statements(_topic_key(template))["DenyGrantsExceptForAwsServices"]
    assert deny == {
        "Sid": "DenyGrantsExceptForAwsServices",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "kms:CreateGrant",
        "Resource": "*",
        "Condition": {
            "BoolIfExists": {
                "kms:GrantIsForAWSResource": "false",
                "aws:PrincipalIsAWSService": "false",
            }
        },
    }
