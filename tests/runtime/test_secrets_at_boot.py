"""The boot script's secret step (write_app_environment) with a recording stand-in for the AWS
CLI: values land in a root-only EnvironmentFile and nowhere else; a secret that cannot be read
fails the boot naming the variable and the ARN. The real script runs in a bubblewrap sandbox
that puts its paths (/etc/gunicorn-alb, /opt/gunicorn-alb/venv) in temporary folders."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gunicorn_alb import rendering
from tests.unit.test_rendering import config

pytestmark = pytest.mark.runtime

SSM_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/secret-key"
SM_ARN = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:db-AbCdEf"
SECRET_KEY = "s3cr3t 'quoted' $HOME `x` \\ end"
DB_PASSWORD = "pa55\nword"  # multi-line values survive

# The stand-in `aws`: records its arguments (a tab-separated line per call) and answers from the
# folder of canned answers, one file per ARN; a missing file is AccessDenied, as AWS answers.
FAKE_AWS = """#!/bin/bash
printf '%s\\t' "$@" >>"$FAKE_AWS_DIR/calls.tsv" && echo >>"$FAKE_AWS_DIR/calls.tsv"
for arg in "$@"; do case $prev in --name|--secret-id) arn=$arg ;; esac; prev=$arg; done
answer="$FAKE_AWS_DIR/answers/${arn//[:\\/]/_}.json"
if [[ -f $answer ]]; then cat "$answer"; exit 0; fi
echo "An error occurred (AccessDeniedException) when calling the operation on $arn" >&2
exit 254
"""


def _run(
    tmp_path: Path, secrets: tuple[rendering.SecretRef, ...]
) -> subprocess.CompletedProcess[str]:
    files = rendering.render_files(config(secrets=secrets, environment=(("PLAIN", "x"),)))
    etc = tmp_path / "etc"
    etc.mkdir()
    for path in (rendering.APP_ENV_PATH, rendering.SECRETS_LIST_PATH):
        (etc / Path(path).name).write_text(files[path])
    venv = tmp_path / "venv/bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    fake = tmp_path / "fake-aws"
    (fake / "bin").mkdir(parents=True)
    (fake / "answers").mkdir()
    (fake / "bin/aws").write_text(FAKE_AWS)
    (fake / "bin/aws").chmod(0o755)
    answers = {
        SSM_ARN: {"Parameter": {"Name": "/app/secret-key", "Value": SECRET_KEY}},
        SM_ARN: {"SecretString": json.dumps({"username": "app", "password": DB_PASSWORD})},
    }
    for arn, answer in answers.items():
        name = arn.replace(":", "_").replace("/", "_")
        (fake / "answers" / f"{name}.json").write_text(json.dumps(answer))
    boot = tmp_path / "boot.sh"
    boot.write_text(rendering.boot_script())
    script = (
        f"set -euo pipefail; source {shlex.quote(str(boot))}; RETRY_ATTEMPTS=2 "
        "RETRY_DELAY_SECONDS=1 RETRY_MAX_DELAY_SECONDS=1 INSTALL_DEADLINE=$((SECONDS + 30)); "
        "write_app_environment"
    )
    return subprocess.run(
        ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--bind", str(etc), "/etc/gunicorn-alb", "--tmpfs", "/opt",
         "--ro-bind", str(tmp_path / "venv"), "/opt/gunicorn-alb/venv",
         "bash", "-c", script],
        env={**os.environ, "PATH": f"{fake / 'bin'}:{os.environ['PATH']}",
             "FAKE_AWS_DIR": str(fake)},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def _calls(tmp_path: Path) -> list[list[str]]:
    text = (tmp_path / "fake-aws/calls.tsv").read_text()
    return [line.rstrip("\t").split("\t") for line in text.splitlines()]


def test_secret_values_reach_a_root_only_environment_file_and_nothing_else(
    require,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    require("bwrap")
    secrets = (
        rendering.SecretRef("SECRET_KEY", "ssm", SSM_ARN),
        rendering.SecretRef("DB_PASSWORD", "secretsmanager", SM_ARN, "password"),
    )
    result = _run(tmp_path, secrets)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "etc/secrets.env"
    assert written.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc/app.env").stat().st_mode & 0o777 == 0o600
    assert written.read_text() == (
        "SECRET_KEY=\"s3cr3t 'quoted' \\$HOME \\`x\\` \\\\ end\"\nDB_PASSWORD='pa55\nword'\n"
    )
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == [
        "app.env", "secrets.env", "secrets.list",
    ]  # fmt: skip
    calls = _calls(tmp_path)
    assert calls == [
        ["ssm", "get-parameter", "--region", "eu-west-1", "--with-decryption",
         "--name", SSM_ARN, "--output", "json"],
        ["secretsmanager", "get-secret-value", "--region", "eu-west-2",
         "--secret-id", SM_ARN, "--output", "json"],
    ]  # fmt: skip
    output = result.stdout + result.stderr
    assert f"reading secret SECRET_KEY from {SSM_ARN}" in output
    for value in ("s3cr3t", "pa55"):
        assert value not in output
        assert value not in json.dumps(calls)


def test_fails_when_a_secret_cannot_be_read_naming_the_variable_and_arn(
    require,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    require("bwrap")
    missing = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/missing"
    secrets = (
        rendering.SecretRef("SECRET_KEY", "ssm", SSM_ARN),
        rendering.SecretRef("API_TOKEN", "ssm", missing),
    )
    result = _run(tmp_path, secrets)
    assert result.returncode != 0
    assert f"error: cannot read secret API_TOKEN from {missing}" in result.stderr
    assert "AccessDeniedException" in result.stderr
    assert "API_TOKEN: the AWS CLI failed (exit 254)" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["app.env", "secrets.list"]


def test_fails_when_a_json_field_is_missing_without_showing_the_value(
    require,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    require("bwrap")
    secrets = (rendering.SecretRef("DB_USER", "secretsmanager", SM_ARN, "user"),)
    result = _run(tmp_path, secrets)
    assert result.returncode != 0
    assert "DB_USER: no usable value (KeyError)" in result.stderr
    assert "attempt 1 of 2 failed" in result.stderr  # retried like every network step
    assert f"cannot read secret DB_USER from {SM_ARN}" in result.stderr
    assert "pa55" not in result.stdout + result.stderr
