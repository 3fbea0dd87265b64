"""The short proof run (tools/proof/proof.py --short) as a test: behind nginx standing in for the
ALB, Gunicorn's default keep-alive loses requests and the generated config loses none.

Needs nginx (CI installs the Debian package); without it the test fails, it does not skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.proof import proof


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
