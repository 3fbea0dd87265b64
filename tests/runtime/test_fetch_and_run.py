"""The end of the user data, run by bash: it fetches the InstanceFiles asset (retrying, before the
boot script and its retry exist), unpacks it and runs the boot script. The layout goes under
GUNICORN_ALB_ROOT; ``aws`` and ``sleep`` are stand-ins on PATH that record their calls."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from gunicorn_alb import app_config, delivery, rendering
from tests.unit.test_rendering import config

pytestmark = pytest.mark.runtime

URL = "s3://cdk-assets/0123abcd.tgz"

AWS = """#!/bin/bash
# aws s3 cp [--only-show-errors] URL DEST: fails the first $FAILURES calls, then copies $ARCHIVE.
echo "$*" >> "$CALLS/aws"
count=$(wc -l < "$CALLS/aws")
if ((count <= FAILURES)); then
  echo "Could not connect to the endpoint URL" >&2
  exit 1
fi
cp "$ARCHIVE" "${@: -1}"
"""
SLEEP = '#!/bin/bash\necho "$1" >> "$CALLS/sleep"\n'
BOOT = '#!/bin/bash\necho "booted with $*" > "$CALLS/boot"\n'


def _run(tmp_path: Path, failures: int) -> subprocess.CompletedProcess[str]:
    cfg = config(target_group_arn="arn:tg", instance_files_url=URL)
    user_data = delivery.render_user_data(cfg)
    written, shipped = delivery.split_files(cfg)
    # The real files, but a boot script that records how it was started.
    archive = tmp_path / "instance-files.tgz"
    archive.write_bytes(
        delivery.instance_files_archive({**shipped, rendering.BOOT_SCRIPT_PATH: BOOT})
    )
    root, bin_dir, calls = tmp_path / "root", tmp_path / "bin", tmp_path / "calls"
    for folder in (root / "etc/gunicorn-alb", bin_dir, calls):
        folder.mkdir(parents=True)
    (root / "etc/gunicorn-alb/boot.env").write_text(written[rendering.BOOT_ENV_PATH])
    for name, script in (("aws", AWS), ("sleep", SLEEP)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    # What runs on the instance after the user data's last heredoc.
    fetch_and_run = user_data.rsplit(f"\n{app_config.HEREDOC_END}\n", 1)[1]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GUNICORN_ALB_ROOT": str(root),
        "CALLS": str(calls),
        "FAILURES": str(failures),
        "ARCHIVE": str(archive),
    }
    return subprocess.run(
        ["bash", "-c", fetch_and_run], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_user_data_fetches_the_files_retrying_then_runs_the_boot_script(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, failures=2)
    assert result.returncode == 0, result.stderr
    calls, root = tmp_path / "calls", tmp_path / "root"
    aws_calls = (calls / "aws").read_text().splitlines()
    assert len(aws_calls) == 3
    assert all(call.startswith(f"s3 cp --only-show-errors {URL} ") for call in aws_calls)
    assert (calls / "sleep").read_text().split() == ["2", "4"]
    boot_env = f"{root}/etc/gunicorn-alb/boot.env"
    assert (calls / "boot").read_text().strip() == f"booted with {boot_env}"
    _, shipped = delivery.split_files(config(target_group_arn="arn:tg"))
    for path, content in shipped.items():
        if path != rendering.BOOT_SCRIPT_PATH:
            assert (root / path.lstrip("/")).read_text() == content, path
    agent = root / rendering.COUPLING_AGENT_PATH.lstrip("/")
    assert stat.S_IMODE(agent.stat().st_mode) == 0o755
    unit = root / rendering.UNIT_PATH.lstrip("/")
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644


def test_the_user_data_gives_up_after_five_attempts(tmp_path: Path) -> None:
    result = _run(tmp_path, failures=5)
    assert result.returncode == 1
    assert f"gunicorn-alb: cannot fetch the instance files from {URL}" in result.stderr
    assert len((tmp_path / "calls/aws").read_text().splitlines()) == 5
    assert (tmp_path / "calls/sleep").read_text().split() == ["2", "4", "8", "16"]
    assert not (tmp_path / "calls/boot").exists()
    assert not (tmp_path / "root/usr").exists()


def test_the_fetch_and_run_passes_shellcheck(require, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "fetch-and-run.sh"
    script.write_text(delivery.fetch_and_run())
    result = subprocess.run(
        [require("shellcheck"), "--severity=style", str(script)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
