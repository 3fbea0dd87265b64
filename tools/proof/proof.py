"""Proof on one machine: Gunicorn's default keep-alive behind a load balancer loses requests;
the keep-alive this project derives does not.

Usage (from the repository root)::

    .venv/bin/python tools/proof/proof.py             # full run, about 2 minutes
    .venv/bin/python tools/proof/proof.py --short     # the CI run, about half a minute
    .venv/bin/python tools/proof/proof.py --keep DIR  # keep configs and logs in DIR

Exit status 0 when the generated config lost no request *and* the defaults lost some (if the
defaults lose none, the harness did not reproduce the race and the run proves nothing); 1
otherwise; 2 when the proof could not run (nginx missing, a process that did not start).

What runs, all on 127.0.0.1:

* The load balancer is nginx (Debian package ``nginx``), set up the way the ALB talks to its
  targets: an upstream keep-alive pool whose ``keepalive_timeout`` is the stack's idle timeout,
  HTTP/1.1 with the ``Connection`` header cleared, and ``proxy_next_upstream off`` (the ALB
  does not retry a request on another connection, it answers 502). nginx runs in the foreground
  from a config generated into a temporary directory (pid file, logs, temp paths in there too).
* The targets are Gunicorn started from this project's own output: the ``gunicorn.conf.py``
  written by ``python -m gunicorn_alb render``, with the environment the real boot script
  derives (``gunicorn-alb-boot``: ``derive_timeouts`` then ``write_coupling_files``). Only
  ``--bind`` (loopback, a free port) and ``--workers 1`` are given on the command line.
* Two variants run side by side, each with its own nginx and its own Gunicorns:

  - ``defaults``: the same rendered config and boot-script environment, except that
    ``GUNICORN_ALB_KEEPALIVE`` is Gunicorn's own default keep-alive (2 s, read from the
    installed Gunicorn): what Gunicorn runs with when nothing couples it to the load balancer;
  - ``generated``: the environment exactly as the boot script wrote it (idle + margin).

* The load driver (stdlib threads and ``http.client``) runs *lanes*. A lane is one target (a
  Gunicorn with one worker), its own nginx upstream pool and a few client connections. After
  each gap the lane sends a *burst*, one request on every client connection at once, so nginx
  takes every connection of the pool, each idle exactly as long as the gap. Gaps straddle each
  boundary in play: Gunicorn's default keep-alive, the idle timeout, the derived keep-alive.
  Both variants get the same gaps.
* Why bursts: Gunicorn notices an expired keep-alive connection only when its event loop next
  wakes (at most a second later; a few milliseconds in practice), and then closes it. A request
  that wakes the loop after the keep-alive has expired is served, and the loop then closes the
  pool's other expired connections while their requests are on the way: 502. That happens for
  any burst that arrives between the keep-alive's expiry and Gunicorn's own close, a window of
  milliseconds rather than microseconds. A calibration measures on the ``defaults`` targets how
  late Gunicorn closes on this machine; the gaps near the default keep-alive run from just
  before the keep-alive to just after that close.
* Then throughput at fixed concurrency through the same nginx (a pool over all the variant's
  targets, requests back to back), one variant after the other.

Timeouts are scaled down (idle timeout 10 s instead of 60 s; the construct's default margin
5 s, so keep-alive 15 s) to bound the run; the relation the construct produces
(keep-alive = idle + margin > idle) is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: `python tools/proof/proof.py`
    sys.path.insert(0, str(REPO))
from gunicorn_alb import rendering  # noqa: E402
from tools import instance_files  # noqa: E402

SAMPLE_APP = REPO / "constructs" / "gunicorn_alb" / "sample_app"
WSGI_APP = "app:application"
# The worker dimension: each worker class the construct allows that the run measures, with the
# app it serves (the sample WSGI app, or the same answers as a bare ASGI app).
WORKER_APPS = {
    "gthread": (SAMPLE_APP, WSGI_APP),
    "asgi": (Path(__file__).resolve().parent, "asgi_app:application"),
    "uvicorn_worker.UvicornWorker": (Path(__file__).resolve().parent, "asgi_app:application"),
}
HEALTH_PATH = "/healthz"
LOOPBACK = "127.0.0.1"

# The scaled-down stack: ALB idle timeout 10 s, the construct's default margin 5 s.
IDLE_TIMEOUT = 10
KEEPALIVE_MARGIN = 5

# Gaps near the default keep-alive run from this long before it to this long after the
# calibrated close.
RACE_BEFORE = 0.001
RACE_AFTER = 0.0005
# Gaps near the longer boundaries: this fraction either side (timers run ~0.1 % late there).
LONG_SPREAD = 0.005

STARTUP_TIMEOUT = 30.0  # seconds for nginx / Gunicorn to answer
STOP_TIMEOUT = 15.0  # seconds after SIGTERM before SIGKILL
REQUEST_TIMEOUT = 10.0  # per request, client side
CPU_LOAD_SECONDS = 600.0  # the busy processes' own bound; they are stopped when the run ends


class ProofError(RuntimeError):
    """The proof could not run (a missing tool, a process that did not start)."""


# --------------------------------------------------------------------------------------------
# Plans: how much traffic. Every number bounds the run's size and wall time.


@dataclass(frozen=True)
class Plan:
    name: str
    lanes: int  # targets (Gunicorns) per variant
    connections: int  # client connections per lane = requests per burst = nginx pool size
    race_gaps: int  # gaps near Gunicorn's default keep-alive
    idle_gaps: int  # gaps near the idle timeout
    derived_gaps: int  # gaps near the derived keep-alive
    throughput_threads: int  # client connections in the throughput run
    throughput_seconds: float  # per variant
    workers: tuple[str, ...] = ("gthread", "asgi", "uvicorn_worker.UvicornWorker")
    """Gunicorn worker classes measured side by side (defaults and generated for each)."""
    must_reproduce: tuple[str, ...] = ("gthread", "asgi")
    """Workers whose defaults must lose requests for the run to count. uvicorn closes an idle
    connection exactly on time (2000.0 ms measured), so its race window is a fraction of a
    millisecond and a run may not hit it (1 of 1104 in a full run here); its generated config
    must still lose none."""


SHORT = Plan(
    "short",
    lanes=8,
    connections=4,
    race_gaps=40,
    idle_gaps=2,
    derived_gaps=0,  # the full run covers it; near 10 s the generated config meets the ALB's close
    throughput_threads=8,
    throughput_seconds=1.0,
    workers=("gthread", "asgi"),
)
FULL = Plan(
    "full",
    lanes=8,
    connections=4,
    race_gaps=260,
    idle_gaps=8,
    derived_gaps=8,
    throughput_threads=8,
    throughput_seconds=10.0,
)


@dataclass(frozen=True)
class Gaps:
    """``count`` gaps spread evenly over ``low``..``high`` seconds, reported as ``label``."""

    label: str
    low: float
    high: float
    count: int

    def spread(self) -> list[tuple[str, float]]:
        step = (self.high - self.low) / self.count
        return [(self.label, self.low + (i + 0.5) * step) for i in range(self.count)]


def gap_groups(plan: Plan, default_keepalive: int, close_after: float) -> list[Gaps]:
    """The gaps of a run, near each boundary. Those near the default keep-alive run from just
    before it to just after the moment Gunicorn was measured to close (``close_after``)."""
    groups = [
        Gaps(
            f"{default_keepalive} s",
            default_keepalive - RACE_BEFORE,
            max(close_after, default_keepalive) + RACE_AFTER,
            plan.race_gaps,
        )
    ]
    for boundary, count in (
        (IDLE_TIMEOUT, plan.idle_gaps),
        (IDLE_TIMEOUT + KEEPALIVE_MARGIN, plan.derived_gaps),
    ):
        spread = boundary * LONG_SPREAD
        if count:
            groups.append(Gaps(f"{boundary} s", boundary - spread, boundary + spread, count))
    return groups


def deal(groups: Sequence[Gaps], lanes: int, seed: int = 4) -> list[list[tuple[str, float]]]:
    """Deal the gaps to lanes, longest first onto the lane with the least total wait (so lanes
    finish together), then shuffle each lane's order (seeded: every run gets the same)."""
    dealt: list[list[tuple[str, float]]] = [[] for _ in range(lanes)]
    for gap in sorted((g for group in groups for g in group.spread()), key=lambda g: -g[1]):
        min(dealt, key=lambda lane: sum(seconds for _, seconds in lane)).append(gap)
    rng = random.Random(seed)
    for lane in dealt:
        rng.shuffle(lane)
    return dealt


