"""The files an instance receives, from the project's own `render` command, and the coupling
environment the real boot script derives from them. Shared by the runtime tests and the proof.
No aws-cdk-lib import (the proof runs it as a plain script)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gunicorn_alb import delivery


def render(
    out: Path, idle_timeout: int, keepalive_margin: int, options: Sequence[str] = ()
) -> Path:
    """``python -m gunicorn_alb render`` into ``out`` (with more ``options``, such as
    ``--worker-class asgi``); returns the rendered gunicorn.conf.py."""
    subprocess.run(
        [sys.executable, "-m", "gunicorn_alb", "render", "--idle-timeout", str(idle_timeout),
         "--keepalive-margin", str(keepalive_margin), "--out", str(out), *options],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out / "gunicorn.conf.py"


def boot_environment(rendered: Path, root: Path) -> dict[str, str]:
    """coupling.env as the real boot script derives and writes it under ``root``, and where the
    rendered boot.env is (``GUNICORN_ALB_BOOT_ENV``)."""
    script = (
        'set -euo pipefail; source "$1/gunicorn-alb-boot"; source "$1/boot.env"; '
        'derive_timeouts; write_coupling_files "$2"'
    )
    subprocess.run(
        ["bash", "-c", script, "boot", str(rendered), str(root)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    coupling = delivery.parse_env((root / "etc/gunicorn-alb/coupling.env").read_text())
    # gunicorn.conf.py reads FORWARDED_ALLOW_IPS from boot.env (on an instance, /etc/gunicorn-alb).
    return {**coupling, "GUNICORN_ALB_BOOT_ENV": str(rendered / "boot.env")}
