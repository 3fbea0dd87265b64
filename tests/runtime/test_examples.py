"""The examples served by real Gunicorn from the rendered config, as on an instance: the files
of ``python -m gunicorn_alb render`` with each example's settings, the coupling environment the
real boot script derives, the app's environment file, and (Django) the release step run from the
rendered ``pre-start.env`` before Gunicorn starts."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gunicorn_alb import delivery, rendering
from tools import instance_files

pytestmark = pytest.mark.runtime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IDLE, MARGIN = 10, 5
ALB_HOST = "gunicorn-alb-1234567890.eu-west-1.elb.amazonaws.com"
INSTANCE_HOST = "10.0.2.17:8000"  # what the ALB's health check sends as Host
SECRET_KEY = "test-only-secret-key-not-a-real-one-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, host: str) -> tuple[int, bytes, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        connection.close()


def _render(out: Path, *options: str) -> dict[str, str]:
    """The rendered files, and the environment systemd would give the app (app.env, the
    secrets' values, coupling.env)."""
    instance_files.render(out, IDLE, MARGIN, options)
    env = delivery.parse_env((out / "app.env").read_text())
    env |= instance_files.boot_environment(out, out / "root")
    return env


def _serve(conf: Path, app_dir: Path, target: str, env: dict[str, str], log: Path) -> Iterator[int]:
    port = _free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(conf), "--bind",
             f"127.0.0.1:{port}", "--workers", "1", "--chdir", str(app_dir), target],
            env={**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/healthz", INSTANCE_HOST)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Gunicorn did not serve {target}:\n{log.read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()  # nothing is in flight: a graceful stop is quick
        try:
            process.wait(timeout=IDLE + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def django(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The Django example: release step (collectstatic) as the prestart unit runs it, then
    Gunicorn (gthread) with the rendered config."""
    out = tmp_path_factory.mktemp("django")
    env = _render(
        out,
        "--wsgi-app", "mysite.wsgi:application",
        "--env", "DJANGO_SETTINGS_MODULE=mysite.settings",
        "--env", "DJANGO_ALLOWED_HOSTS=.elb.amazonaws.com",
        "--pre-start-command", "python manage.py collectstatic --noinput",
    )  # fmt: skip
    state = out / "state"  # systemd's StateDirectory=gunicorn-app
    env |= {
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "GREETING": "Hello",
        "STATE_DIRECTORY": str(state),
        "HEALTH_CHECK_PATH": "/healthz",
    }
    release = delivery.parse_env((out / "pre-start.env").read_text())
    app_dir = EXAMPLES / "django/app"
    result = subprocess.run(
        ["/bin/bash", "-c", release["GUNICORN_ALB_PRE_START"]],
        cwd=app_dir,
        env={**os.environ, **env, **release, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
             "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (state / "static/example/site.css").is_file(), "collectstatic wrote nothing"
    yield from ((port, state) for port in _serve(
        out / "gunicorn.conf.py", app_dir, "mysite.wsgi:application", env, out / "gunicorn.log"
    ))  # fmt: skip


def test_django_answers_the_health_check_sent_with_the_instance_address(django) -> None:  # type: ignore[no-untyped-def]
    assert _get(django[0], "/healthz", INSTANCE_HOST)[:2] == (200, b"ok\n")


def test_django_serves_its_page_and_the_collected_static_files(django) -> None:  # type: ignore[no-untyped-def]
    status, body, _ = _get(django[0], "/", ALB_HOST)
    assert status == 200, body
    assert b"Hello from Django behind an Application Load Balancer" in body
    status, body, content_type = _get(django[0], "/static/example/site.css", ALB_HOST)
    assert (status, content_type.split(";")[0]) == (200, "text/css")
    assert body == (django[1] / "static/example/site.css").read_bytes()


def test_django_refuses_hosts_outside_allowed_hosts(django) -> None:  # type: ignore[no-untyped-def]
    assert _get(django[0], "/", "attacker.example")[0] == 400


@pytest.fixture(scope="module", params=["uvicorn_worker.UvicornWorker"])
def fastapi(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """The FastAPI example from its factory, under the worker its stack configures (the proof
    serves Gunicorn's own asgi worker)."""
    worker = request.param
    out = tmp_path_factory.mktemp("fastapi")
    env = _render(
        out, "--worker-class", worker, "--wsgi-app", "main:create_app()", "--env", "APP_STAGE=test"
    )
    conf = (out / "gunicorn.conf.py").read_text()
    subclass = rendering.WORKER_SUBCLASSES[worker]
    assert f'worker_class = "{subclass}"' in conf and "threads = 1" in conf
    yield from _serve(
        out / "gunicorn.conf.py", EXAMPLES / "fastapi/app", "main:create_app()",
        {**env, "HEALTH_CHECK_PATH": "/healthz"}, out / "gunicorn.log",
    )  # fmt: skip


def test_fastapi_answers_the_health_path_and_its_page(fastapi: int) -> None:
    assert _get(fastapi, "/healthz", INSTANCE_HOST)[:2] == (200, b"ok\n")
    status, body, _ = _get(fastapi, "/", ALB_HOST)
    assert status == 200
    assert json.loads(body) == {
        "message": "Hello from FastAPI behind an Application Load Balancer",
        "stage": "test",
    }
