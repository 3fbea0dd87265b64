"""The CloudWatch Logs log group the instances ship Gunicorn's logs and the boot log to, and its
KMS key. What goes into it (files, streams, format) is :mod:`gunicorn_alb.instance_logs`."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from gunicorn_alb.compliance import KEEP_UNLESS_CREATE_FAILS, grants_only_for_aws_services
from gunicorn_alb.props import ServiceProps

DEFAULT_RETENTION = cdk.Duration.days(365)
"""A year: Control Tower's CT.CLOUDWATCH.PR.2 (a proactive control, enforced at deploy time as a
CloudFormation hook where enabled) requires at least 365 days. ``validation`` checks a given
retention against the day counts CloudWatch Logs allows (:mod:`gunicorn_alb.limits`)."""


def logs_key_statement() -> iam.PolicyStatement:
    """What the CloudWatch Logs user guide ("Encrypt log data in CloudWatch Logs using AWS KMS")
    asks of a key policy: the regional logs service principal may use the key, for log groups
    of this account and region only (encryption-context condition). The group's own ARN cannot
    be named: the group refers to the key, so the key's policy referring to the group would be a
    dependency cycle."""
    return iam.PolicyStatement(
        sid="AllowCloudWatchLogsOfThisAccountAndRegion",
        principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
        actions=[
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*",
        ],
        resources=["*"],
        conditions={
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}"
                    ":log-group:*"
                )
            }
        },
    )


def new_instance_log_group(
    scope: Construct,
    id: str,
    *,
    retention: cdk.Duration,
    encryption_key: kms.IKey | None,
) -> tuple[logs.LogGroup, kms.IKey]:
    """A log group that keeps logs ``retention`` (whole days, checked by ``validation``; a token
    is passed on), encrypted with ``encryption_key``, or with a new customer-managed key (with
    rotation, grants only for AWS services: Control Tower CT.KMS.PR.3) when None. Both are
    retained when the stack is deleted, like CDK's defaults, so the logs stay readable until they
    expire; but a failed first create deletes them (``KEEP_UNLESS_CREATE_FAILS``). An imported
    key's policy cannot be changed from here: a warning says what to grant."""
    key = encryption_key
    if key is None:
        key = kms.Key(
            scope,
            f"{id}Key",
            description="Encrypts the gunicorn-alb instance logs (CloudWatch Logs)",
            enable_key_rotation=True,
            removal_policy=KEEP_UNLESS_CREATE_FAILS,
        )
        key.add_to_resource_policy(grants_only_for_aws_services())
    added = key.add_to_resource_policy(logs_key_statement())
    if not added.statement_added:
        cdk.Annotations.of(scope).add_warning_v2(
            "gunicorn-alb:log-key-policy",
            "log_encryption_key is imported, so its key policy cannot be changed here: allow the "
            "principal logs.<region>.amazonaws.com kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, "
            "kms:GenerateDataKey* and kms:Describe* with the condition ArnLike "
            "kms:EncryptionContext:aws:logs:arn arn:<partition>:logs:<region>:<account>:"
            "log-group:*, or the log group cannot be created.",
        )
    # RetentionInDays set on the resource: any allowed day count (or a parameter's token), where
    # logs.RetentionDays would take only its enum's values.
    group = logs.LogGroup(
        scope,
        id,
        retention=logs.RetentionDays.INFINITE,
        encryption_key=key,
        removal_policy=KEEP_UNLESS_CREATE_FAILS,
    )
    cfn_group = group.node.default_child
    assert isinstance(cfn_group, logs.CfnLogGroup)
    days = retention.to_days(integral=False)
    cfn_group.retention_in_days = days if cdk.Token.is_unresolved(days) else int(days)
    return group, key


def add_instance_logs(
    scope: Construct, props: ServiceProps, launch_template: ec2.LaunchTemplate
) -> tuple[logs.LogGroup | None, kms.IKey | None]:
    """The ``InstanceLogs`` group (and its key) the instances may write to, unless
    ``instance_logs`` is off."""
    if not props.instance_logs:
        return None, None
    group, key = new_instance_log_group(
        scope,
        "InstanceLogs",
        retention=props.log_retention or DEFAULT_RETENTION,
        encryption_key=props.log_encryption_key,
    )
    assert launch_template.role is not None
    group.grant_write(launch_template.role)
    return group, key
