"""Transitions behind the nginx stand-in: what a change does to the load balancer's pooled
connections, for Gunicorn's defaults and for the generated setup, with the same traffic.

Usage (from the repository root)::

    .venv/bin/python tools/proof/transitions.py            # full run, about a minute
    .venv/bin/python tools/proof/transitions.py --short    # the CI run, about 25 s
    .venv/bin/python tools/proof/transitions.py --keep DIR # keep configs and logs in DIR

Every transition runs at once, each with its own nginx (the stand-in ALB, set up as in
``proof.py``: an upstream keep-alive pool per lane, no retry) and its own Gunicorns, all on
127.0.0.1. A *lane* is one instance (two for scale-in) with its own pool and client connections.
The timeouts are scaled down: idle timeout 3 s, margin 1 s (keep-alive 4 s), the coupling agent's
timer every 1 s (20-26 s on an instance).

* **idle timeout raised, agent**: the idle timeout goes 3 -> 5 -> 7 s mid-run (nginx reloaded
  with each value). On the generated setup the real coupling agent (``userdata/coupling.sh``, as
  on an instance) runs every second: its AWS read is a PATH stand-in for ``aws`` that reads the
  idle timeout from this nginx's config, and ``systemctl reload`` a stand-in that does what the
  unit's ``ExecReload=`` does (``kill -s HUP`` the Gunicorn master).
* **idle timeout raised, agent off**: the same, without the agent (the control: what a fleet
  built for the old value does).
* **reload (HUP)**: every Gunicorn master gets SIGHUP mid-run, as ``systemctl reload`` sends it.
* **scale-in**: a lane's second target leaves the pool (nginx reloaded without it: drained, no
  new requests), and once no connection to it is left it is stopped the way systemd stops the
  unit (SIGTERM; Gunicorn's graceful timeout).
* **worker recycling**: Gunicorn rendered with ``max_requests`` and ``max_requests_jitter``.

Traffic per lane, the same for both setups of a transition: bursts (one request on every client
connection at once) after gaps near Gunicorn's default keep-alive (calibrated as in ``proof.py``),
near the generated keep-alive before the raise (4 s), and short ones (load). The client drops a
connection nginx closed while idle before it reuses it (as HTTP clients do: nginx's reload closes
idle client connections, which the ALB does not do), so only what happens behind the load
balancer counts.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import select
import signal
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
if str(REPO) not in sys.path:  # run as a script: `python tools/proof/transitions.py`
    sys.path.insert(0, str(REPO))
from gunicorn_alb import delivery  # noqa: E402
from tools import instance_files  # noqa: E402
from tools.proof import proof  # noqa: E402

IDLE = 3  # the scaled-down ALB idle timeout
MARGIN = 1  # keep-alive 4 s
RAISES = (5, 7)  # the idle timeout during the run, after each change
AGENT_PERIOD = 1.0  # the coupling agent's timer, scaled (20-26 s on an instance)
MAX_REQUESTS, MAX_REQUESTS_JITTER = 20, 10  # worker recycling: a restart every 20-29 requests
RECYCLED_AT_LEAST = 100  # worker restarts the full run must reach
RELOAD_EVERY = 3.0  # seconds between SIGHUPs (reload row)
KILL_EVERY = 4  # a lane's worker is SIGKILLed after every 4th burst (killed-worker row)
STEADY_PAUSE = 0.02  # seconds between a steady stream's requests (reload and recycling rows)
# Gaps near a keep-alive run from this long before it to just after Gunicorn's calibrated close.
# Earlier than in proof.py: a burst's responses finish up to ~20 ms apart here (many processes
# share the CPUs), and a request that wakes Gunicorn after any of the burst's connections expired
# makes it close the others (the race) while their requests are on the way.
EARLY = 0.02
TARGET_GROUP = "arn:aws:elasticloadbalancing:proof:000000000000:targetgroup/proof/0"
LOAD_BALANCER = "arn:aws:elasticloadbalancing:proof:000000000000:loadbalancer/app/proof/0"

AGENT_OFF = "idle timeout raised, agent off"
RELOAD, RECYCLING, KILLED = "reload (HUP)", "worker recycling", "worker killed (SIGKILL)"
TRANSITIONS = ("idle timeout raised, agent", AGENT_OFF, RELOAD, "scale-in", RECYCLING, KILLED)
STEADY = (RELOAD, RECYCLING)  # rows with a steady stream of requests beside the bursts

AWS = r"""#!/bin/bash
# aws stand-in for the proof: the coupling agent's two read-only calls, answered with what their
# --query selects, from the stand-in load balancer (this setup's nginx config). Every call is
# recorded. (tests/standins/aws_cli.py, used by the agent's tests, runs the --query for real.)
echo "$*" >>"$GUNICORN_ALB_PROOF_DIR/aws.calls"
case "$1 $2" in
  "elbv2 describe-target-groups") echo "$GUNICORN_ALB_PROOF_LB" ;;
  "elbv2 describe-load-balancer-attributes")
    sed -n "s/.*keepalive_timeout \([0-9]*\)s;  # the load balancer's idle timeout/\1/p" \
      "$GUNICORN_ALB_PROOF_NGINX_CONF" | head -n 1 ;;
  *) echo "aws stand-in: $* is not implemented" >&2; exit 254 ;;
