"""The probe's verdict: is a target exposed to the keep-alive race behind a load balancer?

Pure: from what :mod:`gunicorn_alb.doctor.wire` measured and the load balancer's idle timeout,
decide, and say what to set. The rule is the timeout model's ``keepalive-exceeds-idle``: the
target must keep an idle connection open strictly longer than the idle timeout, with a margin
(equal values still lose requests: both sides' timers run a little late, so either may close
first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gunicorn_alb import timeouts

HEALTHY, EXPOSED, NO_KEEPALIVE, MEASURED = "healthy", "exposed", "no-keepalive", "measured"
JITTER = 1.0
"""A target must outlast the idle timeout by at least this much (seconds) to count as safe."""


@dataclass(frozen=True)
class Verdict:
    id: str
    """``healthy``, ``exposed``, ``no-keepalive``, or ``measured`` (no idle timeout to compare)."""
    message: str
    exit_code: int
    exposed_by: float | None = None
    """Seconds by which the target closes before the load balancer would (negative: after it,
    but within the jitter that still loses requests). None unless exposed."""
    advice: list[str] = field(default_factory=list)


def recommended_keepalive(idle_timeout: int) -> int:
    """What to set: the idle timeout plus the construct's default margin."""
    return idle_timeout + int(timeouts.KEEPALIVE_MARGIN_DEFAULT)


def settings(server: str | None, keepalive: int) -> list[str]:
    """The setting to change, by server: the one named by its ``Server`` header, else all."""
    known = {
        "gunicorn": f"Gunicorn: keepalive = {keepalive} in gunicorn.conf.py (--keep-alive "
        f"{keepalive}), with a worker that honours it (gthread with threads > 1, gevent, asgi, "
        "uvicorn_worker.UvicornWorker; not sync)",
        "uvicorn": f"uvicorn: --timeout-keep-alive {keepalive} (under Gunicorn with "
        f"uvicorn-worker: Gunicorn's --keep-alive {keepalive})",
        "node": f"Node.js: server.keepAliveTimeout = {keepalive * 1000}; server.headersTimeout "
        f"= {(keepalive + 1) * 1000}",
        "nginx": f"nginx: keepalive_timeout {keepalive}s;",
        "puma": f"Puma: persistent_timeout {keepalive}",
    }
    name = (server or "").lower()
    aliases = {"express": "node", "node": "node"}
    for key, text in known.items():
        if key in name:
            return [text]
    for alias, key in aliases.items():
        if alias in name:
            return [known[key]]
    return list(known.values())


def decide(
    *,
    keeps_alive: bool,
    idle_keepalive: float | None,
    bound: float,
    server: str | None,
    idle_timeout: int | None,
) -> Verdict:
    """``idle_keepalive``: the median seconds the target held an idle connection, or None when
    it held one past ``bound``."""
    if not keeps_alive:
        return Verdict(
            NO_KEEPALIVE,
            "the target keeps no connection alive: it closes after every response (as "
            "Gunicorn's sync worker does), so the load balancer never reuses one; not exposed "
            "to the race, but every request opens a new TCP connection",
            0,
        )
    held = f"longer than {bound:g} s" if idle_keepalive is None else f"for {idle_keepalive:.2f} s"
    if idle_timeout is None:
        return Verdict(
            MEASURED,
            f"the target holds an idle connection {held}; give --idle-timeout or "
            "--load-balancer to compare it with the load balancer",
            0,
        )
    if idle_keepalive is None or idle_keepalive >= idle_timeout + JITTER:
        return Verdict(
            HEALTHY,
            f"the target holds an idle connection {held}, more than the load balancer's idle "
            f"timeout of {idle_timeout} s: the load balancer closes first",
            0,
        )
    exposed_by = round(idle_timeout - idle_keepalive, 2)
    keepalive = recommended_keepalive(idle_timeout)
    if exposed_by > 0:
        how = f"closes idle connections {exposed_by:.2f} s before the load balancer does"
    else:
        how = (
            f"closes idle connections only {-exposed_by:.2f} s after the load balancer does, "
            f"within the timer jitter that still loses requests (needs {JITTER:g} s or more)"
        )
    return Verdict(
        EXPOSED,
        f"EXPOSED: the target holds an idle connection {held} but the load balancer's idle "
        f"timeout is {idle_timeout} s: it {how}, so the load balancer can send a request on a "
        f"connection the target is closing and answer 502. Set the target's keep-alive to "
        f"{keepalive} s (idle timeout + {int(timeouts.KEEPALIVE_MARGIN_DEFAULT)}).",
        1,
        exposed_by=exposed_by,
        advice=settings(server, keepalive),
    )
