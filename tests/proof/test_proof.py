"""The short proof run (tests/proof/proof.py --short) as a test: behind nginx standing in for the
ALB, Gunicorn's default keep-alive loses requests and the generated config loses none.

Needs nginx (CI installs the Debian package); without it the test fails, it does not skip.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_proof() -> ModuleType:
    """tests/proof/proof.py, whatever pytest's import mode (it is a script, not a package)."""
    name = "gunicorn_alb_proof"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("proof.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


proof = _load_proof()


@pytest.mark.runtime
def test_generated_keepalive_loses_no_request_where_gunicorn_defaults_do(tmp_path: Path) -> None:
    try:
        outcome = proof.run(proof.SHORT, tmp_path)
    except proof.ProofError as error:
        pytest.fail(f"the proof could not run: {error}", pytrace=False)
    report = outcome.report()
    print(report)
    assert outcome.defaults.failed > 0, (
        "Gunicorn's defaults lost no request, so the harness did not reproduce the race and "
        f"this run proves nothing (configs and logs: {tmp_path})\n{report}"
    )
    assert outcome.generated.failed == 0, f"the generated config lost requests\n{report}"
    assert outcome.generated.burst_failed == 0, f"the generated config lost requests\n{report}"
