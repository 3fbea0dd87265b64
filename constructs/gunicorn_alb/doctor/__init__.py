"""``gunicorn-alb-doctor``: check a deployed ALB + Gunicorn fleet against the timeout model.

Reads, with boto3 and read-only calls, what is live: the ALB idle timeout, each target group's
deregistration delay, the Auto Scaling groups behind them and their launch templates' user data,
in which the gunicorn-alb construct writes ``/etc/gunicorn-alb/boot.env`` and
``/etc/gunicorn-alb/gunicorn.conf.py``. The keep-alive the instances run is derived from that
user data by :func:`gunicorn_alb.timeouts.derive_timeouts`, the same model the construct and the
boot script follow, then checked against the live values, together with the ELB-generated
502/504 counts from CloudWatch::

    gunicorn-alb-doctor --stack GunicornAlbReference
    gunicorn-alb-doctor --load-balancer my-alb --window 3h --json

For any fleet, made by the construct or not, ``gunicorn-alb-doctor probe URL --idle-timeout N``
measures one target's idle keep-alive on the wire (:mod:`gunicorn_alb.doctor.probe`).

Exit codes: 0 healthy (``--strict``: and nothing undetermined), 1 findings, 2 usage or AWS access
errors (message on stderr). Region and credentials come from ``--region`` / ``--profile``, else
the environment, as for any AWS tool; ``AWS_ENDPOINT_URL`` is honoured (boto3 reads it).

Findings (ids are stable):

``keepalive-exceeds-idle``
    Gunicorn's keep-alive is not greater than the ALB's live idle timeout (e.g. the idle timeout
    was raised by hand): the ALB answers 502 when Gunicorn closes a pooled connection first.
``worker-ignores-keepalive`` / ``worker-threads``
    The worker class is not one that honours keep-alive (``sync``), or gthread has < 2 threads.
``max-requests-needs-jitter``
    ``max_requests`` without ``max_requests_jitter``.
``graceful-outlasts-idle`` / ``drain-bounded-by-idle`` / ``stop-after-graceful``
    Gunicorn's graceful timeout does not outlast the live idle timeout, the deregistration delay
    is out of its range, or systemd's stop timeout does not outlast the graceful timeout.
``boot-env-invalid``
    The user data's ``boot.env`` breaks the model (the boot script refuses to start with it).
``elb-502-count`` / ``elb-504-count``
    ``HTTPCode_ELB_502_Count`` / ``HTTPCode_ELB_504_Count`` above zero over ``--window``.

``--json`` prints one object (stable; new keys may be added)::

    {"version": 1, "region": str, "window": "1h", "window_seconds": int,
     "load_balancers": [{"name", "arn", "dimension", "idle_timeout": int,
                         "elb_502_count": int, "elb_504_count": int,
                         "target_groups": [{"name", "arn", "deregistration_delay": int,
                                            "auto_scaling_groups": [ASG, ...]}]}],
     "findings": [{"id", "message", "load_balancer", "resource"}],
     "undetermined": [{"message", "load_balancer", "resource"}],
     "notes": [str], "exit_code": int}

    ASG = {"name", "launch_template": {"id", "name", "version"} | null,
           "made_by_construct": bool, "boot_idle_timeout", "keepalive_margin", "keepalive",
           "graceful_timeout", "stop_timeout", "worker_class", "threads", "max_requests",
           "max_requests_jitter"}          (each null when it could not be determined)

IAM permissions needed: see :data:`gunicorn_alb.doctor.aws.PERMISSIONS`.

The package, each part usable alone:

``model``   the report's plain data (the fleet as read, findings, what was not determined)
``aws``     boto3 clients, retries, what AWS errors mean (the only module that makes clients)
``fleet``   reads the live fleet (boto3 calls) into the model and runs the checks on it
``checks``  pure rules over plain data, through :mod:`gunicorn_alb.timeouts` and the user data
            as :mod:`gunicorn_alb.rendering` parses it (no boto3)
``report``  the text report and the ``--json`` document (no boto3)
``cli``     the command line (``main``; subcommands register in ``cli.SUBCOMMANDS``)
``wire``    ``probe``: measures a target's idle keep-alive on the wire (standard library only)
``probe_verdict``  ``probe``: the verdict against the idle timeout, and what to set (pure)
``probe``   ``gunicorn-alb-doctor probe URL``: its arguments, the idle timeout, its report

Names are loaded on first use, so ``gunicorn_alb.doctor.checks`` and ``.report`` import without
boto3.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# Each public name and the module that owns it (loaded on first use).
_EXPORTS = {
    "SUBCOMMANDS": "cli",
    "build_parser": "cli",
    "check": "cli",
    "parse_window": "cli",
    "run": "cli",
    "AWS_CONFIG": "aws",
    "MAX_ATTEMPTS": "aws",
    "PERMISSIONS": "aws",
    "RETRY_MODE": "aws",
    "Aws": "aws",
    "connect": "aws",
    "describe_client_error": "aws",
    "AsgIndex": "fleet",
    "diagnose": "fleet",
    "elb_error_counts": "fleet",
    "find_load_balancers": "fleet",
    "load_balancer_dimension": "fleet",
    "stack_load_balancer_arns": "fleet",
    "ELB_METRICS": "checks",
    "check_drain": "checks",
    "check_elb_errors": "checks",
    "check_fleet": "checks",
    "check_keepalive": "checks",
    "check_worker": "checks",
    "parse_gunicorn_conf": "checks",
    "read_instance_settings": "checks",
    "rule_id": "checks",
    "JSON_VERSION": "model",
    "PROG": "model",
    "AsgReport": "model",
    "DoctorError": "model",
    "Finding": "model",
    "LaunchTemplateRef": "model",
    "LoadBalancerReport": "model",
    "Report": "model",
    "TargetGroupReport": "model",
    "Undetermined": "model",
    "to_json": "report",
    "to_text": "report",
}
__all__ = sorted([*_EXPORTS, "MISSING_BOTO3", "main"])


MISSING_BOTO3 = (
    "gunicorn-alb-doctor: it reads the live fleet with boto3, which is not installed; install the "
    "doctor's extra: pip install 'cdk-gunicorn-alb[doctor]'"
)
"""What the command says when boto3 is missing (the construct does not need it: an extra)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gunicorn-alb-doctor`` (:func:`gunicorn_alb.doctor.cli.main`); exit code 2
    with ``MISSING_BOTO3`` on stderr when boto3 is not installed."""
    try:
        from gunicorn_alb.doctor.cli import main as run_cli
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in ("boto3", "botocore"):
            raise
        print(MISSING_BOTO3, file=sys.stderr)
        return 2
    return run_cli(argv)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gunicorn_alb.doctor' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gunicorn_alb.doctor.{module}"), name)
