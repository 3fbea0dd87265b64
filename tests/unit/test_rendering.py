"""Rendering of the instance files, and the `render` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gunicorn_alb import delivery, rendering
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
    return delivery.parse_env(text)


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
    # The VPC's CIDR (a token in a stack) is in boot.env, so the config ships in the asset.
    assert "10.0.0.0/16" not in text
    assert delivery.parse_env(rendering.render_boot_env(config()))["FORWARDED_ALLOW_IPS"] == (
        "10.0.0.0/16"
    )


def test_unit_runs_gunicorn_unprivileged_and_restarts() -> None:
    text = rendering.render_unit(config(wsgi_app="mysite.wsgi:application"))
    assert "User=gunicorn-app" in text
    assert "Restart=always" in text
    assert "EnvironmentFile=/etc/gunicorn-alb/coupling.env" in text
    assert text.count("mysite.wsgi:application") == 2
    assert "ExecReload=/usr/bin/kill -s HUP $MAINPID" in text


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
    assert (tmp_path / "gunicorn-alb-boot").read_text() == rendering.boot_script()
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


TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def test_a_target_group_brings_the_coupling_agent_and_its_timer() -> None:
    files = rendering.render_files(config(target_group_arn=TG, aws_region="us-east-1"))
    assert files[rendering.COUPLING_AGENT_PATH] == rendering.coupling_agent()
    assert (
        "ExecStart=/usr/local/sbin/gunicorn-alb-coupling /etc/gunicorn-alb/boot.env"
        in (files[rendering.COUPLING_SERVICE_PATH])
    )
    values = env(files[rendering.BOOT_ENV_PATH])
    assert (values["TARGET_GROUP_ARN"], values["AWS_REGION"]) == (TG, "us-east-1")


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


def test_only_the_chosen_worker_class_module_ships_as_written() -> None:
    """The instance gets the worker subclass module of its worker class only, byte for byte as the
    package ships it (the InstanceFiles asset has room for comments and docstrings)."""
    files = rendering.render_files(config())
    assert [path for path in files if "gunicorn_alb_" in path] == [
        "/etc/gunicorn-alb/gunicorn_alb_gthread.py"
    ]
    assert files["/etc/gunicorn-alb/gunicorn_alb_gthread.py"] == rendering._resource(
        "gunicorn_alb_gthread.py"
    )
