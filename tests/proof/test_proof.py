"""The short proof run (tools/proof/proof.py --short) as a test: behind nginx standing in for the
ALB, Gunicorn's default keep-alive loses requests and the generated config loses none.

Needs nginx (CI installs the Debian package); without it the test fails, it does not skip.
"""

from __future__ import annotations

import pytest

from tools.proof import proof


@pytest.mark.runtime
def test_generated_keepalive_loses_no_request_where_gunicorn_defaults_do(short_runs) -> None:  # type: ignore[no-untyped-def]
    run, tmp_path = short_runs["proof"]
    try:
        outcome = run.result()
    except proof.ProofError as error:
        pytest.fail(f"the proof could not run: {error}", pytrace=False)
    report = outcome.report()
    print(report)
    assert set(outcome.workers) == {"gthread", "asgi"}
    for worker, w in outcome.workers.items():
        assert w.defaults.failed > 0, (
            f"Gunicorn's defaults ({worker}) lost no request, so the harness did not reproduce "
            f"the race and this run proves nothing (configs and logs: {tmp_path})\n{report}"
        )
        assert w.generated.failed == 0, f"the generated config lost requests ({worker})\n{report}"
        assert w.generated.burst_failed == 0, f"lost requests ({worker})\n{report}"
