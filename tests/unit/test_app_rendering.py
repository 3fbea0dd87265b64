"""Rendering of the app's environment, secrets list, release step and factory targets."""

from __future__ import annotations

import pytest

from gunicorn_alb import delivery, rendering
from tests.unit.test_rendering import config

SECRETS = (
    rendering.SecretRef("SECRET_KEY", "ssm", "arn:aws:ssm:eu-west-1:123456789012:parameter/k"),
    rendering.SecretRef(
        "DB_PASSWORD", "secretsmanager", "arn:aws:secretsmanager:eu-west-1:1:secret:db", "password"
    ),
)


def test_app_env_quotes_each_value_for_systemd() -> None:
    text = rendering.render_app_env(
        config(environment=(("DJANGO_SETTINGS_MODULE", "mysite.settings"), ("Q", "it's")))
    )
    lines = text.splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == ["DJANGO_SETTINGS_MODULE='mysite.settings'", 'Q="it\'s"']


def test_secrets_list_holds_names_and_arns_only() -> None:
    text = rendering.render_secrets_list(config(secrets=SECRETS))
    assert text.splitlines()[1:] == [
        "SECRET_KEY ssm arn:aws:ssm:eu-west-1:123456789012:parameter/k",
        "DB_PASSWORD secretsmanager arn:aws:secretsmanager:eu-west-1:1:secret:db password",
    ]


def test_files_without_secrets_or_release_step() -> None:
    files = rendering.render_files(config())
    assert rendering.APP_ENV_PATH in files
    assert rendering.SECRETS_LIST_PATH not in files
    assert rendering.PRE_START_UNIT_PATH not in files


def test_release_step_unit_shares_the_hardening_and_environment_of_the_app() -> None:
    cfg = config(pre_start_command="python manage.py collectstatic --noinput")
    files = rendering.render_files(cfg)
    unit = files[rendering.PRE_START_UNIT_PATH]
    app_unit = files[rendering.UNIT_PATH]
    hardening = app_unit[app_unit.index("# Hardening") : app_unit.index("[Install]")].strip()
    assert hardening in unit
    for line in (
        "Type=oneshot",
        "User=gunicorn-app",
        "EnvironmentFile=/etc/gunicorn-alb/app.env",
        "EnvironmentFile=/etc/gunicorn-alb/secrets.env",
        "EnvironmentFile=/etc/gunicorn-alb/pre-start.env",
        "ExecStart=/bin/bash -c ${GUNICORN_ALB_PRE_START}",
    ):
        assert line in unit.splitlines(), line
    assert "[Install]" not in unit
    assert delivery.parse_env(files[rendering.PRE_START_ENV_PATH]) == {
        "GUNICORN_ALB_PRE_START": "python manage.py collectstatic --noinput"
    }


def test_a_factory_target_is_quoted_in_boot_env_and_the_unit() -> None:
    target = 'main:create_app(debug=True, name="x y")'
    cfg = config(wsgi_app=target)
    assert delivery.parse_env(rendering.render_boot_env(cfg))["WSGI_APP"] == target
    unit = rendering.render_unit(cfg)
    assert (
        "ExecStart=/opt/gunicorn-alb/venv/bin/gunicorn --config /etc/gunicorn-alb/gunicorn.conf.py "
        '"main:create_app(debug=True, name=\\"x y\\")"'
    ) in unit.splitlines()


def test_fails_when_boot_env_would_get_an_unsafe_target() -> None:
    with pytest.raises(ValueError, match=r"wsgi_app \"app:x\('a'\)\" has characters"):
        rendering.render_boot_env(config(wsgi_app="app:x('a')"))


def test_user_data_stays_within_ec2s_16_kb_with_every_file() -> None:
    """The worst case: secrets, the release step, the coupling agent, the CloudWatch agent's
    configuration and logrotate's file at once."""
    cfg = config(
        secrets=SECRETS,
        environment=(("A", "b"),),
        pre_start_command="python manage.py collectstatic --noinput",
        target_group_arn="arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/0123",
        aws_region="us-east-1",
        log_group_name="${Token[TOKEN.1]}",
    )
    files = rendering.render_files(cfg)
    assert {"/etc/gunicorn-alb/cloudwatch-agent.json", "/etc/logrotate.d/gunicorn-app"} <= set(
        files
    )
    size = delivery.user_data_size_estimate(delivery.render_user_data(cfg))
    assert size <= delivery.USER_DATA_LIMIT - 1024, f"{size} bytes leave no room to grow"