# --------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def stop_all(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop processes this module started: SIGTERM each by PID, wait, then SIGKILL.

    Each was started in a new session, so its process group id is its PID: the SIGKILL goes to
    that group, which also takes any worker an abruptly killed master leaves behind.
    """
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)


CPU_LOAD = """import time
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    pass
"""


@contextlib.contextmanager
def cpu_load(seconds: float, processes: int | None = None) -> Iterator[int]:
    """A deliberately busy machine: one spinning process per CPU beside the traffic (the race
    windows widen when Gunicorn's and nginx's event loops run late), each ending on its own
    after ``seconds`` and stopped on the way out. Yields how many run."""
    count = processes if processes is not None else len(os.sched_getaffinity(0))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CPU_LOAD.format(seconds=float(seconds))],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        yield count
    finally:
        stop_all(procs)


def stock_conf(rendered: Path, out: Path) -> Path:
    """A copy of the render with Gunicorn's own worker class instead of the
    construct's subclass (``rendering.WORKER_SUBCLASSES``): the defaults' side of a comparison
    of worker stops."""
    shutil.copytree(rendered, out)
    conf = out / "gunicorn.conf.py"
    text = conf.read_text()
    for name, subclass in rendering.WORKER_SUBCLASSES.items():
        text = text.replace(f'worker_class = "{subclass}"', f'worker_class = "{name}"')
    if "gunicorn_alb_" in text:
        raise ProofError(f"{conf}: a worker subclass is left after replacing it")
    conf.write_text(text)
    return out


def http_get(port: int, path: str, timeout: float = 2.0) -> int:
    """Status of one GET on a fresh connection."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, path: str, log: Path, what: str) -> None:
    """Poll ``path`` until it answers 2xx; fail at once if the process exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise ProofError(f"{what} exited with status {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if 200 <= http_get(port, path) < 300:
                return
        if time.monotonic() > deadline:
            raise ProofError(f"{what} did not answer {path} within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.05)


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def find_nginx() -> str:
    """The nginx binary, or a ProofError that says how to get it."""
    candidates = (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx")
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        raise ProofError(
            "nginx is not installed; the proof uses it as the stand-in load balancer. "
            "Install it (Debian/Ubuntu: apt-get install -y nginx) and run again."
        )
    return found


# --------------------------------------------------------------------------------------------
# The project's own output: the rendered files and the boot script's environment


def gunicorn_default_keepalive() -> int:
    """Gunicorn's own default ``keepalive``, read from the installed Gunicorn."""
    from gunicorn.config import Keepalive  # type: ignore[import-untyped]

    return int(Keepalive.default)