esac
"""

SYSTEMCTL = """#!/bin/bash
# systemctl stand-in for the proof: what gunicorn-app.service does for `is-active` and for
# `reload` (ExecReload=/usr/bin/kill -s HUP $MAINPID), on the lane's Gunicorn master.
echo "$*" >>"$GUNICORN_ALB_PROOF_DIR/systemctl.calls"
case $1 in
  is-active) kill -0 "$GUNICORN_ALB_PROOF_MAINPID" ;;
  reload) kill -s HUP "$GUNICORN_ALB_PROOF_MAINPID" ;;
  *) echo "systemctl stand-in: $* is not implemented" >&2; exit 1 ;;
esac
"""


@dataclass(frozen=True)
class Plan:
    name: str
    lanes: int  # instances per setup and transition
    connections: int  # client connections per lane = burst size = nginx pool per lane
    seconds: float  # traffic per transition


SHORT = Plan("short", lanes=2, connections=4, seconds=11.0)
FULL = Plan("full", lanes=4, connections=4, seconds=45.0)


# --------------------------------------------------------------------------------------------
# Processes: Gunicorn targets, nginx, the agent's timer


@dataclass
class Target:
    port: int
    proc: subprocess.Popen[bytes]
    coupling: Path  # the coupling file its gunicorn.conf.py reads
    home: Path  # its directory: log, agent state, stand-in calls

    def workers(self) -> set[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return set()
        return {int(pid) for pid in text.split()}

    def keepalive(self) -> int:
        return int(delivery.parse_env(self.coupling.read_text())["GUNICORN_ALB_KEEPALIVE"])


@dataclass
class Setup:
    """One setup (defaults or generated) of one transition: its lanes, nginx and agent."""

    transition: str
    name: str
    keepalive: int
    agent: bool
    tmp: Path
    lanes: list[list[Target]] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None
    nginx_port: int = 0
    idle: int = IDLE
    samples: list[proof.Sample] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    window: float | None = 0.0  # longest window (s) a pooled connection could be closed first
    window_note: str = ""
    reloads: int = 0
    kills: int = 0
    restarts: int = 0  # worker restarts for max_requests, counted from the logs at the end

    @property
    def conf(self) -> Path:
        return self.tmp / "nginx.conf"

    def write_nginx_conf(self, plan: Plan, pooled: Callable[[list[Target]], list[Target]]) -> None:
        upstreams = [
            (f"lane{i}", [t.port for t in pooled(lane)]) for i, lane in enumerate(self.lanes)
        ]
        self.conf.write_text(
            proof.NGINX_CONF.format(
                tmp=self.tmp,
                host=proof.LOOPBACK,
                port=self.nginx_port,
                upstreams="".join(
                    proof.UPSTREAM.format(
                        name=name,
                        servers="".join(
                            proof.SERVER.format(host=proof.LOOPBACK, port=p) for p in ports
                        ),
                        pool=plan.connections,
                        idle=self.idle,
                    )
                    for name, ports in upstreams
                ),
                locations="".join(proof.LOCATION.format(name=name) for name, _ in upstreams),
            )
        )

    def reload_nginx(self) -> None:
        """``nginx -s reload``: new workers with the new config, old ones drain and exit."""
        assert self.nginx is not None
        self.nginx.send_signal(signal.SIGHUP)

    def nginx_workers(self) -> int:
        assert self.nginx is not None
        path = Path(f"/proc/{self.nginx.pid}/task/{self.nginx.pid}/children")
        return len(path.read_text().split()) if path.exists() else 0

    def targets(self) -> list[Target]:
        return [t for lane in self.lanes for t in lane]

    @property
    def failed(self) -> int:
        return sum(not s.ok for s in self.samples)


def start_gunicorn(
    setup: Setup, conf: Path, coupling: dict[str, str], port: int
) -> subprocess.Popen[bytes]:
    home = setup.tmp / f"target-{port}"
    home.mkdir(parents=True)
    coupling_file = home / "coupling.env"
    coupling_file.write_text("".join(f"{k}={v}\n" for k, v in coupling.items()))
    env = {
        **os.environ,
        **coupling,
        "GUNICORN_ALB_COUPLING_FILE": str(coupling_file),
        "HEALTH_CHECK_PATH": proof.HEALTH_PATH,
    }
    with (home / "gunicorn.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(conf),
             "--chdir", str(proof.SAMPLE_APP), "--bind", f"{proof.LOOPBACK}:{port}",
             "--workers", "1", proof.WSGI_APP],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def agent_env(setup: Setup, target: Target, rendered: Path, bin_dir: Path) -> dict[str, str]:
    """The agent's environment on one lane: the stand-ins first on PATH, this lane's files."""
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GUNICORN_ALB_BOOT": str(rendered / "gunicorn-alb-boot"),
        "GUNICORN_ALB_COUPLING_FILE": str(target.coupling),
        "STATE_DIRECTORY": str(target.home / "agent-state"),
        "GUNICORN_ALB_PROOF_DIR": str(target.home),
        "GUNICORN_ALB_PROOF_MAINPID": str(target.proc.pid),
        "GUNICORN_ALB_PROOF_LB": LOAD_BALANCER,
        "GUNICORN_ALB_PROOF_NGINX_CONF": str(setup.conf),
    }


def run_timer(command: list[str], env: dict[str, str], log: Path, stop: threading.Event) -> None:
    """The timer stand-in: run the agent every AGENT_PERIOD seconds until ``stop``."""
    due = time.monotonic() + AGENT_PERIOD
    with log.open("a") as out:
        while not stop.wait(max(0.0, due - time.monotonic())):
            due += AGENT_PERIOD  # like OnUnitActiveSec=: from one start to the next
            subprocess.run(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=30, check=False
            )


# --------------------------------------------------------------------------------------------
# Traffic


def gap_sequence(lane: int, close_after: float, default_keepalive: int) -> Iterator[float]:
    """Gaps for one lane (seeded: both setups of a transition get the same): near Gunicorn's
    default keep-alive (from EARLY before it to just after its calibrated close), near the
    generated keep-alive before the raise, and short ones."""
    rng = random.Random(1000 + lane)
    late = max(close_after - default_keepalive, 0.0) + proof.RACE_AFTER
    kinds = ["default", "short", "generated", "default", "short", "default"]
    while True:
        for kind in kinds:
            if kind == "short":
                yield rng.uniform(0.05, 0.4)
            else:
                boundary = default_keepalive if kind == "default" else IDLE + MARGIN
                yield rng.uniform(boundary - EARLY, boundary + late)


def lane_plan(lane: int, plan: Plan, close_after: float, default_keepalive: int) -> list[float]:
    """A lane's gaps for ``plan.seconds`` of traffic (a fixed list: every setup of every
    transition gets the same requests)."""
    gaps: list[float] = []
    for gap in gap_sequence(lane, close_after, default_keepalive):
        if sum(gaps) + gap > plan.seconds:
            return gaps
        gaps.append(gap)
    return gaps


def drop_closed(conns: Sequence[http.client.HTTPConnection]) -> None:
    """Close client connections the load balancer closed while they were idle (readable at
    end-of-file), so http.client opens new ones: what HTTP clients check before reusing one."""
    for conn in conns:
        if conn.sock is not None and select.select([conn.sock], [], [], 0)[0]:
            conn.close()


def run_lane(
    port: int,
    path: str,
    connections: int,
    start: float,
    gaps: Sequence[float],
    out: list[proof.Sample],
    after_burst: Callable[[int], None] | None = None,
) -> None:
    """A first burst fills the pool (not counted), then a burst after each gap, and
    ``after_burst(n)`` after the n-th. Sleeps come back late on a busy machine (many threads and
    processes share two CPUs), and the race windows are milliseconds wide: each sleep is
    shortened by how late the lane's earlier ones came back."""
    conns = [
        http.client.HTTPConnection(proof.LOOPBACK, port, timeout=proof.REQUEST_TIMEOUT)
        for _ in range(connections)
    ]
    late = 0.0
    try:
        time.sleep(start)
        proof.burst(conns, path)
        for n, gap in enumerate(gaps, 1):
            due = time.monotonic() + gap
            time.sleep(max(0.0, gap - late))
            late += 0.5 * (time.monotonic() - due)
            drop_closed(conns)
            out.extend(proof.burst(conns, path, "transition", gap))
            if after_burst is not None:
                after_burst(n)
    finally:
        for conn in conns:
            conn.close()


