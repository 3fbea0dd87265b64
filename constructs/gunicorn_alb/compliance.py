"""What the compliance checks need from the resources: acknowledgements of rules that do not
apply (cdk-nag and the Control Tower proactive controls), each with its reason, and the key-policy
statement that restricts grants to AWS services.

An acknowledgement is recorded on the construct that raises the finding, so it covers that
resource only. cdk-nag reports rules as ``AwsSolutions-<id>``; the Control Tower controls run
through ``cdklabs-cdk-validator-cfnguard``, whose findings are named by their cfn-guard rule
(``cdk-validator-cfnguard::<rule>``); the reason starts with the control id (``CT.S3.PR.2``).

An acknowledgement silences the synth-time check only. Where an account's Control Tower enables a
control as a proactive control, it runs as a CloudFormation hook (``preCreate``/``preUpdate``) on
the deployed template, knows nothing of these acknowledgements, and fails the resource (AWS Control
Tower user guide, "Proactive controls"). So every Control Tower acknowledgement also says what the
app's owner can change where the control is enforced (``acknowledge_control``'s ``if_enforced``).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct

CFN_GUARD_PLUGIN = "cdk-validator-cfnguard"
"""The name the Control Tower validation plugin reports under."""

KEEP_UNLESS_CREATE_FAILS = cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
"""The removal policy of the KMS keys and the log groups: kept when the stack is deleted or the
resource replaced, but deleted when the stack operation that created it rolls back (CloudFormation
``DeletionPolicy: RetainExceptOnCreate``), so a failed first deploy leaves no key (billed every
month) and no log group behind. Not for the access-log bucket (``access_logs``: the ALB writes a
test object into it, and a bucket that holds objects cannot be deleted)."""


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge a compliance rule on ``scope``, with the reason it does not apply."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


ENFORCED_NOTE = (
    "acknowledged for the synth-time check only: where Control Tower enables {control} as a "
    "proactive control (a CloudFormation hook), this resource still fails it at deploy; then "
)
"""What every Control Tower acknowledgement says after its reason, before ``if_enforced``."""


def acknowledge_control(
    scope: IConstruct, control: str, rule: str, reason: str, *, if_enforced: str
) -> None:
    """Acknowledge a Control Tower proactive control (``control``, e.g. ``CT.S3.PR.2``, checked by
    the cfn-guard rule ``rule``) on ``scope``, with the reason it does not apply here and what the
    app's owner can change where the control is enforced as a CloudFormation hook
    (``if_enforced``), which no acknowledgement reaches."""
    note = ENFORCED_NOTE.format(control=control)
    acknowledge(scope, f"{CFN_GUARD_PLUGIN}::{rule}", f"{control}: {reason}. {note}{if_enforced}")


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
