"""The boot check (gunicorn_alb.bootcheck) as a test: each variant boots the reference stack's real
user data in a container with systemd 252 as PID 1 and no network, all variants at once. Needs root,
systemd-nspawn, nsenter and the cached root filesystem (`make test` builds it once per machine
with mmdebstrap); a missing one fails the test with its name."""

from __future__ import annotations

import time

import pytest

from gunicorn_alb.bootcheck import bootcheck, stack
from gunicorn_alb.bootcheck.checks import Outcome

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory, cli_synths: dict[str, stack.Synth]
) -> dict[str, Outcome]:
    """Every variant booted once, in parallel containers."""
    try:
        root = bootcheck.preflight()
        started = time.monotonic()
        booted = bootcheck.run_variants(
            bootcheck.VARIANTS, cli_synths, tmp_path_factory.mktemp("bootcheck"), root
        )
    except stack.BootCheckError as error:
        pytest.fail(str(error))
    print(f"\nboot check: {len(booted)} boots in parallel in {time.monotonic() - started:.1f} s")
    print("\n".join(bootcheck.boot_to_signal_summary(booted)))
    return {outcome.name: outcome for outcome in booted}


@pytest.mark.parametrize("variant", bootcheck.VARIANTS, ids=[v.name for v in bootcheck.VARIANTS])
def test_boot(variant: bootcheck.Variant, outcomes: dict[str, Outcome]) -> None:
    assert outcomes[variant.name].ok, outcomes[variant.name].report()
