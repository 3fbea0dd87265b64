"""The two short proof runs (the steady state, tools/proof/proof.py, and the transitions,
tools/proof/transitions.py) side by side: each mostly waits on its own gaps, reloads and stops,
and each keeps the machine busy with its own CPU load beside its traffic, so together they load it
more than either alone, which the generated setup must withstand. Each test reads its own run."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tools.proof import proof, transitions


@pytest.fixture(scope="session")
def short_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Future[Any], Path]]:
    """``{"proof": (run, workdir), "transitions": (run, workdir)}``, both finished; a test calls
    ``run.result()``, which raises what its run raised."""
    work = {name: tmp_path_factory.mktemp(name) for name in ("proof", "transitions")}
    with ThreadPoolExecutor(2) as pool:
        runs = {
            "proof": pool.submit(proof.run, proof.SHORT, work["proof"]),
            "transitions": pool.submit(transitions.run, transitions.SHORT, work["transitions"]),
        }
    return {name: (run, work[name]) for name, run in runs.items()}
