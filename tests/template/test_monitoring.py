"""Alarms for the keep-alive race, the dashboard, the alarm topic and ASG notifications."""

from __future__ import annotations

import pytest
from aws_cdk import assertions
from aws_cdk.assertions import Match

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from gunicorn_alb.monitoring import AlarmThresholds
from tests.helpers import new_stack


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack, vpc = new_stack()
    ApplicationLoadBalancedGunicornService(
        stack, "Service", vpc=vpc, alarm_thresholds=AlarmThresholds(elb_502=3)
    )
    return assertions.Template.from_stack(stack)


@pytest.mark.parametrize(
    ("metric", "statistic", "threshold", "periods"),
    [
        ("HTTPCode_ELB_502_Count", "Sum", 3, 1),
        ("HTTPCode_ELB_504_Count", "Sum", 5, 1),
        ("HTTPCode_Target_5XX_Count", "Sum", 10, 1),
        ("TargetConnectionErrorCount", "Sum", 1, 1),
        ("UnHealthyHostCount", "Maximum", 1, 3),
    ],
)
def test_alarm(
    template: assertions.Template, metric: str, statistic: str, threshold: float, periods: int
) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": metric,
            "Namespace": "AWS/ApplicationELB",
            "Statistic": statistic,
            "Threshold": threshold,
            "EvaluationPeriods": periods,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": Match.string_like_regexp("AlarmTopic")}],
        },
    )


def test_response_time_p99_alarm(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "TargetResponseTime", "ExtendedStatistic": "p99", "Threshold": 2},
    )
    template.resource_count_is("AWS::CloudWatch::Alarm", 6)


def test_dashboard_shows_the_race_beside_target_errors(template: assertions.Template) -> None:
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("HTTPCode_ELB_502_Count", "HTTPCode_Target_5XX_Count", "RequestCount",
                   "UnHealthyHostCount", "TargetResponseTime"):  # fmt: skip
        assert metric in body


def test_alarm_topic_is_encrypted_and_tls_only(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_asg_notifies_every_scaling_event(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "NotificationConfigurations": [
                {
                    "TopicARN": {"Ref": Match.string_like_regexp("AlarmTopic")},
                    "NotificationTypes": Match.array_with(
                        ["autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_TERMINATE"]
                    ),
                }
            ]
        },
    )


def test_monitoring_can_be_turned_off() -> None:
    stack, vpc = new_stack()
    service = ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, monitoring=False)
    assert service.monitoring is None and service.alarm_topic is None
    template = assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    template.resource_count_is("AWS::SNS::Topic", 0)
