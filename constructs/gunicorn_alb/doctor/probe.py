"""``gunicorn-alb-doctor probe URL``: measure a target's idle keep-alive on the wire and compare
it with the load balancer's idle timeout. Works for any HTTP/1.1 server behind any ALB, whether
or not this construct built it::

    gunicorn-alb-doctor probe http://10.0.1.23:8000/healthz --idle-timeout 60
    gunicorn-alb-doctor probe http://10.0.1.23:8000/ --load-balancer my-alb --json

Exit codes, as the doctor's: 0 healthy (or measured only, or no keep-alive at all), 1 exposed,
2 usage, connection or AWS errors (message on stderr). A probe sends one request per sample
(at most :data:`wire.MAX_SAMPLES`) and waits at most ``--max-wait`` seconds.

``--json`` prints one object (stable; new keys may be added)::

    {"version": 1, "url": str, "server": str | null, "keeps_alive": bool,
     "samples": [{"status", "connection", "keep_alive", "closed_after", "close", "error"}],
     "idle_keepalive": {"median", "spread", "min", "max"} | null, "outlasted_bound": bool,
     "max_wait": float, "idle_timeout": int | null, "load_balancer": str | null,
     "verdict": {"id", "message", "exposed_by", "advice"}, "exit_code": int}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gunicorn_alb import timeouts
from gunicorn_alb.doctor import probe_verdict, wire
from gunicorn_alb.doctor.aws import aws_errors, connect
from gunicorn_alb.doctor.fleet import find_load_balancers, live_idle_timeout
from gunicorn_alb.doctor.model import PROG, DoctorError

BOUND_BEYOND_IDLE = 10.0
"""Without --max-wait, a probe waits the idle timeout plus this long (or DEFAULT_BOUND)."""
DEFAULT_BOUND = 120.0


def _idle_timeout(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not timeouts.IDLE_TIMEOUT_MIN <= value <= timeouts.IDLE_TIMEOUT_MAX:
        raise argparse.ArgumentTypeError(
            f"must be between {timeouts.IDLE_TIMEOUT_MIN} and {timeouts.IDLE_TIMEOUT_MAX} "
            f"whole seconds (the ALB's limits), got {text!r}"
        )
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 4 * 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds up to 14400, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} probe",
        description="Measure how long a target keeps an idle keep-alive connection open (on the "
        "wire, any HTTP/1.1 server) and whether it outlasts the load balancer's idle timeout.",
        epilog="Exit codes: 0 healthy (or no keep-alive, or no idle timeout to compare), "
        "1 exposed, 2 usage, connection or AWS errors.",
    )
    parser.add_argument("url", help="the target as the ALB sees it: http://ADDRESS:PORT/PATH")
    lb = parser.add_mutually_exclusive_group()
    lb.add_argument("--idle-timeout", type=_idle_timeout, help="the ALB idle timeout (seconds)")
    lb.add_argument("--load-balancer", help="read the idle timeout from this ALB (name or ARN)")
    parser.add_argument("--region", help="AWS region, with --load-balancer")
    parser.add_argument("--profile", help="AWS profile, with --load-balancer")
    parser.add_argument(
        "--samples",
        type=int,
        default=3,
        help=f"connections to measure, one request each, at once (1-{wire.MAX_SAMPLES}; default 3)",
    )
    parser.add_argument(
        "--max-wait",
        type=_positive,
        help="stop waiting for the server's close after this many seconds (default: the idle "
        f"timeout + {BOUND_BEYOND_IDLE:g}, or {DEFAULT_BOUND:g} without one)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    return parser


def _fail(message: str) -> int:
    print(f"{PROG} probe: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    """``gunicorn-alb-doctor probe ...``: the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    if not 1 <= args.samples <= wire.MAX_SAMPLES:
        return _fail(f"--samples must be between 1 and {wire.MAX_SAMPLES}, got {args.samples}")
    try:
        target = wire.parse_target(args.url)
        idle, lb_arn = args.idle_timeout, None
        if args.load_balancer is not None:
            idle, lb_arn = aws_errors(lambda: _live_idle_timeout(args))
        bound = args.max_wait or (DEFAULT_BOUND if idle is None else idle + BOUND_BEYOND_IDLE)
        if idle is not None and bound < idle + probe_verdict.JITTER:
            return _fail(
                f"--max-wait must exceed the idle timeout ({idle} s) by at least "
                f"{probe_verdict.JITTER:g} s to tell a safe target, got {bound:g}"
            )
        measurement = wire.measure(target, samples=args.samples, bound=bound)
    except (wire.ProbeError, DoctorError) as error:
        return _fail(str(error))
    verdict = probe_verdict.decide(
        keeps_alive=measurement.keeps_alive,
        idle_keepalive=measurement.median,
        bound=bound,
        server=measurement.server,
        idle_timeout=idle,
    )
    document = to_json(measurement, verdict, idle, lb_arn)
    print(json.dumps(document, indent=2) if args.json else to_text(document))
    return verdict.exit_code


