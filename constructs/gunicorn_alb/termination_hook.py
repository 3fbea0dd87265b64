"""The termination hook's wiring (CDK): the hook on the group, the instance role's permission to
complete its lifecycle actions, and the synth-time check of the tag keys the instance metadata
then carries. What the drain does on the instance, and its numbers, are in
:mod:`gunicorn_alb.termination` (pure) and ``userdata/drain.sh``."""

from __future__ import annotations

import re

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct, IValidation

from gunicorn_alb import termination
from gunicorn_alb.compliance import acknowledge


def add_termination_hook(
    scope: Construct,
    launch_template: ec2.LaunchTemplate,
    group: autoscaling.AutoScalingGroup,
    heartbeat_timeout: cdk.Duration,
) -> None:
    """The named termination hook (the drain watcher completes it with CONTINUE; the heartbeat
    timeout is the fallback), the role's permission and the tag-key check."""
    group.add_lifecycle_hook(
        "TerminationHook",
        lifecycle_hook_name=termination.HOOK_NAME,
        lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
        heartbeat_timeout=heartbeat_timeout,
        default_result=autoscaling.DefaultResult.CONTINUE,
    )
    allow_lifecycle_completion(scope, launch_template, group)
    group.node.add_validation(MetadataTagKeys(group))


_METADATA_TAG_KEY = re.compile(r"^(?!\.{1,2}$|_index$)[A-Za-z0-9+=.,_:@-]+$")
"""A tag key EC2 accepts with instance tags in the metadata (EC2 user guide, "View tags for your
EC2 instances using instance metadata": letters, digits, ``+ - = . , _ : @``; not ``.``, ``..``
or ``_index``); other keys make new instances fail to launch."""


@jsii.implements(IValidation)
class MetadataTagKeys:
    """At synth, once the tags are applied: every tag the group propagates to its instances has a
    key the instance metadata allows (the termination drain turns instance tags on there)."""

    def __init__(self, group: autoscaling.AutoScalingGroup) -> None:
        self.group = group

    def validate(self) -> list[str]:
        cfn = self.group.node.default_child
        assert isinstance(cfn, autoscaling.CfnAutoScalingGroup)
        keys = [
            str(tag["key"])
            for tag in cfn.tags.render_tags() or []
            if tag.get("propagateAtLaunch") and not _METADATA_TAG_KEY.match(str(tag["key"]))
        ]
        return [
            f"termination_hook_timeout allows instance tags in the instance metadata, where EC2 "
            f"accepts tag keys of letters, digits and + - = . , _ : @ only (new instances fail "
            f"to launch otherwise); the group propagates the tag key {key!r} to its instances"
            for key in keys
        ]


def allow_lifecycle_completion(
    scope: Construct, launch_template: ec2.LaunchTemplate, group: autoscaling.AutoScalingGroup
) -> iam.Policy:
    """The instance role may complete lifecycle actions of this group only (the drain watcher's
    ``CompleteLifecycleAction``; the action supports the ``autoScalingGroup`` resource type). A
    policy of its own, attached to the role: the group depends on the launch template and so on
    the role, and nothing depends on this policy, so its reference to the group is no cycle."""
    role = launch_template.role
    assert isinstance(role, iam.Role), "new_launch_template gives the template its own role"
    policy = iam.Policy(
        scope,
        "TerminationHookPolicy",
        roles=[role],
        statements=[
            iam.PolicyStatement(
                actions=[termination.COMPLETE_ACTION], resources=[group.auto_scaling_group_arn]
            )
        ],
    )
    asg = group.node.default_child
    assert isinstance(asg, cdk.CfnResource)
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:"
        "<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/"
        f"<{cdk.Stack.of(group).resolve(cdk.Stack.of(group).get_logical_id(asg))}>]",
        "the * is the group's id, which CloudFormation does not return: the ARN names this "
        "group by its name (the EC2 Auto Scaling user guide's own policy for "
        "CompleteLifecycleAction has the same form)",
    )
    return policy
