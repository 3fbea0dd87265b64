"""The timeout model: every number that must agree between the ALB, the target group, the
Auto Scaling group, Gunicorn and systemd, derived from one input (the ALB idle timeout) and checked.

Pure Python with no CDK import: the construct asks this module for numbers and only wires them
into resources, and the boot script (``userdata/boot.sh``) repeats the idle-dependent part with
shell arithmetic when the idle timeout is a deploy-time parameter. Tests hold the two to the same
results.

The rules (ids appear in error messages and in docs/deploying.md's coupled-values table):

``keepalive-exceeds-idle``
    Gunicorn ``keepalive`` = idle timeout + margin, margin >= 1 s, so Gunicorn never closes an idle
    pooled connection first. AWS: the target's keep-alive must be *greater than* the load balancer
    idle timeout; when both are equal either side may close first (both poll loops run late by
    about 0.1 %), and the ALB answers 502 to a request it sent on a connection Gunicorn just closed.
``drain-bounded-by-idle``
    Target-group deregistration delay defaults to the idle timeout (at most 3600 s, the ALB's
    limit): long enough for every in-flight request, since the ALB itself cuts a request that stays
    silent for the idle timeout; no longer, since nothing is left to wait for. It must be 1-3600 s
    (0 would cut in-flight requests at scale-in). When the idle timeout is a deploy-time parameter,
    CloudFormation cannot compute a minimum, so the delay defaults to 3600 s; the ALB completes a
    deregistration as soon as the target has no in-flight requests, so the bound costs nothing
    when requests are short.
``graceful-outlasts-idle``
    Gunicorn ``graceful_timeout`` defaults to the keep-alive (idle timeout + margin) and must
    exceed the idle timeout. A worker that stops on a live target (a reload, ``max_requests``)
    keeps its idle kept-alive connections open until the ALB closes them, which takes up to the
    idle timeout (the worker subclasses in ``userdata/gunicorn_alb_*.py``); a shorter graceful
    timeout would close them first, the race the construct removes. At scale-in the ALB
    has drained the target (``drain-bounded-by-idle``) before the instance stops, so the stop
    finds no request left to it; the graceful timeout may therefore exceed the delay.
``stop-after-graceful``
    systemd ``TimeoutStopSec`` defaults to ``graceful_timeout`` + 10 s and must exceed it,
    otherwise systemd kills workers that are still finishing requests.
``health-timeout-below-interval``
    Health-check timeout (2-120 s) < interval (5-300 s); thresholds 2-10.
``grace-covers-healthy``
    The ASG health-check grace period >= interval x healthy threshold, so a new instance can pass
    its health checks before the ASG judges it.
``grace-covers-boot``
    The ASG health-check grace period defaults to the boot budget (the time from launch until the
    boot script must have installed everything and seen the health path answer) and must not be
    shorter: the grace period starts when the instance enters ``InService``, right after launch,
    and an ELB health check that fails before the boot is done would have the ASG replace an
    instance that is still booting.
``boot-within-signal-timeout``, ``retries-within-install-budget``
    The boot budget fits in the creation policy's signal timeout, and the retries of the boot's
    network steps fit in its install budget: see :mod:`gunicorn_alb.boot_budget`.
``max-requests-needs-jitter``
    ``max_requests`` defaults to 0. A restarting worker loses no request (it stops like any
    other, ``graceful-outlasts-idle``), but it stops accepting at once and Gunicorn starts its
    replacement only when it has exited, up to the idle timeout later: a non-zero value draws a
    warning and requires ``max_requests_jitter`` >= 1 so workers do not restart together.
"""

from __future__ import annotations

from dataclasses import dataclass

from gunicorn_alb.boot_budget import BOOT
from gunicorn_alb.checks import TimeoutRuleError as TimeoutRuleError  # re-exported
from gunicorn_alb.checks import count as _count
from gunicorn_alb.checks import whole as _whole

IDLE_TIMEOUT_MIN = 1
IDLE_TIMEOUT_MAX = 4000
IDLE_TIMEOUT_DEFAULT = 60
KEEPALIVE_MARGIN_MIN = 1
KEEPALIVE_MARGIN_DEFAULT = 5
DEREGISTRATION_DELAY_MIN = 1
DEREGISTRATION_DELAY_MAX = 3600
STOP_TIMEOUT_HEADROOM = 10
HEALTH_CHECK_INTERVAL_RANGE = (5, 300)
HEALTH_CHECK_TIMEOUT_RANGE = (2, 120)
HEALTH_CHECK_THRESHOLD_RANGE = (2, 10)
HEALTH_CHECK_INTERVAL_DEFAULT = 15
HEALTH_CHECK_TIMEOUT_DEFAULT = 5
HEALTHY_THRESHOLD_DEFAULT = 2
UNHEALTHY_THRESHOLD_DEFAULT = 3

