"""The boot check's results (Outcome) and the checks of one boot that do not need the running
service: the template's signal wiring and log group, what the stand-ins were asked for (the
CloudWatch agent's configuration among them), the files the boot wrote, the signal, and a failed
boot's clean-up. ``running.py`` checks the running service.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gunicorn_alb import delivery, instance_logs, rendering
from gunicorn_alb.bootcheck.container import ContainerError
from gunicorn_alb.bootcheck.instance import OUTPUT_LOG, USER_DATA_UNIT, Instance

UNIT = "gunicorn-app.service"
APP_DIR = "/srv/gunicorn-app"
COUPLING_ENV_PATH = "/etc/gunicorn-alb/coupling.env"
DROP_IN_PATH = f"/etc/systemd/system/{UNIT}.d/50-coupling.conf"
BOOT_ERROR = "gunicorn-alb-boot: error:"
"""How boot.sh's ``die`` reports the step that failed."""


@dataclass
class Outcome:
    name: str
    description: str
    work: Path
    results: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    boot_to_signal: float | None = None
    """Seconds from the container's start to the cfn-signal call."""
    total_seconds: float = 0.0
    health: str | None = None
    """What the health path answered once the boot signalled (status and the body's start)."""
    keepalive: int | None = None
    """The keep-alive a running worker holds (read back from its own settings)."""
    idle_timeout: int | None = None
    """The idle timeout the keep-alive is derived from (as the deployment resolves it)."""
    diagnosis: list[str] = field(default_factory=list)
    """On failure: the step that failed and the log and journal lines that explain it."""

    def check(self, ok: bool, what: str) -> bool:
        self.results.append((bool(ok), what))
        return bool(ok)

    def equal(self, what: str, actual: object, expected: object) -> bool:
        if actual == expected:
            return self.check(True, f"{what}: {actual!r}")
        return self.check(False, f"{what}: expected {expected!r}, got {actual!r}")

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(ok for ok, _ in self.results)

    def report(self) -> str:
        lines = [f"== {self.name}: {self.description}"]
        lines += [f"   {note}" for note in self.notes]
        lines += [f"   [{'ok' if ok else 'FAIL'}] {what}" for ok, what in self.results]
        signal = "no signal" if self.boot_to_signal is None else f"{self.boot_to_signal:.1f} s"
        if not self.ok:
            lines += [f"   {line}" for line in self.diagnosis]
        lines.append(
            f"   {'passed' if self.ok else 'FAILED'}: boot to signal {signal}, "
            f"variant {self.total_seconds:.1f} s" + ("" if self.ok else f" (logs: {self.work})")
        )
        return "\n".join(lines)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("      | " + line for line in text.splitlines()[-lines:])


def cfn_signals(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call for call in calls if call["tool"] == "cfn-signal"]


def check_template(outcome: Outcome, template: dict[str, Any], boot_env: dict[str, str]) -> None:
    resource = template["Resources"].get(boot_env.get("CFN_RESOURCE", ""), {})
    outcome.check(
        resource.get("Type") == "AWS::AutoScaling::AutoScalingGroup"
        and "ResourceSignal" in resource.get("CreationPolicy", {}),
        f"CFN_RESOURCE={boot_env.get('CFN_RESOURCE')} is the Auto Scaling group whose "
        "CreationPolicy waits for the signals",
    )


def check_log_group(
    outcome: Outcome, template: dict[str, Any], boot_env: dict[str, str], log_groups: dict[str, str]
) -> None:
    """boot.env's CLOUDWATCH_LOG_GROUP is the name of the stack's log group (a Ref to it, as
    CloudFormation resolves it), which keeps logs a set time and is encrypted with a KMS key."""
    group = boot_env.get("CLOUDWATCH_LOG_GROUP", "")
    if not group:
        outcome.notes.append("no CloudWatch Logs group (instance_logs off): no agent, no check")
        return
    named = [logical_id for logical_id, name in log_groups.items() if name == group]
    resource = template["Resources"].get(named[0], {}) if named else {}
    properties = resource.get("Properties", {})
    outcome.check(
        bool(group)
        and resource.get("Type") == "AWS::Logs::LogGroup"
        and "RetentionInDays" in properties
        and "KmsKeyId" in properties,
        f"CLOUDWATCH_LOG_GROUP={group or '(empty)'} is the stack's log group "
        f"{named[0] if named else '(none)'}: RetentionInDays {properties.get('RetentionInDays')}, "
        f"KmsKeyId {'set' if 'KmsKeyId' in properties else 'missing'}",
    )


