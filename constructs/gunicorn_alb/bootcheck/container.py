"""One boot of the boot check: a systemd-nspawn container with systemd as PID 1 on an overlay of
the cached Debian root filesystem (``rootfs.py``), and no network but its own loopback.

The overlay's upper folder holds everything the boot writes, so the cached tree is never changed
and several containers can boot from it at once. Files are put in place before the boot with
:meth:`Container.write` and read back with :meth:`Container.path`; commands run inside with
:meth:`Container.run` (``nsenter`` into all of the container's namespaces), or only inside its
network namespace with :meth:`Container.run_in_network` (host programs, loopback only).

Standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

# The environment of commands run inside the container (as a root shell's would be).
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
STOP_TIMEOUT_SECONDS = 30


class ContainerError(Exception):
    """The container cannot be set up, booted or reached."""


class Container:
    """The folders of one boot (``work``), its overlay root and its systemd-nspawn process."""

    def __init__(self, work: Path, rootfs: Path, machine: str) -> None:
        self.work = work
        self.rootfs = rootfs
        self.machine = machine
        self.upper = work / "overlay" / "upper"
        self.overlay_work = work / "overlay" / "work"
        self.root = work / "root"
        self.console_log = work / "console.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self._leader: int | None = None
        self._mounted = False

    # --- the tree ---------------------------------------------------------------------------

    def mount(self) -> None:
        for folder in (self.upper, self.overlay_work, self.root):
            folder.mkdir(parents=True)
        options = f"lowerdir={self.rootfs},upperdir={self.upper},workdir={self.overlay_work}"
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ContainerError(f"cannot mount the overlay root: {result.stderr.strip()}")
        self._mounted = True

    def path(self, path: str) -> Path:
        """Where the container's absolute PATH is on the host (through the overlay)."""
        if not path.startswith("/"):
            raise ValueError(f"{path} is not absolute")
        return self.root / path.lstrip("/")

    def write(self, path: str, content: str, mode: int = 0o644) -> None:
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text(content)
        target.chmod(mode)

    def symlink(self, path: str, points_to: str) -> None:
        link = self.path(path)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(points_to)

    def read(self, path: str) -> str:
        target = self.path(path)
        return target.read_text(errors="replace") if target.is_file() else ""

    # --- the boot ---------------------------------------------------------------------------

    def boot(
        self,
        binds: dict[str, Path],
        read_only: dict[str, Path],
        cpus: Sequence[int],
        network: bool = False,
    ) -> None:
        """Start systemd-nspawn -b: systemd as PID 1, no network but loopback (or, with
        ``network``, the host's network and name servers, without the right to change them), the
        given host folders bound at their container paths, on CPUS."""
        command = [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.root}",
            f"--machine={self.machine}",
            "--boot",
            # Without network, no route anywhere: the container has only its own loopback.
            *(
                ["--resolv-conf=copy-host"]
                if network
                else ["--private-network", "--resolv-conf=off"]
            ),
            # The host runs no systemd-machined (and needs none).
            "--register=no",
            "--keep-unit",
            "--link-journal=no",
            "--timezone=off",
            "--console=read-only",
            f"--cpu-affinity={','.join(str(cpu) for cpu in cpus)}",
        ]
        command += [f"--bind={host}:{path}" for path, host in binds.items()]
        command += [f"--bind-ro={host}:{path}" for path, host in read_only.items()]
        with open(self.console_log, "wb") as console:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env={
                    "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1",
                },
            )

    def leader(self, timeout: float = 30) -> int:
        """The host PID of the container's PID 1 (systemd), once it runs."""
        if self._leader is not None:
            return self._leader
        if self.process is None:
            raise ContainerError("the container was not booted")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ContainerError(
                    f"systemd-nspawn exited ({self.process.returncode}) before the boot:\n"
                    + self.console_log.read_text(errors="replace")[-2000:]
                )
            for pid in _children(self.process.pid):
                if _inner_pid(pid) == 1:
                    self._leader = pid
                    return pid
            time.sleep(0.05)
        raise ContainerError(f"no PID 1 appeared in the container within {timeout} s")

    def run(
        self, argv: Sequence[str], timeout: float = 60, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ARGV inside the container (all its namespaces: files, processes, network), as
        root; output captured unless told otherwise."""
        kwargs.setdefault("capture_output", True)
        return subprocess.run(
            ["nsenter", f"--target={self.leader()}", "--all", "--", *argv],
            env=INSIDE_ENV,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def network_command(self, argv: Sequence[str]) -> list[str]:
        """A host command line that runs ARGV in the container's network namespace only."""
        return ["nsenter", f"--net=/proc/{self.leader()}/ns/net", "--", *argv]

    def run_in_network(
        self, argv: Sequence[str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.network_command(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def systemctl_show(self, unit: str, *properties: str) -> dict[str, str]:
        result = self.run(["systemctl", "show", unit, "--property=" + ",".join(properties)])
        if result.returncode != 0:
            raise ContainerError(f"systemctl show {unit} failed: {result.stderr.strip()}")
        values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        return {name: values.get(name, "") for name in properties}

    # --- the end ----------------------------------------------------------------------------

    def shutdown(self) -> int | None:
        """Power the container off (SIGTERM to systemd-nspawn halts the container's systemd),
        kill it by PID if it does not stop in time, and unmount the overlay. Returns
        systemd-nspawn's exit status, or None when it had to be killed."""
        status: int | None = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process is not None:
            status = self.process.returncode
        if self._mounted:
            result = subprocess.run(
                ["umount", str(self.root)], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                subprocess.run(["umount", "--lazy", str(self.root)], check=False)
            self._mounted = False
        return status

    def stopped_every_unit(self) -> bool:
        """The container's systemd went through its whole shutdown (every unit stopped) before
        the last step, systemd-halt.service; on a host with cgroup v1 that step can fail to
        attach to its cgroup, and the container then waits instead of exiting."""
        return "Reached target final.target" in self.console_log.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    found = []
    with suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(FileNotFoundError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _inner_pid(pid: int) -> int | None:
    """PID in the innermost PID namespace (NSpid's last field)."""
    with suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return None
