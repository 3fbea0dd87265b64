"""Checks shared by the pure models (no CDK import): whole seconds and counts within bounds,
each problem a message that names the argument, shows the value and says what is allowed."""

from __future__ import annotations


class TimeoutRuleError(ValueError):
    """One or more timeout settings break the model's rules; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"- {problem}" for problem in self.problems))


def whole(
    problems: list[str], name: str, value: float | None, low: int, high: int | None = None
) -> int | None:
    """Check that ``value`` is a whole number of seconds within ``[low, high]``; None if not."""
    if value is None:
        return None
    allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
    shown = show(value)
    if isinstance(value, bool) or not float(value).is_integer():
        problems.append(f"{name} must be a whole number of seconds {allowed}, got {shown}")
        return None
    number = int(value)
    if number < low or (high is not None and number > high):
        problems.append(f"{name} must be {allowed} seconds, got {shown}")
        return None
    return number


def count(problems: list[str], name: str, value: int, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{name} must be a whole number, got {value!r}")
        return low
    if value < low or (high is not None and value > high):
        allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
        problems.append(f"{name} must be {allowed}, got {value}")
    return value


def show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
