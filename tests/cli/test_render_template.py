"""`gunicorn-alb render --template`: the files a synthesized stack's instances receive, read from
the pinned CLI's cloud assembly (the session's shared synth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gunicorn_alb import delivery, rendering
from gunicorn_alb.__main__ import main
from gunicorn_alb.render_template import USER_DATA_PATH
from tools.bootcheck import reference

pytestmark = pytest.mark.cli


def test_render_writes_what_the_reference_stacks_instances_receive(  # type: ignore[no-untyped-def]
    cli_synths, tmp_path: Path, capsys
) -> None:
    synth = cli_synths[reference.VARIANTS[0].synth_key]  # the default variant's
    template = synth.outdir / "GunicornAlbReference.template.json"
    out = tmp_path / "files"
    assert main(["render", "--template", str(template), "--out", str(out)]) == 0

    def read(path: str) -> str:
        return (out / path.lstrip("/")).read_text()

    root = Path(__file__).resolve().parents[2]
    assert read(rendering.BOOT_SCRIPT_PATH) == (root / "userdata/boot.sh").read_text()
    assert read(rendering.COUPLING_AGENT_PATH) == (root / "userdata/coupling.sh").read_text()
    boot_env = delivery.parse_env(read(rendering.BOOT_ENV_PATH))
    assert boot_env["IDLE_TIMEOUT_SECONDS"] == "${IdleTimeoutSeconds}"
    assert boot_env["CFN_REGION"] == "${AWS::Region}"
    assert boot_env["INSTANCE_FILES_URL"].startswith(
        "s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/"
    )
    assert 'worker_class = "gunicorn_alb_gthread.GthreadWorker"' in read(
        rendering.GUNICORN_CONF_PATH
    )
    assert (
        read("/etc/gunicorn-alb/gunicorn_alb_gthread.py")
        == (root / "userdata/gunicorn_alb_gthread.py").read_text()
    )
    assert read(USER_DATA_PATH).startswith("#!/bin/bash\n")
    listed = capsys.readouterr().out.splitlines()
    assert f"{out}{rendering.BOOT_ENV_PATH}  (user data)" in listed
    assert f"{out}{rendering.BOOT_SCRIPT_PATH}  (InstanceFiles asset)" in listed
