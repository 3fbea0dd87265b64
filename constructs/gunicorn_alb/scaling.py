"""The Auto Scaling group's capacity: the mixed-instances policy for several instance types (and
Spot), and the target-tracking policies. The numbers and rules live in :mod:`gunicorn_alb.capacity`.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2

from gunicorn_alb.capacity import INSTANCE_WARMUP
from gunicorn_alb.props import ServiceProps


def mixed_instances_policy(
    launch_template: ec2.ILaunchTemplate,
    instance_types: Sequence[ec2.InstanceType],
    *,
    spot_percentage: int,
    on_demand_base_capacity: int,
) -> autoscaling.MixedInstancesPolicy:
    """Launch the template as any of ``instance_types`` (the first preferred for On-Demand);
    ``spot_percentage`` of the capacity above ``on_demand_base_capacity`` runs on Spot, placed by
    the price-capacity-optimized strategy (the pools least likely to be interrupted)."""
    return autoscaling.MixedInstancesPolicy(
        launch_template=launch_template,
        launch_template_overrides=[
            autoscaling.LaunchTemplateOverrides(instance_type=instance_type)
            for instance_type in instance_types
        ],
        instances_distribution=autoscaling.InstancesDistribution(
            on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
            on_demand_base_capacity=on_demand_base_capacity,
            on_demand_percentage_above_base_capacity=100 - spot_percentage,
            spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
        ),
    )


def add_target_tracking(
    group: autoscaling.AutoScalingGroup, props: ServiceProps
) -> dict[str, autoscaling.TargetTrackingScalingPolicy]:
    """Target-tracking policies on the ALB's requests per target and, optionally, average CPU.

    The group must already be attached to a target group that a listener forwards to
    (``ALBRequestCountPerTarget`` is labelled with both). Scale-in respects the drain: the group
    deregisters the instance and waits the target group's deregistration delay before it
    terminates it."""
    policies: dict[str, autoscaling.TargetTrackingScalingPolicy] = {}
    if props.requests_per_target_per_minute is not None:
        policies["request_count"] = group.scale_on_request_count(
            "RequestCountScaling", target_requests_per_minute=props.requests_per_target_per_minute
        )
    if props.cpu_target_utilization_percent is not None:
        policies["cpu"] = group.scale_on_cpu_utilization(
            "CpuScaling", target_utilization_percent=props.cpu_target_utilization_percent
        )
    return policies


def group_metrics() -> list[autoscaling.GroupMetrics]:
    """Every group metric at 1-minute granularity (free of charge): the dashboard's capacity
    widget draws ``GroupInServiceInstances``, ``GroupDesiredCapacity`` and ``GroupMaxSize``."""
    return [autoscaling.GroupMetrics.all()]


def warmup(grace_period: int) -> cdk.Duration:
    """How long a new instance's metrics are left out of the group's
    (:data:`gunicorn_alb.capacity.INSTANCE_WARMUP`, or the grace period when shorter)."""
    return cdk.Duration.seconds(min(grace_period, INSTANCE_WARMUP))
