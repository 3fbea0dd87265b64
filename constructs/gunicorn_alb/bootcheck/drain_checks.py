"""The termination drain in the boot check: with a termination hook (boot.env's
TERMINATION_HOOK_NAME), the container gets the instance metadata service the drain watcher reads
(``imds.py``, a unit of its own answering on port 80, with 169.254.169.254 put on the container's
loopback from the host: the watcher calls the address it calls on EC2), and at the end of the boot
the check plays the group's termination: the target lifecycle state turns ``Terminated`` while a
request is in flight, and the drain must stop Gunicorn gracefully (the request finishes), run the
app's termination_command as the app user, and complete the lifecycle action with ``CONTINUE``
for this instance, the hook and the group, once (the AWS CLI stand-in answers
CompleteLifecycleAction as the API does for an instance waiting in that hook).
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn_alb.bootcheck import running
from gunicorn_alb.bootcheck.checks import Outcome, tail
from gunicorn_alb.bootcheck.imds import IMDS_ADDRESS
from gunicorn_alb.bootcheck.instance import LOG_DIR, Instance

IMDS_UNIT = "bootcheck-imds.service"
IMDS_UNIT_TEXT = f"""\
# The boot check's EC2 instance metadata service (IMDSv2), on {IMDS_ADDRESS}:80.
[Unit]
Description=Instance metadata service (boot check stand-in)
Before=bootcheck-user-data.service

[Service]
ExecStart=/usr/bin/python3 -I /bootcheck/src/imds.py

