"""The boot check (tools/bootcheck/bootcheck.py) as a test: each variant boots the reference
stack's real user data in a bubblewrap sandbox. Needs root, bubblewrap, systemd-analyze, curl and
PyPI; a missing one fails the test with its name. About a minute for all four variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bootcheck import bootcheck

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, cli_synths: dict[str, bootcheck.Synth]
) -> tuple[bootcheck.HostPython, dict[str, bootcheck.Synth], Path]:
    try:
        python = bootcheck.preflight()
    except bootcheck.BootCheckError as error:
        pytest.fail(str(error))
    return python, cli_synths, tmp_path_factory.mktemp("bootcheck")


@pytest.mark.parametrize("variant", bootcheck.VARIANTS, ids=[v.name for v in bootcheck.VARIANTS])
def test_boot(
    variant: bootcheck.Variant,
    prepared: tuple[bootcheck.HostPython, dict[str, bootcheck.Synth], Path],
) -> None:
    python, synths, work = prepared
    try:
        outcome = bootcheck.run_variant(
            variant, synths[variant.synth_key], work / variant.name, python
        )
    except bootcheck.BootCheckError as error:
        pytest.fail(str(error))
    assert outcome.ok, outcome.report()
