"""The app's configuration checks (environment, secret names, Gunicorn targets, the release
step) and the ASGI workers of the timeout model. No CDK."""

from __future__ import annotations

import ast
import re

import pytest

from gunicorn_alb import app_config, timeouts


def no_token(_: object) -> bool:
    return False


def test_valid_environment_passes() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "mysite.settings", "_X1": "a b 'c' \"d\" $e %f"}
    assert app_config.check_environment(env, no_token) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1ABC", "environment names must be environment variable names"),
        ("A-B", "environment names must be environment variable names"),
        (
            "GUNICORN_ALB_KEEPALIVE",
            "must not set 'GUNICORN_ALB_KEEPALIVE': it starts with GUNICORN_",
        ),
        ("GUNICORN_CMD_ARGS", "must not set 'GUNICORN_CMD_ARGS': it starts with GUNICORN_"),
        ("NOTIFY_SOCKET", "must not set 'NOTIFY_SOCKET': the unit or systemd sets it"),
        ("HEALTH_CHECK_PATH", "must not set 'HEALTH_CHECK_PATH': the unit or systemd sets it"),
    ],
)
def test_fails_when_an_environment_name_is_invalid_or_reserved(name: str, message: str) -> None:
    (problem,) = app_config.check_environment({name: "x"}, no_token)
    assert message in problem


def test_fails_when_an_environment_value_has_a_newline() -> None:
    (problem,) = app_config.check_environment({"A": "x\ny"}, no_token)
    assert problem == (
        "environment['A'] must be one line without NUL (pass multi-line values through "
        "secrets), got 'x\\ny'"
    )


def test_environment_values_may_be_tokens() -> None:
    assert app_config.check_environment({"HOST": "${Token[X.1]}"}, lambda v: True) == []


def test_fails_when_a_secret_is_also_in_the_environment() -> None:
    problems = app_config.check_secret_names(["SECRET_KEY", "GUNICORN_X"], {"SECRET_KEY": "x"})
    assert problems == [
        "secrets must not set 'GUNICORN_X': it starts with GUNICORN_, which the construct and "
        "Gunicorn reserve",
        "secrets and environment both set 'SECRET_KEY': give each variable in one of them",
    ]


def test_fails_when_a_secret_field_is_not_a_plain_key() -> None:
    assert app_config.check_secret_field("DB", "password") == []
    (problem,) = app_config.check_secret_field("DB", "pass word")
    assert problem.startswith("secrets['DB'] field must be a JSON key")


@pytest.mark.parametrize(
    "target",
    [
        "app:application",
        "app",
        "mysite.wsgi:application",
        "main:create_app()",
        'main:create_app("production")',
        'main:create_app(debug=False, workers=-2, ratio=0.5, name="a b/c@d+e=f", x=None)',
    ],
)
def test_gunicorn_targets_pass(target: str) -> None:
    assert app_config.check_app_target("wsgi_app", target) == []


@pytest.mark.parametrize(
    "target",
    [
        "app:application; rm -rf /",
        "app:create_app($(id))",
        "app:create_app('x')",  # single quotes would break boot.env's quoting
        "app:os.system('id')",
        'app:getattr(app, "x")',  # a name is not a literal
        "app:create_app(**opts)",
        "app:create_app()()",
        "app:create_app([1])",
        'app:create_app(f"{x}")',
        "app:a.b",
        "1app:application",
        "app:",
        "",
        'app:create_app("x\\n")',
    ],
)
def test_fails_when_wsgi_app_is_not_a_safe_gunicorn_target(target: str) -> None:
    (problem,) = app_config.check_app_target("wsgi_app", target)
    assert problem.startswith("wsgi_app must be a Gunicorn app target: module:name, or a factory")
    assert f"got {target!r}" in problem


def test_accepted_targets_are_what_gunicorn_parses() -> None:
    """Gunicorn's own parser (gunicorn.util.import_app) reads the same name and arguments."""
    obj = 'create_app(debug=False, workers=-2, name="a b")'
    expression = ast.parse(obj, mode="eval").body
    assert isinstance(expression, ast.Call)
    assert [ast.literal_eval(k.value) for k in expression.keywords] == [False, -2, "a b"]


def test_pre_start_command_rules() -> None:
    ok = "python manage.py collectstatic --noinput && echo 'done' | tee /dev/null"
    assert app_config.check_pre_start_command(ok, no_token) == []
    assert app_config.check_pre_start_command(None, no_token) == []
    for bad in ("a\nb", "a\rb", "a\0b", "   ", "x" * 1025):
        (problem,) = app_config.check_pre_start_command(bad, no_token)
        assert problem.startswith(
            "pre_start_command must be one line of bash known at synth time (printable "
            "characters, no newline, carriage return or NUL, at most 1024 characters), got "
        )
    (problem,) = app_config.check_pre_start_command("${Token[A.1]}", lambda v: True)
    assert problem.endswith("got a CloudFormation token")


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("plain", "A='plain'"),
        ('a "b" $c `d` \\e', "A='a \"b\" $c `d` \\e'"),
        ('it\'s $x "q" \\', 'A="it\'s \\$x \\"q\\" \\\\"'),
    ],
)
def test_env_assignment_quotes_for_systemd(value: str, line: str) -> None:
    assert app_config.env_assignment("A", value) == line


# --- ASGI workers in the timeout model ---------------------------------------------------------


def test_asgi_workers_pass_with_one_thread() -> None:
    assert timeouts.check_worker("asgi", 1) == []
    assert timeouts.check_worker("uvicorn_worker.UvicornWorker", 1) == []
    assert timeouts.default_threads("asgi") == 1
    assert timeouts.default_threads("gthread") == 4


def test_fails_when_an_asgi_worker_gets_threads() -> None:
    (problem,) = timeouts.check_worker("asgi", 4)
    assert problem.startswith("threads must be 1 for the asgi worker, got 4")


@pytest.mark.parametrize(
    ("worker", "why"),
    [
        ("uvicorn.workers.UvicornWorker", "uvicorn deprecated its bundled worker"),
        ("eventlet", "Gunicorn removed the eventlet worker in 26.0"),
    ],
)
def test_fails_when_a_worker_is_refused_naming_why(worker: str, why: str) -> None:
    (problem,) = timeouts.check_worker(worker, 1)
    assert re.match(
        r"worker_class must be one that honours keep-alive \(asgi, gevent, gthread, "
        rf"uvicorn_worker.UvicornWorker\), got '{re.escape(worker)}': {why}",
        problem,
    )


def test_the_uvicorn_worker_requirements_are_what_the_tests_run(root) -> None:  # type: ignore[no-untyped-def]
    """The pins instances install are the pins of requirements-dev.txt."""
    dev = (root / "requirements-dev.txt").read_text().split()
    for requirement in timeouts.KEEPALIVE_WORKER_CLASSES["uvicorn_worker.UvicornWorker"]:
        assert requirement in dev, requirement


def test_the_uvicorn_worker_passes_gunicorns_keepalive() -> None:
    """Read in the installed source, as the model's docstring says."""
    import inspect

    from uvicorn_worker import _workers

    assert '"timeout_keep_alive": self.cfg.keepalive' in inspect.getsource(_workers)
