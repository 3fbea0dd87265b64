"""Checks of Gunicorn's logs on the booted instance: the access log in its documented format (a
request as the ALB forwards it, with a trace id, the line parsed back) and a real logrotate run
with the file the instance received."""

from __future__ import annotations

import time

from gunicorn_alb import instance_logs
from gunicorn_alb.bootcheck.checks import Outcome, tail
from gunicorn_alb.bootcheck.instance import Instance
from gunicorn_alb.bootcheck.running import http_get

TRACE_ID = "Root=1-67891233-abcdef012345678912345678"
"""An X-Amzn-Trace-Id as the ALB sends it (Elastic Load Balancing user guide, request tracing)."""


def _access_lines(instance: Instance, marker: str, deadline: float = 10) -> list[str]:
    """The access-log lines holding ``marker``, once Gunicorn has written one (bounded wait)."""
    end = time.monotonic() + deadline
    while True:
        lines = instance.container.read(instance_logs.ACCESS_LOG).splitlines()
        found = [line for line in lines if marker in line]
        if found or time.monotonic() > end:
            return found
        time.sleep(0.1)


def check_access_log(outcome: Outcome, instance: Instance, url: str, worker_class: str) -> None:
    """A request as the ALB forwards it (X-Amzn-Trace-Id, X-Forwarded-For) lands in Gunicorn's
    access log in ACCESS_LOG_FORMAT: the line parses back with the trace id, the status and the
    duration. uvicorn's worker writes its own lines (instance_logs.OWN_ACCESS_LOG_WORKERS): there
    the line parses back as uvicorn's, with the path and the status."""
    marker = "bootcheck=access-log"
    result = instance.container.run(
        ["curl", "--silent", "--max-time", "5", "--output", "/dev/null", "--write-out",
         "%{http_code}", "--header", f"X-Amzn-Trace-Id: {TRACE_ID}", "--header",
         "X-Forwarded-For: 203.0.113.7", "--user-agent", "bootcheck", f"{url}?{marker}"],
        timeout=30,
    )  # fmt: skip
    lines = _access_lines(instance, marker)
    if worker_class in instance_logs.OWN_ACCESS_LOG_WORKERS:
        try:
            own = instance_logs.parse_uvicorn_line(lines[-1]) if lines else None
        except ValueError:
            own = None
        outcome.check(
            result.stdout == "200" and own is not None and own[1] == 200 and marker in own[0],
            f"a request ({result.stdout}) is logged in {instance_logs.ACCESS_LOG} in uvicorn's "
            f"own format (no duration, no trace id; the construct warns at synth), parsed back: "
            + (f"path {own[0]}, status {own[1]}" if own else f"no such line ({lines[-1:]!r})"),
        )
        return
    try:
        parsed = instance_logs.parse_access_line(lines[-1]) if lines else None
    except ValueError:
        parsed = None
    outcome.check(
        result.stdout == "200"
        and parsed is not None
        and (parsed.status, parsed.trace_id, parsed.forwarded_for, parsed.user_agent)
        == (200, TRACE_ID, "203.0.113.7", "bootcheck")
        and parsed.duration >= 0,
        f"a request with X-Amzn-Trace-Id ({result.stdout}) is logged in "
        f"{instance_logs.ACCESS_LOG} in ACCESS_LOG_FORMAT, parsed back: "
        + (
            f"status {parsed.status}, trace id {parsed.trace_id}, duration {parsed.duration} s"
            if parsed is not None
            else f"no parsable line ({lines[-1] if lines else 'none'!r})"
        ),
    )


def check_log_rotation(outcome: Outcome, instance: Instance, url: str) -> None:
    """The real logrotate with the file the instance received (forced, as the daily run would
    rotate): access.log moves to access.log.1 and Gunicorn writes on into the truncated file
    (copytruncate: no signal, no restart, nothing lost)."""
    box = instance.container
    before = box.read(instance_logs.ACCESS_LOG).splitlines()
    result = box.run(
        ["logrotate", "--force", "--verbose", "--state", "/var/lib/logrotate/bootcheck.status",
         instance_logs.LOGROTATE_PATH],
        timeout=60,
    )  # fmt: skip
    rotated = box.read(f"{instance_logs.ACCESS_LOG}.1").splitlines()
    marker = "bootcheck=after-rotation"
    status, _ = http_get(instance, f"{url}?{marker}")
    after_lines = _access_lines(instance, marker)
    after = box.read(instance_logs.ACCESS_LOG).splitlines()
    outcome.check(
        result.returncode == 0
        and bool(before)
        and rotated == before
        and status == "200"
        and len(after_lines) == 1
        and after == after_lines,
        f"logrotate {instance_logs.LOGROTATE_PATH} (exit {result.returncode}) moved "
        f"{len(rotated)} of {len(before)} access-log lines to access.log.1, and Gunicorn wrote "
        f"the next request into the truncated access.log ({len(after)} line(s) there)"
        + ("" if result.returncode == 0 else f":\n{tail(result.stdout + result.stderr)}"),
    )
