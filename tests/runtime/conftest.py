"""Runtime tests start real programs; a missing one fails the test with its name (CI installs
them through `make test`'s set-up), rather than skipping silently."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def require():  # type: ignore[no-untyped-def]
    def check(program: str) -> str:
        path = shutil.which(program)
        if path is None:
            pytest.fail(f"{program} is not installed: run `make setup` (installs the OS tools)")
        return path

    return check