def check_user_data_ran(outcome: Outcome, instance: Instance, success: bool) -> None:
    """The user data's unit ran to its end; its exit status is what the boot claims."""
    ended = instance.user_data
    if not outcome.check(
        ended is not None, f"the user data ({USER_DATA_UNIT}) finished within the boot's deadline"
    ):
        return
    assert ended is not None
    if success:
        outcome.check(
            ended.status == 0,
            f"the user data exits 0 under set -euo pipefail ({ended.seconds:.1f} s after the "
            "container started)" + ("" if ended.status == 0 else f":\n{tail(instance.output())}"),
        )
    else:
        outcome.check(ended.status != 0, f"the user data exits non-zero ({ended.status})")


def check_calls(outcome: Outcome, calls: list[dict[str, Any]], boot_env: dict[str, str]) -> None:
    """What the boot (the user data's unit) asked of the stand-ins."""
    boot = [c for c in calls if c.get("unit") == USER_DATA_UNIT]
    dnf = [c for c in boot if c["tool"] == "dnf"]
    requested = [p for c in dnf for p in c.get("packages", [])]
    python = boot_env["PYTHON"]
    expected = {python, f"{python}-pip", "aws-cfn-bootstrap", "logrotate"}
    if boot_env.get("CLOUDWATCH_LOG_GROUP"):
        expected.add("amazon-cloudwatch-agent")
    outcome.check(
        bool(dnf) and all(c["exit"] == 0 for c in dnf) and expected <= set(requested),
        f"dnf installs real AL2023 packages: {' '.join(requested) or 'none'}",
    )
    aws = [c for c in boot if c["tool"] == "aws" and c["argv"][:2] == ["s3", "cp"]]
    assets = {"app asset": boot_env["APP_ASSET_URL"]}
    if boot_env.get("INSTANCE_FILES_URL"):
        # The user data's own fetch, before the boot script (which it unpacks) exists.
        assets["instance files"] = boot_env["INSTANCE_FILES_URL"]
    if boot_env.get("WHEELHOUSE_URL"):
        assets["wheelhouse"] = boot_env["WHEELHOUSE_URL"]
    fetched = sorted(f"s3://{c.get('bucket')}/{c.get('key')}" for c in aws if c["exit"] == 0)
    outcome.check(
        len(aws) == len(assets) and fetched == sorted(assets.values()),
        f"aws s3 cp fetched the {' and the '.join(assets)}: "
        + ", ".join(f"s3://{c.get('bucket')}/{c.get('key')} (exit {c['exit']})" for c in aws),
    )
    if boot_env.get("TARGET_GROUP_ARN"):
        reads = [c for c in boot if c["tool"] == "aws" and c["argv"][:1] == ["elbv2"]]
        outcome.equal(
            "the boot's live idle-timeout reads (aws elbv2, exit code)",
            [(c["argv"][1], c["exit"]) for c in reads],
            [("describe-target-groups", 0), ("describe-load-balancer-attributes", 0)],
        )


AGENT_ARGV = [
    "-a",
    "fetch-config",
    "-m",
    "ec2",
    "-s",
    "-c",
    f"file:{instance_logs.AGENT_CONFIG_PATH}",
]


def check_log_agent(outcome: Outcome, instance: Instance, boot_env: dict[str, str]) -> None:
    """The boot configured the CloudWatch agent once, before Gunicorn started (so a failed boot's
    log is shipped too), with a file that is valid JSON naming the stack's log group, one stream
    per instance, and exactly the files Gunicorn and the boot write."""
    group = boot_env.get("CLOUDWATCH_LOG_GROUP", "")
    calls = [c for c in instance.calls() if c["tool"] == "amazon-cloudwatch-agent-ctl"]
    if not group:
        outcome.check(not calls, "no CloudWatch agent without a log group")
        return
    if not outcome.check(
        len(calls) == 1 and calls[0]["exit"] == 0 and calls[0]["argv"] == AGENT_ARGV,
        "amazon-cloudwatch-agent-ctl "
        + " ".join(AGENT_ARGV)
        + " ran once and read valid JSON: "
        + "; ".join(
            f"{' '.join(c['argv'])} (exit {c['exit']}) {c.get('error', '')}" for c in calls
        ),
    ):
        return
    started = instance.container.systemctl_show(UNIT, "ExecMainStartTimestampMonotonic")
    gunicorn_at = int(started["ExecMainStartTimestampMonotonic"] or 0) / 1e6
    outcome.check(
        0 < calls[0]["monotonic"] < gunicorn_at,
        f"the agent was configured {gunicorn_at - calls[0]['monotonic']:.1f} s before systemd "
        f"started {UNIT}",
    )
    agent = calls[0]["config"]
    logs = agent.get("logs", {}) if isinstance(agent, dict) else {}
    collected = logs.get("logs_collected", {}).get("files", {}).get("collect_list", [])
    files = [entry.get("file_path") for entry in collected]
    groups = {entry.get("log_group_name") for entry in collected}
    streams = {logs.get("log_stream_name")} | {
        entry["log_stream_name"] for entry in collected if "log_stream_name" in entry
    }
    outcome.check(
        sorted(files) == sorted(instance_logs.COLLECTED_FILES)
        and groups == {group}
        and streams == {instance_logs.LOG_STREAM},
        f"the agent's configuration ships {', '.join(map(str, files))} to the log group "
        f"{', '.join(map(str, groups))}, stream {', '.join(map(str, streams))} (one per instance)",
    )