# --------------------------------------------------------------------------------------------
# A variant: Gunicorns (one per lane) behind one nginx

NGINX_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
events {{ worker_connections 1024; }}
http {{
    log_format proof '$msec $request_uri $status upstream=$upstream_status rt=$request_time';
    access_log {tmp}/access.log proof;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # Client side: the load driver keeps its connections for the whole run.
    keepalive_timeout 300s;
    keepalive_requests 1000000;
{upstreams}
    server {{
        listen {host}:{port};
        location = /nginx-ready {{ return 204; }}
{locations}
    }}
}}
"""

UPSTREAM = """\
    upstream {name} {{
{servers}\
        keepalive {pool};
        keepalive_timeout {idle}s;  # the load balancer's idle timeout
        keepalive_requests 1000000;
    }}
"""

SERVER = "        server {host}:{port} max_fails=0;\n"

LOCATION = """\
        location /{name}/ {{
            proxy_pass http://{name}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;  # the ALB does not retry: it answers 502
        }}
"""


@dataclass
class Variant:
    """One side of the comparison; ``keepalive`` is what its Gunicorns run with."""

    name: str
    keepalive: int
    env: dict[str, str]
    tmp: Path
    worker: str = "gthread"
    rendered: Path = Path()
    """The render command's output for this worker class."""
    nginx_port: int = 0
    target_ports: list[int] = field(default_factory=list)

    @staticmethod
    def lane_path(lane: int) -> str:
        return f"/lane{lane}/"


