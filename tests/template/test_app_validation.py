"""Bad app configuration fails at synth, each problem naming the argument, the value and what
is allowed, all in one ValueError."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ssm as ssm

from gunicorn_alb import ApplicationLoadBalancedGunicornService, Secret, app_validation
from tests.template.test_validation import build, fails


def test_fails_when_environment_names_are_invalid_or_reserved() -> None:
    fails(
        r"environment names must be environment variable names .*got 'NOT-VALID'(.|\n)*"
        r"environment must not set 'GUNICORN_CMD_ARGS': it starts with GUNICORN_",
        environment={"NOT-VALID": "x", "GUNICORN_CMD_ARGS": "--keep-alive 1"},
    )


def test_fails_when_a_secret_is_not_a_secret() -> None:
    fails(
        re.escape(
            "secrets['SECRET_KEY'] must be a gunicorn_alb.Secret (Secret.from_ssm_parameter or "
            "Secret.from_secrets_manager), got 'plain-text'"
        ),
        secrets={"SECRET_KEY": "plain-text"},
    )


def test_fails_when_a_worker_ignores_keepalive_naming_why() -> None:
    fails(
        r"got 'uvicorn.workers.UvicornWorker': uvicorn deprecated its bundled worker",
        worker_class="uvicorn.workers.UvicornWorker",
    )


def test_fails_when_wsgi_app_is_not_a_gunicorn_target() -> None:
    fails(
        r"wsgi_app must be a Gunicorn app target: .*got 'app:create_app\(\);id'",
        wsgi_app="app:create_app();id",
    )


def test_fails_when_pre_start_command_has_a_newline() -> None:
    fails(
        r"pre_start_command must be one line of bash .*got 'migrate\\nrm -rf /'",
        pre_start_command="migrate\nrm -rf /",
    )


def test_every_app_problem_is_reported_together() -> None:
    with pytest.raises(ValueError) as caught:
        stack = cdk.Stack(cdk.App(), "Bad")
        from aws_cdk import aws_ec2 as ec2

        ApplicationLoadBalancedGunicornService(
            stack,
            "Service",
            vpc=ec2.Vpc(stack, "Vpc"),
            environment={"HOME": "/root"},
            secrets={
                "HOME2": Secret.from_ssm_parameter(
                    ssm.StringParameter.from_string_parameter_name(stack, "P", "/p")
                )
            },
            worker_class="asgi",
            threads=4,
            pre_start_command="",
        )
    problems = [line for line in str(caught.value).splitlines() if line.startswith("- ")]
    assert len(problems) == 3, problems
    assert any("environment must not set 'HOME'" in p for p in problems)
    assert any("threads must be 1 for the asgi worker, got 4" in p for p in problems)
    assert any("pre_start_command must be one line of bash" in p for p in problems)


FLASK_APP = "from flask import Flask\n\napp = Flask(__name__)\n"


def test_fails_when_wsgi_app_names_what_the_module_does_not_define(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    fails(
        re.escape(
            "wsgi_app 'app:application': app.py defines no 'application'; it defines 'app' "
            "(a Flask app?): wsgi_app='app:app'"
        ),
        app_directory=str(tmp_path),
    )


def test_the_app_target_check_accepts_the_name_the_module_defines(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    problems: list[str] = []
    advisories = app_validation.check_target_defined(problems, tmp_path, "app:app")
    assert (problems, advisories) == ([], [])


def test_an_app_target_a_static_read_cannot_check_draws_a_warning(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from wsgi import *\n")
    service = build(app_directory=str(tmp_path))
    warnings = assertions.Annotations.from_stack(cdk.Stack.of(service)).find_warning(
        "*", assertions.Match.string_like_regexp("gunicorn-alb:app-target-unchecked")
    )
    assert len(warnings) == 1
    assert "it does 'from wsgi import *'" in str(warnings[0].entry.data)


def test_fails_naming_the_network_when_no_index_is_reachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer offline (PIP_RETRIES=0, an index nobody answers, an empty cache): the problem
    is the network, not worker_class nor a missing gunicorn wheel. Real pip, refused at once."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip"))
    monkeypatch.setenv("GUNICORN_ALB_WHEELHOUSE_CACHE", str(tmp_path / "wheelhouse"))
    for variable in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    props = SimpleNamespace(worker_class="gthread", build_from_source=())
    found, problems = app_validation.resolve_wheelhouse(props, "x86_64", None)  # type: ignore[arg-type]
    assert found is None
    (problem,) = problems
    assert problem.startswith("wheelhouse: could not reach the package index (network)"), problem
    assert "worker_class" not in problem and "has no wheel" not in problem
    assert "Could not fetch URL http://127.0.0.1:9/simple/gunicorn/: connection error" in problem
