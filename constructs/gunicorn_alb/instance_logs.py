"""What the instances log and where it goes: Gunicorn's access-log format (with the ALB trace id,
so a line can be matched with the ALB's own access log), the files the CloudWatch agent ships, and
a parser for the access lines. No CDK import.

On the instance Gunicorn writes both logs under the unit's ``LogsDirectory=``
(``/var/log/gunicorn-app``); the boot script's output goes to cloud-init's
``/var/log/cloud-init-output.log``. The CloudWatch agent (the Amazon Linux 2023 package
``amazon-cloudwatch-agent``) ships the three files to the construct's log group, into one stream
per instance named after its instance id. logrotate rotates Gunicorn's files with
``copytruncate`` (Gunicorn keeps its file open in append mode, so it writes on at the start of the
truncated file and the agent, which notices the truncation, reads on from there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

LOG_DIRECTORY = "/var/log/gunicorn-app"
ACCESS_LOG = f"{LOG_DIRECTORY}/access.log"
ERROR_LOG = f"{LOG_DIRECTORY}/error.log"
BOOT_LOG = "/var/log/cloud-init-output.log"
"""cloud-init writes the user data's output (the boot script's) here."""
AGENT_CONFIG_PATH = "/etc/gunicorn-alb/cloudwatch-agent.json"
LOGROTATE_PATH = "/etc/logrotate.d/gunicorn-app"
LOG_STREAM = "{instance_id}"
"""The CloudWatch agent replaces ``{instance_id}`` with the instance's id: one stream each."""
LOG_GROUP_PLACEHOLDER = "@LOG_GROUP@"
"""Stands for the log group's name in the agent configuration the user data carries (compressed,
so without the CloudFormation-made name); gunicorn-alb-boot puts in ``CLOUDWATCH_LOG_GROUP`` from
boot.env before it starts the agent."""
LOG_GROUP_NAME = re.compile(r"^[A-Za-z0-9._/#-]{1,512}$")
"""CloudWatch Logs API reference, CreateLogGroup: logGroupName is 1-512 characters of a-z, A-Z,
0-9, '_', '-', '/', '.' and '#' (boot.sh checks the same before it substitutes the name)."""

ACCESS_LOG_FORMAT = (
    '%(t)s "%(r)s" %(s)s %(b)s %(L)s "%({x-amzn-trace-id}i)s" "%({x-forwarded-for}i)s" '
    '%(h)s "%(a)s"'
)
"""Gunicorn ``access_log_format``: time, request line, status, response bytes, request duration in
seconds (microsecond precision, as the ALB log's ``target_processing_time`` is in seconds), the
``X-Amzn-Trace-Id`` the ALB adds (its access log's ``trace_id`` field), the client address the ALB
forwards, the ALB node's address and the user agent. A missing header is ``-``; Gunicorn escapes
double quotes inside a field as ``\\"``."""

OWN_ACCESS_LOG_WORKERS = frozenset({"uvicorn_worker.UvicornWorker"})
"""Workers that write their own access-log lines, not ``access_log_format``: uvicorn's worker
hands uvicorn Gunicorn's access-log handlers (``uvicorn_worker/_workers.py``) but uvicorn formats
each line itself, ``CLIENT - "METHOD PATH HTTP/VERSION" STATUS``: no time, duration or trace id.
Gunicorn's own workers (``gthread``, ``gevent``, ``asgi``) write ``access_log_format``."""


def access_log_advisories(worker_class: str, shipped: bool) -> list[tuple[str, str]]:
    """A warning, as ``(id, message)``, when the access log will not carry the trace id."""
    if not shipped or worker_class not in OWN_ACCESS_LOG_WORKERS:
        return []
    return [
        (
            "access-log-format",
            f"worker_class {worker_class!r} writes uvicorn's own access-log lines (client, "
            "request line, status), not the documented format: no request duration and no "
            "X-Amzn-Trace-Id, so a line cannot be matched with the ALB's access log. "
            "worker_class='asgi' (Gunicorn's own ASGI worker) writes the documented format.",
        )
    ]


