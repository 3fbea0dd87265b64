"""The boot check (gunicorn_alb.bootcheck) as a test: each variant of the reference app
(tools/bootcheck) boots its service, found in its cloud assembly as `gunicorn-alb boot-check`
finds a user's, with the real user data in a container with systemd 252 as PID 1 and no network,
all variants at once. Needs root, systemd-nspawn, nsenter and the cached root filesystem (`make
test` builds it once per machine with mmdebstrap); a missing one fails the test with its name."""

from __future__ import annotations

import time

import pytest

from gunicorn_alb.bootcheck import bootcheck, stack
from gunicorn_alb.bootcheck.checks import Outcome
from tools.bootcheck import reference

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory, cli_synths: dict[str, stack.Synth]
) -> dict[str, Outcome]:
    """Every variant booted once, in parallel containers."""
    try:
        root = bootcheck.preflight()
        started = time.monotonic()
        boots = [(v, cli_synths[v.synth_key]) for v in reference.VARIANTS]
        booted = bootcheck.run_variants(boots, tmp_path_factory.mktemp("bootcheck"), root)
    except stack.BootCheckError as error:
        pytest.fail(str(error))
    print(f"\nboot check: {len(booted)} boots in parallel in {time.monotonic() - started:.1f} s")
    print("\n".join(bootcheck.boot_to_signal_summary(booted)))
    return {outcome.name: outcome for outcome in booted}


@pytest.mark.parametrize("variant", reference.VARIANTS, ids=[v.name for v in reference.VARIANTS])
def test_boot(variant: reference.ReferenceVariant, outcomes: dict[str, Outcome]) -> None:
    assert outcomes[variant.name].ok, outcomes[variant.name].report()