def write_nginx_conf(variant: Variant, plan: Plan) -> Path:
    """nginx as the ALB: a pool per lane, and one over all targets for the throughput run."""
    upstreams = [("throughput", variant.target_ports, plan.throughput_threads)] + [
        (f"lane{i}", [port], plan.connections) for i, port in enumerate(variant.target_ports)
    ]
    conf = NGINX_CONF.format(
        tmp=variant.tmp,
        host=LOOPBACK,
        port=variant.nginx_port,
        upstreams="".join(
            UPSTREAM.format(
                name=name,
                servers="".join(SERVER.format(host=LOOPBACK, port=port) for port in ports),
                pool=pool,
                idle=IDLE_TIMEOUT,
            )
            for name, ports, pool in upstreams
        ),
        locations="".join(LOCATION.format(name=name) for name, _, _ in upstreams),
    )
    path = variant.tmp / "nginx.conf"
    path.write_text(conf)
    return path


def start_gunicorn(variant: Variant, rendered: Path, port: int) -> subprocess.Popen[bytes]:
    """Gunicorn with the rendered config and the variant's coupling environment."""
    env = {**os.environ, **variant.env, "HEALTH_CHECK_PATH": HEALTH_PATH}
    app_dir, target = WORKER_APPS[variant.worker]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str((variant.rendered if variant.rendered != Path() else rendered) / "gunicorn.conf.py"),
        "--chdir",
        str(app_dir),
        "--bind",
        f"{LOOPBACK}:{port}",
        "--workers",
        "1",
        target,
    ]
    with (variant.tmp / f"gunicorn-{port}.log").open("wb") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_nginx(nginx: str, variant: Variant, conf: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground, everything it writes under the variant's directory."""
    command = [nginx, "-p", str(variant.tmp), "-c", str(conf), "-e", str(variant.tmp / "error.log")]
    with (variant.tmp / "nginx.out").open("wb") as log:
        return subprocess.Popen(
            [*command, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def running(variants: Sequence[Variant], rendered: Path, plan: Plan) -> Iterator[None]:
    """Start every variant's Gunicorns and its nginx; stop all of them on the way out."""
    nginx = find_nginx()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        gunicorns: list[tuple[Variant, int, subprocess.Popen[bytes]]] = []
        for variant in variants:
            variant.tmp.mkdir(parents=True, exist_ok=True)
            for _ in range(plan.lanes):
                port = free_port()
                variant.target_ports.append(port)
                procs.append(start_gunicorn(variant, rendered, port))
                gunicorns.append((variant, port, procs[-1]))
        for variant, port, proc in gunicorns:
            log = variant.tmp / f"gunicorn-{port}.log"
            wait_ready(proc, port, HEALTH_PATH, log, f"Gunicorn ({variant.name}, port {port})")
        for variant in variants:
            variant.nginx_port = free_port()
            procs.append(start_nginx(nginx, variant, write_nginx_conf(variant, plan)))
            log = variant.tmp / "error.log"
            wait_ready(
                procs[-1], variant.nginx_port, "/nginx-ready", log, f"nginx ({variant.name})"
            )
        yield
    finally:
        # nginx first (it holds the pooled connections), then the Gunicorns.
        stop_all(list(reversed(procs)))


# --------------------------------------------------------------------------------------------
# The load driver


@dataclass(frozen=True)
class Sample:
    group: str  # which boundary the gap was near
    gap: float  # seconds the client connections were idle before this request
    ok: bool
    latency: float  # seconds from the burst's start to this response
    outcome: str  # "200", "502", or the exception's name


def burst(
    conns: Sequence[http.client.HTTPConnection], path: str, group: str = "", gap: float = 0.0
) -> list[Sample]:
    """One GET on each connection, all sent before any response is read; anything but a 200
    counts as failed."""
    start = time.perf_counter()
    failures: list[str] = []
    for conn in conns:
        try:
            conn.request("GET", path)
            failures.append("")
        except (OSError, http.client.HTTPException) as error:
            conn.close()  # http.client reconnects on the next request
            failures.append(type(error).__name__)
    samples = []
    for conn, failure in zip(conns, failures, strict=True):
        ok, outcome = False, failure
        if not failure:
            try:
                response = conn.getresponse()
                response.read()
                ok, outcome = response.status == 200, str(response.status)
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                outcome = type(error).__name__
        samples.append(Sample(group, gap, ok, time.perf_counter() - start, outcome))
    return samples


def run_lane(
    port: int,
    path: str,
    connections: int,
    start: float,
    gaps: Sequence[tuple[str, float]],
    out: list[Sample],
) -> None:
    """After ``start`` seconds a first burst fills the lane's pool (not counted); then a burst
    after each gap."""
    conns = [
        http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
        for _ in range(connections)
    ]
    try:
        time.sleep(start)
        burst(conns, path)
        for group, gap in gaps:
            time.sleep(gap)
            out.extend(burst(conns, path, group, gap))
    finally:
        for conn in conns:
            conn.close()


def run_threads(jobs: Sequence[Callable[[], None]], limit: float) -> None:
    """Run the jobs in threads and wait; a ProofError if they outlast ``limit`` seconds."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise ProofError(f"the load driver did not finish within {limit:.0f} s")
    if errors:
        raise errors[0]


def throughput(port: int, threads: int, seconds: float) -> tuple[list[Sample], float]:
    """Back-to-back requests on ``threads`` client connections for ``seconds``."""
    per_thread: list[list[Sample]] = [[] for _ in range(threads)]
    stop_at = time.monotonic() + seconds

    def worker(out: list[Sample]) -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
        try:
            while time.monotonic() < stop_at:
                out.extend(burst([conn], "/throughput/"))
        finally:
            conn.close()

    start = time.monotonic()
    run_threads([partial(worker, out) for out in per_thread], seconds + REQUEST_TIMEOUT + 5)
    return [s for out in per_thread for s in out], time.monotonic() - start


# --------------------------------------------------------------------------------------------
# Calibration: how late, on this machine, Gunicorn closes an expired keep-alive connection


def read_response(sock: socket.socket) -> None:
    """Read one small response (headers and a Content-Length body) off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProofError("the target closed the calibration connection mid-response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProofError("the target closed the calibration connection mid-response")
        body += chunk


def measure_close(port: int, start: float, keepalive: int, closes: list[float]) -> None:
    """Seconds from a response to the target closing the then idle connection (direct)."""
    time.sleep(start)
    request = f"GET {HEALTH_PATH} HTTP/1.1\r\nHost: proof\r\n\r\n".encode()
    with socket.create_connection((LOOPBACK, port), timeout=keepalive + 5) as sock:
        sock.sendall(request)
        read_response(sock)
        received = time.perf_counter()
        while sock.recv(65536):
            pass
        closes.append(time.perf_counter() - received)


def calibrate(variant: Variant, stagger: float) -> float:
    """The median, over the variant's targets (measured staggered, each on its own), of how
    long after a response Gunicorn closes the idle connection."""
    closes: list[float] = []
    jobs = [
        partial(measure_close, port, i * stagger, variant.keepalive, closes)
        for i, port in enumerate(variant.target_ports)
    ]
    run_threads(jobs, len(jobs) * stagger + variant.keepalive + 15)
    return statistics.median(closes)


# --------------------------------------------------------------------------------------------
# Results


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


@dataclass
class Result:
    variant: str
    keepalive: int
    samples: list[Sample]  # the requests after idle gaps
    burst: list[Sample]  # the throughput run
    burst_seconds: float
    nginx_errors: dict[str, int]

    @property
    def failed(self) -> int:
        return sum(not s.ok for s in self.samples)

    @property
    def burst_failed(self) -> int:
        return sum(not s.ok for s in self.burst)

    @property
    def requests_per_second(self) -> float:
        return sum(s.ok for s in self.burst) / self.burst_seconds

    def by_group(self) -> dict[str, tuple[int, int]]:
        """{boundary: (failed, requests)}, shortest gaps first."""
        groups: dict[str, tuple[int, int]] = {}
        for s in sorted(self.samples, key=lambda s: s.gap):
            failed, total = groups.get(s.group, (0, 0))
            groups[s.group] = (failed + (not s.ok), total + 1)
        return groups


NGINX_ERROR = re.compile(r"\[error\] [^*]*\*\d+ (?P<reason>.+?)(?: while |, client: |$)")


def nginx_upstream_errors(error_log: Path) -> dict[str, int]:
    """nginx's own account of the failed requests: {reason: count}."""
    reasons: dict[str, int] = {}
    if error_log.exists():
        for line in error_log.read_text(errors="replace").splitlines():
            match = NGINX_ERROR.search(line)
            if match and "upstream" in line:
                reasons[match["reason"]] = reasons.get(match["reason"], 0) + 1
    return reasons


@dataclass
class WorkerOutcome:
    """One worker class: its defaults and generated variants, and its calibration."""

    defaults: Result
    generated: Result
    close_after: float  # calibration: seconds from a response to Gunicorn's close (defaults)
    race_gaps: Gaps


@dataclass
class Outcome:
    plan: Plan
    workers: dict[str, WorkerOutcome]
    phases: dict[str, float]  # seconds each phase took, in order
    busy: int = 0  # CPU-spinning processes beside the traffic

    @property
    def defaults(self) -> Result:
        """The gthread worker's (the construct's default) defaults variant."""
        return self.workers["gthread"].defaults

    @property
    def generated(self) -> Result:
        return self.workers["gthread"].generated

    @property
    def wall(self) -> float:
        return sum(self.phases.values())

    def report(self) -> str:
        plan = self.plan
        lines = [
            f"proof, {plan.name} run: nginx {IDLE_TIMEOUT} s idle timeout in front of "
            f"{plan.lanes} Gunicorns per variant, bursts of {plan.connections} requests; "
            f"wall time {self.wall:.1f} s; machine kept busy by {self.busy} CPU-spinning "
            "processes",
        ]
        lines += [
            f"calibration: {worker} (keep-alive {w.defaults.keepalive} s) closed an idle "
            f"connection {w.close_after * 1000:.1f} ms after its response; gaps near it "
            f"{w.race_gaps.low * 1000:.1f} to {w.race_gaps.high * 1000:.1f} ms"
            for worker, w in self.workers.items()
        ]
        lines += [
            "",
            "| Gunicorn | keep-alive | requests | failed | p50 ms | p90 ms | p99 ms "
            f"| req/s ({plan.throughput_threads} connections) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        results = [r for w in self.workers.values() for r in (w.defaults, w.generated)]
        for r in results:
            ms = [s.latency * 1000 for s in r.samples]
            lines.append(
                f"| {r.variant} | {r.keepalive} s | {len(r.samples)} | {r.failed} "
                f"| {percentile(ms, 0.5):.1f} | {percentile(ms, 0.9):.1f} "
                f"| {percentile(ms, 0.99):.1f} | {r.requests_per_second:.0f} |"
            )
        lines.append("")
        for r in results:
            groups = ", ".join(f"{f}/{n} near {g}" for g, (f, n) in r.by_group().items())
            outcomes: dict[str, int] = {}
            for s in r.samples:
                outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
            errors = "; ".join(f"{n}x {m}" for m, n in sorted(r.nginx_errors.items())) or "none"
            lines.append(
                f"{r.variant}: failed {groups}; responses {dict(sorted(outcomes.items()))}; "
                f"throughput run {len(r.burst)} requests, {r.burst_failed} failed; "
                f"nginx upstream errors: {errors}"
            )
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())
        lines.append(f"phases: {phases}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The run


def run(plan: Plan, workdir: Path | None = None) -> Outcome:
    """Both variants, each through its own nginx, in one go."""
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = now - mark
        mark = now

    find_nginx()  # before anything else: say so if it is missing
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="proof-")))
        rendered = workdir / "rendered"
        instance_files.render(rendered, IDLE_TIMEOUT, KEEPALIVE_MARGIN)
        coupling = instance_files.boot_environment(rendered, workdir / "root")
        default_keepalive = gunicorn_default_keepalive()
        derived = int(coupling["GUNICORN_ALB_KEEPALIVE"])
        if derived <= IDLE_TIMEOUT:
            raise ProofError(
                f"the boot script derived keep-alive {derived} s for idle timeout {IDLE_TIMEOUT} s"
            )
        pairs: dict[str, tuple[Variant, Variant]] = {}
        for worker in plan.workers:
            slug = worker.split(".")[-1].lower()
            conf = rendered if worker == "gthread" else workdir / f"rendered-{slug}"
            if worker != "gthread":  # the same render, for this worker class
                instance_files.render(
                    conf, IDLE_TIMEOUT, KEEPALIVE_MARGIN, ["--worker-class", worker]
                )
            prefix = "" if worker == "gthread" else f"{slug} "
            pairs[worker] = (
                Variant(
                    f"{prefix}defaults",
                    default_keepalive,
                    {**coupling, "GUNICORN_ALB_KEEPALIVE": str(default_keepalive)},
                    workdir / f"{prefix}defaults".replace(" ", "-"),
                    worker,
                    conf,
                ),
                Variant(
                    f"{prefix}generated",
                    derived,
                    dict(coupling),
                    workdir / f"{prefix}generated".replace(" ", "-"),
                    worker,
                    conf,
                ),
            )
        variants = [v for pair in pairs.values() for v in pair]
        stack.enter_context(running(variants, rendered, plan))
        busy = stack.enter_context(cpu_load(CPU_LOAD_SECONDS))
        phase("render and start")

        close_after = {w: calibrate(pair[0], stagger=0.1) for w, pair in pairs.items()}
        phase("calibration")

        groups = {w: gap_groups(plan, default_keepalive, close_after[w]) for w in pairs}
        lanes = {w: deal(groups[w], plan.lanes) for w in pairs}
        samples: dict[str, list[list[Sample]]] = {
            v.name: [[] for _ in range(plan.lanes)] for v in variants
        }
        # Lanes start staggered over one default keep-alive period, every variant's lanes
        # interleaved, so that bursts of different lanes do not land at the same moment.
        stagger = default_keepalive / (len(variants) * plan.lanes)
        jobs = [
            partial(
                run_lane,
                v.nginx_port,
                v.lane_path(i),
                plan.connections,
                (i * len(variants) + n) * stagger,
                gaps,
                samples[v.name][i],
            )
            for n, v in enumerate(variants)
            for i, gaps in enumerate(lanes[v.worker])
        ]
        longest = max(sum(s for _, s in lane) for dealt in lanes.values() for lane in dealt)
        run_threads(jobs, default_keepalive + longest + 30)
        phase("gaps")

        results = {}
        for v in variants:
            requests, seconds = throughput(
                v.nginx_port, plan.throughput_threads, plan.throughput_seconds
            )
            results[v.name] = Result(
                v.name,
                v.keepalive,
                [s for lane in samples[v.name] for s in lane],
                requests,
                seconds,
                nginx_upstream_errors(v.tmp / "error.log"),
            )
        phase("throughput")
    phase("stop")
    return Outcome(
        plan,
        {
            w: WorkerOutcome(
                results[defaults.name], results[generated.name], close_after[w], groups[w][0]
            )
            for w, (defaults, generated) in pairs.items()
        },
        phases,
        busy,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Gunicorn's default keep-alive vs the generated config, behind nginx "
        "standing in for the ALB."
    )
    parser.add_argument("--short", action="store_true", help="the CI-sized run")
    parser.add_argument(
        "--keep", metavar="DIR", type=Path, help="write configs and logs to DIR and keep them"
    )
    args = parser.parse_args(argv)
    plan = SHORT if args.short else FULL
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    try:
        outcome = run(plan, args.keep)
    except ProofError as error:
        print(f"proof: cannot run: {error}", file=sys.stderr)
        return 2
    print(outcome.report())
    status = 0
    for worker, w in outcome.workers.items():
        if w.generated.failed or w.generated.burst_failed:
            print(f"proof: FAILED: the generated config lost requests ({worker})", file=sys.stderr)
            status = 1
        elif not w.defaults.failed and worker not in outcome.plan.must_reproduce:
            print(
                f"proof: note ({worker}): Gunicorn's defaults lost no request this run (its race "
                f"window is narrow); the generated config lost none of {len(w.generated.samples)}"
            )
        elif not w.defaults.failed:
            print(
                f"proof: FAILED: Gunicorn's defaults lost no request ({worker}), so this run "
                "did not reproduce the race and proves nothing",
                file=sys.stderr,
            )
            status = 1
        else:
            print(
                f"proof: OK ({worker}): Gunicorn's defaults lost {w.defaults.failed} of "
                f"{len(w.defaults.samples)} requests, the generated config none of "
                f"{len(w.generated.samples)}"
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
