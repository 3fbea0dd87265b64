"""ALB access logs that work in an environment-agnostic stack.

aws-cdk-lib's ``ApplicationLoadBalancer.log_access_logs`` needs a concrete region (it fails with
``RegionRequiredEnableBvAccess`` otherwise), because the bucket policy must name the ELB account
of the region. Regions opened since August 2022 deliver through the service principal
``logdelivery.elasticloadbalancing.amazonaws.com`` instead. This module writes the same policy for
any region at deploy time: a mapping from region to ELB account (from aws-cdk-lib's region
facts), the account principal only where the region has one, the service principal always.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import region_info
from constructs import Construct

from gunicorn_alb.compliance import acknowledge, acknowledge_control
from gunicorn_alb.props import ServiceProps

LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
_NONE = "none"


def new_log_bucket(scope: Construct, id: str, retention: cdk.Duration) -> s3.Bucket:
    """A bucket ALB access logs can be written to: SSE-S3 (the only encryption ALB log delivery
    supports), public access blocked, TLS-only, logs expire after ``retention``. The Control
    Tower S3 controls that do not fit a log bucket are acknowledged on it, each with its reason."""
    bucket = s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=False,
        lifecycle_rules=[s3.LifecycleRule(expiration=retention)],
        # Retain, not RetainExceptOnCreate like the keys and log groups: enabling access logs
        # makes the ALB write a test object (AWSLogs/<account>/ELBAccessLogTestFile; Elastic Load
        # Balancing user guide, "Enable access logs"), and CloudFormation cannot delete a bucket
        # that holds objects, so deleting it in a failed first create's rollback would end the
        # stack in ROLLBACK_FAILED. A retained bucket costs its few bytes of storage.
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    for control, rule, reason, if_enforced in _LOG_BUCKET_CONTROLS:
        acknowledge_control(bucket, control, rule, reason, if_enforced=if_enforced)
    return bucket


_LOG_BUCKET_CONTROLS = [
    ("CT.S3.PR.10", "s3_bucket_default_encryption_kms_check",
     "ALB access logs can only be delivered to a bucket encrypted with SSE-S3 (Elastic Load "
     "Balancing user guide, access logs: bucket requirements); a KMS key would stop delivery",
     "no setting meets it and keeps the logs: turn access logs off (access_logs=False) or ask "
     "the Control Tower administrator to exempt this bucket"),
    ("CT.S3.PR.2", "s3_bucket_logging_enabled_check",
     "this bucket receives the ALB's access logs; logging its own accesses would need yet "
     "another bucket, and it is private, TLS-only and written only by the log delivery",
     "pass access_logs_bucket, a bucket of yours that logs its accesses to another"),
    ("CT.S3.PR.11", "s3_bucket_versioning_enabled_check",
     "the ALB writes each log file once under a new key and nothing overwrites it; versions "
     "would only keep expired logs past the retention the lifecycle rule enforces",
     "pass access_logs_bucket, a versioned bucket of yours whose lifecycle rule also expires "
     "noncurrent versions"),
    ("CT.S3.PR.9", "s3_bucket_object_lock_enabled_check",
     "logs expire after the retention period; Object Lock (which needs versioning) would keep "
     "them past it, and legal retention is the account owner's decision, not the construct's",
     "pass access_logs_bucket, a bucket of yours with Object Lock and the retention your "
     "auditors set"),
    ("CT.S3.PR.4", "s3_event_notifications_enabled_check",
     "nothing consumes events of new log files; Athena or a log pipeline reads the bucket on "
     "demand",
     "send the bucket's events to EventBridge (service.access_logs_bucket."
     "enable_event_bridge_notification())"),
]  # fmt: skip


def _elb_accounts(scope: Construct) -> cdk.CfnMapping:
    """One mapping per stack: region -> the ELB account that writes access logs there."""
    stack = cdk.Stack.of(scope)
    existing = stack.node.try_find_child("GunicornAlbElbLogAccounts")
    if isinstance(existing, cdk.CfnMapping):
        return existing
    return cdk.CfnMapping(
        stack,
        "GunicornAlbElbLogAccounts",
        mapping={
            region.name: {"account": region.elbv2_account or _NONE}
            for region in region_info.RegionInfo.regions
        },
    )


def enable_access_logs(
    load_balancer: elbv2.ApplicationLoadBalancer, bucket: s3.IBucket, prefix: str
) -> None:
    """Turn on access logs to ``bucket`` under ``prefix``, with the bucket policy they need."""
    scope = load_balancer.node.scope
    assert isinstance(scope, Construct)
    stack = cdk.Stack.of(load_balancer)
    account = _elb_accounts(load_balancer).find_in_map(cdk.Aws.REGION, "account")
    has_account = cdk.CfnCondition(
        scope,
        "ElbLogAccountCondition",
        expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(account, _NONE)),
    )
    account_principal = cdk.Fn.condition_if(
        has_account.logical_id,
        f"arn:{cdk.Aws.PARTITION}:iam::{account}:root",
        cdk.Aws.NO_VALUE,
    )
    result = bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AlbAccessLogDelivery",
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{prefix}/AWSLogs/{stack.account}/*")],
            principals=[
                iam.ServicePrincipal(LOG_DELIVERY_PRINCIPAL),
                iam.ArnPrincipal(cdk.Token.as_string(account_principal)),
            ],
        )
    )
    if not result.statement_added:
        cdk.Annotations.of(load_balancer).add_warning_v2(
            "gunicorn-alb:access-logs-bucket-policy",
            f"The access-log bucket is imported, so its policy cannot be changed here: allow "
            f"{LOG_DELIVERY_PRINCIPAL} (and, in regions opened before August 2022, the region's "
            f"ELB account) s3:PutObject on {prefix}/AWSLogs/<account>/* yourself, or the ALB "
            "cannot be created.",
        )
    load_balancer.set_attribute("access_logs.s3.enabled", "true")
    load_balancer.set_attribute("access_logs.s3.bucket", bucket.bucket_name)
    load_balancer.set_attribute("access_logs.s3.prefix", prefix)
    # The ALB checks that it can write to the bucket when the attribute is set.
    if result.policy_dependable is not None:
        load_balancer.node.add_dependency(result.policy_dependable)


def add_access_logs(
    scope: Construct, load_balancer: elbv2.ApplicationLoadBalancer, props: ServiceProps
) -> s3.IBucket | None:
    """Access logs to ``props.access_logs_bucket`` or a new ``AccessLogsBucket`` (None when
    ``access_logs`` is off)."""
    if not props.access_logs:
        return None
    bucket = props.access_logs_bucket
    if bucket is None:
        bucket = new_log_bucket(
            scope, "AccessLogsBucket", props.access_logs_retention or cdk.Duration.days(90)
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "this bucket receives the ALB's access logs; logging its own accesses would "
            "need yet another bucket, and it is private, TLS-only and SSE-S3 encrypted",
        )
    enable_access_logs(load_balancer, bucket, props.access_logs_prefix)
    return bucket