RULES: dict[str, str] = {
    "keepalive-exceeds-idle": "Gunicorn keepalive = idle timeout + margin (margin >= 1 s)",
    "drain-bounded-by-idle": "deregistration delay = min(idle timeout, 3600 s); 1-3600 s",
    "graceful-outlasts-idle": "graceful_timeout = idle timeout + margin; > the idle timeout",
    "stop-after-graceful": "systemd TimeoutStopSec = graceful_timeout + 10 s; > graceful_timeout",
    "health-timeout-below-interval": "health-check timeout < interval; thresholds 2-10",
    "grace-covers-healthy": "ASG grace period >= interval x healthy threshold",
    "grace-covers-boot": "ASG grace period = the boot budget (launch to healthy); >= it",
    "boot-within-signal-timeout": "boot budget + signalling <= the creation policy's timeout",
    "retries-within-install-budget": "retry waits of a network step < half the install budget",
    "max-requests-needs-jitter": "max_requests > 0 warns and needs max_requests_jitter >= 1",
    "keepalive-follows-live": "keepalive = max(configured, live idle timeouts) + margin, "
    "at boot and within 30 s of a change",
    "hook-covers-drain": "termination hook timeout >= watcher period + stop timeout "
    "+ clean-up bound + completion budget (gunicorn_alb.termination)",
}


@dataclass(frozen=True)
class CoupledTimeouts:
    """The derived, checked numbers, all in whole seconds.

    Fields that depend on the idle timeout are ``None`` when it is only known at deploy time
    (a CloudFormation parameter); the boot script derives them on the instance.
    """

    idle_timeout: int | None
    keepalive_margin: int
    keepalive: int | None
    deregistration_delay: int
    graceful_timeout: int | None
    stop_timeout: int | None
    health_check_interval: int
    health_check_timeout: int
    healthy_threshold: int
    unhealthy_threshold: int
    grace_period: int
    max_requests: int
    max_requests_jitter: int
    graceful_timeout_override: int | None = None
    stop_timeout_override: int | None = None

    @property
    def advisories(self) -> list[tuple[str, str]]:
        """Warnings a user may accept, as ``(id, message)`` pairs."""
        found: list[tuple[str, str]] = []
        if self.max_requests > 0:
            found.append(
                (
                    "max-requests",
                    f"max_requests={self.max_requests} restarts each worker after that many "
                    "requests: the worker stops accepting and keeps the ALB's connections until "
                    "the ALB closes them (up to the idle timeout), and Gunicorn starts its "
                    "replacement only when it has exited, so the instance serves with one "
                    "worker fewer meanwhile. Prefer 0 unless the app leaks memory.",
                )
            )
        return found


GRACE_PERIOD_DEFAULT = BOOT.total
"""The health-check grace period: the boot budget (rule grace-covers-boot)."""


