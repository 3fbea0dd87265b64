"""What the compliance checks need from the resources: acknowledgements of rules that do not
apply (cdk-nag and the Control Tower proactive controls), each with its reason, and the key-policy
statement that restricts grants to AWS services.

An acknowledgement is recorded on the construct that raises the finding, so it covers that
resource only. cdk-nag reports rules as ``AwsSolutions-<id>``; the Control Tower controls run
through ``cdklabs-cdk-validator-cfnguard``, whose findings are named by their cfn-guard rule
(``cdk-validator-cfnguard::<rule>``); the reason starts with the control id (``CT.S3.PR.2``).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct

CFN_GUARD_PLUGIN = "cdk-validator-cfnguard"
"""The name the Control Tower validation plugin reports under."""


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge a compliance rule on ``scope``, with the reason it does not apply."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def acknowledge_control(scope: IConstruct, control: str, rule: str, reason: str) -> None:
    """Acknowledge a Control Tower proactive control (``control``, e.g. ``CT.S3.PR.2``, checked by
    the cfn-guard rule ``rule``) on ``scope``."""
    acknowledge(scope, f"{CFN_GUARD_PLUGIN}::{rule}", f"{control}: {reason}")


def grants_only_for_aws_services() -> iam.PolicyStatement:
    """A key-policy statement denying ``kms:CreateGrant`` unless the grant is for an AWS resource
    or an AWS service asks (Control Tower CT.KMS.PR.3; AWS KMS developer guide, condition keys
    ``kms:GrantIsForAWSResource`` and ``aws:PrincipalIsAWSService``)."""
    return iam.PolicyStatement(
        sid="DenyGrantsExceptForAwsServices",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["kms:CreateGrant"],
        resources=["*"],
        conditions={
            "BoolIfExists": {
                "kms:GrantIsForAWSResource": "false",
                "aws:PrincipalIsAWSService": "false",
            }
        },
    )
