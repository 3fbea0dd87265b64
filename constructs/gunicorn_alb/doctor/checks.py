"""The checks: pure functions over what was read (no AWS), through the timeout model.

What the construct's user data says the instances run (``boot.env`` and ``gunicorn.conf.py``,
found with the renderer's own parser), then each rule against the live values: keep-alive above
the live idle timeout, a worker class that honours keep-alive, the drain order, max_requests
jitter, and the ELB-generated 502/504 counts.
"""

from __future__ import annotations

import ast
import re

from gunicorn_alb import delivery, rendering, timeouts
from gunicorn_alb.doctor.model import (
    AsgReport,
    Finding,
    LoadBalancerReport,
    Report,
    TargetGroupReport,
)

ELB_METRICS = {"elb-502-count": "HTTPCode_ELB_502_Count", "elb-504-count": "HTTPCode_ELB_504_Count"}

_RULE_SUFFIX = re.compile(r"\(rule ([a-z-]+)\)$")
_ARGUMENT_RULES = {
    "deregistration_delay": "drain-bounded-by-idle",
    "graceful_timeout": "graceful-outlasts-idle",
    "stop_timeout": "stop-after-graceful",
    "max_requests": "max-requests-needs-jitter",
}
_CONF_KEYS = ("worker_class", "threads", "max_requests", "max_requests_jitter")

# --- What the construct wrote ----------------------------------------------------------------


def parse_gunicorn_conf(text: str) -> dict[str, object]:
    """The literal top-level settings the construct templates in ``gunicorn.conf.py`` (the
    worker class as the one whose subclass it names, ``rendering.WORKER_SUBCLASSES``)."""
    settings: dict[str, object] = {}
    for key in _CONF_KEYS:
        match = re.search(rf"^{key}\s*=\s*(.+?)\s*$", text, re.MULTILINE)
        if match is None:
            continue
        try:
            settings[key] = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            continue
    chosen = {subclass: name for name, subclass in rendering.WORKER_SUBCLASSES.items()}
    if settings.get("worker_class") in chosen:
        settings["worker_class"] = chosen[str(settings["worker_class"])]
    return settings


def _seconds(env: dict[str, str], key: str) -> int | None:
    value = env.get(key, "")
    return int(value) if value.isdigit() else None


def _read_boot_env(report: Report, lb: str, asg: AsgReport, env: dict[str, str]) -> None:
    """Fill the ASG's timeouts as the boot script derives them, through the model."""
    idle = _seconds(env, "IDLE_TIMEOUT_SECONDS")
    margin = _seconds(env, "KEEPALIVE_MARGIN_SECONDS")
    delay = _seconds(env, "DEREGISTRATION_DELAY_SECONDS")
    if idle is None or margin is None or delay is None:
        report.cannot(
            lb,
            asg.name,
            "boot.env has no numeric IDLE_TIMEOUT_SECONDS, KEEPALIVE_MARGIN_SECONDS or "
            f"DEREGISTRATION_DELAY_SECONDS (got {env.get('IDLE_TIMEOUT_SECONDS')!r}, "
            f"{env.get('KEEPALIVE_MARGIN_SECONDS')!r}, "
            f"{env.get('DEREGISTRATION_DELAY_SECONDS')!r}): keep-alive not determined",
        )
        return
    try:
        booted = timeouts.derive_timeouts(
            idle,
            keepalive_margin=margin,
            deregistration_delay=delay,
            graceful_timeout=_seconds(env, "GRACEFUL_TIMEOUT_SECONDS"),
            stop_timeout=_seconds(env, "STOP_TIMEOUT_SECONDS"),
        )
    except timeouts.TimeoutRuleError as error:
        problems = "; ".join(error.problems)
        report.find(
            Finding(
                "boot-env-invalid",
                f"{asg.name}: the user data's boot.env breaks the timeout model, so the boot "
                f"script refuses to start Gunicorn: {problems}",
                lb,
                asg.name,
            )
        )
        return
    asg.boot_idle_timeout = booted.idle_timeout
    asg.keepalive_margin = booted.keepalive_margin
    asg.keepalive = booted.keepalive
    asg.graceful_timeout = booted.graceful_timeout
    asg.stop_timeout = booted.stop_timeout


