"""Rendering of the instance files, and the `render` command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gunicorn_alb import rendering
from gunicorn_alb.__main__ import main
from gunicorn_alb.timeouts import derive_timeouts


def config(idle: int | None = 60, **overrides: object) -> rendering.InstanceConfig:
    values: dict[str, object] = {
        "timeouts": derive_timeouts(idle),
        "idle_timeout": str(idle) if idle is not None else "${Token[TOKEN.42]}",
        "app_port": 8000,
        "health_check_path": "/healthz",
        "wsgi_app": "app:application",
        "app_asset_url": "s3://bucket/key.zip",
        "app_requirements": "requirements.txt",
        "worker_class": "gthread",
        "threads": 4,
        "workers_per_cpu": 2,
        "forwarded_allow_ips": "10.0.0.0/16",
    }
    values.update(overrides)
    return rendering.InstanceConfig(**values)  # type: ignore[arg-type]


def env(text: str) -> dict[str, str]:
    return rendering.parse_env(text)


def test_boot_env_carries_the_inputs_and_the_synth_time_derivation() -> None:
    values = env(rendering.render_boot_env(config(120)))
    assert values["IDLE_TIMEOUT_SECONDS"] == "120"
    assert values["KEEPALIVE_MARGIN_SECONDS"] == "5"
    assert values["SYNTH_KEEPALIVE_SECONDS"] == "125"
    assert values["DEREGISTRATION_DELAY_SECONDS"] == "120"
    assert values["GUNICORN_VERSION"] == rendering.GUNICORN_VERSION
    assert values["PYTHON"] == "python3.12"
    assert values["GRACEFUL_TIMEOUT_SECONDS"] == ""


def test_boot_env_in_parameter_mode_leaves_the_derivation_to_the_instance() -> None:
    values = env(rendering.render_boot_env(config(None)))
    assert values["IDLE_TIMEOUT_SECONDS"] == "${Token[TOKEN.42]}"
    assert values["SYNTH_KEEPALIVE_SECONDS"] == ""
    assert values["DEREGISTRATION_DELAY_SECONDS"] == "3600"


def test_fails_when_a_value_is_unsafe_for_the_env_file() -> None:
    with pytest.raises(ValueError, match=r"wsgi_app 'app:application; rm -rf /' has characters"):
        rendering.render_boot_env(config(wsgi_app="app:application; rm -rf /"))


def test_gunicorn_conf_has_the_worker_settings_and_reads_the_coupled_values() -> None:
    text = rendering.render_gunicorn_conf(config(threads=8))
    assert 'worker_class = "gunicorn_alb_gthread.GthreadWorker"' in text
    assert "threads = 8" in text
    assert 'keepalive = _coupled["GUNICORN_ALB_KEEPALIVE"]' in text
    # Read from the coupling file at every (re)load: the environment does not change on HUP.
    assert '"/etc/gunicorn-alb/coupling.env"' in text
    assert 'bind = "0.0.0.0:8000"' in text
    assert "forwarded_allow_ips = _forwarded_allow_ips()" in text
    # The VPC's CIDR (a token in a stack) is in boot.env, so the config travels compressed.
    assert "10.0.0.0/16" not in text
    assert rendering.parse_env(rendering.render_boot_env(config()))["FORWARDED_ALLOW_IPS"] == (
        "10.0.0.0/16"
    )


def test_unit_runs_gunicorn_unprivileged_and_restarts() -> None:
    text = rendering.render_unit(config(wsgi_app="mysite.wsgi:application"))
    assert "User=gunicorn-app" in text
    assert "Restart=always" in text
    assert "EnvironmentFile=/etc/gunicorn-alb/coupling.env" in text
    assert text.count("mysite.wsgi:application") == 2
    assert "ExecReload=/usr/bin/kill -s HUP $MAINPID" in text


def test_user_data_writes_every_file_then_runs_the_boot_script() -> None:
    text = rendering.render_user_data(config())
    assert text.startswith("#!/bin/bash\n")
    written = re.findall(r"^cat > (\S+) <<'GUNICORN_ALB_EOF'$", text, re.M)
    (packed,) = re.findall(r"^# A gzip-compressed tar of (.+)$", text, re.M)
    files = rendering.render_files(config())
    assert sorted([*written, *packed.split(", ")]) == sorted(files)
    for path, content in files.items():
        assert rendering.written_file(text, path) == content.rstrip("\n"), path
    assert text.rstrip().endswith(
        "exec /usr/local/sbin/gunicorn-alb-boot /etc/gunicorn-alb/boot.env"
    )
    assert rendering.written_file(text, rendering.BOOT_SCRIPT_PATH) == (
        rendering.strip_comments(rendering.boot_script()).rstrip("\n")
    )


def test_user_data_stays_within_ec2s_16_kb_with_the_agent() -> None:
    """EC2: "User data is limited to 16 KB, in raw form, before it is base64-encoded" (EC2 user
    guide, "Work with instance user data"). The static scripts travel gzip-compressed; the
    CloudFormation tokens a stack puts in are counted at 100 characters each."""
    text = rendering.render_user_data(
        config(
            target_group_arn="T" * 100,
            app_asset_url="s3://" + "A" * 100,
            wheelhouse_url="s3://" + "W" * 100,
        )
    )
    assert rendering.written_file(text, rendering.COUPLING_AGENT_PATH) == (
        rendering.strip_comments(rendering.coupling_agent()).rstrip("\n")
    )
    assert "# gunicorn-alb coupling agent" not in text  # compressed
    assert len(text.encode()) <= rendering.USER_DATA_LIMIT - 1024, len(text.encode())


def test_render_command_writes_the_files_an_instance_receives(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["render", "--idle-timeout", "120", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "app.env",
        "boot.env",
        "gunicorn-alb-boot",
        "gunicorn-app.service",
        "gunicorn.conf.py",
        "gunicorn_alb_gthread.py",
        "logrotate.d-gunicorn-app",
        "user-data.sh",
    ]
    assert "SYNTH_KEEPALIVE_SECONDS=125" in (tmp_path / "boot.env").read_text()
    assert (tmp_path / "gunicorn-alb-boot").read_text() == rendering.strip_comments(
        rendering.boot_script()
    )
    out = capsys.readouterr().out
    assert re.search(r"Gunicorn keepalive\s+125 s", out)


def test_render_command_rejects_bad_input(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["render", "--idle-timeout", "5000", "--out", str(tmp_path)]) == 2
    assert "idle_timeout must be between 1 and 4000 seconds, got 5000" in capsys.readouterr().err
    assert main(["render", "--worker-class", "sync", "--out", str(tmp_path)]) == 2
    assert "got 'sync'" in capsys.readouterr().err


def test_the_tested_gunicorn_is_the_one_instances_install(root: Path) -> None:
    import gunicorn

    assert gunicorn.__version__ == rendering.GUNICORN_VERSION
    assert f"gunicorn=={rendering.GUNICORN_VERSION}" in (root / "requirements-dev.txt").read_text()


def test_each_written_file_reads_back_from_the_user_data() -> None:
    """written_file() is render_user_data()'s inverse (the doctor and the boot check use it)."""
    text = rendering.render_user_data(config())
    for path, content in rendering.render_files(config()).items():
        assert rendering.written_file(text, path) == content.rstrip("\n")
    assert rendering.written_file(text, "/etc/nothing") is None


