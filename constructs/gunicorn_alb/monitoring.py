"""Alarms and a dashboard for the keep-alive race and the fleet's health.

The race's signature is a load-balancer-generated 502 (``HTTPCode_ELB_502_Count``) while targets
report no 5XX (``HTTPCode_Target_5XX_Count``), so the two are alarmed separately.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from gunicorn_alb.alarms import AlarmThresholds
from gunicorn_alb.compliance import KEEP_UNLESS_CREATE_FAILS, grants_only_for_aws_services
from gunicorn_alb.props import ServiceProps


class ServiceMonitoring(Construct):
    """CloudWatch alarms and a dashboard for one ALB and its target group.

    :param load_balancer: the ALB.
    :param target_group: its target group.
    :param thresholds: Default: - ``AlarmThresholds()``
    :param alarm_topic: where alarms notify. Default: - no notifications
    :param auto_scaling_group: the instances' group, for a capacity widget (its group metrics
        must be enabled). Default: - no capacity widget
    :param requests_per_target_per_minute: the request-count scaling target, drawn on the
        capacity widget. Default: - none drawn
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        thresholds: AlarmThresholds,
        alarm_topic: sns.ITopic | None,
        auto_scaling_group: autoscaling.IAutoScalingGroup | None = None,
        requests_per_target_per_minute: float | None = None,
    ) -> None:
        super().__init__(scope, id)
        five_minutes = cdk.Duration.minutes(5)
        lb_metrics = load_balancer.metrics
        tg_metrics = target_group.metrics

        def count(name: str) -> cloudwatch.Metric:
            return lb_metrics.custom(name, statistic="Sum", period=five_minutes)

        self.elb_502 = count("HTTPCode_ELB_502_Count")
        self.elb_504 = count("HTTPCode_ELB_504_Count")
        self.target_5xx = lb_metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five_minutes
        )
        self.target_connection_errors = lb_metrics.target_connection_error_count(
            period=five_minutes
        )
        self.unhealthy_hosts = tg_metrics.unhealthy_host_count(
            statistic="Maximum", period=cdk.Duration.minutes(1)
        )
        self.response_time_p99 = tg_metrics.target_response_time(
            statistic="p99", period=five_minutes
        )
        self.requests = lb_metrics.request_count(period=five_minutes)

        specs = [
            ("Elb502Alarm", self.elb_502, thresholds.elb_502, 1,
             "ALB-generated 502s: a target closed a connection the ALB reused (keep-alive race) "
             "or failed; compare with target 5XX"),
            ("Elb504Alarm", self.elb_504, thresholds.elb_504, 1,
             "ALB-generated 504s: targets did not answer within the idle timeout"),
            ("Target5xxAlarm", self.target_5xx, thresholds.target_5xx, 1,
             "5XX responses from the app itself"),
            ("TargetConnectionErrorAlarm", self.target_connection_errors,
             thresholds.target_connection_errors, 1,
             "the ALB could not connect to a target"),
            ("UnhealthyHostAlarm", self.unhealthy_hosts, thresholds.unhealthy_hosts, 3,
             "targets failing the health check"),
            ("ResponseTimeP99Alarm", self.response_time_p99, thresholds.response_time_p99, 3,
             "p99 target response time in seconds"),
        ]  # fmt: skip
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for alarm_id, metric, threshold, periods, description in specs:
            alarm = metric.create_alarm(
                self,
                alarm_id,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            if alarm_topic is not None:
                alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
            self.alarms[alarm_id] = alarm

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Load-balancer 502/504 (keep-alive race) vs target 5XX",
                left=[self.elb_502, self.elb_504, self.target_5xx],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Requests", left=[self.requests], width=12),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Target connection errors and unhealthy hosts",
                left=[self.target_connection_errors, self.unhealthy_hosts],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Target response time p99 (s)", left=[self.response_time_p99], width=12
            ),
        )
        if auto_scaling_group is not None:
            self._add_capacity_widget(
                auto_scaling_group, tg_metrics, requests_per_target_per_minute
            )

    def _add_capacity_widget(
        self,
        group: autoscaling.IAutoScalingGroup,
        tg_metrics: elbv2.IApplicationTargetGroupMetrics,
        target: float | None,
    ) -> None:
        """In-service and desired instances (EC2 Auto Scaling group metrics, published because
        the group enables them) against the requests per target the scaling policy tracks."""
        minute = cdk.Duration.minutes(1)

        def group_metric(name: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/AutoScaling",
                metric_name=name,
                dimensions_map={"AutoScalingGroupName": group.auto_scaling_group_name},
                statistic="Average",
                period=minute,
                label=label,
            )

        self.in_service_instances = group_metric("GroupInServiceInstances", "in service")
        self.desired_capacity = group_metric("GroupDesiredCapacity", "desired")
        self.max_size = group_metric("GroupMaxSize", "maximum")
        self.requests_per_target = tg_metrics.request_count_per_target(
            period=minute, label="requests per target per minute"
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Capacity: instances vs requests per target (scaling target)",
                left=[self.in_service_instances, self.desired_capacity, self.max_size],
                right=[self.requests_per_target],
                right_annotations=[
                    cloudwatch.HorizontalAnnotation(value=target, label="scaling target")
                ]
                if target is not None
                else None,
                left_y_axis=cloudwatch.YAxisProps(min=0, label="instances", show_units=False),
                width=24,
            )
        )


