"""Guard: `constructs/` is a source root, not a package, so it must not shadow `constructs`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_constructs_and_aws_cdk_import_from_the_repo_root(root: Path) -> None:
    assert not (root / "constructs" / "__init__.py").exists()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import constructs, aws_cdk, gunicorn_alb; "
            "print(constructs.Construct.__module__, gunicorn_alb.__file__)",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(root / "constructs" / "gunicorn_alb") in result.stdout


def test_the_model_and_renderer_do_not_load_aws_cdk(root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, gunicorn_alb.timeouts, gunicorn_alb.rendering, gunicorn_alb.__main__; "
            "print('aws_cdk' in sys.modules)",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "False", result.stderr