def test_parse_env_skips_comments_and_unquotes() -> None:
    assert rendering.parse_env('# c\nA=1\n\nB="x y"\nC=\n') == {"A": "1", "B": "x y", "C": ""}


TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def test_a_target_group_brings_the_coupling_agent_and_its_timer() -> None:
    files = rendering.render_files(config(target_group_arn=TG, aws_region="us-east-1"))
    assert files[rendering.COUPLING_AGENT_PATH] == rendering.strip_comments(
        rendering.coupling_agent()
    )
    assert (
        "ExecStart=/usr/local/sbin/gunicorn-alb-coupling /etc/gunicorn-alb/boot.env"
        in (files[rendering.COUPLING_SERVICE_PATH])
    )
    values = env(files[rendering.BOOT_ENV_PATH])
    assert (values["TARGET_GROUP_ARN"], values["AWS_REGION"]) == (TG, "us-east-1")
    user_data = rendering.render_user_data(config(target_group_arn=TG, aws_region="us-east-1"))
    assert f"chmod 0755 {rendering.BOOT_SCRIPT_PATH} {rendering.COUPLING_AGENT_PATH}" in user_data
    for path, content in files.items():
        assert rendering.written_file(user_data, path) == content.rstrip("\n"), path


def test_without_a_target_group_there_is_no_agent() -> None:
    files = rendering.render_files(config())
    assert rendering.COUPLING_AGENT_PATH not in files
    assert env(files[rendering.BOOT_ENV_PATH])["TARGET_GROUP_ARN"] == ""


