"""The boot check's EC2 instance: a container (``container.py``) with systemd as PID 1, set up as
a fresh Amazon Linux 2023 instance is at first boot, whose user data a oneshot unit runs the way
cloud-init's ``cloud-final.service`` runs it (after the network, as root, once).

Only what cannot exist here is a stand-in (``shims.py``), each recording its calls in
``/bootcheck/log/calls.jsonl``: ``/usr/bin/dnf``, ``/usr/bin/aws`` (AL2023 has AWS CLI v2 there),
``/opt/aws/bin/cfn-signal`` and ``amazon-cloudwatch-agent-ctl`` (which dnf's stand-in installs
with ``aws-cfn-bootstrap`` and ``amazon-cloudwatch-agent``). systemd, systemctl, journald,
useradd, the virtualenv, pip, curl, logrotate and Gunicorn are real.

Standard library only.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn_alb.bootcheck.container import Container, ContainerError

SOURCE = Path(__file__).resolve().parent
USER_DATA_PATH = "/var/lib/cloud/instance/scripts/part-001"
USER_DATA_UNIT = "bootcheck-user-data.service"
OUTPUT_LOG = "/var/log/cloud-init-output.log"
CONFIG_PATH = "/bootcheck/config.json"
LOG_DIR = "/bootcheck/log"
CFN_SIGNAL_LAUNCHER = "/usr/libexec/bootcheck/cfn-signal"
AGENT_CTL_LAUNCHER = "/usr/libexec/bootcheck/amazon-cloudwatch-agent-ctl"
CLOUD_FINAL = "/usr/libexec/bootcheck/cloud-final"
STATUS_FILE = "user-data.status"
# cloud-init runs the user data as a child of cloud-init (cloud-final.service's main process) and
# writes its output to /var/log/cloud-init-output.log; this stand-in for cloud-init records how
# the user data ended, for the boot check.
CLOUD_FINAL_TEXT = f"""\
#!/bin/sh
# The boot check's stand-in for cloud-init's scripts-user: runs the user data, records its status.
"$1"
status=$?
echo "$status" >{LOG_DIR}/{STATUS_FILE}.tmp
mv {LOG_DIR}/{STATUS_FILE}.tmp {LOG_DIR}/{STATUS_FILE}
exit "$status"
"""
# cloud-final.service (cloud-init 22+): after the network and multi-user.target, oneshot,
# no timeout, KillMode=process (what the user data leaves running keeps running).
USER_DATA_UNIT_TEXT = f"""\
# The boot check's cloud-init: runs the user data once at boot, as cloud-final.service does.
[Unit]
Description=Instance user data (as cloud-init's cloud-final.service runs it)
Wants=network-online.target
After=network-online.target multi-user.target

[Service]
Type=oneshot
ExecStart={CLOUD_FINAL} {USER_DATA_PATH}
KillMode=process
TimeoutSec=0
StandardOutput=append:{OUTPUT_LOG}
StandardError=inherit

[Install]
WantedBy=multi-user.target
"""
# The container's Python (Debian 12: 3.11), which dnf's stand-in offers as python3.X.
CONTAINER_PYTHON = "/usr/bin/python3.11"
HOST_CA_PATH = "/bootcheck/host-ca.pem"
"""The host's certificate authorities, for pip when the container uses the host's network."""


def _launcher(tool: str) -> str:
    return f'#!/bin/sh\nexec /usr/bin/python3 -I /bootcheck/src/shims.py {tool} "$@"\n'


@dataclass(frozen=True)
class UserDataResult:
    """How the user data ended."""

    status: int
    """Its exit status."""
    seconds: float
    """From the container's start to the end of the user data (polled: within 0.1 s)."""


class Instance:
    """One boot: the container, the host folders it sees under /bootcheck, the calls log."""

    def __init__(self, work: Path, rootfs: Path, machine: str, network: bool = False) -> None:
        """``network``: the host's network (to reach PyPI) instead of none but a loopback of its
        own; pip in the container then trusts what the host's pip trusts (a network may
        intercept TLS with its own authority)."""
        self.network = network
        self.work = work
        self.log = work / "log"
        self.s3 = work / "s3"
        self.container = Container(work / "container", rootfs, machine)
        self.user_data: UserDataResult | None = None
        """How the user data ended (set by wait_for_user_data)."""

    def prepare(self, user_data: str, settings: dict[str, Any]) -> None:
        """Mount the overlay and put the user data, its unit and the stand-ins in place.
        ``settings`` is the stand-ins' configuration (shims.py reads it from CONFIG_PATH)."""
        self.log.mkdir(parents=True)
        self.s3.mkdir(parents=True, exist_ok=True)
        box = self.container
        box.mount()
        config = {
            "calls_log": f"{LOG_DIR}/calls.jsonl",
            "s3_root": "/bootcheck/s3",
            "python": CONTAINER_PYTHON,
            "cfn_signal_launcher": CFN_SIGNAL_LAUNCHER,
            "agent_ctl_launcher": AGENT_CTL_LAUNCHER,
            **settings,
        }
        box.write(CONFIG_PATH, json.dumps(config, indent=2) + "\n")
        for tool in ("dnf", "aws"):
            box.write(f"/usr/bin/{tool}", _launcher(tool), 0o755)
        box.write(CFN_SIGNAL_LAUNCHER, _launcher("cfn-signal"), 0o755)
        box.write(AGENT_CTL_LAUNCHER, _launcher("amazon-cloudwatch-agent-ctl"), 0o755)
        box.write(CLOUD_FINAL, CLOUD_FINAL_TEXT, 0o755)
        if self.network:
            box.write("/etc/pip.conf", f"[global]\ncert = {HOST_CA_PATH}\n")
        box.write(USER_DATA_PATH, user_data, 0o700)
        box.write(f"/etc/systemd/system/{USER_DATA_UNIT}", USER_DATA_UNIT_TEXT)
        box.symlink(
            f"/etc/systemd/system/multi-user.target.wants/{USER_DATA_UNIT}",
            f"../{USER_DATA_UNIT}",
        )

    def boot(self, cpus: list[int]) -> None:
        read_only = {"/bootcheck/src": SOURCE, "/bootcheck/s3": self.s3}
        if self.network:
            read_only[HOST_CA_PATH] = Path(
                os.environ.get("PIP_CERT")
                or ssl.get_default_verify_paths().cafile
                or "/etc/ssl/certs/ca-certificates.crt"
            )
        self.container.boot({LOG_DIR: self.log}, read_only, cpus, self.network)

    def wait_for_user_data(self, timeout: float) -> UserDataResult | None:
        """The user data's end, or None if it runs past TIMEOUT seconds after the boot. Raises
        ContainerError when the container stops, or the user data's unit ends unrecorded."""
        marker = self.log / STATUS_FILE
        box = self.container
        box.leader()
        deadline = box.started + timeout
        polls = 0
        while not marker.is_file():
            if time.monotonic() > deadline:
                return None
            if box.process is not None and box.process.poll() is not None:
                raise ContainerError(
                    f"the container stopped during the boot (systemd-nspawn exit "
                    f"{box.process.returncode}; console: {box.console_log})"
                )
            polls += 1
            if polls % 50 == 0:
                self._check_user_data_unit(marker)
            time.sleep(0.1)
        seconds = time.monotonic() - box.started
        self.user_data = UserDataResult(int(marker.read_text().strip()), seconds)
        return self.user_data

    def _check_user_data_unit(self, marker: Path) -> None:
        """Every few seconds: a unit that ended without the status file (its ExecStart never
        ran, say) would otherwise leave the check waiting until its deadline."""
        try:
            show = self.container.systemctl_show(
                USER_DATA_UNIT, "ActiveState", "Result", "ExecMainExitTimestampMonotonic"
            )
        except (ContainerError, subprocess.TimeoutExpired):
            return  # systemd is not up yet
        ended = show["ExecMainExitTimestampMonotonic"] not in ("", "0")
        if ended and show["ActiveState"] != "activating" and not marker.is_file():
            raise ContainerError(
                f"{USER_DATA_UNIT} ended ({show['ActiveState']}, result {show['Result']}) "
                f"without recording the user data's status (console: "
                f"{self.container.console_log})"
            )

    def output(self) -> str:
        """What the user data printed (cloud-init's /var/log/cloud-init-output.log)."""
        return self.container.read(OUTPUT_LOG)

    def calls(self, injected: bool = False) -> list[dict[str, Any]]:
        """The stand-ins' calls log; the failures they injected (the flaky variant's
        first attempts) only with ``injected``, so every other check sees the calls that did
        the work."""
        path = self.log / "calls.jsonl"
        if not path.exists():
            return []
        calls = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [c for c in calls if bool(c.get("injected")) == injected]

    def seconds_since_boot(self, monotonic: float) -> float:
        """A CLOCK_MONOTONIC reading from inside the container (the host's clock: nspawn makes
        no time namespace) as seconds since the container started."""
        return monotonic - self.container.started

    def journal(self, unit: str) -> str:
        return self.container.run(
            ["journalctl", "--unit", unit, "--output=cat", "--no-pager"]
        ).stdout

    def shutdown(self) -> int | None:
        return self.container.shutdown()