def run_steady(port: int, path: str, start: float, seconds: float, out: list[proof.Sample]) -> None:
    """Load beside the bursts: one client connection, a request every STEADY_PAUSE seconds
    after the previous answer, for ``seconds``."""
    conn = http.client.HTTPConnection(proof.LOOPBACK, port, timeout=proof.REQUEST_TIMEOUT)
    try:
        time.sleep(start)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            drop_closed([conn])
            out.extend(proof.burst([conn], path, "steady", STEADY_PAUSE))
            time.sleep(STEADY_PAUSE)
    finally:
        conn.close()


def killer(setup: Setup, lane: int) -> Callable[[int], None]:
    """After every KILL_EVERY-th burst of a lane (its responses all read, nothing in flight),
    SIGKILL the lane's worker, as the kernel's OOM killer or a crash would end it."""

    def kill(n: int) -> None:
        if n % KILL_EVERY:
            return
        for pid in setup.lanes[lane][0].workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                setup.kills += 1

    return kill


# --------------------------------------------------------------------------------------------
# The transitions: what happens mid-run, and how long a pooled connection was exposed


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def wait_for(check: Callable[[], bool], limit: float, what: str) -> float:
    """Poll ``check`` every 10 ms; the monotonic time it first held, or a ProofError."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise proof.ProofError(f"{what} did not happen within {limit:.0f} s")
        time.sleep(0.01)
    return time.monotonic()


def replaced(target: Target, before: set[int]) -> Callable[[], bool]:
    """Every worker that ran before is gone and a new one runs."""
    return lambda: bool(target.workers()) and not target.workers() & before


def recoupled(target: Target, keepalive: int, before: set[int]) -> bool:
    """The coupling file has ``keepalive`` and every worker that ran before is gone."""
    return target.keepalive() == keepalive and replaced(target, before)()


def raise_idle(setups: Sequence[Setup], plan: Plan, begin: float, coupled: list[float]) -> None:
    """The idle timeout raised twice mid-run; on a setup with the agent, time until every
    worker runs the keep-alive for the new value (its old workers gone)."""
    for fraction, idle in zip((0.3, 0.6), RAISES, strict=True):
        sleep_until(begin + fraction * plan.seconds)
        waits = []
        for setup in setups:
            before = {id(t): t.workers() for t in setup.targets()}
            setup.idle = idle
            setup.write_nginx_conf(plan, list)
            changed = time.monotonic()
            setup.reload_nginx()
            setup.events.append(f"idle timeout -> {idle} s at {changed - begin:.1f} s")
            if not setup.agent:
                continue
            for target in setup.targets():
                done = partial(recoupled, target, idle + MARGIN, before[id(target)])
                waits.append((setup, changed, done))
        for setup, changed, done in waits:
            elapsed = wait_for(done, 60, "the re-coupling") - changed
            coupled.append(elapsed)
            setup.window = max(setup.window or 0.0, elapsed)


def reload_gunicorn(setups: Sequence[Setup], plan: Plan, begin: float) -> None:
    """SIGHUP to every Gunicorn master every RELOAD_EVERY seconds from 10 % to 90 % of the run,
    as ``systemctl reload`` sends it: each time new workers start and the old ones stop."""
    moment = 0.1 * plan.seconds
    while moment <= 0.9 * plan.seconds:
        sleep_until(begin + moment)
        for setup in setups:
            setup.reloads += 1
            for target in setup.targets():
                target.proc.send_signal(signal.SIGHUP)
        moment += RELOAD_EVERY
    for setup in setups:
        setup.events.append(f"{setup.reloads} SIGHUPs, every {RELOAD_EVERY:.0f} s")


def drained(setup: Setup) -> bool:
    """nginx's old workers (which had the removed targets) have finished and exited."""
    return setup.nginx_workers() == 1


