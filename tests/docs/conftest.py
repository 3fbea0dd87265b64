"""The docs site, built as ``make docs`` builds it (strict), and the docs' CDK app snippets,
synthesized (``tests.docs.run_snippets``): two subprocesses started together when the first docs
test runs, so the build and the browser check overlap the snippets' synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.docs.sources import CDK_APPS, SNIPPETS, readme_files


class _Job:
    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._result: tuple[int, str, str] | None = None

    def result(self) -> tuple[int, str, str]:
        if self._result is None:
            out, err = self.process.communicate(timeout=600)
            self._result = (self.process.returncode, out, err)
        return self._result


@pytest.fixture(scope="session")
def docs_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    readme_app = work / "README-app.py"
    readme_app.write_text(readme_files()["app.py"])
    specs = [f"app.py={readme_app}"] + [
        f"{name}={SNIPPETS / name}" for name in CDK_APPS if name != "app.py"
    ]
    jobs = {
        "snippets": _Job(
            [sys.executable, "-m", "tests.docs.run_snippets", str(work / "cdk.out"), *specs],
            SNIPPETS,  # a user runs `cdk synth` in the app's directory
            env,
        ),
        "site": _Job(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(work / "site")],
            ROOT,
            env,
        ),
    }
    yield {"dir": work, **jobs}
    for job in jobs.values():
        if job.process.poll() is None:
            job.process.kill()
            job.process.wait()


@pytest.fixture(scope="session", autouse=True)
def _start_docs_jobs(docs_jobs: dict[str, Any]) -> None:
    """Starts both jobs at the first docs test, whichever it is."""


@pytest.fixture(scope="session")
def site_build(docs_jobs: dict[str, Any]) -> tuple[Path, str]:
    """``mkdocs build --strict`` into a temporary folder: the folder and the build's log."""
    code, out, err = docs_jobs["site"].result()
    assert code == 0, out[-3000:] + err[-3000:]
    return docs_jobs["dir"] / "site", out + err


@pytest.fixture(scope="session")
def built_site(site_build: tuple[Path, str]) -> Path:
    return site_build[0]


@pytest.fixture(scope="session")
def snippet_stacks(docs_jobs: dict[str, Any]) -> dict[str, Any]:
    """Each CDK app snippet's stacks (template, messages), synthesized in one app."""
    code, out, err = docs_jobs["snippets"].result()
    assert code == 0, err[-4000:]
    stacks: dict[str, Any] = json.loads(out)
    return stacks
