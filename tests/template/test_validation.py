"""Bad input fails at synth time, naming the argument, the value and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from tests.helpers import new_stack


def build(**props: Any) -> ApplicationLoadBalancedGunicornService:
    stack, vpc = new_stack()
    return ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)


def fails(match: str, **props: Any) -> None:
    with pytest.raises(ValueError, match=match):
        build(**props)


def test_fails_when_idle_timeout_is_above_4000_seconds() -> None:
    fails(
        r"idle_timeout must be between 1 and 4000 seconds, got 5000",
        idle_timeout=cdk.Duration.seconds(5000),
    )


def test_fails_when_idle_timeout_is_not_whole_seconds() -> None:
    fails(
        r"idle_timeout must be a whole number of seconds between 1 and 4000, got 1\.5",
        idle_timeout=cdk.Duration.millis(1500),
    )


def test_fails_when_keepalive_margin_is_below_one_second() -> None:
    fails(
        r"keepalive_margin must be a whole number of seconds at least 1, got 0\.5",
        keepalive_margin=cdk.Duration.millis(500),
    )


def test_fails_when_worker_class_ignores_keepalive() -> None:
    fails(
        r"worker_class must be one that honours keep-alive "
        r"\(asgi, gevent, gthread, uvicorn_worker.UvicornWorker\), got 'sync'",
        worker_class="sync",
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"min_capacity": 3, "max_capacity": 2},
            "min_capacity <= max_capacity, got min_capacity=3, max_capacity=2",
        ),
        (
            {"min_capacity": 2, "desired_capacity": 5, "max_capacity": 4},
            "min_capacity <= desired_capacity <= max_capacity, got min_capacity=2, "
            "desired_capacity=5, max_capacity=4",
        ),
        (
            {"min_capacity": 1, "max_capacity": 1},
            "max_capacity must be a whole number of at least 2, got 1",
        ),
    ],
)
def test_fails_when_capacities_are_out_of_order(props: dict[str, int], message: str) -> None:
    fails(re.escape(message), **props)


def test_capacities_may_be_tokens() -> None:
    stack, vpc = new_stack()
    size = cdk.CfnParameter(stack, "Size", type="Number", default=2)
    ApplicationLoadBalancedGunicornService(
        stack,
        "Service",
        vpc=vpc,
        min_capacity=size.value_as_number,  # type: ignore[arg-type]
    )


def test_fails_when_app_directory_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    fails(
        rf"app_directory must be an existing directory, got '{re.escape(str(missing))}'",
        app_directory=str(missing),
    )


def test_fails_when_app_directory_lacks_the_wsgi_module(tmp_path: Path) -> None:
    (tmp_path / "other.py").write_text("")
    fails(
        r"wsgi_app 'mysite.wsgi:application' names module 'mysite.wsgi', but app_directory "
        r".* has no mysite/wsgi.py",
        app_directory=str(tmp_path),
        wsgi_app="mysite.wsgi:application",
    )


@pytest.mark.parametrize("target", ["app:", "app:application:x", "my-app:application"])
def test_fails_when_wsgi_app_is_not_module_callable(target: str) -> None:
    fails(rf"wsgi_app must be a Gunicorn app target: .*got '{target}'", wsgi_app=target)


def test_fails_when_app_requirements_is_not_in_the_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    fails(
        r"app_requirements 'reqs.txt' is not a file in app_directory",
        app_directory=str(tmp_path),
        app_requirements="reqs.txt",
    )


def test_fails_when_health_check_path_is_not_a_path() -> None:
    fails(r"health_check_path must start with / .*got 'healthz'", health_check_path="healthz")


def test_fails_when_a_port_is_out_of_range() -> None:
    fails(r"app_port must be a port between 1 and 65535, got 70000", app_port=70000)


def test_fails_when_a_duration_other_than_idle_timeout_is_a_token() -> None:
    stack, vpc = new_stack()
    margin = cdk.CfnParameter(stack, "Margin", type="Number", default=5)
    with pytest.raises(ValueError, match="keepalive_margin must be known at synth time"):
        ApplicationLoadBalancedGunicornService(
            stack, "Service", vpc=vpc, keepalive_margin=cdk.Duration.seconds(margin.value_as_number)
        )


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ValueError) as caught:
        build(idle_timeout=cdk.Duration.seconds(0), worker_class="sync", app_port=0)
    message = str(caught.value)
    assert message.count("\n- ") == 3
    for name in ("idle_timeout", "worker_class", "app_port"):
        assert name in message


def test_a_users_app_directory_is_uploaded_with_its_requirements(tmp_path: Path) -> None:
    package = tmp_path / "mysite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "wsgi.py").write_text("def application(environ, start_response): ...\n")
    (tmp_path / "requirements.txt").write_text("flask==3.1.2\n")
    service = build(app_directory=str(tmp_path), wsgi_app="mysite.wsgi:application")
    assert service.instance_config.app_requirements == "requirements.txt"
    assert service.instance_config.wsgi_app == "mysite.wsgi:application"


def test_max_requests_draws_a_warning() -> None:
    service = build(max_requests=1000, max_requests_jitter=50)
    stack = cdk.Stack.of(service)
    from aws_cdk import assertions

    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("max_requests=1000")
    )
    assert len(warnings) == 1
