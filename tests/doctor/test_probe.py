"""`gunicorn-alb-doctor probe` against real servers on loopback: Gunicorn gthread, sync and asgi
workers and nginx, each with a small keep-alive so the waits stay short."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gunicorn_alb import doctor
from tests.doctor.fleets import Account

pytestmark = pytest.mark.runtime

APP = """
def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})
"""
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server on port {port} exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on port {port}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """URLs of: gthread keep-alive 2 and 65, sync, asgi keep-alive 1, nginx keepalive 1 s."""
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.fail("nginx is not installed: run `make setup` (installs the OS tools)")
    work = tmp_path_factory.mktemp("probe")
    (work / "probe_app.py").write_text(APP)
    gunicorns = {
        "gthread-2": ["-k", "gthread", "--threads", "2", "--keep-alive", "2", "probe_app:wsgi"],
        "gthread-65": ["-k", "gthread", "--threads", "2", "--keep-alive", "65", "probe_app:wsgi"],
        "sync": ["-k", "sync", "probe_app:wsgi"],
        "asgi-1": ["-k", "asgi", "--keep-alive", "1", "probe_app:asgi"],
    }
    ports = {name: _free_port() for name in [*gunicorns, "nginx-1"]}
    processes = {
        name: subprocess.Popen(
            [
                GUNICORN,
                "-b",
                f"127.0.0.1:{ports[name]}",
                "-w",
                "1",
                "--graceful-timeout",
                "1",
                *args,
            ],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, args in gunicorns.items()
    }
    (work / "nginx.conf").write_text(
        f"daemon off; pid {work}/nginx.pid; error_log {work}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work};\n"
        f"  fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};\n"
        f"  keepalive_timeout 1s;\n"
        f"  server {{ listen 127.0.0.1:{ports['nginx-1']}; location / {{ return 200 ok; }} }} }}\n"
    )
    processes["nginx-1"] = subprocess.Popen(
        [nginx, "-c", str(work / "nginx.conf"), "-p", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for name, process in processes.items():
            _wait_for(ports[name], process)
        yield {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)


def probe(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = doctor.main(["probe", *argv, "--json"])
    captured = capsys.readouterr()
    assert captured.err == "", captured.err
    return code, json.loads(captured.out)


# Each probe mostly waits for a server to close an idle connection (1-2 s): the runs against the
# loopback servers happen at once, each as `gunicorn-alb-doctor probe` in a process of its own.
PROBES: dict[str, tuple[str, ...]] = {
    "gthread-2": ("gthread-2", "--idle-timeout", "60", "--json"),
    "nginx-1 text": ("nginx-1", "--idle-timeout", "60", "--samples", "1"),
    "gthread-65": ("gthread-65", "--idle-timeout", "1", "--max-wait", "2", "--json"),
    "sync": ("sync", "--idle-timeout", "60", "--json"),
    "asgi-1": ("asgi-1", "--idle-timeout", "60", "--json"),
    "nginx-1": ("nginx-1", "--idle-timeout", "60", "--json"),
    "asgi-1 measure": ("asgi-1", "--samples", "1", "--json"),
}


@pytest.fixture(scope="module")
def probed(servers: dict[str, str]) -> dict[str, tuple[int, str, str]]:
    """``{name: (exit code, stdout, stderr)}`` of every run in PROBES."""
    code = "import sys; from gunicorn_alb.doctor import main; sys.exit(main(sys.argv[1:]))"

    def run(name: str) -> tuple[int, str, str]:
        server, *argv = PROBES[name]
        result = subprocess.run(
            [sys.executable, "-c", code, "probe", servers[server], *argv],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        return result.returncode, result.stdout, result.stderr

    with ThreadPoolExecutor(len(PROBES)) as pool:
        return dict(zip(PROBES, pool.map(run, PROBES), strict=True))


def report_of(probed: dict[str, tuple[int, str, str]], name: str) -> tuple[int, dict[str, Any]]:
    code, out, err = probed[name]
    assert err == "", err
    return code, json.loads(out)


def test_the_default_keepalive_is_measured_and_found_exposed(probed) -> None:  # type: ignore[no-untyped-def]
    code, report = report_of(probed, "gthread-2")
    assert code == 1
    assert report["idle_keepalive"]["median"] == pytest.approx(2.0, abs=0.2)
    assert report["server"] == "gunicorn"
    assert report["keeps_alive"] is True
    assert report["verdict"]["id"] == "exposed"
    assert report["verdict"]["exposed_by"] == pytest.approx(58.0, abs=0.2)
    assert report["verdict"]["advice"] == [
        "Gunicorn: keepalive = 65 in gunicorn.conf.py (--keep-alive 65), with a worker that "
        "honours it (gthread with threads > 1, gevent, asgi, uvicorn_worker.UvicornWorker; "
        "not sync)"
    ]
    assert len(report["samples"]) == 3


def test_the_text_report_says_exposed_and_what_to_set(probed) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = probed["nginx-1 text"]
    assert code == 1
    assert "EXPOSED" in out
    assert "keepalive_timeout 65s;" in out
    assert re.search(r"^Server: +nginx", out, re.MULTILINE)
    assert re.search(r"^Idle keep-alive: 1\.\d\d s median", out, re.MULTILINE)


def test_a_keepalive_longer_than_the_idle_timeout_is_healthy(probed) -> None:  # type: ignore[no-untyped-def]
    # Keep-alive 65 s against an idle timeout of 1 s: the probe stops at its bound (2 s).
    code, report = report_of(probed, "gthread-65")
    assert code == 0
    assert report["verdict"]["id"] == "healthy"
    assert report["outlasted_bound"] is True
    assert report["idle_keepalive"] is None
    assert "longer than 2 s" in report["verdict"]["message"]


def test_a_sync_worker_is_reported_as_not_keeping_connections_alive(probed) -> None:  # type: ignore[no-untyped-def]
    code, report = report_of(probed, "sync")
    assert code == 0
    assert report["keeps_alive"] is False
    assert report["verdict"]["id"] == "no-keepalive"
    assert all(sample["connection"] == "close" for sample in report["samples"])


def test_the_asgi_worker_keepalive_is_measured(probed) -> None:  # type: ignore[no-untyped-def]
    code, report = report_of(probed, "asgi-1")
    assert code == 1
    assert report["idle_keepalive"]["median"] == pytest.approx(1.0, abs=0.2)
    assert report["server"].startswith("gunicorn")


def test_nginx_closes_at_its_keepalive_timeout(probed) -> None:  # type: ignore[no-untyped-def]
    code, report = report_of(probed, "nginx-1")
    assert code == 1
    assert report["idle_keepalive"]["median"] == pytest.approx(1.0, abs=0.2)
    assert report["server"].startswith("nginx")
    assert report["verdict"]["advice"] == ["nginx: keepalive_timeout 65s;"]


def test_without_an_idle_timeout_the_probe_only_measures(probed) -> None:  # type: ignore[no-untyped-def]
    code, report = report_of(probed, "asgi-1 measure")
    assert code == 0
    assert report["verdict"]["id"] == "measured"
    assert len(report["samples"]) == 1


def test_fails_when_nothing_listens(capsys) -> None:  # type: ignore[no-untyped-def]
    code = doctor.main(["probe", f"http://127.0.0.1:{_free_port()}/", "--idle-timeout", "60"])
    captured = capsys.readouterr()
    assert code == 2
    assert "cannot connect to 127.0.0.1" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ftp://host/"], "URL must use http or https"),
        (["http://127.0.0.1:1/", "--samples", "9"], "--samples must be between 1 and 5"),
        (
            ["http://127.0.0.1:1/", "--idle-timeout", "0"],
            "argument --idle-timeout: must be between 1",
        ),
        (
            ["http://127.0.0.1:1/", "--idle-timeout", "60", "--max-wait", "30"],
            "--max-wait must exceed the idle timeout",
        ),
        (
            ["http://127.0.0.1:1/", "--idle-timeout", "60", "--load-balancer", "x"],
            "not allowed with argument",
        ),
    ],
)
def test_fails_when_the_arguments_are_wrong(argv: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    code = doctor.main(["probe", *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_the_idle_timeout_is_read_from_the_load_balancer(  # type: ignore[no-untyped-def]
    servers, account: Account, capsys
) -> None:
    arn = account.load_balancer("probed", idle=60)
    code, report = probe(capsys, servers["asgi-1"], "--load-balancer", "probed", "--samples", "1")
    assert code == 1
    assert report["idle_timeout"] == 60
    assert report["load_balancer"] == arn
