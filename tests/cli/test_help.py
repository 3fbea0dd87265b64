"""What a newcomer reads first: each command's --help names the command as it was run and
lists what it can do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gunicorn_alb import doctor


def _help(command: list[str]) -> str:
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_console_script_calls_itself_gunicorn_alb() -> None:
    script = Path(sys.executable).with_name("gunicorn-alb")
    assert _help([str(script)]).startswith("usage: gunicorn-alb [-h]")


def test_the_module_still_calls_itself_python_m_gunicorn_alb() -> None:
    assert _help([sys.executable, "-m", "gunicorn_alb"]).startswith(
        "usage: python -m gunicorn_alb [-h]"
    )


def test_the_doctors_help_lists_probe(capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "gunicorn-alb-doctor probe [-h]" in text
    assert "Measure how long a target keeps an idle keep-alive connection open" in text
    assert "(see gunicorn-alb-doctor probe --help)" in text
