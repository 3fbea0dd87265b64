"""The boot script: shellcheck, and its derivation in bash against the Python model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gunicorn_alb import delivery, rendering
from gunicorn_alb.timeouts import derive_timeouts

pytestmark = pytest.mark.runtime


def _bash(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    boot = tmp_path / "boot.sh"
    boot.write_text(rendering.boot_script())
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\nsource {boot}\n{script}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_boot_script_passes_shellcheck(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shellcheck = require("shellcheck")
    boot = tmp_path / "boot.sh"
    boot.write_text(rendering.boot_script())
    result = subprocess.run(
        [shellcheck, "--severity=style", str(boot)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_ci_script_passes_shellcheck(require, root: Path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [require("shellcheck"), "--severity=style", str(root / ".ci" / "run")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def test_whole_user_data_passes_shellcheck(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shellcheck = require("shellcheck")
    from tests.unit.test_rendering import config

    user_data = tmp_path / "user-data.sh"
    user_data.write_text(delivery.render_user_data(config()))
    result = subprocess.run(
        [shellcheck, "--severity=style", str(user_data)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_bash_derivation_matches_the_python_model_for_every_idle_timeout(tmp_path: Path) -> None:
    """One bash process walks 1..4000 s for several margins and overrides; Python checks each."""
    # Every margin with the derived drain, and drain overrides below and at the cap.
    cases = [(1, ""), (5, ""), (30, ""), (5, "30"), (5, "3600")]
    script = "\n".join(
        f"""for idle in $(seq 1 4000); do
  IDLE_TIMEOUT_SECONDS=$idle KEEPALIVE_MARGIN_SECONDS={margin}
  DEREGISTRATION_DELAY_SECONDS={drain or "$(( idle < 3600 ? idle : 3600 ))"}
  GRACEFUL_TIMEOUT_SECONDS= STOP_TIMEOUT_SECONDS=
  derive_timeouts
  echo "{margin} {drain or "-"} $idle $KEEPALIVE $GRACEFUL_TIMEOUT $STOP_TIMEOUT"
done"""
        for margin, drain in cases
    )
    result = _bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4000 * len(cases)
    for line in lines:
        margin, drain, idle, keepalive, graceful, stop = line.split()
        model = derive_timeouts(
            int(idle),
            keepalive_margin=int(margin),
            deregistration_delay=None if drain == "-" else int(drain),
        )
        assert (int(keepalive), int(graceful), int(stop)) == (
            model.keepalive,
            model.graceful_timeout,
            model.stop_timeout,
        ), line


def test_bash_honours_overrides_like_the_model(tmp_path: Path) -> None:
    result = _bash(
        "IDLE_TIMEOUT_SECONDS=300 KEEPALIVE_MARGIN_SECONDS=5 DEREGISTRATION_DELAY_SECONDS=120\n"
        "GRACEFUL_TIMEOUT_SECONDS=301 STOP_TIMEOUT_SECONDS=315\n"
        "derive_timeouts; echo $KEEPALIVE $GRACEFUL_TIMEOUT $STOP_TIMEOUT",
        tmp_path,
    )
    model = derive_timeouts(300, deregistration_delay=120, graceful_timeout=301, stop_timeout=315)
    assert result.stdout.split() == [str(model.keepalive), "301", "315"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("IDLE_TIMEOUT_SECONDS=0", "IDLE_TIMEOUT_SECONDS must be at least 1, got 0"),
        ("IDLE_TIMEOUT_SECONDS=4001", "IDLE_TIMEOUT_SECONDS must be at most 4000, got 4001"),
        ("IDLE_TIMEOUT_SECONDS=abc", "IDLE_TIMEOUT_SECONDS must be a whole number of seconds"),
        ("IDLE_TIMEOUT_SECONDS=", "IDLE_TIMEOUT_SECONDS must be a whole number of seconds"),
        ("KEEPALIVE_MARGIN_SECONDS=0", "KEEPALIVE_MARGIN_SECONDS must be at least 1, got 0"),
        # A parameter-mode stack with a graceful override: checked on the instance.
        (
            "IDLE_TIMEOUT_SECONDS=600 GRACEFUL_TIMEOUT_SECONDS=90",
            "graceful timeout 90 s must exceed the idle timeout 600 s (rule graceful-outlasts-idle",
        ),
        ("STOP_TIMEOUT_SECONDS=65", "stop timeout 65 s must exceed the graceful timeout 65 s"),
    ],
)
def test_bash_fails_when_an_input_breaks_a_rule(tmp_path: Path, inputs: str, message: str) -> None:
    result = _bash(
        "IDLE_TIMEOUT_SECONDS=60 KEEPALIVE_MARGIN_SECONDS=5 DEREGISTRATION_DELAY_SECONDS=60\n"
        f"GRACEFUL_TIMEOUT_SECONDS= STOP_TIMEOUT_SECONDS=\n{inputs}\nderive_timeouts",
        tmp_path,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_boot_refuses_when_bash_and_the_synth_time_values_disagree(tmp_path: Path) -> None:
    result = _bash(
        "IDLE_TIMEOUT_SECONDS=60 KEEPALIVE_MARGIN_SECONDS=5 DEREGISTRATION_DELAY_SECONDS=60\n"
        "SYNTH_KEEPALIVE_SECONDS=61\nderive_timeouts; check_synth_values",
        tmp_path,
    )
    assert result.returncode != 0
    assert "derived keepalive=65 here, but the construct derived keepalive=61" in result.stderr


def test_coupling_files_carry_the_derived_values(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = _bash(
        "IDLE_TIMEOUT_SECONDS=120 KEEPALIVE_MARGIN_SECONDS=5 DEREGISTRATION_DELAY_SECONDS=120\n"
        f"derive_timeouts; write_coupling_files {root}",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    coupling = (root / "etc/gunicorn-alb/coupling.env").read_text()
    assert "GUNICORN_ALB_KEEPALIVE=125\n" in coupling
    assert "GUNICORN_ALB_GRACEFUL_TIMEOUT=125\n" in coupling
    drop_in = (root / "etc/systemd/system/gunicorn-app.service.d/50-coupling.conf").read_text()
    assert "[Service]\nTimeoutStopSec=135\n" in drop_in


def test_signal_is_sent_only_after_the_health_wait() -> None:
    """main() runs the health wait before the success signal, and signals failure on exit."""
    script = rendering.boot_script()
    body = script[script.index("main() {") :]
    assert body.index("wait_healthy") < body.index("signal_cloudformation 0")
    assert "trap on_exit EXIT" in body
    # cfn-signal is installed before anything that can fail, so every failure is signalled.
    assert (
        body.index("trap on_exit EXIT")
        < body.index("install_signal_tool")
        < body.index("derive_timeouts")
    )
