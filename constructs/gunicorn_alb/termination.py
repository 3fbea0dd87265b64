"""The termination drain (no CDK): the numbers of the termination lifecycle hook, the rule that
ties its heartbeat timeout to the drain, and where the drain's files go on an instance.

With ``termination_hook_timeout`` the Auto Scaling group holds a terminating instance in
``Terminating:Wait`` after the load balancer has deregistered it. On the instance, the drain
watcher (``userdata/drain.sh``, run every 5 s by ``gunicorn-alb-drain.timer``) reads the target
lifecycle state from the instance metadata (IMDSv2 ``autoscaling/target-lifecycle-state``; EC2
Auto Scaling user guide, "Retrieve the target lifecycle state through instance metadata"); once it
reads ``Terminated`` it stops Gunicorn gracefully (``systemctl stop gunicorn-app.service``,
bounded by the unit's ``TimeoutStopSec``), runs the app's ``termination_command`` (if any) as the
app user within ``CLEANUP_TIMEOUT_SECONDS``, and completes the lifecycle action with ``CONTINUE``
for its own instance (``CompleteLifecycleAction``: LifecycleHookName, AutoScalingGroupName,
LifecycleActionResult, InstanceId; EC2 Auto Scaling API reference), retried within
``COMPLETION_BUDGET_SECONDS``. The group's name comes from the instance's tag
``aws:autoscaling:groupName`` in the instance metadata (the launch template allows instance tags
in the metadata): a Ref to the group inside its own launch template's user data would be a
circular dependency.

Rule (id as in docs/deploying.md's coupled-values table):

``hook-covers-drain``
    ``termination_hook_timeout`` >= the watcher's period + the stop timeout (systemd's bound on
    Gunicorn's graceful stop) + the clean-up's bound (with a ``termination_command``) + the
    completion's budget, so the drain always completes before the heartbeat timeout ends the wait
    on its own. When the idle timeout is a deploy-time parameter, the stop timeout is not known at
    synth; its largest value is used: 4000 s + the margin + 10 s (rule graceful-outlasts-idle
    makes the graceful timeout the keep-alive, rule stop-after-graceful adds 10 s).
"""

from __future__ import annotations

from gunicorn_alb.timeouts import IDLE_TIMEOUT_MAX, STOP_TIMEOUT_HEADROOM, CoupledTimeouts

HOOK_NAME = "gunicorn-alb-drain"
"""The termination hook's name. Hook names are unique per group only, so a fixed name is enough
and the watcher knows it without a reference to the hook (which depends on the group)."""

WATCHER_PERIOD_MAX_SECONDS = 6
"""The watcher runs at most this far apart (its timer: 5 s after the last start, 1 s accuracy):
the longest the drain can take to notice ``Terminated``."""
CLEANUP_TIMEOUT_SECONDS = 120
"""How long the ``termination_command`` may run (its unit's ``TimeoutStartSec``) before systemd
stops it; the drain completes the lifecycle action either way."""
COMPLETION_BUDGET_SECONDS = 60
"""How long the watcher may spend completing the lifecycle action (IMDS reads, the AWS call and
its retries with the boot's backoff) in one run."""

WATCHER_PATH = "/usr/local/sbin/gunicorn-alb-drain"
WATCHER_SERVICE_PATH = "/etc/systemd/system/gunicorn-alb-drain.service"
WATCHER_TIMER_PATH = "/etc/systemd/system/gunicorn-alb-drain.timer"
CLEANUP_UNIT = "gunicorn-app-termination.service"
CLEANUP_UNIT_PATH = f"/etc/systemd/system/{CLEANUP_UNIT}"
CLEANUP_ENV_PATH = "/etc/gunicorn-alb/termination.env"

COMPLETE_ACTION = "autoscaling:CompleteLifecycleAction"
"""The one AWS action the drain calls; the instance role may call it on its own group only."""


def stop_bound(timeouts: CoupledTimeouts) -> int:
    """The longest systemd lets Gunicorn's graceful stop take: the stop timeout, or, when it is
    derived at boot (the idle timeout is a parameter), its largest value."""
    if timeouts.stop_timeout is not None:
        return timeouts.stop_timeout
    # graceful_timeout = the keep-alive at boot (rule graceful-outlasts-idle): its largest value.
    return IDLE_TIMEOUT_MAX + timeouts.keepalive_margin + STOP_TIMEOUT_HEADROOM


def drain_seconds(timeouts: CoupledTimeouts, *, cleanup: bool) -> int:
    """The longest the drain takes from ``Terminated`` to the completed lifecycle action."""
    return (
        WATCHER_PERIOD_MAX_SECONDS
        + stop_bound(timeouts)
        + (CLEANUP_TIMEOUT_SECONDS if cleanup else 0)
        + COMPLETION_BUDGET_SECONDS
    )


def check_termination(
    hook_seconds: float | None, timeouts: CoupledTimeouts, *, command: bool
) -> list[str]:
    """Problems with the termination hook and command (rule ``hook-covers-drain``), as messages
    naming the argument and value. ``hook_seconds`` is None without a hook."""
    if hook_seconds is None:
        if command:
            return [
                "termination_command needs termination_hook_timeout: without the termination "
                "hook nothing holds the instance while the command runs"
            ]
        return []
    needed = drain_seconds(timeouts, cleanup=command)
    if hook_seconds >= needed:
        return []
    parameter = (
        " (its largest: the idle timeout is a parameter)" if timeouts.stop_timeout is None else ""
    )
    cleanup = f" + {CLEANUP_TIMEOUT_SECONDS} s for termination_command" if command else ""
    return [
        f"termination_hook_timeout ({hook_seconds:g} s) must be at least {needed} s: "
        f"{WATCHER_PERIOD_MAX_SECONDS} s to notice the termination + {stop_bound(timeouts)} s "
        f"stop timeout{parameter}{cleanup} + {COMPLETION_BUDGET_SECONDS} s to complete the "
        "lifecycle action, or the heartbeat timeout ends the drain before it is done "
        "(rule hook-covers-drain)"
    ]
