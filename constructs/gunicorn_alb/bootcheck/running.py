"""Checks against the Gunicorn that the booted instance's systemd runs: the unit as systemd loaded
it (drop-in, notify readiness, restart policy), the hardening as the kernel applies it, the workers,
the health path, the keep-alive a running worker holds, a restart after its main process is
killed, a graceful stop that lets an in-flight request finish (the access log and its rotation:
``log_checks.py``).

Commands run inside the container (``nsenter``); HTTP goes to the container's own loopback with
the container's curl. Polling loops have deadlines; no check asserts on a duration.
"""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn_alb import rendering
from gunicorn_alb.bootcheck import app_probe
from gunicorn_alb.bootcheck.checks import Outcome, tail
from gunicorn_alb.bootcheck.instance import Instance

UNIT = "gunicorn-app.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
DROP_IN = f"/etc/systemd/system/{UNIT}.d/50-coupling.conf"
COUPLING_TIMER = "gunicorn-alb-coupling.timer"
COUPLING_SERVICE = "gunicorn-alb-coupling.service"
VENV = "/opt/gunicorn-alb/venv"
APP_USER = "gunicorn-app"
RESTART_DEADLINE_SECONDS = 60
UNIT_PROPERTIES = (
    "ActiveState",
    "SubState",
    "Type",
    "NotifyAccess",
    "Restart",
    "NRestarts",
    "MainPID",
    "UnitFileState",
    "DropInPaths",
    "TimeoutStopUSec",
    "Result",
)
_SPAN = re.compile(r"(\d+)(min|ms|us|h|s)")
_SPAN_SECONDS = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}


def timespan_seconds(text: str) -> float:
    """systemd's rendering of a time span (``1min 10s``) in seconds."""
    return sum(int(n) * _SPAN_SECONDS[unit] for n, unit in _SPAN.findall(text))


