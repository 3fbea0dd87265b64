"""The wheel carries the package, the instance files and the sample app, and renders from them
when installed (here: imported straight from the wheel, away from the checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from gunicorn_alb import rendering


def test_wheel_ships_the_instance_files_and_renders_from_them(root: Path, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
         str(root)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("cdk_gunicorn_alb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = ("boot.sh", "boot.env.tmpl", "gunicorn.conf.py.tmpl", "gunicorn-app.service.tmpl")
    shipped += ("coupling.sh", "gunicorn-alb-coupling.service", "gunicorn-alb-coupling.timer")
    for name in shipped:
        assert f"gunicorn_alb/userdata/{name}" in names
    assert "gunicorn_alb/sample_app/app.py" in names
    assert {"gunicorn_alb/doctor/__init__.py", "gunicorn_alb/doctor/cli.py"} <= names
    # gunicorn-alb boot-check runs from the wheel: its machinery, stand-ins and package list, and
    # nothing that needs this repository's checkout (its pinned CLI lives in tools/bootcheck).
    boot_check = {
        f"gunicorn_alb/bootcheck/{n}" for n in ("cli.py", "shims.py", "al2023_packages.txt")
    }
    assert boot_check <= names
    archive = zipfile.ZipFile(wheel)
    assert not [
        n
        for n in names
        if n.startswith("gunicorn_alb/bootcheck/") and b"node_modules" in archive.read(n)
    ]
    assert not any(
        name.startswith(("constructs/", "userdata/", "tests/", "tools/")) for name in names
    )

    out = tmp_path / "rendered"
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-I", "-c",
         f"import sys; sys.path.insert(0, {str(wheel)!r}); "
         "import gunicorn_alb; print(gunicorn_alb.__file__); "
         "from gunicorn_alb.__main__ import main; "
         f"sys.exit(main(['render', '--out', {str(out)!r}]))"],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.splitlines()[0].startswith(str(wheel)), result.stdout
    assert (out / "gunicorn-alb-boot").read_text() == rendering.strip_comments(
        rendering.boot_script()
    )
    assert "SYNTH_KEEPALIVE_SECONDS=65" in (out / "boot.env").read_text()
