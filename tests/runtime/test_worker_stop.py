"""The worker subclasses (userdata/gunicorn_alb_*.py) under real Gunicorn, for every worker
class the construct accepts: a stopping worker (here: the old worker of a reload) keeps its
kept-alive connections open past Gunicorn's own 2 s linger (an idle one, and one whose response
was under way when the stop began), answers a request on one with ``Connection: close``, and
exits once its peers have closed; and each module refuses any other version than the instances
install. With Gunicorn's own classes the gthread, asgi and uvicorn cases fail (gevent already
behaves so)."""

from __future__ import annotations

import ast
import http.client
import importlib.util
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gunicorn_alb import rendering, timeouts

REPO = Path(__file__).resolve().parents[2]
USERDATA = REPO / "userdata"
# /slow is still running when the stop begins (its headers, for ASGI, already sent).
WSGI = """import time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
"""
ASGI = """import asyncio
async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"3")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    await send({"type": "http.response.body", "body": b"ok\\n"})
"""
KEEPALIVE = 8  # a stopping worker keeps idle connections this long at most (graceful too)


def module_of(worker_class: str) -> Path:
    return USERDATA / f"{rendering.WORKER_SUBCLASSES[worker_class].split('.')[0]}.py"


def test_the_versions_are_the_ones_the_instances_install() -> None:
    """Each module's EXPECTED is what the instances install: Gunicorn's pin and the worker
    class's pip pins (timeouts.KEEPALIVE_WORKER_CLASSES)."""
    assert set(rendering.WORKER_SUBCLASSES) == set(timeouts.KEEPALIVE_WORKER_CLASSES)
    for worker_class, requirements in timeouts.KEEPALIVE_WORKER_CLASSES.items():
        tree = ast.parse(module_of(worker_class).read_text())
        (expected,) = (
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXPECTED"
        )
        pins = {"gunicorn": rendering.GUNICORN_VERSION}
        for requirement in requirements:
            name, version = requirement.split("==")
            pins[name.replace("-", "_")] = version
        assert {name: pins[name] for name in expected} == expected, worker_class
        assert set(expected) >= {"gunicorn"} | (
            {"gevent"} if worker_class == "gevent" else set()
        ) | ({"uvicorn", "uvicorn_worker", "h11"} if "uvicorn" in worker_class else set())