_UVICORN_LINE = re.compile(
    r'^(?P<client>\S+) - "(?P<method>\S+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})'
)


def parse_uvicorn_line(line: str) -> tuple[str, int]:
    """(path, status) of an access line uvicorn wrote; ValueError if it is not one."""
    match = _UVICORN_LINE.match(line)
    if match is None:
        raise ValueError(f"not a uvicorn access-log line: {line!r}")
    return match["path"], int(match["status"])


ERROR_LOG_START = r"^\[\d{4}-\d{2}-\d{2} "
"""Gunicorn error-log entries start ``[2026-11-30 05:00:00 +0000]``; other lines (tracebacks)
continue the entry before them (the agent's ``multi_line_start_pattern``)."""

COLLECTED_FILES = (ACCESS_LOG, ERROR_LOG, BOOT_LOG)
"""The files the agent ships: exactly what Gunicorn (under LogsDirectory=) and the boot write."""


def agent_config(log_group: str = LOG_GROUP_PLACEHOLDER) -> dict[str, object]:
    """The CloudWatch agent's configuration: the collected files into ``log_group``, one stream
    per instance; an error-log entry runs to the next line with a timestamp (tracebacks)."""
    files: list[dict[str, str]] = [
        {"file_path": path, "log_group_name": log_group} for path in COLLECTED_FILES
    ]
    files[1]["multi_line_start_pattern"] = ERROR_LOG_START
    return {
        "logs": {
            "log_stream_name": LOG_STREAM,
            "logs_collected": {"files": {"collect_list": files}},
        }
    }


def render_agent_config() -> str:
    """:func:`agent_config` as the file the user data carries (compact JSON, the placeholder for
    the log group's name)."""
    return json.dumps(agent_config(), separators=(",", ":")) + "\n"


_QUOTED = r'"((?:[^"\\]|\\.)*)"'
"""Gunicorn writes every text field with its double quotes escaped as ``\\"``."""
_ACCESS_LINE = re.compile(
    rf"^\[(?P<time>[^\]]+)\] (?P<request>{_QUOTED}) (?P<status>\d{{3}}) (?P<bytes>\d+|-) "
    rf"(?P<duration>\d+\.\d{{6}}) (?P<trace_id>{_QUOTED}) (?P<forwarded_for>{_QUOTED}) "
    rf"(?P<remote>\S+) (?P<user_agent>{_QUOTED})$"
)


@dataclass(frozen=True)
class AccessLine:
    """One parsed access-log line."""

    time: datetime
    request: str
    status: int
    bytes: int
    duration: float
    """Seconds, from the request's first byte to the response's last."""
    trace_id: str | None
    """The ``X-Amzn-Trace-Id`` header, e.g. ``Root=1-67891233-abcdef012345678912345678``."""
    forwarded_for: str | None
    remote: str
    user_agent: str | None


def _unquote(field: str) -> str:
    return field[1:-1].replace('\\"', '"')


def _value(field: str) -> str | None:
    text = _unquote(field)
    return None if text == "-" else text


def parse_access_line(line: str) -> AccessLine:
    """Parse a line written with :data:`ACCESS_LOG_FORMAT`; ValueError if it is not one."""
    match = _ACCESS_LINE.match(line.rstrip("\n"))
    if match is None:
        raise ValueError(f"not a gunicorn-alb access-log line: {line!r}")
    fields = match.groupdict()
    return AccessLine(
        time=datetime.strptime(fields["time"], "%d/%b/%Y:%H:%M:%S %z"),
        request=_unquote(fields["request"]),
        status=int(fields["status"]),
        bytes=0 if fields["bytes"] == "-" else int(fields["bytes"]),
        duration=float(fields["duration"]),
        trace_id=_value(fields["trace_id"]),
        forwarded_for=_value(fields["forwarded_for"]),
        remote=fields["remote"],
        user_agent=_value(fields["user_agent"]),
    )


def trace_root(trace_id: str) -> str | None:
    """The ``Root=`` part of an ``X-Amzn-Trace-Id`` value, which both logs carry."""
    for part in trace_id.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "Root":
            return value.strip()
    return None
