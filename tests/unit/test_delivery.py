"""How the instance files reach an instance: the user data (the deploy-time values) and the
InstanceFiles asset (everything else), within EC2's 16 KB."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile

import pytest

from gunicorn_alb import delivery, rendering, timeouts
from gunicorn_alb.rendering import SecretRef
from tests.unit.test_rendering import config

TOKEN = "${Token[TOKEN.7]}"
URL = "s3://cdk-assets/0123abcd.tgz"


def test_user_data_writes_the_deploy_time_files_then_fetches_and_runs() -> None:
    cfg = config(environment=(("A", "b"),), instance_files_url=URL)
    text = delivery.render_user_data(cfg)
    assert text.startswith("#!/bin/bash\n")
    written = re.findall(r"^cat > (\S+) <<'GUNICORN_ALB_EOF'$", text, re.M)
    assert written == [rendering.BOOT_ENV_PATH, rendering.APP_ENV_PATH]
    assert (
        delivery.parse_env(delivery.written_file(text, rendering.BOOT_ENV_PATH) or "")[
            "INSTANCE_FILES_URL"
        ]
        == URL
    )
    # The static fetch-and-run, without its comments, ends the user data.
    fetch = delivery.strip_comments(delivery.fetch_and_run()).split("\n", 1)[1]
    assert text.endswith(fetch.rstrip("\n"))
    assert text.rstrip().endswith('exec "$root/usr/local/sbin/gunicorn-alb-boot" "$boot_env"')
    assert "gunicorn-alb coupling agent" not in text and "def _coupled" not in text


def test_every_file_reads_back_from_the_user_data_or_the_asset() -> None:
    """written_file() is the inverse of the user data and the archive (the doctor, the boot check
    and the render command use it)."""
    cfg = config(
        target_group_arn="arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/0123",
        log_group_name="/gunicorn-alb/web",
        secrets=(SecretRef("KEY", "ssm", "arn:aws:ssm:us-east-1:1:parameter/k"),),
        pre_start_command="python manage.py migrate",
    )
    text = delivery.render_user_data(cfg)
    written, shipped = delivery.split_files(cfg)
    archive = delivery.instance_files_archive(shipped)
    assert set(written) == set(delivery.USER_DATA_PATHS)
    assert set(written) | set(shipped) == set(rendering.render_files(cfg))
    for path, content in {**written, **shipped}.items():
        assert delivery.written_file(text, path, archive) == content.rstrip("\n"), path
    for path in shipped:
        assert delivery.written_file(text, path) is None, path
    assert delivery.written_file(text, "/etc/nothing", archive) is None
    assert delivery.archive_files(archive) == shipped


def test_the_asset_ships_the_scripts_as_they_are_executable_and_root_owned() -> None:
    _, shipped = delivery.split_files(config(target_group_arn="arn:tg"))
    assert shipped[rendering.BOOT_SCRIPT_PATH] == rendering.boot_script()
    assert shipped[rendering.COUPLING_AGENT_PATH] == rendering.coupling_agent()
    archive = delivery.instance_files_archive(shipped)
    assert archive == delivery.instance_files_archive(dict(reversed(shipped.items())))
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        modes = {"/" + m.name: (m.mode, m.uid, m.uname, m.mtime) for m in tar.getmembers()}
    assert modes[rendering.BOOT_SCRIPT_PATH] == (0o755, 0, "root", 0)
    assert modes[rendering.COUPLING_AGENT_PATH][0] == 0o755
    assert modes[rendering.UNIT_PATH][0] == 0o644


def test_a_file_with_a_deploy_time_value_stays_in_the_user_data() -> None:
    """Only files without a CloudFormation token can be shipped in an asset built at synth."""
    written, shipped = delivery.split_files(config(health_check_path=TOKEN))
    assert rendering.UNIT_PATH in written and rendering.UNIT_PATH not in shipped


def test_user_data_keeps_boot_envs_keys_without_its_comments() -> None:
    boot_env = delivery.split_files(config())[0][rendering.BOOT_ENV_PATH]
    assert not any(line.startswith("#") for line in boot_env.splitlines())
    template_keys = [
        line.split("=", 1)[0]
        for line in rendering._resource("boot.env.tmpl").splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert list(delivery.parse_env(boot_env)) == template_keys


def test_the_fetch_and_run_keeps_its_heredocs_and_parses() -> None:
    script = "#!/bin/bash\n# a comment\nf() {\n  # indented\n  cat <<EOF\n# kept\nEOF\n}\n"
    assert delivery.strip_comments(script) == "#!/bin/bash\nf() {\n  cat <<EOF\n# kept\nEOF\n}\n"
    text = delivery.render_user_data(config())
    assert subprocess.run(["bash", "-n"], input=text, text=True, check=False).returncode == 0


def test_parse_env_skips_comments_and_unquotes() -> None:
    assert delivery.parse_env('# c\nA=1\n\nB="x y"\nC=\n') == {"A": "1", "B": "x y", "C": ""}


def _worst_case(environment: tuple[tuple[str, str], ...] = ()) -> rendering.InstanceConfig:
    """Every feature at its largest, every deploy-time value a token (counted at 128 bytes)."""
    secrets = tuple(
        SecretRef(f"SECRET_NUMBER_{i:02}", "secretsmanager", TOKEN, "field_name_of_the_value")
        for i in range(delivery.BUDGET_SECRETS)
    )
    return config(
        None,
        app_asset_url=f"s3://{TOKEN}/{'a' * 68}.zip",
        wheelhouse_url=f"s3://{TOKEN}/{'w' * 68}.zip",
        instance_files_url=f"s3://{TOKEN}/{'i' * 68}.tgz",
        forwarded_allow_ips=TOKEN,
        cfn_stack=TOKEN,
        cfn_resource="AutoScalingGroupASG0123ABCD",
        cfn_region=TOKEN,
        target_group_arn=TOKEN,
        aws_region=TOKEN,
        log_group_name=TOKEN,
        extra_pip_packages=max(timeouts.KEEPALIVE_WORKER_CLASSES.values(), key=" ".join.__call__),
        build_from_source=tuple(f"package-{i}" for i in range(10)),
        secrets=secrets,
        pre_start_command="x" * 1024,
        environment=environment,
    )


def test_environment_has_its_budget_with_every_other_feature_at_its_largest() -> None:
    """docs/your-app.md states the budget: 10 KB of environment always fits EC2's 16 KB."""
    without = delivery.user_data_size_estimate(delivery.render_user_data(_worst_case()))
    assert without + delivery.ENVIRONMENT_BUDGET <= delivery.USER_DATA_LIMIT, without
    assert delivery.ENVIRONMENT_BUDGET == 10 * 1024


def test_ten_values_of_1000_characters_fit_with_every_feature() -> None:
    environment = tuple((f"LONG_VALUE_{i}", chr(ord("a") + i) * 1000) for i in range(10))
    cfg = _worst_case(environment)
    assert delivery.environment_size(cfg) <= delivery.ENVIRONMENT_BUDGET
    assert delivery.check_size(cfg, delivery.render_user_data(cfg)) == []


def test_fails_when_the_environment_is_over_its_budget() -> None:
    environment = tuple((f"LONG_VALUE_{i}", "v" * 4000) for i in range(4))
    cfg = _worst_case(environment)
    (problem,) = delivery.check_size(cfg, delivery.render_user_data(cfg))
    assert re.search(
        r"the user data would be about \d+ bytes, over EC2's limit of 16384: environment takes "
        r"about 16\d\d\d bytes of it \(its budget is 10240 bytes",
        problem,
    )


@pytest.mark.parametrize("value", [TOKEN, "x" * 100])
def test_environment_size_counts_tokens_as_128_bytes(value: str) -> None:
    size = delivery.environment_size(config(environment=(("NAME", value),)))
    assert size == len("NAME=''\n") + (128 if value == TOKEN else 100)