def _live_idle_timeout(args: argparse.Namespace) -> tuple[int, str]:
    aws = connect(args.region, args.profile)
    (lb, *_) = find_load_balancers(aws, None, args.load_balancer)
    idle = live_idle_timeout(aws, lb)
    return timeouts.IDLE_TIMEOUT_DEFAULT if idle is None else idle, str(lb["LoadBalancerArn"])


def to_json(
    measurement: wire.Measurement,
    verdict: probe_verdict.Verdict,
    idle_timeout: int | None,
    load_balancer: str | None,
) -> dict[str, Any]:
    times = measurement.idle_times
    return {
        "version": 1,
        "url": measurement.target.url,
        "server": measurement.server,
        "keeps_alive": measurement.keeps_alive,
        "samples": [
            {
                "status": s.status,
                "connection": s.connection_header,
                "keep_alive": s.keep_alive_header,
                "closed_after": None if s.closed_after is None else round(s.closed_after, 3),
                "close": s.close_kind,
                "error": s.error,
            }
            for s in measurement.samples
        ],
        "idle_keepalive": None
        if measurement.median is None
        else {
            "median": round(measurement.median, 3),
            "spread": round(max(times) - min(times), 3),
            "min": round(min(times), 3),
            "max": round(max(times), 3),
        },
        "outlasted_bound": measurement.outlasted_bound,
        "max_wait": measurement.bound,
        "idle_timeout": idle_timeout,
        "load_balancer": load_balancer,
        "verdict": {
            "id": verdict.id,
            "message": verdict.message,
            "exposed_by": verdict.exposed_by,
            "advice": verdict.advice,
        },
        "exit_code": verdict.exit_code,
    }


def _sample_text(sample: dict[str, Any]) -> str:
    if sample["error"]:
        return f"error: {sample['error']}"
    closed = (
        "still open at the bound"
        if sample["closed_after"] is None
        else f"closed after {sample['closed_after']:.2f} s ({sample['close']})"
    )
    connection = f", Connection: {sample['connection']}" if sample["connection"] else ""
    return f"HTTP {sample['status']}, {closed}{connection}"


def to_text(document: dict[str, Any]) -> str:
    held, samples = document["idle_keepalive"], document["samples"]
    lines = [
        f"Target:  {document['url']}",
        f"Server:  {document['server'] or '(no Server header)'}",
        "Samples:",
        *(f"  {number}: {_sample_text(sample)}" for number, sample in enumerate(samples, 1)),
    ]
    if held is not None:
        lines.append(
            f"Idle keep-alive: {held['median']:.2f} s median (spread {held['spread']:.2f} s)"
        )
    elif document["outlasted_bound"]:
        lines.append(f"Idle keep-alive: longer than {document['max_wait']:g} s")
    if document["idle_timeout"] is not None:
        source = f" ({document['load_balancer']})" if document["load_balancer"] else ""
        lines.append(f"Load balancer idle timeout: {document['idle_timeout']} s{source}")
    verdict = document["verdict"]
    lines += ["", verdict["message"]]
    lines += [f"  - {advice}" for advice in verdict["advice"]]
    lines += ["", f"Result: {verdict['id']} (exit {document['exit_code']})"]
    return "\n".join(lines)
