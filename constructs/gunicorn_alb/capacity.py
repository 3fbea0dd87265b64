"""The capacity model: target-tracking scaling and the instance mix, checked. Pure Python with no
CDK import; the construct asks it and only wires resources.

Target tracking on ``ALBRequestCountPerTarget`` (requests per target per minute) is on by default.
Why 1000: the default Gunicorn on the default instance (2 vCPUs, ``workers_per_cpu`` 2, 4 threads)
holds 5 x 4 = 20 requests in flight; at 1000 requests a minute (16.7 a second) its threads are all
busy only when requests take 20 / 16.7 = 1.2 s on average (Little's law), so the group scales out
before requests queue for any app answering in well under a second. And 16.7 requests a second on
a burstable t3.small (baseline 20 % of each of its 2 vCPUs) stays within the baseline only while a
request costs under 0.4 / 16.7 = 24 ms of CPU: CPU-heavy apps add ``cpu_target_utilization_percent``
or lower the target.

The ranges AWS documents (a target above 0, CPU up to 100 %, Spot 0-100 %, at most 40 instance
types) are in :mod:`gunicorn_alb.limits`; the rules here are the construct's own (a policy needs
room between min and max capacity, Spot needs several instance types). Values that are
CloudFormation tokens are left to CloudFormation (``is_token``).

Scale-in goes through the drain: the Auto Scaling group deregisters the instance from the target
group and waits the deregistration delay (``timeouts.py``, rule ``drain-bounded-by-idle``) before
it terminates the instance (EC2 Auto Scaling user guide, "Use Elastic Load Balancing to distribute
incoming application traffic in your Auto Scaling group").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gunicorn_alb import limits

REQUESTS_PER_TARGET_PER_MINUTE_DEFAULT = 1000
INSTANCE_WARMUP = 300
"""Seconds a new instance's metrics stay out of the group's (``DefaultInstanceWarmup``): a boot
takes one to two minutes from launch to the health path answering (the boot check's
boot-to-signal plus the instance's start), so 5 minutes covers a slow one without leaving new
instances out of the scaling decisions for the whole boot budget (the grace period, 840 s, is the
upper bound a boot may take, not what it usually takes)."""
SPOT_INTERRUPTION_NOTICE = 120
"""Seconds of warning EC2 gives before it reclaims a Spot instance."""

IsToken = Callable[[object], bool]


def _never(_value: object) -> bool:
    return False


def check_scaling(
    requests_per_target_per_minute: float | None,
    cpu_target_utilization_percent: float | None,
    *,
    min_capacity: int | None,
    max_capacity: int | None,
    is_token: IsToken = _never,
) -> list[str]:
    """Problems with the target-tracking settings (empty if none). ``None`` turns a policy off;
    a capacity of ``None`` is one only known at deploy time (not checked)."""
    problems: list[str] = []
    targets = (
        ("requests_per_target_per_minute", requests_per_target_per_minute, "request-count"),
        ("cpu_target_utilization_percent", cpu_target_utilization_percent, "CPU"),
    )
    for name, value, policy in targets:
        if value is not None and not is_token(value):
            problems += [
                f"{problem} (or None for no {policy} scaling)"
                for problem in limits.check(name, value)
            ]
    policies = [f"{name}={value!r}" for name, value, _ in targets if value is not None]
    if policies and min_capacity is not None and min_capacity == max_capacity:
        problems.append(
            f"{' and '.join(policies)} leave the scaling policy no room: min_capacity equals "
            f"max_capacity ({min_capacity}); raise max_capacity, or set "
            "requests_per_target_per_minute=None (and cpu_target_utilization_percent=None) for "
            "a fixed-size group"
        )
    return problems


def check_instance_mix(
    instance_types: Sequence[str] | None,
    *,
    instance_type_given: bool,
    spot_percentage: int,
    on_demand_base_capacity: int | None,
    max_capacity: int | None,
    is_token: IsToken = _never,
) -> list[str]:
    """Problems with ``instance_types`` and the Spot settings (empty if none). The architecture
    the types share is :func:`gunicorn_alb.architecture.check_architecture`'s to check.

    :param instance_types: the instance type names given, or None.
    :param instance_type_given: whether ``instance_type`` was given too.
    :param max_capacity: None when only known at deploy time.
    """
    problems: list[str] = []
    if instance_types is not None:
        names = list(instance_types)
        if instance_type_given:
            problems.append(
                "instance_type and instance_types are exclusive: list every type in "
                f"instance_types (the first is preferred), got both (instance_types={names})"
            )
        problems += limits.check("instance_types", len(names))
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(
                f"instance_types must not repeat a type, got {', '.join(duplicates)} twice"
            )
    spot = spot_percentage
    if is_token(spot):
        problems.append(
            "spot_percentage must be known at synth time (the On-Demand share, 100 - "
            "spot_percentage, is computed from it), got a CloudFormation token"
        )
    elif spot != 0:
        spot_problems = limits.check("spot_percentage", spot)
        problems += spot_problems
        if not spot_problems and instance_types is None:
            problems.append(
                f"spot_percentage ({spot}) needs instance_types: Spot capacity comes from "
                "several instance types (pools), so an interruption of one does not take them all"
            )
    base = on_demand_base_capacity
    if base is not None and not is_token(base):
        base_problems = limits.check("on_demand_base_capacity", base)
        problems += base_problems
        if not base_problems and instance_types is None:
            problems.append(
                f"on_demand_base_capacity ({base}) applies to a mixed-instances policy: give "
                "instance_types"
            )
        elif not base_problems and max_capacity is not None and base > max_capacity:
            problems.append(
                f"on_demand_base_capacity must be at most max_capacity ({max_capacity}), got {base}"
            )
    return problems


def spot_advisories(spot_percentage: int, deregistration_delay: int) -> list[tuple[str, str]]:
    """Warnings a user may accept, as ``(id, message)`` pairs."""
    if spot_percentage > 0 and deregistration_delay > SPOT_INTERRUPTION_NOTICE:
        return [
            (
                "spot-drain",
                f"Spot instances get {SPOT_INTERRUPTION_NOTICE} s of notice before EC2 reclaims "
                f"them, less than the deregistration delay ({deregistration_delay} s): a request "
                "still running when the notice ends is cut. Capacity rebalancing usually replaces "
                "an at-risk instance (with the full drain) before that.",
            )
        ]
    return []
