"""Measure, on the wire, how long an HTTP server keeps an idle keep-alive connection open.

The ALB pools connections to its targets and reuses idle ones for up to its idle timeout; a
target that closes an idle connection sooner races the ALB's next request on it (a 502). This
module asks the one question that decides it, for any HTTP/1.1 server: after a response on a
kept-alive connection, how long until the server closes the connection (FIN or reset)?

Each sample is one connection and one request (``GET`` with ``Connection: keep-alive``); the
samples run at the same time, so a probe costs one bounded wait and a handful of requests.
No AWS, no CDK: the standard library only.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

USER_AGENT = "gunicorn-alb-doctor-probe/1"
MAX_SAMPLES = 5
"""A probe never sends more requests than this (one per sample)."""
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024


class ProbeError(Exception):
    """The target could not be probed (bad URL, no connection, not an HTTP/1.x answer)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_target(url: str) -> Target:
    """``http://10.0.1.23:8000/healthz`` -> Target; a missing scheme means http."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise ProbeError(f"URL must use http or https, got {url!r}")
    if not parts.hostname:
        raise ProbeError(f"URL must name a host, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise ProbeError(f"URL has an invalid port: {url!r}") from error
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(parts.scheme, parts.hostname, port, path)


@dataclass
class Sample:
    """One connection: a request, its response, and how the idle connection ended."""

    status: int | None = None
    server: str | None = None
    connection_header: str | None = None
    keep_alive_header: str | None = None
    closed_after: float | None = None
    """Seconds from the end of the response to the server's FIN or reset; None: still open at
    the bound."""
    close_kind: str | None = None
    """``fin``, ``reset``, or None when the connection outlasted the bound."""
    error: str | None = None

    @property
    def kept_alive(self) -> bool:
        said_close = "close" in (self.connection_header or "").lower()
        closed_at_once = self.closed_after is not None and self.closed_after < _AT_ONCE
        return not said_close and not closed_at_once


@dataclass
class Measurement:
    target: Target
    bound: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def good(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def keeps_alive(self) -> bool:
        """False when the server keeps no connection: ``Connection: close``, or a close at once."""
        return any(s.kept_alive for s in self.good)

    @property
    def outlasted_bound(self) -> bool:
        return any(s.closed_after is None for s in self.good)

    @property
    def idle_times(self) -> list[float]:
        return [s.closed_after for s in self.good if s.closed_after is not None]

    @property
    def median(self) -> float | None:
        times = self.idle_times
        return round(statistics.median(times), 3) if times and not self.outlasted_bound else None

    @property
    def server(self) -> str | None:
        return next((s.server for s in self.good if s.server), None)


_AT_ONCE = 0.05
"""A close this soon after the response is the server not keeping the connection at all."""


def measure(
    target: Target,
    *,
    samples: int = 3,
    bound: float = 120.0,
    connect_timeout: float = 5.0,
    response_timeout: float = 10.0,
) -> Measurement:
    """Probe ``target`` with ``samples`` concurrent connections, each waiting at most ``bound``
    seconds for the server to close it. Raises ProbeError when no sample got a response."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise ProbeError(f"samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    if bound <= 0:
        raise ProbeError(f"the bound must be a positive number of seconds, got {bound}")
    with ThreadPoolExecutor(max_workers=samples) as pool:
        results = list(
            pool.map(
                lambda _: _sample(target, bound, connect_timeout, response_timeout),
                range(samples),
            )
        )
    measurement = Measurement(target, bound, results)
    if not measurement.good:
        raise ProbeError(f"{target.url}: {results[0].error}")
    return measurement


def _sample(target: Target, bound: float, connect_timeout: float, timeout: float) -> Sample:
    sample = Sample()
    try:
        sock = socket.create_connection((target.host, target.port), timeout=connect_timeout)
    except OSError as error:
        sample.error = f"cannot connect to {target.host}:{target.port}: {_reason(error)}"
        return sample
    try:
        if target.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False  # an instance address, not the certificate's name
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=target.host)
        sock.settimeout(timeout)
        host = f"[{target.host}]" if ":" in target.host else target.host
        request = (
            f"GET {target.path} HTTP/1.1\r\nHost: {host}:{target.port}\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
        )
        sock.sendall(request.encode("latin-1"))
        leftover = _read_response(sock, sample)
        done = time.monotonic()
        if leftover is None:  # the body ran to the close: the server closed at once
            sample.closed_after, sample.close_kind = 0.0, "fin"
            return sample
        sample.close_kind = _wait_for_close(sock, done + bound)
        if sample.close_kind is not None:
            sample.closed_after = time.monotonic() - done
    except ProbeError as error:
        sample.error = str(error)
    except (OSError, ssl.SSLError) as error:
        sample.error = f"{target.url}: {_reason(error)}"
    finally:
        sock.close()
    return sample


def _reason(error: OSError) -> str:
    if isinstance(error, socket.timeout):
        return "timed out"
    return error.strerror or errno.errorcode.get(error.errno or 0, str(error))


def _read_response(sock: socket.socket, sample: Sample) -> bytes | None:
    """Read one response; return the bytes after it, or None when its body ended with a close."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise ProbeError("the server closed the connection before a complete response")
        buffer += chunk
        if len(buffer) > _MAX_HEAD:
            raise ProbeError("the response headers are too large")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProbeError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    sample.status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    sample.server = headers.get("server") or headers.get("x-powered-by")
    sample.connection_header = headers.get("connection")
    sample.keep_alive_header = headers.get("keep-alive")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(sock, rest)
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > _MAX_BODY:
            raise ProbeError("the response body is too large for a probe; use a small path")
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ProbeError("the server closed the connection inside the response body")
            rest += chunk
        return rest[length:]
    if sample.status in (204, 304) or 100 <= sample.status < 200:
        return rest
    # No length: the body runs to the close, so nothing is kept alive.
    while sock.recv(65536):
        pass
    return None


def _read_chunked(sock: socket.socket, data: bytes) -> bytes:
    while True:
        while b"\r\n" not in data:
            data += _recv_more(sock)
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while b"\r\n" not in data:  # trailers end with an empty line
                data += _recv_more(sock)
            while not data.startswith(b"\r\n"):
                _, _, data = data.partition(b"\r\n")
                while b"\r\n" not in data:
                    data += _recv_more(sock)
            return data[2:]
        while len(data) < size + 2:
            data += _recv_more(sock)
        data = data[size + 2 :]


def _recv_more(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ProbeError("the server closed the connection inside a chunked body")
    return chunk


def _wait_for_close(sock: socket.socket, deadline: float) -> str | None:
    """Wait until the server closes the connection: ``fin``, ``reset``, or None at the deadline.
    Anything the server sends meanwhile (it should send nothing) is read and dropped."""
    sock.setblocking(False)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            continue
        try:
            if not sock.recv(65536):
                return "fin"
        except ConnectionResetError:
            return "reset"
        except (BlockingIOError, ssl.SSLWantReadError):
            continue
