"""What the boot check needs from the machine it runs on, checked up front and named all at once:
Linux, root, ``systemd-nspawn``, ``nsenter``, overlayfs and, until the root filesystem is cached,
``mmdebstrap`` (which also needs a Debian mirror: deb.debian.org).

Standard library only.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from gunicorn_alb.bootcheck import rootfs

TOOLS = (
    ("systemd-nspawn", "systemd-container", "boots the container with systemd as PID 1"),
    ("nsenter", "util-linux", "runs the checks inside the container"),
)
MMDEBSTRAP = ("mmdebstrap", "mmdebstrap", "builds the Debian 12 root filesystem once per machine")
CI_POINTER = (
    'In CI: the docs\' Boot check page (docs/boot-check.md, "Boot check your own stack") has a '
    "GitHub Actions job (ubuntu-latest, sudo)."
)


def overlay_supported() -> bool:
    """The kernel has overlayfs (loaded, or as a module it loads on the first mount)."""
    filesystems = Path("/proc/filesystems")
    if filesystems.is_file() and "\toverlay\n" in filesystems.read_text():
        return True
    modules = Path("/lib/modules") / platform.release()
    return any(modules.glob("kernel/fs/overlayfs/overlay.ko*"))


def missing() -> tuple[list[str], list[str]]:
    """(what is missing, the Debian/Ubuntu packages that provide the missing programs)."""
    problems, packages = [], []
    system = platform.system()
    if system != "Linux":
        problems.append(f"Linux: this is {system}; the check boots systemd in a Linux container")
    elif not overlay_supported():
        problems.append(
            "overlayfs in the kernel: each boot runs on an overlay of the root filesystem"
        )
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        problems.append(
            "root: run it with sudo (it mounts an overlay and starts systemd-nspawn), e.g. "
            "`sudo .venv/bin/gunicorn-alb boot-check`"
        )
    tools = [*TOOLS] + ([MMDEBSTRAP] if rootfs.cached() is None else [])
    for program, package, why in tools:
        if shutil.which(program) is None:
            problems.append(f"{program} (package {package}): {why}")
            packages.append(package)
    return problems, packages


def message(problems: list[str], packages: list[str]) -> str:
    """The one message that names everything missing and how to get it."""
    lines = ["gunicorn-alb boot-check cannot run here; it needs:"]
    lines += [f"- {problem}" for problem in problems]
    if packages:
        lines.append(f"On Debian or Ubuntu: sudo apt-get install -y {' '.join(packages)}")
    lines.append(CI_POINTER)
    return "\n".join(lines)