def http_get(
    instance: Instance, url: str, headers: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """GET URL from inside the container, with these request headers: (status code, body)."""
    extra = [word for item in (headers or {}).items() for word in ("--header", ": ".join(item))]
    result = instance.container.run(
        ["curl", "--silent", "--max-time", "5", *extra, "--write-out", "\n%{http_code}", url],
        timeout=30,
    )
    body, _, status = result.stdout.rpartition("\n")
    return status, body


def _status(instance: Instance, pid: str) -> dict[str, str]:
    text = instance.container.run(["cat", f"/proc/{pid}/status"]).stdout
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def user_account(instance: Instance, user: str) -> list[str] | None:
    """USER's /etc/passwd line in the container, split at the colons (uid: index 2)."""
    lines = instance.container.read("/etc/passwd").splitlines()
    return next((line.split(":") for line in lines if line.startswith(f"{user}:")), None)


def check_unit(outcome: Outcome, instance: Instance, boot_env: dict[str, str]) -> str | None:
    """The unit as systemd runs it. Returns the main PID (in the container), if it runs."""
    show = instance.container.systemctl_show(UNIT, *UNIT_PROPERTIES)
    outcome.check(
        (show["ActiveState"], show["SubState"], show["Type"]) == ("active", "running", "notify"),
        f"systemd runs {UNIT}: {show['ActiveState']} ({show['SubState']}), Type={show['Type']} "
        "(active only once Gunicorn sent READY=1)",
    )
    outcome.equal(f"{UNIT} is enabled", show["UnitFileState"], "enabled")
    drop_in = dict(
        line.split("=", 1) for line in instance.container.read(DROP_IN).splitlines() if "=" in line
    )
    stop = drop_in.get("TimeoutStopSec", "")
    outcome.check(
        DROP_IN in show["DropInPaths"].split()
        and stop.isdigit()
        and timespan_seconds(show["TimeoutStopUSec"]) == int(stop),
        f"systemd applied the drop-in {DROP_IN}: TimeoutStopUSec={show['TimeoutStopUSec']} "
        f"(TimeoutStopSec={stop})",
    )
    outcome.equal(
        "Restart= and restarts so far", (show["Restart"], show["NRestarts"]), ("always", "0")
    )
    main_pid = show["MainPID"]
    if not outcome.check(main_pid not in ("", "0"), f"{UNIT} has a main PID ({main_pid})"):
        return None
    status = _status(instance, main_pid)
    account = user_account(instance, APP_USER)
    if not outcome.check(account is not None, f"useradd created {APP_USER}"):
        return main_pid
    assert account is not None
    ids = f"{account[2]}\t{account[2]}\t{account[2]}\t{account[2]}"
    outcome.check(
        account[2] != "0" and status.get("Uid") == ids,
        f"Gunicorn master {main_pid} runs as {APP_USER} (uid {account[2]}): "
        f"Uid {status.get('Uid')!r}",
    )
    applied = {key: status.get(key) for key in ("NoNewPrivs", "Seccomp", "CapEff", "CapBnd")}
    outcome.equal(
        "the kernel applies the unit's hardening to the master (no new privileges, a seccomp "
        "filter, no capabilities)",
        applied,
        {"NoNewPrivs": "1", "Seccomp": "2", "CapEff": "0" * 16, "CapBnd": "0" * 16},
    )
    return main_pid


def check_unit_verifies(outcome: Outcome, instance: Instance) -> None:
    check_units_verify(outcome, instance, [UNIT_PATH], "(systemd 252, with its drop-in) ")


def check_units_verify(
    outcome: Outcome, instance: Instance, paths: list[str], note: str = ""
) -> None:
    """``systemd-analyze verify`` of the unit files at PATHS, inside the container, says nothing."""
    result = instance.container.run(["systemd-analyze", "verify", *paths])
    output = (result.stdout + result.stderr).strip()
    clean = result.returncode == 0 and not output
    outcome.check(
        clean,
        f"`systemd-analyze verify {' '.join(paths)}` {note}is clean"
        + ("" if clean else f" (exit {result.returncode}):\n{tail(output)}"),
    )


_SIGHUP_BIT = 1 << (signal.SIGHUP - 1)
"""In /proc's (and ps's) mask of caught signals."""


def check_workers(
    outcome: Outcome, instance: Instance, main_pid: str, expected: int, when: str = ""
) -> None:
    """The master forks its workers one by one (a pause of up to 0.1 s between them) and the
    first one may answer the health path before the last one exists: wait (bounded) for all of
    them, each booted. A worker counts as booted once it has set its own signal handlers: until
    then it still holds the master's (SIGHUP among them, which a worker leaves alone), and a
    SIGTERM the master forwards to it is lost, so that a stop waits the whole graceful_timeout
    (seen with Gunicorn 27.0.1: a stop 0.1 s after a restart took 300 s)."""
    deadline = time.monotonic() + 30
    while True:
        listing = instance.container.run(
            ["ps", "--ppid", main_pid, "-o", "pid=,user:32=,unit:64=,caught="]
        )
        workers = [line.split() for line in listing.stdout.splitlines() if line.strip()]
        booted = [w[:3] for w in workers if len(w) == 4 and not int(w[3], 16) & _SIGHUP_BIT]
        if len(booted) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    outcome.check(
        len(workers) == len(booted) == expected and all(w[1:] == [APP_USER, UNIT] for w in booted),
        f"{len(booted)} Gunicorn workers booted{when} (expected {expected}: CPUs * workers "
        f"per CPU + 1), all as {APP_USER} in {UNIT}: {booted}",
    )


def check_health(
    outcome: Outcome,
    instance: Instance,
    url: str,
    body_expected: str | None,
    when: str = "",
    within: float = 0,
) -> bool:
    """GET the health path: 200, as the target group's health check requires (and, when given,
    the expected body); with ``within``, asked again until then (a restarted master is ready
    before its workers have loaded the app, as the boot's own health wait knows)."""
    started = time.monotonic()
    while True:
        status, body = http_get(instance, url)
        waited = time.monotonic() - started
        healthy = status == "200" and body_expected in (None, body)
        if healthy or waited >= within:
            break
        time.sleep(0.5)
    answer = f"{status} {body[:80]!r}" + ("..." if len(body) > 80 else "")
    if not when:
        outcome.health = f"GET {url}: {answer}"
    return outcome.check(
        healthy,
        f"GET {url}{when}: {answer}" + (f" (after {waited:.1f} s)" if within else ""),
    )


def check_effective_config(
    outcome: Outcome, instance: Instance, port: str, keepalive: int, version: str, worker_class: str
) -> None:
    """Gunicorn's settings as a running worker holds them (the probe path reads the worker's own
    cfg object, which its keep-alive handling uses)."""
    url = f"http://127.0.0.1:{port}{app_probe.SETTINGS_PATH}"
    status, body = http_get(instance, url)
    try:
        settings: dict[str, Any] = json.loads(body) if status == "200" else {}
    except ValueError:
        settings = {}
    if not outcome.check(
        bool(settings.get("worker")),
        f"GET {url}: a worker reports its settings ({status} {body[:200]!r})",
    ):
        return
    outcome.keepalive = settings["keepalive"]
    outcome.equal(
        f"keep-alive of the running Gunicorn ({settings['worker']}, pid {settings['pid']}): "
        "idle timeout + margin",
        settings["keepalive"],
        keepalive,
    )
    outcome.equal(
        f"worker class of the running Gunicorn (the construct's subclass of {worker_class})",
        settings["worker_class"],
        rendering.WORKER_SUBCLASSES[worker_class],
    )
    idle = outcome.idle_timeout
    outcome.check(
        idle is not None and settings["graceful_timeout"] > idle,
        f"graceful timeout of the running Gunicorn: {settings['graceful_timeout']} s, longer than "
        f"the idle timeout {idle} s (rule graceful-outlasts-idle)",
    )
    versions = instance.container.run(
        [f"{VENV}/bin/python", "-I", "-c", "import gunicorn; print(gunicorn.__version__)"]
    )
    outcome.equal("Gunicorn version in the instance's virtualenv", versions.stdout.strip(), version)


WORKERS_IGNORING_THEIR_MASTER = frozenset({"uvicorn_worker.UvicornWorker"})
"""Worker classes that do not exit when their master dies (Gunicorn's own check the parent every
second; uvicorn's worker never does)."""


def check_restart(
    outcome: Outcome,
    instance: Instance,
    url: str,
    health_body: str | None,
    workers: int,
    worker_class: str,
) -> None:
    """SIGKILL to the main process: systemd (Restart=always) starts Gunicorn again, with all its
    workers.

    When the main process dies, systemd SIGKILLs what is left in the unit's control group
    (KillMode=mixed) before the restart. Under systemd-nspawn on this host (cgroup v1) that kill
    fails ("Failed to kill control group ... Input/output error"). Gunicorn's own workers exit on
    their own when their master is gone; uvicorn's keep the port, so the new master could not
    bind. For those the check kills the old workers once systemd has scheduled the restart, as
    the control-group kill would have."""
    box = instance.container
    before = box.systemctl_show(UNIT, "MainPID", "NRestarts")
    ignoring = worker_class in WORKERS_IGNORING_THEIR_MASTER
    listing = ["ps", "--ppid", before["MainPID"], "-o", "pid="]
    old_workers = box.run(listing).stdout.split() if ignoring else []
    box.run(["kill", "-KILL", before["MainPID"]])
    killed: list[str] = []
    if ignoring:
        until = time.monotonic() + 10
        while box.systemctl_show(UNIT, "SubState")["SubState"] not in ("auto-restart", "dead"):
            if time.monotonic() > until:
                break
            time.sleep(0.05)
        killed = old_workers
        box.run(["kill", "-KILL", *killed])
    deadline = time.monotonic() + RESTART_DEADLINE_SECONDS
    while True:
        after = box.systemctl_show(UNIT, "MainPID", "NRestarts", "ActiveState", "SubState")
        restarted = after["MainPID"] not in ("0", before["MainPID"]) and (
            after["ActiveState"],
            after["SubState"],
        ) == ("active", "running")
        if restarted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    outcome.check(
        restarted and int(after["NRestarts"]) == int(before["NRestarts"]) + 1,
        f"after SIGKILL to the main process {before['MainPID']}, systemd restarted {UNIT}: "
        f"main PID {after['MainPID']}, {after['ActiveState']} ({after['SubState']}), "
        f"NRestarts {before['NRestarts']} -> {after['NRestarts']}"
        + (
            f" (then the check killed the old uvicorn workers {' '.join(killed)}, as systemd's "
            "control-group kill does on an instance)"
            if killed
            else ""
        ),
    )
    if restarted:
        check_health(
            outcome, instance, url, health_body, " after the restart", RESTART_DEADLINE_SECONDS
        )
        check_workers(outcome, instance, after["MainPID"], workers, " after the restart")


def check_graceful_stop(outcome: Outcome, instance: Instance, port: str) -> None:
    """`systemctl stop` while a request is in flight: the request finishes, the unit stops
    cleanly (Gunicorn's graceful shutdown, inside the drop-in's TimeoutStopSec)."""

    def stop() -> str:
        result = instance.container.run(["systemctl", "stop", UNIT], timeout=300)
        return f"systemctl stop {UNIT}: exit {result.returncode}"

    stop_with_request_in_flight(outcome, instance, port, stop)


def stop_with_request_in_flight(
    outcome: Outcome, instance: Instance, port: str, stop: Callable[[], str]
) -> None:
    """``stop()`` while a request is in flight (it returns what it did): the request finishes,
    the unit ends inactive with result success (Gunicorn's graceful shutdown)."""
    box = instance.container
    url = f"http://127.0.0.1:{port}{app_probe.SLOW_PATH}"
    client = subprocess.Popen(
        ["nsenter", f"--target={box.leader()}", "--all", "--", "curl", "--silent", "--no-buffer",
         "--max-time", "120", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert client.stdout is not None
        ready, _, _ = select.select([client.stdout], [], [], 30)
        first = client.stdout.readline() if ready else b""
        if not outcome.check(first == b"started\n", f"GET {url} is in flight ({first!r})"):
            return
        started = time.monotonic()
        stopped = stop()
        stop_seconds = time.monotonic() - started
        rest, _ = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    show = box.systemctl_show(UNIT, "ActiveState", "Result")
    outcome.check(
        stopped.endswith("exit 0") and show == {"ActiveState": "inactive", "Result": "success"},
        f"{stopped}, with a request in flight; {UNIT} {show['ActiveState']}, result "
        f"{show['Result']}, after {stop_seconds:.1f} s",
    )
    outcome.check(
        client.returncode == 0 and rest == b"finished\n",
        f"the in-flight request ({app_probe.SLOW_SECONDS} s) finished during the stop: curl exit "
        f"{client.returncode}, rest of the body {rest!r}",
    )


def check_coupling_agent(outcome: Outcome, instance: Instance, boot_env: dict[str, str]) -> None:
    """With a target group to follow, the boot enabled the coupling agent's timer, and systemd
    runs it (each run of the agent reads the live idle timeout through the aws stand-in)."""
    if not boot_env.get("TARGET_GROUP_ARN"):
        return
    timer = instance.container.systemctl_show(COUPLING_TIMER, "ActiveState", "UnitFileState")
    runs = [c for c in instance.calls() if c.get("unit") == COUPLING_SERVICE]
    outcome.check(
        timer == {"ActiveState": "active", "UnitFileState": "enabled"}
        and all(c["exit"] == 0 for c in runs),
        f"{COUPLING_TIMER} is {timer['ActiveState']} and {timer['UnitFileState']}; the agent's "
        f"AWS calls so far: {[(c['argv'][1], c['exit']) for c in runs]}",
    )


def exposure(instance: Instance) -> str:
    """`systemd-analyze security`'s overall line for the unit (a note for the report)."""
    result = instance.container.run(["systemd-analyze", "security", "--no-pager", UNIT])
    lines = [line for line in result.stdout.splitlines() if "Overall exposure" in line]
    return lines[-1].replace("\u2192 ", "").strip() if lines else "no exposure level"