def established(port: int) -> int:
    """TCP connections to 127.0.0.1:``port`` in state ESTABLISHED (from /proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == "01" and int(local.split(":")[1], 16) == port:
            count += 1
    return count


def scale_in(setups: Sequence[Setup], plan: Plan, begin: float, stop_timeout: float) -> None:
    """Each lane's second target leaves the pool (drained), then is stopped like systemd stops
    gunicorn-app.service: SIGTERM, and SIGKILL after TimeoutStopSec (KillMode=mixed)."""
    sleep_until(begin + 0.4 * plan.seconds)
    for setup in setups:
        setup.write_nginx_conf(plan, lambda lane: lane[:1])
        setup.reload_nginx()
    for setup in setups:
        wait_for(partial(drained, setup), 30, "nginx's drain")
        left = 0
        for lane in setup.lanes:
            target = lane[1]
            left += established(target.port)
            target.proc.send_signal(signal.SIGTERM)
            try:
                target.proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(target.proc.pid, signal.SIGKILL)
                target.proc.wait()
                setup.events.append(f"port {target.port} killed after {stop_timeout:.0f} s")
        setup.events.append(
            f"drained and stopped at {time.monotonic() - begin:.1f} s, "
            f"{left} connection(s) to them left at SIGTERM"
        )
        if left and setup.window is not None:
            setup.window = max(setup.window, linger())
            setup.window_note = f"{left} connection(s) at SIGTERM"


def linger() -> float:
    """How long a stopping gthread worker keeps kept-alive connections (Gunicorn 27.0.1)."""
    from gunicorn.workers import gthread  # type: ignore[import-untyped]

    return float(getattr(gthread, "STOP_KEEPALIVE_LINGER", 0.0))


def restarts(setup: Setup) -> int:
    """Worker restarts for max_requests, from the Gunicorns' logs."""
    return sum(
        (t.home / "gunicorn.log").read_text(errors="replace").count("Autorestarting worker")
        for t in setup.targets()
    )


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Outcome:
    plan: Plan
    setups: list[Setup]
    coupled: list[float]  # seconds from an idle-timeout change to every worker re-coupled
    close_after: float
    wall: float
    run_seconds: float
    busy: int = 0  # CPU-spinning processes beside the traffic

    def rows(self) -> list[Setup]:
        return self.setups

    def setup(self, transition: str, name: str) -> Setup:
        return next(s for s in self.setups if (s.transition, s.name) == (transition, name))

    def report(self) -> str:
        lines = [
            f"transitions, {self.plan.name} run: nginx idle timeout {IDLE} s (raised to "
            f"{' then '.join(map(str, RAISES))} s where it changes), {self.plan.lanes} lanes per "
            f"setup, bursts of {self.plan.connections}, {self.plan.seconds:.0f} s of traffic; "
            f"wall time {self.wall:.1f} s, the machine kept busy by {self.busy} CPU-spinning "
            f"processes; Gunicorn closed an idle connection "
            f"{self.close_after * 1000:.1f} ms after its response (calibration)",
            "",
            "| transition | setup | keep-alive | requests | failed | longest window a pooled "
            "connection could be closed first |",
            "|---|---|---|---|---|---|",
        ]
        for s in self.setups:
            if s.window is None:
                window = f"{self.run_seconds:.1f} s (whole run: keep-alive <= idle timeout)"
            else:
                window = f"{s.window:.2f} s" + (f" ({s.window_note})" if s.window_note else "")
            lines.append(
                f"| {s.transition} | {s.name} | {s.keepalive} s | {len(s.samples)} "
                f"| {s.failed} | {window} |"
            )
        lines.append("")
        if self.coupled:
            lines.append(
                f"idle timeout change -> every worker on the new keep-alive (agent every "
                f"{AGENT_PERIOD:.0f} s): median {statistics.median(self.coupled):.2f} s, worst "
                f"{max(self.coupled):.2f} s over {len(self.coupled)} (lanes x changes)"
            )
        for s in self.setups:
            if s.events:
                lines.append(f"{s.transition}, {s.name}: {'; '.join(s.events)}")
        return "\n".join(lines)