def derive_timeouts(
    idle_timeout: float | None,
    *,
    keepalive_margin: float = KEEPALIVE_MARGIN_DEFAULT,
    deregistration_delay: float | None = None,
    graceful_timeout: float | None = None,
    stop_timeout: float | None = None,
    health_check_interval: float = HEALTH_CHECK_INTERVAL_DEFAULT,
    health_check_timeout: float = HEALTH_CHECK_TIMEOUT_DEFAULT,
    healthy_threshold: int = HEALTHY_THRESHOLD_DEFAULT,
    unhealthy_threshold: int = UNHEALTHY_THRESHOLD_DEFAULT,
    grace_period: float | None = None,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
) -> CoupledTimeouts:
    """Derive every coupled timeout from the ALB idle timeout and check the rules.

    :param idle_timeout: the ALB idle timeout in seconds, or ``None`` when it is a deploy-time
        parameter (then the idle-dependent values are derived on the instance).
    :param keepalive_margin: seconds added to the idle timeout for Gunicorn's keep-alive.
        Default: 5
    :param deregistration_delay: override. Default: min(idle timeout, 3600); 3600 for a parameter.
    :param graceful_timeout: override. Default: the keep-alive (idle timeout + margin).
    :param stop_timeout: systemd ``TimeoutStopSec`` override. Default: graceful_timeout + 10.
    :param health_check_interval: Default: 15
    :param health_check_timeout: Default: 5
    :param healthy_threshold: Default: 2
    :param unhealthy_threshold: Default: 3
    :param grace_period: ASG health-check grace period. Default: the boot budget
        (``BOOT.total``, 840 s)
    :param max_requests: Gunicorn ``max_requests``. Default: 0 (workers are not recycled)
    :param max_requests_jitter: Gunicorn ``max_requests_jitter``. Default: 0
    :raises TimeoutRuleError: listing every broken rule, each naming the argument and value.
    """
    problems: list[str] = []
    idle = _whole(problems, "idle_timeout", idle_timeout, IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX)
    margin = _whole(problems, "keepalive_margin", keepalive_margin, KEEPALIVE_MARGIN_MIN)
    drain_override = _whole(
        problems,
        "deregistration_delay",
        deregistration_delay,
        DEREGISTRATION_DELAY_MIN,
        DEREGISTRATION_DELAY_MAX,
    )
    graceful_override = _whole(problems, "graceful_timeout", graceful_timeout, 1)
    stop_override = _whole(problems, "stop_timeout", stop_timeout, 1)
    interval = _whole(
        problems, "health_check_interval", health_check_interval, *HEALTH_CHECK_INTERVAL_RANGE
    )
    hc_timeout = _whole(
        problems, "health_check_timeout", health_check_timeout, *HEALTH_CHECK_TIMEOUT_RANGE
    )
    healthy = _count(
        problems, "healthy_threshold", healthy_threshold, *HEALTH_CHECK_THRESHOLD_RANGE
    )
    unhealthy = _count(
        problems, "unhealthy_threshold", unhealthy_threshold, *HEALTH_CHECK_THRESHOLD_RANGE
    )
    grace = _whole(
        problems,
        "health_check_grace_period",
        BOOT.total if grace_period is None else grace_period,
        0,
    )
    recycle = _count(problems, "max_requests", max_requests, 0)
    jitter = _count(problems, "max_requests_jitter", max_requests_jitter, 0)

    keepalive = idle + margin if idle is not None and margin is not None else None
    if drain_override is not None:
        drain = drain_override
    elif idle is not None:
        drain = min(idle, DEREGISTRATION_DELAY_MAX)
    else:
        drain = DEREGISTRATION_DELAY_MAX
    if graceful_override is not None:
        graceful: int | None = graceful_override
    elif keepalive is not None:
        graceful = keepalive
    else:
        graceful = None
    if stop_override is not None:
        stop: int | None = stop_override
    elif graceful is not None:
        stop = graceful + STOP_TIMEOUT_HEADROOM
    else:
        stop = None

    if graceful_override is not None and idle is not None and graceful_override <= idle:
        problems.append(
            f"graceful_timeout ({graceful_override} s) must be greater than idle_timeout "
            f"({idle} s): a stopping worker keeps its idle kept-alive connections until the ALB "
            "closes them, which takes up to the idle timeout (rule graceful-outlasts-idle)"
        )
    if stop_override is not None and graceful is not None and stop_override <= graceful:
        problems.append(
            f"stop_timeout ({stop_override} s) must be greater than graceful_timeout "
            f"({graceful} s): systemd would kill workers still finishing requests "
            "(rule stop-after-graceful)"
        )
    if interval is not None and hc_timeout is not None and hc_timeout >= interval:
        problems.append(
            f"health_check_timeout ({hc_timeout} s) must be less than health_check_interval "
            f"({interval} s) (rule health-timeout-below-interval)"
        )
    if grace is not None and interval is not None and grace < interval * healthy:
        problems.append(
            f"health_check_grace_period ({grace} s) must be at least health_check_interval x "
            f"healthy_threshold ({interval} s x {healthy} = {interval * healthy} s), so a new "
            "instance can pass its health checks before it is judged (rule grace-covers-healthy)"
        )
    if grace is not None and grace < BOOT.total:
        problems.append(
            f"health_check_grace_period ({grace} s) must be at least the boot budget "
            f"({BOOT.total} s: {BOOT.start} s to start + {BOOT.install} s to install + "
            f"{BOOT.health_wait} s health wait), or the ASG replaces instances that are still "
            "booting (rule grace-covers-boot)"
        )
    if recycle > 0 and jitter < 1:
        problems.append(
            f"max_requests ({recycle}) needs max_requests_jitter >= 1, got {jitter}: workers "
            "restarting together all stop accepting at once "
            "(rule max-requests-needs-jitter)"
        )
    if problems:
        raise TimeoutRuleError(problems)
    # Every check above passed, so each checked value is present.
    assert margin is not None and interval is not None and hc_timeout is not None
    assert grace is not None
    return CoupledTimeouts(
        idle_timeout=idle,
        keepalive_margin=margin,
        keepalive=keepalive,
        deregistration_delay=drain,
        graceful_timeout=graceful,
        stop_timeout=stop,
        health_check_interval=interval,
        health_check_timeout=hc_timeout,
        healthy_threshold=healthy,
        unhealthy_threshold=unhealthy,
        grace_period=grace,
        max_requests=recycle,
        max_requests_jitter=jitter,
        graceful_timeout_override=graceful_override,
        stop_timeout_override=stop_override,
    )