[Install]
WantedBy=multi-user.target
"""
STATE_FILE = "target-lifecycle-state"
"""In the boot's log folder (LOG_DIR in the container): what the stand-in answers for
``autoscaling/target-lifecycle-state`` (``InService`` while it does not exist)."""
INSTANCE_ID = "i-0123456789abcdef0"
GROUP_TAG = "aws:autoscaling:groupName"
DRAIN_TIMER = "gunicorn-alb-drain.timer"
DRAIN_SERVICE = "gunicorn-alb-drain.service"
CLEANUP_UNIT = "gunicorn-app-termination.service"
DRAINED_FILE = "/var/lib/gunicorn-app/drained"
TERMINATION_COMMAND = 'id -un >"$STATE_DIRECTORY/drained"'
"""The default variant's termination_command: the app's user name into DRAINED_FILE (the unit's
StateDirectory, as the app's own unit has it)."""
DRAIN_DEADLINE_SECONDS = 300


def settings(
    template: dict[str, Any], launch_template: str, boot_env: dict[str, str], stack_name: str
) -> dict[str, Any]:
    """The stand-ins' configuration for the drain: the metadata (the group's tag only when the
    launch template allows tags in the metadata) and the lifecycle action that waits (the
    template's hook, the group as CloudFormation names it)."""
    group = f"{stack_name}-{boot_env.get('CFN_RESOURCE', '')}-Q1w2E3r4T5y6"
    resources = template["Resources"].values()
    launch = template["Resources"][launch_template]
    options = launch["Properties"]["LaunchTemplateData"].get("MetadataOptions", {})
    tags = {GROUP_TAG: group} if options.get("InstanceMetadataTags") == "enabled" else {}
    hooks = [r for r in resources if r["Type"] == "AWS::AutoScaling::LifecycleHook"]
    hook = hooks[0]["Properties"].get("LifecycleHookName", "") if hooks else ""
    return {
        "imds": {
            "instance_id": INSTANCE_ID,
            "tags": tags,
            "state_file": f"{LOG_DIR}/{STATE_FILE}",
        },
        "lifecycle_action": {"group": group, "hook": hook, "instance": INSTANCE_ID},
    }


RECORDING_DROP_IN = f"/etc/systemd/system/{DRAIN_SERVICE}.d/bootcheck-recording.conf"
RECORDING_DROP_IN_TEXT = f"""\
# The boot check's only addition to the watcher's unit: the AWS CLI stand-in records each call in
# {LOG_DIR}, which ProtectSystem=strict would make read-only (the real CLI writes nothing there).
[Service]
ReadWritePaths={LOG_DIR}
"""


def install_metadata_service(instance: Instance) -> None:
    """Before the boot: the stand-in's unit, started by the container's systemd, and the drop-in
    that lets the AWS CLI stand-in record the watcher's calls."""
    box = instance.container
    box.write(f"/etc/systemd/system/{IMDS_UNIT}", IMDS_UNIT_TEXT)
    box.symlink(f"/etc/systemd/system/multi-user.target.wants/{IMDS_UNIT}", f"../{IMDS_UNIT}")
    box.write(RECORDING_DROP_IN, RECORDING_DROP_IN_TEXT)


def add_metadata_address(outcome: Outcome, instance: Instance) -> None:
    """Once the container runs: 169.254.169.254 on its loopback (the host's ``ip``, in the
    container's network namespace; the container has no route anywhere else)."""
    result = instance.container.run_in_network(
        ["ip", "address", "add", f"{IMDS_ADDRESS}/32", "dev", "lo"]
    )
    outcome.check(
        result.returncode == 0,
        f"{IMDS_ADDRESS} on the container's loopback for the metadata stand-in"
        + ("" if result.returncode == 0 else f": {result.stderr.strip()}"),
    )


def _completions(instance: Instance) -> list[dict[str, Any]]:
    return [
        c
        for c in instance.calls()
        if c["tool"] == "aws" and c["argv"][:2] == ["autoscaling", "complete-lifecycle-action"]
    ]


def check_drain(
    outcome: Outcome, instance: Instance, boot_env: dict[str, str], drain: dict[str, Any]
) -> None:
    """While in service the watcher only reads the metadata (quietly); on ``Terminated`` it
    stops Gunicorn with a request in flight (which finishes), runs the clean-up as the app user
    and completes the lifecycle action once."""
    box = instance.container
    units = [f"/etc/systemd/system/{unit}" for unit in (DRAIN_SERVICE, DRAIN_TIMER, CLEANUP_UNIT)]
    running.check_units_verify(outcome, instance, units)
    timer = box.systemctl_show(DRAIN_TIMER, "ActiveState", "UnitFileState")
    reads = [
        c
        for c in instance.calls()
        if c["tool"] == "imds" and c["argv"][1].endswith("/autoscaling/target-lifecycle-state")
    ]
    quiet = instance.journal(DRAIN_SERVICE).strip()
    outcome.check(
        timer == {"ActiveState": "active", "UnitFileState": "enabled"}
        and len(reads) >= 1
        and all(c["exit"] == 200 for c in reads)
        and not _completions(instance)
        and not quiet,
        f"in service: {DRAIN_TIMER} is {timer['ActiveState']} and {timer['UnitFileState']}, the "
        f"watcher read the target lifecycle state {len(reads)} times (InService), called nothing, "
        "and left nothing in the journal (LogLevelMax=notice keeps systemd's lines of each run "
        "out)" + (f":\n{tail(quiet)}" if quiet else ""),
    )
    action = drain["lifecycle_action"]

    def terminate() -> str:
        (instance.log / STATE_FILE).write_text("Terminated\n")
        deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
        while not [c for c in _completions(instance) if c["exit"] == 0]:
            if time.monotonic() > deadline:
                return f"no CompleteLifecycleAction within {DRAIN_DEADLINE_SECONDS} s"
            time.sleep(0.5)
        return "the drain (target lifecycle state Terminated, then CompleteLifecycleAction): exit 0"

    running.stop_with_request_in_flight(outcome, instance, boot_env["APP_PORT"], terminate)
    time.sleep(7)  # one more run of the watcher (every 5 s + 1 s accuracy): it must do nothing
    completions = _completions(instance)
    expected = [
        "autoscaling", "complete-lifecycle-action", "--region", boot_env["AWS_REGION"],
        "--lifecycle-hook-name", action["hook"], "--auto-scaling-group-name", action["group"],
        "--lifecycle-action-result", "CONTINUE", "--instance-id", action["instance"],
        "--cli-connect-timeout", "5", "--cli-read-timeout", "10",
    ]  # fmt: skip
    outcome.check(
        [(c["argv"], c["exit"], c["unit"]) for c in completions] == [(expected, 0, DRAIN_SERVICE)],
        f"the watcher completed the lifecycle action once, with CONTINUE for {action['instance']}"
        f", hook {action['hook']}, group {action['group']} (group from the metadata tag "
        f"{GROUP_TAG}): {[(c['argv'][3:12:2], c['exit']) for c in completions]}",
    )
    owner = box.run(["stat", "--format=%U", DRAINED_FILE]).stdout.strip()
    written = box.read(DRAINED_FILE)
    cleanup = box.systemctl_show(CLEANUP_UNIT, "Result", "ExecMainStatus")
    outcome.check(
        written == "gunicorn-app\n" and owner == "gunicorn-app" and cleanup["Result"] == "success",
        f"termination_command ran as the app user before the completion ({CLEANUP_UNIT}: result "
        f"{cleanup['Result']}; {DRAINED_FILE} by {owner or 'nobody'}: {written!r})",
    )
    journal = instance.journal(DRAIN_SERVICE)
    steps = [
        "Terminated: stopping gunicorn-app.service",
        f"running termination_command ({CLEANUP_UNIT})",
        f"completing {action['hook']} of {action['group']} for {action['instance']}",
        f"completed: the group terminates {action['instance']}",
    ]
    positions = [journal.find(step) for step in steps]
    outcome.check(
        all(p >= 0 for p in positions) and positions == sorted(positions),
        f"the watcher logged each step in order in the journal ({DRAIN_SERVICE}):\n{tail(journal)}",
    )
