"""cdk-gunicorn-alb: a Python web app on EC2 behind an Application Load Balancer, with Gunicorn's
keep-alive derived from the ALB idle timeout so the two can never drift apart.

The construct is imported lazily, so the timeout model, the renderer and the ``render`` command
work without loading aws-cdk-lib (and its Node.js runtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn_alb.alarms import AlarmThresholds
from gunicorn_alb.timeouts import CoupledTimeouts, TimeoutRuleError, derive_timeouts

if TYPE_CHECKING:
    from gunicorn_alb.secret import Secret
    from gunicorn_alb.service import ApplicationLoadBalancedGunicornService

__version__ = "0.2.0"
"""The distribution's version: the one source (pyproject.toml reads it; CHANGELOG.md has its
entry)."""

__all__ = [
    "AlarmThresholds",
    "ApplicationLoadBalancedGunicornService",
    "CoupledTimeouts",
    "Secret",
    "TimeoutRuleError",
    "__version__",
    "derive_timeouts",
]


def __getattr__(name: str) -> Any:
    if name == "ApplicationLoadBalancedGunicornService":
        from gunicorn_alb.service import ApplicationLoadBalancedGunicornService

        return ApplicationLoadBalancedGunicornService
    if name == "Secret":
        from gunicorn_alb.secret import Secret

        return Secret
    raise AttributeError(f"module 'gunicorn_alb' has no attribute {name!r}")
