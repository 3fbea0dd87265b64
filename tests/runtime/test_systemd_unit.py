"""The rendered systemd unit and the boot script's drop-in pass `systemd-analyze verify`.

The unit names its real paths (/opt/gunicorn-alb/venv/bin/gunicorn, /etc/systemd/system/...),
which systemd-analyze checks; a bubblewrap sandbox puts the files there without touching the host.
`systemd-analyze verify` exits 0 even on warnings (an unknown key, a bad value), so the test
requires its output to be empty.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gunicorn_alb import rendering
from tests.unit.test_rendering import config

pytestmark = pytest.mark.runtime


def _verify(  # type: ignore[no-untyped-def]
    require, tmp_path: Path, unit_text: str, *command: str, name: str = "gunicorn-app.service"
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (default: systemd-analyze verify) where the unit sits at its real path."""
    bwrap = require("bwrap")
    require("systemd-analyze")
    units = tmp_path / "system"
    (units / "gunicorn-app.service.d").mkdir(parents=True)
    (units / name).write_text(unit_text)
    boot = tmp_path / "boot.sh"
    boot.write_text(rendering.boot_script())
    subprocess.run(
        [
            "bash",
            "-c",
            f"source {boot}; IDLE_TIMEOUT_SECONDS=60 KEEPALIVE_MARGIN_SECONDS=5 "
            f"DEREGISTRATION_DELAY_SECONDS=60; derive_timeouts; write_coupling_files {tmp_path}/r",
        ],
        check=True,
    )
    drop_in = tmp_path / "r/etc/systemd/system/gunicorn-app.service.d/50-coupling.conf"
    (units / "gunicorn-app.service.d/50-coupling.conf").write_text(drop_in.read_text())
    venv = tmp_path / "venv/bin"
    venv.mkdir(parents=True)
    (venv / "gunicorn").write_text("#!/bin/sh\n")
    (venv / "gunicorn").chmod(0o755)
    return subprocess.run(
        [bwrap, "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--tmpfs", "/opt", "--ro-bind", str(tmp_path / "venv"), "/opt/gunicorn-alb/venv",
         "--tmpfs", "/etc/systemd/system", "--ro-bind", str(units), "/etc/systemd/system",
         *(command or ("systemd-analyze", "verify")), f"/etc/systemd/system/{name}"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_unit_passes_systemd_analyze_verify(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _verify(require, tmp_path, rendering.render_unit(config()))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_exposure_stays_low(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`systemd-analyze security`: docs/security.md records 1.4; fail above 2.0."""
    result = _verify(
        require, tmp_path, rendering.render_unit(config()),
        "systemd-analyze", "security", "--offline=true",
    )  # fmt: skip
    match = re.search(r"Overall exposure level for gunicorn-app.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_verify_reports_a_broken_unit(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The check can fail: a misspelt key is reported."""
    broken = rendering.render_unit(config()).replace("Type=notify", "Typo=notify")
    result = _verify(require, tmp_path, broken)
    assert "Unknown key 'Typo'" in result.stdout + result.stderr


def test_stop_timeout_exceeds_gunicorns_graceful_timeout(tmp_path: Path) -> None:
    boot = tmp_path / "boot.sh"
    boot.write_text(rendering.boot_script())
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"source {boot}; IDLE_TIMEOUT_SECONDS=60 KEEPALIVE_MARGIN_SECONDS=5 "
            "DEREGISTRATION_DELAY_SECONDS=60 derive_timeouts; echo $GRACEFUL_TIMEOUT $STOP_TIMEOUT",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    graceful, stop = map(int, result.stdout.split())
    assert stop > graceful


def test_release_step_unit_passes_systemd_analyze_verify(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config(pre_start_command="python manage.py collectstatic --noinput")
    name = Path(rendering.PRE_START_UNIT_PATH).name
    result = _verify(require, tmp_path, rendering.render_pre_start_unit(cfg), name=name)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
