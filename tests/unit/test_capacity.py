"""The capacity model: scaling targets and the instance mix."""

from __future__ import annotations

import pytest

from gunicorn_alb import capacity


def _scaling(requests: object = 1000, cpu: object = None, lo: int = 2, hi: int = 4) -> list[str]:
    return capacity.check_scaling(requests, cpu, min_capacity=lo, max_capacity=hi)  # type: ignore[arg-type]


def test_the_defaults_pass() -> None:
    assert _scaling() == []
    assert _scaling(None, None, 2, 2) == []  # a fixed-size group without a policy
    assert _scaling(500, 60.5) == []
    assert _scaling(1000, 100) == []
    assert _scaling(1000, None, None, None) == []  # capacities known at deploy time only


@pytest.mark.parametrize(
    ("requests", "cpu", "message"),
    [
        (0, None, "requests_per_target_per_minute must be greater than 0, got 0 (or None for no "
         "request-count scaling)"),
        (-5, None, "requests_per_target_per_minute must be greater than 0, got -5"),
        ("10", None, "requests_per_target_per_minute must be a number greater than 0, got '10'"),
        (True, None, "got True"),
        (1000, 0, "cpu_target_utilization_percent must be greater than 0 and at most 100 percent, "
         "got 0 (or None for no CPU scaling)"),
        (1000, 101, "got 101"),
        (None, -1, "got -1"),
    ],
)  # fmt: skip
def test_fails_when_a_target_is_out_of_range(requests: object, cpu: object, message: str) -> None:
    problems = _scaling(requests, cpu)
    assert len(problems) == 1
    assert message in problems[0]


def test_a_fractional_request_target_is_a_valid_target_value() -> None:
    """TargetTrackingConfiguration.TargetValue is a Double: any target above 0 is AWS's to take."""
    assert _scaling(10.5, 0.5) == []


def test_a_token_target_is_left_to_cloudformation() -> None:
    token = -1.8881545897087626e289  # what a number token looks like before it resolves
    problems = capacity.check_scaling(
        token, token, min_capacity=2, max_capacity=4, is_token=lambda v: v == token
    )
    assert problems == []


def test_fails_when_a_policy_has_no_room_to_scale() -> None:
    (problem,) = _scaling(1000, 50, 3, 3)
    assert problem.startswith(
        "requests_per_target_per_minute=1000 and cpu_target_utilization_percent=50 leave the "
        "scaling policy no room: min_capacity equals max_capacity (3)"
    )


def _mix(types: list[str] | None, **kwargs: object) -> list[str]:
    options: dict[str, object] = {
        "instance_type_given": False,
        "spot_percentage": 0,
        "on_demand_base_capacity": None,
        "max_capacity": 4,
    }
    options.update(kwargs)
    return capacity.check_instance_mix(types, **options)  # type: ignore[arg-type]


def test_an_instance_mix_passes() -> None:
    assert _mix(None) == []
    assert _mix(["t3.small", "t3a.small"], spot_percentage=50, on_demand_base_capacity=2) == []
    assert _mix([f"m6i.{n}xlarge" for n in range(40)]) == []  # AWS's 40 types at most


@pytest.mark.parametrize(
    ("types", "kwargs", "message"),
    [
        (["t3.small"], {"instance_type_given": True},
         "instance_type and instance_types are exclusive"),
        ([], {}, "instance_types must be between 1 and 40 instance types, got 0"),
        ([f"t{i}.small" for i in range(41)], {}, "got 41"),
        (["t3.small", "t3.small"], {},
         "instance_types must not repeat a type, got t3.small twice"),
        (["t3.small", "t3a.small"], {"spot_percentage": 101},
         "spot_percentage must be between 0 and 100 percent, got 101"),
        (["t3.small", "t3a.small"], {"spot_percentage": -1}, "got -1"),
        (["t3.small", "t3a.small"], {"spot_percentage": 12.5},
         "spot_percentage must be a whole number between 0 and 100 percent, got 12.5"),
        (None, {"spot_percentage": 50}, "spot_percentage (50) needs instance_types"),
        (["t3.small", "t3a.small"], {"on_demand_base_capacity": -1},
         "on_demand_base_capacity must be at least 0 instances, got -1"),
        (["t3.small", "t3a.small"], {"on_demand_base_capacity": 5},
         "on_demand_base_capacity must be at most max_capacity (4), got 5"),
        (None, {"on_demand_base_capacity": 1}, "give instance_types"),
    ],
)  # fmt: skip
def test_fails_when_the_instance_mix_is_wrong(
    types: list[str] | None, kwargs: dict[str, object], message: str
) -> None:
    problems = _mix(types, **kwargs)
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_a_spot_percentage_token_must_be_known_at_synth() -> None:
    token = -1.8881545897087626e289
    (problem,) = _mix(["t3.small", "t3a.small"], spot_percentage=token, is_token=lambda v: True)
    assert problem.startswith("spot_percentage must be known at synth time")


def test_spot_with_a_drain_longer_than_the_notice_warns() -> None:
    ((advisory_id, message),) = capacity.spot_advisories(50, 300)
    assert advisory_id == "spot-drain"
    assert "120 s of notice" in message and "(300 s)" in message
    assert capacity.spot_advisories(50, 120) == []
    assert capacity.spot_advisories(0, 3600) == []