def _read_gunicorn_conf(
    report: Report, lb: str, asg: AsgReport, conf: str | None, hint: str
) -> None:
    settings = parse_gunicorn_conf(conf or "")
    worker, threads = settings.get("worker_class"), settings.get("threads")
    recycle, jitter = settings.get("max_requests"), settings.get("max_requests_jitter")
    asg.worker_class = worker if isinstance(worker, str) else None
    asg.threads = threads if isinstance(threads, int) else None
    asg.max_requests = recycle if isinstance(recycle, int) else None
    asg.max_requests_jitter = jitter if isinstance(jitter, int) else None
    missing = [key for key in _CONF_KEYS if getattr(asg, key) is None]
    if missing:
        report.cannot(
            lb,
            asg.name,
            f"{rendering.GUNICORN_CONF_PATH} (in the user data or its instance files) does not "
            f"set {', '.join(missing)} literally: not checked{hint}",
        )


def read_instance_settings(
    report: Report,
    lb: str,
    asg: AsgReport,
    user_data: str,
    hint: str = "",
    archive: bytes | None = None,
) -> None:
    """What the construct's user data (and ``archive``, the InstanceFiles asset it fetches) says
    the instances run; undetermined without it (``hint``: what to check by hand then)."""
    boot_env = delivery.written_file(user_data, rendering.BOOT_ENV_PATH)
    if boot_env is None:
        report.cannot(
            lb,
            asg.name,
            f"the user data was not written by the gunicorn-alb construct (it writes no "
            f"{rendering.BOOT_ENV_PATH}): Gunicorn's keep-alive, worker class and graceful "
            f"timeout are unknown, so they were not checked{hint}",
        )
        return
    asg.made_by_construct = True
    env = delivery.parse_env(boot_env)
    agent = delivery.written_file(user_data, rendering.COUPLING_AGENT_PATH, archive) is not None
    # Instance files (INSTANCE_FILES_URL) hold the agent whenever boot.env names a target group.
    asg.coupling_agent = bool(env.get("TARGET_GROUP_ARN")) and (
        agent or bool(env.get("INSTANCE_FILES_URL"))
    )
    _read_boot_env(report, lb, asg, env)
    conf = delivery.written_file(user_data, rendering.GUNICORN_CONF_PATH, archive)
    _read_gunicorn_conf(report, lb, asg, conf, hint)


# --- Checks ----------------------------------------------------------------------------------


def rule_id(problem: str) -> str:
    """The model rule a :class:`~gunicorn_alb.timeouts.TimeoutRuleError` problem breaks."""
    match = _RULE_SUFFIX.search(problem)
    if match:
        return match.group(1)
    argument = problem.split(" ", 1)[0]
    return _ARGUMENT_RULES.get(argument, "timeout-model")


def check_keepalive(report: Report, lb: LoadBalancerReport, asg: AsgReport) -> None:
    """keepalive-exceeds-idle against the ALB's live idle timeout."""
    if asg.keepalive is None:
        return
    idle = lb.idle_timeout
    if asg.keepalive - idle >= timeouts.KEEPALIVE_MARGIN_MIN:
        if asg.boot_idle_timeout != idle:
            report.note(
                f"{asg.name}: instances booted for an idle timeout of {asg.boot_idle_timeout} s; "
                f"load balancer {lb.name} is now at {idle} s (still below the keep-alive "
                f"{asg.keepalive} s; a deploy realigns them)"
            )
        return
    if asg.coupling_agent:
        # What the agent does (userdata/coupling.sh): couple to max(configured, live) + margin
        # within its timer's period, and reload Gunicorn gracefully.
        coupled = idle + (asg.keepalive_margin or 0)
        report.note(
            f"{asg.name}: built with keep-alive {asg.keepalive} s for an idle timeout of "
            f"{asg.boot_idle_timeout} s; load balancer {lb.name} is now at {idle} s. The "
            f"instances run the coupling agent, which re-couples them to {idle} s within "
            f"{rendering.COUPLING_PERIOD_MAX_SECONDS} s (keep-alive {coupled} s, "
            "Gunicorn reloaded gracefully). If HTTPCode_ELB_502_Count rises anyway, read the "
            "agent's log on an instance (journalctl -u gunicorn-alb-coupling: it logs each "
            "re-coupling and each AWS error) and check that the instance role may call "
            "elasticloadbalancing:DescribeTargetGroups and DescribeLoadBalancerAttributes"
        )
        return
    message = (
        f"{asg.name}: Gunicorn keep-alive {asg.keepalive} s is not greater than the idle "
        f"timeout {idle} s of load balancer {lb.name} (the instances booted for "
        f"{asg.boot_idle_timeout} s + margin {asg.keepalive_margin} s): Gunicorn closes pooled "
        f"connections the ALB still uses, and the ALB answers 502. The instances were built "
        f"without the coupling agent, so nothing raises their keep-alive: replace the instances "
        f"(deploy with this version of the construct: new instances couple to the live idle "
        f"timeout at boot and run the agent, which follows later changes), or set the ALB back "
        f"to {asg.boot_idle_timeout} s meanwhile (rule keepalive-exceeds-idle)"
    )
    report.find(Finding("keepalive-exceeds-idle", message, lb.name, asg.name))