def check_logs_written(outcome: Outcome, instance: Instance) -> None:
    """What the agent would ship exists: the boot's output, and Gunicorn's two files under its
    LogsDirectory=, owned by the app user."""
    missing = [p for p in instance_logs.COLLECTED_FILES if not instance.container.path(p).is_file()]
    owners = {
        path: instance.container.run(["stat", "-c", "%U %a", path]).stdout.strip()
        for path in (instance_logs.ACCESS_LOG, instance_logs.ERROR_LOG)
    }
    outcome.check(
        not missing and all(o.startswith("gunicorn-app ") for o in owners.values()),
        f"the files the agent ships exist (missing: {missing or 'none'}); Gunicorn's: {owners}",
    )


def check_retried(
    outcome: Outcome, injected: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> None:
    """Each network step whose first attempt failed was tried again and then succeeded."""
    boot = [c for c in calls if c.get("unit") == USER_DATA_UNIT]
    failed = [c for c in injected if c.get("unit") == USER_DATA_UNIT]
    steps = sorted({c["tool"] for c in failed})
    outcome.check(
        {"dnf", "aws", "cfn-signal"} <= set(steps),
        f"the first attempt of each network step failed (injected): {', '.join(steps) or 'none'}",
    )
    unretried = [
        " ".join([c["tool"], *c["argv"]])
        for c in failed
        if not any(
            later["tool"] == c["tool"]
            and later["argv"] == c["argv"]
            and later["exit"] == 0
            and later["monotonic"] > c["monotonic"]
            for later in boot
        )
    ]
    outcome.check(
        not unretried,
        f"the boot retried all {len(failed)} failed attempts and each retry succeeded"
        + (f" (not so: {unretried})" if unretried else ""),
    )


def check_written_files(outcome: Outcome, instance: Instance, idle: int, keepalive: int) -> None:
    box = instance.container
    boot_env = delivery.parse_env(box.read(rendering.BOOT_ENV_PATH))
    outcome.equal("boot.env IDLE_TIMEOUT_SECONDS", boot_env.get("IDLE_TIMEOUT_SECONDS"), str(idle))
    coupling = delivery.parse_env(box.read(COUPLING_ENV_PATH))
    outcome.equal(
        "coupling.env GUNICORN_ALB_KEEPALIVE",
        coupling.get("GUNICORN_ALB_KEEPALIVE"),
        str(keepalive),
    )
    drop_in = delivery.parse_env(box.read(DROP_IN_PATH))
    graceful = coupling.get("GUNICORN_ALB_GRACEFUL_TIMEOUT", "")
    stop = drop_in.get("TimeoutStopSec", "")
    outcome.check(
        graceful.isdigit() and stop.isdigit() and int(stop) > int(graceful),
        f"drop-in TimeoutStopSec={stop} exceeds Gunicorn's graceful_timeout={graceful}",
    )
    app = box.path(APP_DIR)
    loose = [
        str(path.relative_to(app))
        for path in ([app, *app.rglob("*")] if app.is_dir() else [])
        if path.lstat().st_uid != 0 or path.lstat().st_mode & 0o022
    ]
    outcome.check(
        app.is_dir() and not loose,
        f"{APP_DIR} is root-owned and not writable by the app user"
        + (f" (not so: {loose})" if loose else ""),
    )


def check_signal(
    outcome: Outcome, instance: Instance, boot_env: dict[str, str], region: str, success: bool
) -> None:
    signals = cfn_signals(instance.calls())
    if not outcome.check(
        len(signals) == 1, f"cfn-signal called exactly once (called {len(signals)} times)"
    ):
        return
    options = signals[0]["options"]
    expected = {
        "--stack": boot_env["CFN_STACK"],
        "--resource": boot_env["CFN_RESOURCE"],
        "--region": region,
    }
    outcome.equal(
        "cfn-signal --stack/--resource/--region", {k: options.get(k) for k in expected}, expected
    )
    outcome.boot_to_signal = instance.seconds_since_boot(signals[0]["monotonic"])
    if success:
        outcome.equal("cfn-signal --exit-code", options.get("--exit-code"), "0")
        active = instance.container.systemctl_show(UNIT, "ActiveEnterTimestampMonotonic")
        active_at = int(active["ActiveEnterTimestampMonotonic"] or 0) / 1e6
        outcome.check(
            0 < active_at < signals[0]["monotonic"] and signals[0]["health_at_call"] == 200,
            f"cfn-signal came after systemd reported {UNIT} active, with the health path "
            f"answering 200 at that moment (it answered: {signals[0]['health_at_call']})",
        )
    else:
        outcome.check(
            options.get("--exit-code") not in (None, "", "0"),
            f"cfn-signal signals failure: --exit-code {options.get('--exit-code')}",
        )


def processes(instance: Instance) -> list[tuple[str, str, str]]:
    """(systemd unit, PID, command line) of every process in the container."""
    listing = instance.container.run(["ps", "-e", "-o", "unit:64=,pid=,args="]).stdout
    found = []
    for line in listing.splitlines():
        unit, pid, command = ([*line.split(None, 2), "", "", ""])[:3]
        if not command.startswith("ps -e"):
            found.append((unit, pid, command))
    return found


def check_nothing_left_by_user_data(outcome: Outcome, instance: Instance) -> None:
    """cloud-final.service has KillMode=process: what the user data leaves running keeps
    running. It must leave nothing (Gunicorn runs in its own unit)."""
    left = [p for p in processes(instance) if p[0] == USER_DATA_UNIT]
    outcome.check(not left, f"the user data left no process behind (found: {left})")


def check_failed_boot(
    outcome: Outcome, instance: Instance, boot_env: dict[str, str], missing_module: str
) -> None:
    wait = int(boot_env["HEALTH_WAIT_SECONDS"])
    outcome.check(
        f"did not answer within {wait} s" in instance.output(),
        f"the boot script gave up on the health path after HEALTH_WAIT_SECONDS={wait}",
    )
    error_log = instance.container.read(instance_logs.ERROR_LOG)
    outcome.check(
        f"No module named '{missing_module}'" in error_log,
        f"Gunicorn's error log ({instance_logs.ERROR_LOG}, which the agent ships) shows the "
        f"app's import error (No module named '{missing_module}')",
    )
    show = instance.container.systemctl_show(UNIT, "ActiveState", "SubState", "NRestarts")
    outcome.check(
        show["ActiveState"] in ("inactive", "failed"),
        f"the EXIT trap's systemctl stop left {UNIT} stopped: {show['ActiveState']} "
        f"({show['SubState']}) after {show['NRestarts']} restart(s) by Restart=always",
    )
    left = [p for p in processes(instance) if p[0] in (UNIT, USER_DATA_UNIT)]
    outcome.check(not left, f"nothing of the boot is left running (found: {left})")


def diagnose(instance: Instance, lines: int = 15) -> list[str]:
    """For a failed check: the step that failed (boot.sh's ``die`` message) and the lines that
    explain it: the end of the boot log, the journal of each failed unit and of Gunicorn's, and
    the end of Gunicorn's error log. Read while the container still runs; best effort."""
    found: list[str] = []
    try:
        output = instance.output()
        errors = [
            line.split(BOOT_ERROR, 1)[1].strip()
            for line in output.splitlines()
            if BOOT_ERROR in line
        ]
        found.append(
            "failed step: "
            + (errors[-1] if errors else "the boot script reported none (see the FAIL lines)")
        )
        found += _section(f"the boot log ({OUTPUT_LOG})", output, lines)
        failed = instance.container.run(
            ["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager"]
        ).stdout
        units = [line.split()[0] for line in failed.splitlines() if line.strip()]
        for unit in dict.fromkeys([*units, UNIT]):
            found += _section(f"journalctl -u {unit}", instance.journal(unit), lines)
        error_log = instance.container.read(instance_logs.ERROR_LOG)
        found += _section(f"Gunicorn's error log ({instance_logs.ERROR_LOG})", error_log, lines)
    except (ContainerError, subprocess.TimeoutExpired, OSError) as error:
        found.append(f"(the container's logs could not be read: {error})")
    return found


def _section(title: str, text: str, lines: int) -> list[str]:
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    if not kept:
        return []
    return [f"{title}, last {len(kept)} line(s):", *(f"   | {line}" for line in kept)]