COUPLING_PERIOD_MAX = 30
"""The coupling agent runs at most this many seconds apart (its timer; the tests add it up)."""


def live_keepalive(configured_idle: int, live_idles: list[int], margin: int) -> int:
    """``keepalive-follows-live``: the keep-alive an instance runs once coupled to the load
    balancers in front of its target group (at boot, and by the agent on a rise): the largest of
    the configured and the live idle timeouts, plus the margin, so an instance is safe whichever
    value the ALB applies while a change is under way. Empty ``live_idles`` (no listener yet, or
    AWS unreadable): the configured value."""
    return max([configured_idle, *live_idles]) + margin


KEEPALIVE_WORKER_CLASSES: dict[str, tuple[str, ...]] = {
    "gthread": (),
    "gevent": ("gevent==26.9.0",),
    "asgi": (),
    "uvicorn_worker.UvicornWorker": (
        "uvicorn-worker==0.4.0",
        "uvicorn==0.54.0",
        "h11==0.16.0",
        "click==8.5.1",
    ),
}
"""Worker classes that honour ``keepalive``, with the pip requirements each needs on the instance
(pinned). Each was read in the installed sources before it was allowed:

``gthread``, ``gevent``
    Gunicorn's own; they keep an idle connection open for ``cfg.keepalive`` seconds.
``asgi``
    Gunicorn's native ASGI worker (``gunicorn/workers/gasgi.py``, stable since 25.1): its protocol
    arms a timer of ``cfg.keepalive`` seconds after each response (``gunicorn/asgi/protocol.py``).
``uvicorn_worker.UvicornWorker``
    The ``uvicorn-worker`` package: ``"timeout_keep_alive": self.cfg.keepalive``
    (``uvicorn_worker/_workers.py``), so uvicorn's own 5 s default never applies; the ``h11``
    protocol (``uvicorn[standard]``'s httptools is not installed) arms ``timeout_keep_alive``
    after each response.
"""

ASGI_WORKER_CLASSES = frozenset({"asgi", "uvicorn_worker.UvicornWorker"})
"""Workers that serve an ASGI app (``wsgi_app`` then names the ASGI callable)."""

_REFUSED_WORKERS: dict[str, str] = {
    "sync": "the sync worker ignores keepalive and closes every connection",
    "eventlet": "Gunicorn removed the eventlet worker in 26.0",
    "uvicorn.workers.UvicornWorker": (
        "uvicorn deprecated its bundled worker; use uvicorn_worker.UvicornWorker (the "
        "uvicorn-worker package), which passes Gunicorn's keepalive to uvicorn"
    ),
    "tornado": "the construct does not install or test the tornado worker",
}

GTHREAD_THREADS_DEFAULT = 4


def default_threads(worker_class: str) -> int:
    """``threads`` when not given: 4 for gthread; 1 for the event-loop workers (gevent, asgi,
    uvicorn), which serve many connections from one thread and ignore ``threads``."""
    return GTHREAD_THREADS_DEFAULT if worker_class == "gthread" else 1


def check_worker(worker_class: str, threads: int) -> list[str]:
    """Problems with a worker setup, as messages naming the argument and value (empty if none).

    The ``sync`` worker ignores ``keepalive`` and closes every connection after one request, so
    the ALB can never reuse one; gthread, gevent and the ASGI workers honour it. ``threads`` is
    the gthread worker's pool (at least 2); the ASGI workers run one event loop per worker
    (Gunicorn's ``asgi`` worker warns when given more threads) and bound concurrency by
    ``worker_connections``, so they take ``threads`` 1. (gevent ignores ``threads``.)
    """
    problems: list[str] = []
    if worker_class not in KEEPALIVE_WORKER_CLASSES:
        allowed = ", ".join(sorted(KEEPALIVE_WORKER_CLASSES))
        why = _REFUSED_WORKERS.get(worker_class)
        problems.append(
            f"worker_class must be one that honours keep-alive ({allowed}), "
            f"got {worker_class!r}" + (f": {why}" if why else "")
        )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        problems.append(f"threads must be a whole number of at least 1, got {threads!r}")
    elif worker_class == "gthread" and threads < 2:
        problems.append(
            f"threads must be at least 2 for the gthread worker, got {threads}: with one thread "
            "a slow request blocks every other connection of the worker"
        )
    elif worker_class in ASGI_WORKER_CLASSES and threads > 1:
        problems.append(
            f"threads must be 1 for the {worker_class} worker, got {threads}: it serves every "
            "connection from one event loop and ignores threads (worker_connections bounds "
            "its concurrency)"
        )
    return problems
