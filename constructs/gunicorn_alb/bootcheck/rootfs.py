"""The boot check's root filesystem: Debian 12 (bookworm), whose systemd 252 is the major version
Amazon Linux 2023 runs, built with ``mmdebstrap`` from Debian packages only and cached.

The cache key is a hash of the recipe (suite, mirror, options, package list), so the tree is built
once per machine and again only when the recipe changes. It lives in
``$XDG_CACHE_HOME/gunicorn-alb/bootcheck-rootfs/KEY/`` (``~/.cache`` by default; or
``$GUNICORN_ALB_CACHE/bootcheck-rootfs/KEY/``); the boot check never writes into it (each boot
gets an overlay).

    .venv/bin/python -m gunicorn_alb.bootcheck.rootfs      # build it (or print where it is)

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("GUNICORN_ALB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = (
    "systemd",  # PID 1 of the container: 252, as on Amazon Linux 2023
    "python3",  # 3.11: the dnf stand-in offers it as the python3.X the boot asks for
    "python3-venv",  # ensurepip, which `python3.X -m venv` needs for the virtualenv's pip
    "curl",  # the boot script's health wait
    "passwd",  # useradd (AL2023: shadow-utils)
    "procps",  # /usr/bin/kill, the unit's ExecReload= (AL2023: util-linux)
    "logrotate",  # what dnf's stand-in offers for AL2023's logrotate (the same 3.2x series)
)
OPTIONS = (
    "--variant=essential",
    # dpkg without fsync: the tree is a cache, rebuilt if anything goes wrong (3x faster here).
    "--dpkgopt=force-unsafe-io",
    # A merged /usr (as AL2023 has) without the usrmerge package, which would pull in Perl.
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
)
RECIPE_VERSION = 1
"""Bump to rebuild every cached tree (a change the recipe below does not show)."""
BUILD_TIMEOUT_SECONDS = 1800


Log = Callable[[str], None]


class RootfsError(Exception):
    """The root filesystem cannot be built."""


def cache_base() -> Path:
    """The project's cache folder: $GUNICORN_ALB_CACHE, else $XDG_CACHE_HOME/gunicorn-alb."""
    configured = os.environ.get("GUNICORN_ALB_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gunicorn-alb"


def cache_root() -> Path:
    return cache_base() / "bootcheck-rootfs"


def command(target: Path) -> list[str]:
    """The mmdebstrap command line that builds the tree into TARGET (a folder)."""
    return [
        "mmdebstrap",
        *OPTIONS,
        "--include=" + ",".join(PACKAGES),
        SUITE,
        str(target),
        MIRROR,
    ]


def key() -> str:
    """A hash of the recipe: the command line (without the target) and the recipe version."""
    recipe = json.dumps([RECIPE_VERSION, command(Path("TARGET"))])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def cached() -> Path | None:
    """The built tree for the current recipe, or None."""
    folder = cache_root() / key()
    return folder / "root" if (folder / "complete.json").is_file() else None


def ensure(log: Log = print) -> Path:
    """The tree for the current recipe, built first if this machine has none. Builds under a
    lock, so concurrent callers wait for one build."""
    found = cached()
    if found is not None:
        return found
    import fcntl  # here: POSIX only, and `gunicorn-alb boot-check` names what a machine lacks first

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = cached()
        if found is not None:
            return found
        return _build(root / key(), log)


def _build(folder: Path, log: Log) -> Path:
    if shutil.which("mmdebstrap") is None:
        raise RootfsError("mmdebstrap is not installed (apt-get install -y mmdebstrap)")
    if os.geteuid() != 0:
        raise RootfsError("building the root filesystem needs root (mmdebstrap's root mode)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    target = folder / "root"
    build_command = command(target)
    log(f"building the boot check's root filesystem (once per machine): {' '.join(build_command)}")
    started = time.monotonic()
    with open(folder / "build.log", "w") as build_log:
        try:
            result = subprocess.run(
                build_command,
                stdin=subprocess.DEVNULL,
                stdout=build_log,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RootfsError(
                f"mmdebstrap ran past {BUILD_TIMEOUT_SECONDS} s (log: {folder / 'build.log'})"
            ) from None
    if result.returncode != 0:
        tail = (folder / "build.log").read_text(errors="replace").splitlines()[-15:]
        raise RootfsError(
            f"mmdebstrap failed (exit {result.returncode}; log: {folder / 'build.log'}):\n"
            + "\n".join(tail)
        )
    seconds = time.monotonic() - started
    (folder / "complete.json").write_text(
        json.dumps({"command": build_command, "seconds": round(seconds, 1)}, indent=2) + "\n"
    )
    log(f"built {target} in {seconds:.0f} s")
    return target


def build_seconds() -> float | None:
    """How long the cached tree took to build (for the report), or None."""
    folder = cache_root() / key()
    try:
        return float(json.loads((folder / "complete.json").read_text())["seconds"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def main(argv: list[str]) -> int:
    """Build the tree (or print where it is). ``--if-possible``: on a machine that cannot build
    it (not root, no mmdebstrap), say so and succeed; the boot check then names what is missing."""
    if "--if-possible" in argv and (os.geteuid() != 0 or shutil.which("mmdebstrap") is None):
        if cached() is None:
            print("the boot check's root filesystem is not built (needs root and mmdebstrap)")
        return 0
    try:
        print(ensure())
    except RootfsError as error:
        print(f"boot check root filesystem: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