@pytest.mark.runtime
@pytest.mark.parametrize("worker_class", sorted(timeouts.KEEPALIVE_WORKER_CLASSES))
def test_gunicorn_refuses_to_boot_with_another_version(worker_class: str, tmp_path: Path) -> None:
    """The master fails at boot, naming both versions (what the journal and the boot check
    see)."""
    if worker_class == "gevent":
        pytest.importorskip("gevent", reason="gevent is installed on instances that use it")
    module = module_of(worker_class)
    (tmp_path / module.name).write_text(
        module.read_text().replace('"gunicorn": "27.0.1"', '"gunicorn": "26.0.0"')
    )
    (tmp_path / "app.py").write_text(WSGI)
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        f"worker_class = {rendering.WORKER_SUBCLASSES[worker_class]!r}\n"
        "control_socket_disable = True\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(conf), "--chdir", str(tmp_path),
         "--bind", "127.0.0.1:0", "app:application"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        f"{module.name} was written for gunicorn 26.0.0, but gunicorn 27.0.1 is installed"
        in result.stderr
    ), result.stderr


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait(check: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def closed_by_server(conn: http.client.HTTPConnection) -> bool:
    assert conn.sock is not None
    return bool(select.select([conn.sock], [], [], 0)[0])


def get(conn: http.client.HTTPConnection, path: str = "/") -> http.client.HTTPResponse:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app")
    (path / "wsgi_app.py").write_text(WSGI)
    (path / "asgi_app.py").write_text(ASGI)
    for subclass in rendering.WORKER_SUBCLASSES.values():
        name = f"{subclass.split('.')[0]}.py"
        (path / name).write_text((USERDATA / name).read_text())
    return path


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def stops(app_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exception | None]:
    """Every worker class's stop (:func:`_stop`), all at once (each mostly waits on its peers and
    its linger): what each raised, or None."""
    classes = [c for c in sorted(timeouts.KEEPALIVE_WORKER_CLASSES) if c != "gevent" or _has(c)]

    def run(worker_class: str) -> Exception | None:
        try:
            _stop(worker_class, app_dir, tmp_path_factory.mktemp(f"stop-{worker_class}"))
        except Exception as error:  # an assertion, or the harness failing: the test shows it
            return error
        return None

    with ThreadPoolExecutor(len(classes)) as pool:
        return dict(zip(classes, pool.map(run, classes), strict=True))


@pytest.mark.runtime
@pytest.mark.parametrize("worker_class", sorted(timeouts.KEEPALIVE_WORKER_CLASSES))
def test_a_stopping_worker_keeps_idle_connections_until_the_peer_closes_them(
    worker_class: str, stops: dict[str, Exception | None]
) -> None:
    if worker_class == "gevent":
        pytest.importorskip("gevent", reason="gevent is installed on instances that use it")
    error = stops[worker_class]
    if error is not None:
        raise error


def _stop(worker_class: str, app_dir: Path, tmp_path: Path) -> None:
    """A reload's old worker of WORKER_CLASS, with one connection idle and one whose response is
    under way: both outlast Gunicorn's own 2 s linger, a request on one is answered with
    ``Connection: close``, and the worker exits once its peers have closed."""
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        f"import sys\nsys.path.insert(0, {str(app_dir)!r})\n"
        f"worker_class = {rendering.WORKER_SUBCLASSES[worker_class]!r}\n"
        f"workers = 1\nthreads = 2 if {worker_class!r} == 'gthread' else 1\n"
        f"keepalive = {KEEPALIVE}\ngraceful_timeout = {KEEPALIVE}\ncontrol_socket_disable = True\n"
    )
    app = (
        "asgi_app:application"
        if worker_class in timeouts.ASGI_WORKER_CLASSES
        else "wsgi_app:application"
    )
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(conf), "--chdir", str(app_dir),
         "--bind", f"127.0.0.1:{port}", app],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def logs() -> str:
        return (tmp_path / "gunicorn.log").read_text(errors="replace")

    try:
        wait(lambda: len(children(master.pid)) == 1, 30, f"no worker\n{logs()}")
        (old,) = children(master.pid)
        reused, idle = (http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in "ab")
        for _ in range(20):  # the connection may reach the worker before it serves
            try:
                assert get(reused).status == 200 and get(idle).status == 200
                break
            except (ConnectionError, http.client.HTTPException):
                reused.close()
                idle.close()
                time.sleep(0.2)
        assert reused.sock is not None and idle.sock is not None, logs()
        reused.request("GET", "/slow")
        time.sleep(0.5)
        master.send_signal(signal.SIGHUP)  # new worker, the old one stops gracefully
        slow = reused.getresponse()
        slow.read()
        assert slow.status == 200 and slow.getheader("Connection") != "close", logs()
        wait(lambda: len(children(master.pid) - {old}) == 1, 30, f"no new worker\n{logs()}")
        time.sleep(3.0)  # past gthread's own 2 s stop linger
        assert old in children(master.pid), f"the old worker exited\n{logs()}"
        assert not closed_by_server(reused) and not closed_by_server(idle), logs()
        response = get(reused)
        assert response.status == 200
        assert (response.getheader("Connection") or "").lower() == "close", logs()
        assert reused.sock is None  # http.client closes it after "Connection: close"
        assert not closed_by_server(idle)
        idle.close()
        # Every peer closed: the old worker exits well before the graceful timeout.
        wait(lambda: old not in children(master.pid), KEEPALIVE - 3.5, f"lingered\n{logs()}")
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert get(fresh).status == 200
        fresh.close()
    finally:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait()
        log.close()