AUTO_SCALING_ROLE = "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
"""The path and name of EC2 Auto Scaling's default service-linked role, which publishes the
group's notifications."""


def new_alarm_topic(scope: Construct, id: str) -> sns.Topic:
    """An SNS topic for alarms and scaling notifications: TLS-only, encrypted with a
    customer-managed key (CloudWatch cannot publish to a topic under the AWS-managed ``aws/sns``
    key), with the policies AWS documents for each publisher.

    - Topic policy: ``AWS::SNS::TopicPolicy`` replaces SNS's default policy, so it must allow
      ``cloudwatch.amazonaws.com`` to ``sns:Publish``, limited to this account's alarms
      (re:Post knowledge center, "cloudwatch-receive-sns-for-alarm-trigger").
    - Key policy: CloudWatch and the Auto Scaling service-linked role
      ``AWSServiceRoleForAutoScaling`` need ``kms:GenerateDataKey*`` and ``kms:Decrypt`` to publish
      to an encrypted topic (Amazon SNS developer guide, "Key management", compatibility with AWS
      services; the role has no access to customer-managed keys unless the key policy grants it,
      EC2 Auto Scaling user guide, "Service-linked roles"). The role is named through
      ``aws:PrincipalArn`` rather than as a principal: a fresh account may not have it yet, and
      KMS rejects a policy that names a principal that does not exist.
    - Grants only for AWS services (Control Tower CT.KMS.PR.3).
    """
    key = kms.Key(
        scope,
        f"{id}Key",
        description="Encrypts the gunicorn-alb alarm topic",
        enable_key_rotation=True,
        removal_policy=KEEP_UNLESS_CREATE_FAILS,
    )
    publish_with_key = ["kms:Decrypt", "kms:GenerateDataKey*"]
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=publish_with_key,
            resources=["*"],
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowAutoScalingNotifications",
            principals=[iam.AnyPrincipal()],
            actions=publish_with_key,
            resources=["*"],
            conditions={
                "ArnEquals": {
                    "aws:PrincipalArn": (
                        f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/"
                        f"{AUTO_SCALING_ROLE}"
                    )
                }
            },
        )
    )
    key.add_to_resource_policy(grants_only_for_aws_services())
    topic = sns.Topic(scope, id, master_key=key, enforce_ssl=True)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
                "ArnLike": {
                    "aws:SourceArn": (
                        f"arn:{cdk.Aws.PARTITION}:cloudwatch:{cdk.Aws.REGION}:"
                        f"{cdk.Aws.ACCOUNT_ID}:alarm:*"
                    )
                },
            },
        )
    )
    return topic


def alarm_topic_for(scope: Construct, props: ServiceProps) -> sns.ITopic | None:
    """``props.alarm_topic``, or a new ``AlarmTopic`` when ``monitoring`` is on, else None."""
    if props.alarm_topic is None and props.monitoring:
        return new_alarm_topic(scope, "AlarmTopic")
    return props.alarm_topic


def add_monitoring(
    scope: Construct,
    props: ServiceProps,
    load_balancer: elbv2.ApplicationLoadBalancer,
    target_group: elbv2.ApplicationTargetGroup,
    alarm_topic: sns.ITopic | None,
    auto_scaling_group: autoscaling.IAutoScalingGroup | None = None,
) -> ServiceMonitoring | None:
    """The alarms and the dashboard (``Monitoring``), unless ``monitoring`` is off."""
    if not props.monitoring:
        return None
    return ServiceMonitoring(
        scope,
        "Monitoring",
        load_balancer=load_balancer,
        target_group=target_group,
        thresholds=props.alarm_thresholds or AlarmThresholds(),
        alarm_topic=alarm_topic,
        auto_scaling_group=auto_scaling_group,
        requests_per_target_per_minute=props.requests_per_target_per_minute,
    )
