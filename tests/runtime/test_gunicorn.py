"""The rendered gunicorn.conf.py under real Gunicorn: its effective settings, and the sample app
served with it on loopback."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gunicorn_alb import instance_logs, rendering
from tools import instance_files

pytestmark = pytest.mark.runtime

SAMPLE_APP = Path(rendering.__file__).parent / "sample_app"
IDLE, MARGIN = 10, 5


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The files from the `render` command, and the environment the real boot script derives."""
    out = tmp_path_factory.mktemp("render")
    conf = instance_files.render(out, IDLE, MARGIN)
    return {"conf": conf, "env": instance_files.boot_environment(out, out / "root")}


def _gunicorn_settings(conf: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the config file through Gunicorn's own application and print its effective settings."""
    code = (
        "import json, sys\n"
        "from gunicorn.app.wsgiapp import WSGIApplication\n"
        f"sys.argv = ['gunicorn', '--config', {str(conf)!r}, 'app:application']\n"
        "cfg = WSGIApplication().cfg\n"
        "print(json.dumps({k: str(cfg.settings[k].get()) for k in "
        "('keepalive', 'worker_class', 'threads', 'graceful_timeout', 'workers', "
        "'max_requests', 'control_socket_disable', 'forwarded_allow_ips')}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_gunicorn_reads_the_coupled_keepalive_from_the_rendered_config(rendered) -> None:  # type: ignore[no-untyped-def]
    result = _gunicorn_settings(rendered["conf"], rendered["env"])
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["keepalive"] == str(IDLE + MARGIN)
    assert settings["worker_class"] == "gunicorn_alb_gthread.GthreadWorker"
    assert settings["threads"] == "4"
    assert settings["graceful_timeout"] == str(IDLE + MARGIN)  # graceful-outlasts-idle
    assert int(settings["workers"]) == len(os.sched_getaffinity(0)) * 2 + 1
    assert settings["max_requests"] == "0"
    assert settings["control_socket_disable"] == "True"
    # The VPC's CIDR, from boot.env (where a stack's token is): only the ALB may set X-Forwarded-*.
    assert settings["forwarded_allow_ips"] == "['10.0.0.0/16']"


def test_without_boot_env_gunicorn_trusts_only_loopback(rendered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {**rendered["env"], "GUNICORN_ALB_BOOT_ENV": str(tmp_path / "missing.env")}
    result = _gunicorn_settings(rendered["conf"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    assert "no FORWARDED_ALLOW_IPS in" in result.stderr


def _check_config(conf: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`gunicorn --check-config` on the rendered config, loading the sample app."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "--config", str(conf),
         "--chdir", str(SAMPLE_APP), "app:application"],
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_fails_when_gunicorn_starts_without_the_coupled_values(rendered) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_ALB_")}
    result = _check_config(rendered["conf"], env)
    assert result.returncode != 0
    assert "GUNICORN_ALB_KEEPALIVE and GUNICORN_ALB_GRACEFUL_TIMEOUT are not set" in (
        result.stdout + result.stderr
    )


def test_gunicorn_check_config_accepts_the_rendered_config(rendered) -> None:  # type: ignore[no-untyped-def]
    result = _check_config(rendered["conf"], {**os.environ, **rendered["env"]})
    assert result.returncode == 0, result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def logs_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands for /var/log/gunicorn-app: systemd passes the unit's LogsDirectory= as
    LOGS_DIRECTORY, and the rendered config writes its logs there."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def served(rendered, logs_directory: Path) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """Real Gunicorn with the rendered config serving the sample app on a loopback port."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(rendered["conf"]),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--chdir",
            str(SAMPLE_APP),
            "app:application",
        ],
        env={
            **os.environ,
            **rendered["env"],
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOGS_DIRECTORY": str(logs_directory),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    log = logs_directory / "error.log"
                    stderr += log.read_text() if log.exists() else ""
                    raise AssertionError(f"Gunicorn did not start: {stderr}") from error
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=IDLE + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_sample_app_answers_the_health_path(served: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=5)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"ok\n")
    connection.request("GET", "/")
    assert connection.getresponse().read().startswith(b"Hello from Gunicorn")


def test_gunicorn_keeps_an_idle_connection_open_past_its_default_keepalive(served: int) -> None:
    """Gunicorn's default would close after 2 s; the coupled keep-alive keeps it for 15 s."""
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=5)
    connection.request("GET", "/healthz")
    connection.getresponse().read()
    local_port = connection.sock.getsockname()[1]
    time.sleep(2.5)  # Gunicorn's default keep-alive closes at about 2.003 s
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200
    response.read()
    assert connection.sock.getsockname()[1] == local_port, "the connection was not reused"


def _reused_after(port: int, idle: float) -> bool:
    """Whether a connection left idle for ``idle`` seconds is still the same one afterwards."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        local_port = connection.sock.getsockname()[1]
        time.sleep(idle)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        return bool(connection.sock.getsockname()[1] == local_port)
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_reload_gives_new_workers_the_keepalive_of_the_rewritten_coupling_file(
    rendered, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """What the coupling agent relies on: Gunicorn executes gunicorn.conf.py again on HUP and
    reads the coupling file there (not the unchanged process environment), so new workers run
    the new keep-alive. A reload with the file gone keeps the master up (the unit's values)."""
    coupling = tmp_path / "coupling.env"
    coupling.write_text(
        "GUNICORN_ALB_IDLE_TIMEOUT=0\nGUNICORN_ALB_KEEPALIVE=1\nGUNICORN_ALB_GRACEFUL_TIMEOUT=3\n"
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_ALB_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(rendered["conf"]),
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--chdir", str(SAMPLE_APP),
         "app:application"],
        env={**env, "GUNICORN_ALB_COUPLING_FILE": str(coupling), "PYTHONDONTWRITEBYTECODE": "1",
             "GUNICORN_ALB_KEEPALIVE": "1", "GUNICORN_ALB_GRACEFUL_TIMEOUT": "3"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _workers(process.pid) or not _answers(port):
            assert process.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.1)
        assert not _reused_after(port, 1.6), "keep-alive 1 s kept an idle connection 1.6 s"
        before = _workers(process.pid)
        coupling.write_text(coupling.read_text().replace("KEEPALIVE=1", "KEEPALIVE=4"))
        process.send_signal(signal.SIGHUP)
        while _workers(process.pid) & before or not _workers(process.pid):
            assert process.poll() is None and time.monotonic() < deadline + 30, "no new worker"
            time.sleep(0.1)
        assert _reused_after(port, 1.6), "the new worker did not run keep-alive 4 s"
        coupling.unlink()
        process.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert process.poll() is None, "a reload without the coupling file stopped the master"
        assert _answers(port)
    finally:
        process.terminate()
        process.wait(timeout=30)
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert "cannot read" in stderr and "using the values the unit started with" in stderr


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


def _access_line(log: Path, marker: str) -> str:
    """The access-log line holding ``marker``, once Gunicorn has written it (bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in log.read_text().splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, f"{log} has {len(lines)} lines with {marker}"
            return lines[0]
        time.sleep(0.05)


def test_access_log_carries_the_alb_trace_id_in_the_documented_format(
    served: int, logs_directory: Path
) -> None:
    """A request as the ALB sends it (X-Amzn-Trace-Id, X-Forwarded-For) leaves one line in the
    access log the rendered config names, in ACCESS_LOG_FORMAT, and the parser reads it back."""
    trace_id = "Root=1-67891233-abcdef012345678912345678"
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=5)
    connection.request(
        "GET",
        "/healthz?probe=access-log",
        headers={
            "X-Amzn-Trace-Id": trace_id,
            "X-Forwarded-For": "203.0.113.7",
            "User-Agent": 'curl/8.5 "quoted"',
        },
    )
    response = connection.getresponse()
    body = response.read()
    line = _access_line(logs_directory / "access.log", "probe=access-log")
    parsed = instance_logs.parse_access_line(line)
    assert parsed.request == "GET /healthz?probe=access-log HTTP/1.1"
    assert parsed.status == response.status == 200
    assert parsed.bytes == len(body)
    assert parsed.trace_id == trace_id
    assert instance_logs.trace_root(parsed.trace_id) == "1-67891233-abcdef012345678912345678"
    assert parsed.forwarded_for == "203.0.113.7"
    assert parsed.remote == "127.0.0.1"
    assert parsed.user_agent == 'curl/8.5 "quoted"'
    assert 0 <= parsed.duration < 5
    assert abs(parsed.time.timestamp() - time.time()) < 60
    # The CloudWatch agent starts a new error-log event at each line matching ERROR_LOG_START.
    error_log = (logs_directory / "error.log").read_text().splitlines()
    assert error_log, "Gunicorn wrote no error log"
    assert all(re.match(instance_logs.ERROR_LOG_START, entry) for entry in error_log), error_log


def test_access_log_shows_a_missing_trace_id_as_a_dash(served: int, logs_directory: Path) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=5)
    connection.request("GET", "/healthz?probe=no-trace")
    connection.getresponse().read()
    parsed = instance_logs.parse_access_line(
        _access_line(logs_directory / "access.log", "probe=no-trace")
    )
    assert (parsed.trace_id, parsed.forwarded_for) == (None, None)
