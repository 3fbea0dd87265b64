"""The termination drain in the template: the hook with its fixed name, the role's one permission
to complete lifecycle actions of its own group, instance tags in the metadata (the group's name),
the watcher's files and boot.env keys, the Auto Scaling endpoint without a NAT gateway; none of it
without the hook. One reference stack with the hook (isolated subnets, a termination_command;
conftest's ``isolated_drain_stack``), which tests/compliance/test_termination_drain.py checks with
cdk-nag, the Control Tower controls and cfn-lint."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk.assertions import Match

from gunicorn_alb import ApplicationLoadBalancedGunicornService, delivery, rendering, termination
from tests.conftest import DRAIN_CLEANUP, DRAIN_HOOK_SECONDS
from tests.helpers import instance_file, new_stack, user_data_text

CLEANUP = DRAIN_CLEANUP
HOOK_SECONDS = DRAIN_HOOK_SECONDS


@pytest.fixture(scope="module")
def drain_stack(isolated_drain_stack: cdk.Stack) -> cdk.Stack:
    return isolated_drain_stack


@pytest.fixture(scope="module")
def drain(isolated_drain_template: assertions.Template) -> assertions.Template:
    return isolated_drain_template


def _logical_id(template: assertions.Template, kind: str) -> str:
    (logical_id,) = template.find_resources(kind)
    return logical_id


def test_the_hook_has_the_name_the_watcher_completes(drain: assertions.Template) -> None:
    drain.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "LifecycleHookName": termination.HOOK_NAME,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": HOOK_SECONDS,
            "DefaultResult": "CONTINUE",
            "AutoScalingGroupName": {
                "Ref": _logical_id(drain, "AWS::AutoScaling::AutoScalingGroup")
            },
        },
    )


def test_the_role_may_complete_lifecycle_actions_of_its_own_group_only(
    drain: assertions.Template,
) -> None:
    """A policy of its own on the instance role: CompleteLifecycleAction on this group's ARN
    (EC2 Auto Scaling user guide, the tutorial's policy: ``arn:aws:autoscaling:*:ACCOUNT:
    autoScalingGroup:*:autoScalingGroupName/NAME``)."""
    group = _logical_id(drain, "AWS::AutoScaling::AutoScalingGroup")
    policies = drain.find_resources("AWS::IAM::Policy")
    granting = {
        logical_id: policy
        for logical_id, policy in policies.items()
        if termination.COMPLETE_ACTION in json.dumps(policy)
    }
    assert len(granting) == 1, sorted(granting)
    ((logical_id, policy),) = granting.items()
    assert "TerminationHookPolicy" in logical_id
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == termination.COMPLETE_ACTION
    assert statement["Effect"] == "Allow"
    resource = json.dumps(statement["Resource"])
    assert ":autoScalingGroup:*:autoScalingGroupName/" in resource
    assert json.dumps({"Ref": group}) in resource
    (attached,) = policy["Properties"]["Roles"]
    assert attached["Ref"].startswith("ServiceInstanceRole")


def test_nothing_the_group_needs_depends_on_the_policy(drain: assertions.Template) -> None:
    """The policy references the group; the group must not wait for the policy (a cycle)."""
    resources = drain.to_json()["Resources"]
    (policy,) = (k for k in resources if "TerminationHookPolicy" in k)
    depending = [k for k, r in resources.items() if policy in json.dumps(r.get("DependsOn", []))]
    assert depending == []


def test_instance_tags_are_in_the_metadata(drain: assertions.Template) -> None:
    drain.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": Match.object_like(
                        {"HttpTokens": "required", "InstanceMetadataTags": "enabled"}
                    )
                }
            )
        },
    )


def test_isolated_subnets_get_the_auto_scaling_endpoint(drain: assertions.Template) -> None:
    endpoints = drain.find_resources("AWS::EC2::VPCEndpoint")
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints.values()])
    assert ".autoscaling" in services, services


def test_the_instances_receive_the_watcher_and_the_clean_up(
    drain_stack: cdk.Stack, drain: assertions.Template
) -> None:
    """boot.env (in the user data) names the hook; the watcher, its units and the clean-up come
    with the other static files in the InstanceFiles asset."""
    user_data = user_data_text(drain)
    boot_env = delivery.parse_env(delivery.written_file(user_data, rendering.BOOT_ENV_PATH) or "")
    assert boot_env["TERMINATION_HOOK_NAME"] == termination.HOOK_NAME
    assert boot_env["TERMINATION_COMPLETION_SECONDS"] == str(termination.COMPLETION_BUDGET_SECONDS)
    assert boot_env["TERMINATION_CLEANUP_UNIT"] == termination.CLEANUP_UNIT
    for path in (
        termination.WATCHER_PATH,
        termination.WATCHER_SERVICE_PATH,
        termination.WATCHER_TIMER_PATH,
        termination.CLEANUP_UNIT_PATH,
    ):
        assert instance_file(drain_stack, user_data, path), path
    command = instance_file(drain_stack, user_data, termination.CLEANUP_ENV_PATH) or ""
    assert delivery.parse_env(command)["GUNICORN_ALB_TERMINATION"] == CLEANUP
    unit = instance_file(drain_stack, user_data, termination.CLEANUP_UNIT_PATH) or ""
    assert f"TimeoutStartSec={termination.CLEANUP_TIMEOUT_SECONDS}" in unit
    assert "User=gunicorn-app" in unit


def test_without_the_hook_there_is_no_drain(reference_template: assertions.Template) -> None:
    reference_template.resource_count_is("AWS::AutoScaling::LifecycleHook", 0)
    assert termination.COMPLETE_ACTION not in json.dumps(reference_template.to_json())
    (launch,) = reference_template.find_resources("AWS::EC2::LaunchTemplate").values()
    assert "InstanceMetadataTags" not in launch["Properties"]["LaunchTemplateData"].get(
        "MetadataOptions", {}
    )
    user_data = user_data_text(reference_template)
    boot_env = delivery.parse_env(delivery.written_file(user_data, rendering.BOOT_ENV_PATH) or "")
    assert boot_env["TERMINATION_HOOK_NAME"] == ""
    assert boot_env["TERMINATION_CLEANUP_UNIT"] == ""
    assert delivery.written_file(user_data, termination.WATCHER_PATH) is None


def _service(**props: Any) -> ApplicationLoadBalancedGunicornService:
    stack, vpc = new_stack()
    return ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)


def test_fails_when_termination_command_has_no_hook() -> None:
    with pytest.raises(ValueError, match="termination_command needs termination_hook_timeout"):
        _service(termination_command="echo bye")


def test_fails_when_the_hook_is_shorter_than_the_drain() -> None:
    """Idle 60 s: 6 + 75 (stop timeout) + 120 (clean-up) + 60 (completion) = 261 s."""
    with pytest.raises(
        ValueError,
        match=re.escape(
            "termination_hook_timeout (260 s) must be at least 261 s: 6 s to notice the "
            "termination + 75 s stop timeout + 120 s for termination_command + 60 s to complete"
        ),
    ):
        _service(termination_hook_timeout=cdk.Duration.seconds(260), termination_command="echo")


def test_fails_when_termination_command_is_not_one_line() -> None:
    with pytest.raises(ValueError, match="termination_command must be one line of bash"):
        _service(termination_hook_timeout=cdk.Duration.minutes(10), termination_command="a\nb")


def test_fails_when_a_propagated_tag_key_has_a_slash() -> None:
    """EC2 user guide, "View tags for your EC2 instances using instance metadata": with tags in
    the metadata, tag keys hold only letters, digits and ``+ - = . , _ : @``; other keys make new
    instances fail to launch. Tags are applied at synth, so the check runs there."""
    service = _service(termination_hook_timeout=cdk.Duration.minutes(5))
    cdk.Tags.of(service).add("team/owner", "web")
    with pytest.raises(Exception, match="propagates the tag key 'team/owner'"):
        cdk.App.of(service).synth()  # type: ignore[union-attr]
