"""The distribution a team publishes and pins: one ``python -m build`` (an sdist, then the wheel
built from it) shared by every test here. The wheel carries the package, the instance files, the
sample app and the license, and renders from them when installed (here: imported straight from
the wheel, away from the checkout); the sdist holds the sources and nothing stray; the build
prints no warning; the construct never needs boto3 (the doctor's extra does)."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path
from typing import NamedTuple

import pytest

import gunicorn_alb
from gunicorn_alb import rendering
from gunicorn_alb.doctor import MISSING_BOTO3


class Dists(NamedTuple):
    sdist: Path
    wheel: Path
    log: str


@pytest.fixture(scope="module")
def dists(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """``python -m build``: the sdist, then the wheel from the unpacked sdist (so a file missing
    from the sdist is missing from the wheel too), each in an isolated environment."""
    out = tmp_path_factory.mktemp("dist")
    # PYTHONDONTWRITEBYTECODE makes setuptools warn that it skips byte-compiling: not ours.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(root)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (sdist,) = out.glob("cdk_gunicorn_alb-*.tar.gz")
    (wheel,) = out.glob("cdk_gunicorn_alb-*.whl")
    return Dists(sdist, wheel, result.stdout + result.stderr)


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_wheel_ships_the_instance_files_and_renders_from_them(dists: Dists, tmp_path: Path) -> None:
    wheel = dists.wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = ("boot.sh", "boot.env.tmpl", "gunicorn.conf.py.tmpl", "gunicorn-app.service.tmpl")
    shipped += ("coupling.sh", "gunicorn-alb-coupling.service", "gunicorn-alb-coupling.timer")
    shipped += ("fetch-and-run.sh",)
    for name in shipped:
        assert f"gunicorn_alb/userdata/{name}" in names
    assert {"gunicorn_alb/sample_app/app.py", "gunicorn_alb/sample_app/requirements.txt"} <= names
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
    result = subprocess.run(
        [sys.executable, "-I", "-c",
         f"import sys; sys.path.insert(0, {str(wheel)!r}); "
         "import gunicorn_alb; print(gunicorn_alb.__file__); "
         "from gunicorn_alb.__main__ import main; "
         f"sys.exit(main(['render', '--out', {str(out)!r}]))"],
        cwd=tmp_path, env=dict(os.environ), check=True, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.stdout.splitlines()[0].startswith(str(wheel)), result.stdout
    assert (out / "gunicorn-alb-boot").read_text() == rendering.boot_script()
    assert "SYNTH_KEEPALIVE_SECONDS=65" in (out / "boot.env").read_text()


def test_the_wheel_declares_license_version_and_what_it_needs(root: Path, dists: Dists) -> None:
    """PEP 639 license metadata (setuptools deprecates the ``license`` table; builds with it
    stop being supported after 2027-02-18), the version from ``gunicorn_alb.__version__``, valid
    classifiers, and boto3 only for the ``doctor`` extra."""
    from trove_classifiers import classifiers as known

    metadata = _metadata(dists.wheel)
    assert metadata["Version"] == gunicorn_alb.__version__
    assert dists.wheel.name.startswith(f"cdk_gunicorn_alb-{gunicorn_alb.__version__}-")
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["License"] is None  # the deprecated free-text field is gone
    with zipfile.ZipFile(dists.wheel) as archive:
        shipped = archive.read(f"cdk_gunicorn_alb-{metadata['Version']}.dist-info/licenses/LICENSE")
    assert shipped.decode() == (root / "LICENSE").read_text()
    assert "Apache License" in shipped.decode() and "Version 2.0, January 2004" in shipped.decode()
    assert "WSGI" in metadata["Summary"] and "ASGI" in metadata["Summary"]
    classifiers = metadata.get_all("Classifier") or []
    assert classifiers and set(classifiers) <= known, set(classifiers) - known
    assert not any(c.startswith("License ::") for c in classifiers)  # superseded by PEP 639
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)
    requires = metadata.get_all("Requires-Dist") or []
    boto = [r for r in requires if r.startswith(("boto3", "botocore"))]
    assert boto and all('extra == "doctor"' in r for r in boto), requires
    assert metadata.get_all("Provides-Extra") == ["doctor"]


def test_the_sdist_holds_the_sources_and_nothing_stray(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "constructs/gunicorn_alb/__init__.py",
        "constructs/gunicorn_alb/py.typed",
        "constructs/gunicorn_alb/sample_app/requirements.txt",
        "userdata/boot.sh",
    ):
        assert needed in names, needed
    stray = ("tests/", "tools/", "examples/", "node_modules", ".venv", "cdk.out", ".git/")
    assert not [n for n in names if n.startswith(stray) or "__pycache__" in n]


def test_the_build_prints_no_warning(dists: Dists) -> None:
    warnings = [line for line in dists.log.splitlines() if re.search(r"warn", line, re.I)]
    assert warnings == [], "\n".join(warnings)


def test_the_changelog_has_this_release(root: Path) -> None:
    changelog = (root / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(gunicorn_alb.__version__)}\b", changelog, re.M)


def test_the_construct_never_imports_boto3(root: Path) -> None:
    """Every module but the doctor's, the construct resolved: boto3 stays unloaded, so the
    construct installs without it."""
    code = (
        "import pkgutil, importlib, sys, gunicorn_alb\n"
        "gunicorn_alb.ApplicationLoadBalancedGunicornService, gunicorn_alb.Secret\n"
        "skip = ('gunicorn_alb.doctor', 'gunicorn_alb.__main__')\n"
        "for m in pkgutil.walk_packages(gunicorn_alb.__path__, 'gunicorn_alb.'):\n"
        "    if not m.name.startswith(skip):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('boto3', 'botocore')))\n"
        "print(len([n for n in sys.modules if n.startswith('gunicorn_alb.')]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded, count = result.stdout.splitlines()[-2:]
    assert loaded == "[]"
    assert int(count) > 20  # the construct's modules were really imported


def test_the_doctor_says_how_to_install_boto3_when_it_is_missing(root: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['boto3'] = sys.modules['botocore'] = None  # as if not installed\n"
        "from gunicorn_alb.doctor import main\n"
        "from gunicorn_alb.__main__ import main as package_main\n"
        "print(main(['--stack', 'Any']), package_main(['doctor', '--stack', 'Any']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2"]
    assert result.stderr.count(MISSING_BOTO3) == 2
    assert "pip install 'cdk-gunicorn-alb[doctor]'" in MISSING_BOTO3
