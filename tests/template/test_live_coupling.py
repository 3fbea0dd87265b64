"""The construct wires the live coupling: the user data carries the target group and the coupling
agent, and the instance role may read the live idle timeout, and nothing else of ELB."""

from __future__ import annotations

from typing import Any

from gunicorn_alb import rendering
from tests.helpers import env_value, instance_file, user_data_text


def test_user_data_carries_the_target_group_and_the_agent(  # type: ignore[no-untyped-def]
    reference_stack, reference_template
) -> None:
    user_data = user_data_text(reference_template)
    (target_group,) = reference_template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert env_value(user_data, "TARGET_GROUP_ARN") == "{" + f'{{"Ref": "{target_group}"}}' + "}"
    assert env_value(user_data, "AWS_REGION") == '{{"Ref": "AWS::Region"}}'
    for path in (
        rendering.COUPLING_AGENT_PATH,
        rendering.COUPLING_SERVICE_PATH,
        rendering.COUPLING_TIMER_PATH,
    ):
        assert instance_file(reference_stack, user_data, path) is not None, path


def test_the_role_may_read_the_live_idle_timeout_only(reference_template) -> None:  # type: ignore[no-untyped-def]
    """DescribeTargetGroups and DescribeLoadBalancerAttributes support no resource-level
    permissions: the Service Authorization Reference (Elastic Load Balancing V2) lists no resource
    type for them, so a statement granting them must name "*"."""
    statements: list[dict[str, Any]] = [
        statement
        for policy in reference_template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    elb = [s for s in statements if "elasticloadbalancing" in str(s["Action"])]
    assert [(sorted(s["Action"]), s["Effect"], s["Resource"]) for s in elb] == [
        (
            [
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
            ],
            "Allow",
            "*",
        )
    ]