def _seconds(value: str) -> int:
    assert value.endswith("s"), value
    return int(value[:-1])


def test_the_agents_timer_starts_it_at_most_30_seconds_apart() -> None:
    """OnUnitActiveSec= (from one start to the next) + RandomizedDelaySec= + AccuracySec=."""
    timer = rendering.render_files(config(target_group_arn=TG))[rendering.COUPLING_TIMER_PATH]
    settings = dict(
        line.split("=", 1) for line in timer.splitlines() if "=" in line and line[0] != "#"
    )
    period = sum(
        _seconds(settings[key]) for key in ("OnUnitActiveSec", "RandomizedDelaySec", "AccuracySec")
    )
    assert period <= rendering.COUPLING_PERIOD_MAX_SECONDS == 30
    assert settings["Unit"] == "gunicorn-alb-coupling.service"


def test_packed_scripts_lose_their_comments_but_not_their_heredocs() -> None:
    script = "#!/bin/bash\n# a comment\nf() {\n  # indented\n  cat <<EOF\n# kept\nEOF\n}\n"
    assert rendering.strip_comments(script) == "#!/bin/bash\nf() {\n  cat <<EOF\n# kept\nEOF\n}\n"
    stripped = rendering.strip_comments(rendering.boot_script())
    assert subprocess.run(["bash", "-n"], input=stripped, text=True, check=False).returncode == 0


def test_comment_lines_go_and_the_python_stays_the_same() -> None:
    """boot.env and gunicorn.conf.py travel without their comment lines (EC2's 16 KB): the conf
    compiles to the very same code as the commented template, and boot.env keeps every key."""
    import ast

    cfg = config()
    values = {
        "app_port": 8000,
        "worker_class": "gthread",
        "worker_subclass": "gunicorn_alb_gthread.GthreadWorker",
        "threads": 4,
        "workers_per_cpu": 2,
        "max_requests": 0,
        "max_requests_jitter": 0,
        "access_log_format": repr("%(h)s"),
    }
    commented = rendering._render("gunicorn.conf.py.tmpl", values)
    stripped = rendering._without_comment_lines(commented)
    assert "#" in commented and not any(
        line.lstrip().startswith("#") for line in stripped.splitlines()
    )
    assert ast.dump(ast.parse(stripped)) == ast.dump(ast.parse(commented))
    boot_env = rendering.render_boot_env(cfg)
    template_keys = [
        line.split("=", 1)[0]
        for line in rendering._resource("boot.env.tmpl").splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert list(rendering.parse_env(boot_env)) == template_keys


def test_the_worker_classes_travel_without_comments_and_docstrings_but_the_same_code() -> None:
    import ast

    source = rendering._resource("gunicorn_alb_gthread.py")
    files = rendering.render_files(config())
    shipped = files["/etc/gunicorn-alb/gunicorn_alb_gthread.py"]
    # Only the module of the worker class the instance runs.
    assert [path for path in files if "gunicorn_alb_" in path] == [
        "/etc/gunicorn-alb/gunicorn_alb_gthread.py"
    ]
    assert len(shipped) < 0.6 * len(source)
    assert '"""' not in shipped and "# " not in shipped

    def code(text: str) -> list[str]:
        tree = ast.parse(text)
        return sorted(ast.dump(n) for n in ast.walk(tree) if isinstance(n, ast.Call))

    assert code(shipped) == code(source)
    assert "/etc/gunicorn-alb/gunicorn_alb_gthread.py" in rendering.PACKED_PATHS