def check_worker(report: Report, lb: LoadBalancerReport, asg: AsgReport) -> None:
    """The worker class honours keep-alive (the model's check_worker)."""
    if asg.worker_class is None or asg.threads is None:
        return
    for problem in timeouts.check_worker(asg.worker_class, asg.threads):
        worker = problem.startswith("worker_class")
        kind = "worker-ignores-keepalive" if worker else "worker-threads"
        report.find(Finding(kind, f"{asg.name}: {problem}", lb.name, asg.name))


def check_drain(
    report: Report, lb: LoadBalancerReport, tg: TargetGroupReport, asg: AsgReport
) -> None:
    """The instance's graceful/stop timeouts and max_requests against the live drain, through
    the model's rules (graceful-outlasts-idle, max-requests-needs-jitter, ...)."""
    if asg.keepalive_margin is None or asg.graceful_timeout is None:
        return
    graceful, stop = asg.graceful_timeout, asg.stop_timeout
    keepalive_behind = asg.keepalive is not None and asg.keepalive <= lb.idle_timeout
    if graceful <= lb.idle_timeout and (asg.coupling_agent or keepalive_behind):
        # The agent re-couples the graceful timeout with the keep-alive (userdata/coupling.sh);
        # without it, check_keepalive's finding already says to replace the instances. The stop
        # timeout stays as booted: an instance stops after the ALB drained it, with no
        # connection left for a worker to wait for.
        graceful, stop = lb.idle_timeout + asg.keepalive_margin, None
    try:
        timeouts.derive_timeouts(
            lb.idle_timeout,
            keepalive_margin=asg.keepalive_margin,
            deregistration_delay=tg.deregistration_delay,
            graceful_timeout=graceful,
            stop_timeout=stop,
            max_requests=asg.max_requests or 0,
            max_requests_jitter=asg.max_requests_jitter or 0,
        )
    except timeouts.TimeoutRuleError as error:
        for problem in error.problems:
            message = f"{asg.name} behind target group {tg.name}: {problem}"
            report.find(Finding(rule_id(problem), message, lb.name, asg.name))


def check_fleet(
    report: Report, lb: LoadBalancerReport, tg: TargetGroupReport, asg: AsgReport
) -> None:
    check_keepalive(report, lb, asg)
    check_worker(report, lb, asg)
    check_drain(report, lb, tg, asg)


def check_elb_errors(report: Report, lb: LoadBalancerReport, counts: dict[str, int]) -> None:
    """The ELB-generated error counts read over the window (by finding id), as findings."""
    lb.elb_502_count, lb.elb_504_count = counts["elb-502-count"], counts["elb-504-count"]
    why = {
        "elb-502-count": "502s with no matching HTTPCode_Target_5XX_Count are the keep-alive "
        "race (a target closed a pooled connection) or targets refusing connections",
        "elb-504-count": "the target did not answer within the idle timeout, or a connection "
        "to it took over 10 s",
    }
    for key, count in counts.items():
        if count > 0:
            message = (
                f"{lb.name}: {ELB_METRICS[key]} = {count} over the last {report.window}: {why[key]}"
            )
            report.find(Finding(key, message, lb.name, lb.name))


def manual_check(lb: LoadBalancerReport, tg: TargetGroupReport) -> str:
    """What to check by hand when the instances' settings cannot be read."""
    return (
        f". Check by hand: Gunicorn's keepalive must exceed {lb.idle_timeout} s, its worker "
        "class must honour keep-alive (not sync), and its graceful_timeout must exceed "
        f"{lb.idle_timeout} s"
    )
