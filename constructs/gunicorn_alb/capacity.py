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

Scale-in goes through the drain: the Auto Scaling group deregisters the instance from the target
group and waits the deregistration delay (``timeouts.py``, rule ``drain-bounded-by-idle``) before
it terminates the instance (EC2 Auto Scaling user guide, "Use Elastic Load Balancing to distribute
incoming application traffic in your Auto Scaling group").
"""

from __future__ import annotations

from collections.abc import Sequence

REQUESTS_PER_TARGET_PER_MINUTE_DEFAULT = 1000
CPU_UTILIZATION_RANGE = (1, 100)
SPOT_PERCENTAGE_RANGE = (0, 100)
INSTANCE_TYPES_MAX = 40
"""A mixed-instances policy takes at most 40 instance types (launch template overrides)."""
SPOT_INTERRUPTION_NOTICE = 120
"""Seconds of warning EC2 gives before it reclaims a Spot instance."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_scaling(
    requests_per_target_per_minute: float | None,
    cpu_target_utilization_percent: float | None,
    *,
    min_capacity: int | None,
    max_capacity: int | None,
) -> list[str]:
    """Problems with the target-tracking settings (empty if none). ``None`` turns a policy off;
    a capacity of ``None`` is one only known at deploy time (not checked)."""
    problems: list[str] = []
    requests = requests_per_target_per_minute
    if requests is not None and (
        not _is_number(requests) or not float(requests).is_integer() or requests < 1
    ):
        problems.append(
            "requests_per_target_per_minute must be a whole number of requests of at least 1 "
            f"(or None for no request-count scaling), got {requests!r}"
        )
    cpu = cpu_target_utilization_percent
    low, high = CPU_UTILIZATION_RANGE
    if cpu is not None and (not _is_number(cpu) or not low <= cpu <= high):
        problems.append(
            f"cpu_target_utilization_percent must be between {low} and {high} "
            f"(or None for no CPU scaling), got {cpu!r}"
        )
    policies = [
        f"{name}={value!r}"
        for name, value in (
            ("requests_per_target_per_minute", requests),
            ("cpu_target_utilization_percent", cpu),
        )
        if value is not None
    ]
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
    architectures: Sequence[str],
    instance_type_given: bool,
    spot_percentage: int,
    on_demand_base_capacity: int | None,
    max_capacity: int | None,
) -> list[str]:
    """Problems with ``instance_types`` and the Spot settings (empty if none).

    :param instance_types: the instance type names given, or None.
    :param architectures: each type's CPU architecture, in the same order.
    :param instance_type_given: whether ``instance_type`` was given too.
    """
    problems: list[str] = []
    if instance_types is not None:
        names = list(instance_types)
        if instance_type_given:
            problems.append(
                "instance_type and instance_types are exclusive: list every type in "
                f"instance_types (the first is preferred), got both (instance_types={names})"
            )
        if not 1 <= len(names) <= INSTANCE_TYPES_MAX:
            problems.append(
                f"instance_types must hold between 1 and {INSTANCE_TYPES_MAX} instance types, "
                f"got {len(names)}"
            )
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(
                f"instance_types must not repeat a type, got {', '.join(duplicates)} twice"
            )
        if len(set(architectures)) > 1:
            shown = ", ".join(f"{n} ({a})" for n, a in zip(names, architectures, strict=True))
            problems.append(
                "instance_types must share one CPU architecture (the instances boot one machine "
                f"image), got {shown}"
            )
    low, high = SPOT_PERCENTAGE_RANGE
    if isinstance(spot_percentage, bool) or not isinstance(spot_percentage, int):
        problems.append(f"spot_percentage must be a whole number, got {spot_percentage!r}")
    elif not low <= spot_percentage <= high:
        problems.append(f"spot_percentage must be between {low} and {high}, got {spot_percentage}")
    elif spot_percentage > 0 and instance_types is None:
        problems.append(
            f"spot_percentage ({spot_percentage}) needs instance_types: Spot capacity comes from "
            "several instance types (pools), so an interruption of one does not take them all"
        )
    base = on_demand_base_capacity
    if base is not None:
        if isinstance(base, bool) or not isinstance(base, int) or base < 0:
            problems.append(
                f"on_demand_base_capacity must be a whole number of at least 0, got {base!r}"
            )
        elif max_capacity is not None and base > max_capacity:
            problems.append(
                f"on_demand_base_capacity must be at most max_capacity ({max_capacity}), got {base}"
            )
        elif instance_types is None:
            problems.append(
                f"on_demand_base_capacity ({base}) applies to a mixed-instances policy: give "
                "instance_types"
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