def render(out: Path, *extra: str) -> Path:
    """``python -m gunicorn_alb render`` for the scaled stack, with the coupling agent."""
    subprocess.run(
        [sys.executable, "-m", "gunicorn_alb", "render", "--idle-timeout", str(IDLE),
         "--keepalive-margin", str(MARGIN), "--target-group-arn", TARGET_GROUP,
         "--region", "proof", "--out", str(out), *extra],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out


def install_standins(bin_dir: Path) -> None:
    """``aws`` (reads the stand-in load balancer's idle timeout) and ``systemctl``."""
    bin_dir.mkdir(parents=True)
    for name, script in (("aws", AWS), ("systemctl", SYSTEMCTL)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)


@contextlib.contextmanager
def running(setups: Sequence[Setup], plan: Plan, confs: dict[tuple[str, bool], Path],
            coupling: dict[str, str]) -> Iterator[None]:  # fmt: skip
    """Every setup's Gunicorns and nginx; all stopped on the way out. ``confs``: the render by
    (setup name, recycling or not)."""
    nginx = proof.find_nginx()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for setup in setups:
            setup.tmp.mkdir(parents=True)
            conf = confs[setup.name, setup.transition == RECYCLING]
            env = {**coupling, "GUNICORN_ALB_KEEPALIVE": str(setup.keepalive)}
            per_lane = 2 if setup.transition == "scale-in" else 1
            for _ in range(plan.lanes):
                lane = []
                for _ in range(per_lane):
                    port = proof.free_port()
                    proc = start_gunicorn(setup, conf / "gunicorn.conf.py", env, port)
                    procs.append(proc)
                    home = setup.tmp / f"target-{port}"
                    lane.append(Target(port, proc, home / "coupling.env", home))
                setup.lanes.append(lane)
        for setup in setups:
            for target in setup.targets():
                log = target.home / "gunicorn.log"
                what = f"Gunicorn ({setup.name})"
                proof.wait_ready(target.proc, target.port, proof.HEALTH_PATH, log, what)
        for setup in setups:
            setup.nginx_port = proof.free_port()
            setup.write_nginx_conf(plan, list)
            setup.nginx = proof.start_nginx(nginx, _variant(setup), setup.conf)
            procs.append(setup.nginx)
            proof.wait_ready(setup.nginx, setup.nginx_port, "/nginx-ready",
                             setup.tmp / "error.log", f"nginx ({setup.transition})")  # fmt: skip
        yield
    finally:
        proof.stop_all(list(reversed(procs)))


def _variant(setup: Setup) -> proof.Variant:
    """proof.start_nginx takes a Variant for its directory."""
    return proof.Variant(setup.name, setup.keepalive, {}, setup.tmp)


def run(plan: Plan, workdir: Path | None = None) -> Outcome:
    started = time.monotonic()
    proof.find_nginx()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="proof-")))
        rendered = render(workdir / "rendered")
        recycling = render(workdir / "rendered-recycling", "--max-requests", str(MAX_REQUESTS),
                           "--max-requests-jitter", str(MAX_REQUESTS_JITTER))  # fmt: skip
        coupling = instance_files.boot_environment(rendered, workdir / "root")
        # The defaults run Gunicorn's own worker classes; the generated setup the subclasses in
        # userdata/gunicorn_alb_*.py that the rendered gunicorn.conf.py names.
        confs = {
            ("generated", False): rendered,
            ("generated", True): recycling,
            ("defaults", False): proof.stock_conf(rendered, workdir / "stock"),
            ("defaults", True): proof.stock_conf(recycling, workdir / "stock-recycling"),
        }
        derived = int(coupling["GUNICORN_ALB_KEEPALIVE"])
        default_keepalive = proof.gunicorn_default_keepalive()
        bin_dir = workdir / "bin"
        install_standins(bin_dir)
        setups = []
        for n, transition in enumerate(TRANSITIONS):
            setups.append(Setup(transition, "defaults", default_keepalive, False,
                                workdir / f"t{n}-defaults", window=None))  # fmt: skip
            setups.append(Setup(transition, "generated", derived, transition == TRANSITIONS[0],
                                workdir / f"t{n}-generated"))  # fmt: skip
        stack.enter_context(running(setups, plan, confs, coupling))
        busy = stack.enter_context(proof.cpu_load(proof.CPU_LOAD_SECONDS))

        # How late Gunicorn closes an idle connection here (as proof.py measures it).
        closes: list[float] = []
        defaults = [t for s in setups if s.name == "defaults" for t in s.targets()][:4]
        proof.run_threads(
            [partial(proof.measure_close, t.port, i * 0.1, default_keepalive, closes)
             for i, t in enumerate(defaults)],
            len(defaults) * 0.1 + default_keepalive + 15,
        )  # fmt: skip
        close_after = statistics.median(closes)

        stop_timers = threading.Event()
        timers = []
        for setup in setups:
            if setup.agent:
                for target in setup.targets():
                    env = agent_env(setup, target, rendered, bin_dir)
                    command = ["bash", str(rendered / "gunicorn-alb-coupling"),
                               str(rendered / "boot.env")]  # fmt: skip
                    timer = threading.Thread(
                        target=run_timer,
                        args=(command, env, target.home / "agent.log", stop_timers),
                        daemon=True,
                    )
                    timer.start()
                    timers.append(timer)

        begin = time.monotonic() + 0.5
        until = begin + plan.seconds
        coupled: list[float] = []
        stagger = default_keepalive / (len(setups) * plan.lanes)
        jobs: list[Callable[[], None]] = []
        lane_gaps = [lane_plan(i, plan, close_after, default_keepalive) for i in range(plan.lanes)]
        for n, setup in enumerate(setups):
            for i, gaps in enumerate(lane_gaps):
                start = max(0.0, begin - time.monotonic()) + (i * len(setups) + n) * stagger
                kill = killer(setup, i) if setup.transition == KILLED else None
                jobs.append(partial(run_lane, setup.nginx_port, f"/lane{i}/", plan.connections,
                                    start, gaps, setup.samples, kill))  # fmt: skip
                if setup.transition in STEADY:
                    jobs.append(partial(run_steady, setup.nginx_port, f"/lane{i}/",
                                        start + 0.5, plan.seconds, setup.samples))  # fmt: skip
        pairs = [setups[i : i + 2] for i in range(0, len(setups), 2)]
        graceful = int(coupling["GUNICORN_ALB_GRACEFUL_TIMEOUT"])
        jobs += [
            partial(raise_idle, pairs[0], plan, begin, coupled),
            partial(raise_idle, pairs[1], plan, begin, []),
            partial(reload_gunicorn, pairs[2], plan, begin),
            partial(scale_in, pairs[3], plan, begin, graceful + 10.0),
        ]
        proof.run_threads(jobs, plan.seconds + 60)
        stop_timers.set()
        for timer in timers:
            timer.join(30)

        after = pairs[1][1]
        after.window = until - (begin + 0.3 * plan.seconds)
        after.window_note = "from the first raise on: keep-alive 4 s <= idle timeout"
        for setup in setups:
            if setup.transition == RECYCLING:
                setup.restarts = restarts(setup)
                setup.events.append(f"{setup.restarts} worker restarts")
            if setup.transition == KILLED:
                setup.events.append(f"{setup.kills} workers SIGKILLed, each after a burst")
            if setup.name == "generated" and setup.transition in (RELOAD, RECYCLING):
                # Every stopping worker keeps its pooled connections until nginx closes them
                # (tests/runtime/test_worker_stop.py), so none is closed first.
                setup.window_note = "stopping workers close no idle pooled connection"
            if setup.name == "generated" and setup.transition == KILLED:
                setup.window_note = "a killed worker's connections close with it (FIN)"
            if setup.agent:
                recouplings = sum(
                    (t.home / "agent.log").read_text().count("re-coupled") for t in setup.targets()
                )
                setup.events.append(f"the agent re-coupled {recouplings} times")
    return Outcome(
        plan, setups, coupled, close_after, time.monotonic() - started, plan.seconds, busy
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Transitions behind nginx standing in for the ALB."
    )
    parser.add_argument("--short", action="store_true", help="the CI-sized run")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="keep configs and logs in DIR")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    try:
        outcome = run(SHORT if args.short else FULL, args.keep)
    except proof.ProofError as error:
        print(f"transitions: cannot run: {error}", file=sys.stderr)
        return 2
    print(outcome.report())
    failed = [s for s in outcome.setups
              if s.name == "generated" and s.transition != AGENT_OFF and s.failed]  # fmt: skip
    if failed:
        print("transitions: FAILED: the generated setup lost requests in "
              + ", ".join(s.transition for s in failed), file=sys.stderr)  # fmt: skip
        return 1
    if outcome.plan is FULL and not any(s.failed for s in outcome.setups if s.name == "defaults"):
        print(
            "transitions: FAILED: Gunicorn's defaults lost no request, so the run did not "
            "reproduce the race and proves nothing",
            file=sys.stderr,
        )
        return 1
    recycled = outcome.setup(RECYCLING, "generated").restarts
    if outcome.plan is FULL and recycled < RECYCLED_AT_LEAST:
        print(
            f"transitions: FAILED: {recycled} worker restarts in the recycling row, fewer than "
            f"{RECYCLED_AT_LEAST}: the run did not exercise recycling enough",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
