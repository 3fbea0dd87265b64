"""ruff (lint and format) over the repository: fast enough to run with the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_ruff_check_and_format(root: Path) -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
