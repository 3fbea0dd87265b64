"""Two paths the boot check adds to ITS COPY of the app asset (``stack.add_probe``), to look into
the running Gunicorn from the outside. The user data, the unit and the config are untouched.

- ``/bootcheck/gunicorn``: the settings of the worker that answers, read from the worker's own
  ``cfg`` (the object its keep-alive handling reads), as JSON: the effective keep-alive of the
  running Gunicorn, not a re-reading of its config file.
- ``/bootcheck/slow``: answers ``started``, then ``finished`` SLOW_SECONDS later (a request in
  flight for the graceful-stop check).

Shipped into the app folder as ``bootcheck_probe.py``; the app's module ends with
``application = bootcheck_probe.wrap(application)`` (``module:name``), or, for a factory target
(``module:create_app()``), ``create_app = bootcheck_probe.wrap_factory(create_app)``. WSGI and
ASGI apps (an ASGI app is a coroutine function, or an object whose ``__call__`` is one).
Standard library only.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

SETTINGS_PATH = "/bootcheck/gunicorn"
SLOW_PATH = "/bootcheck/slow"
SLOW_SECONDS = 8

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def worker_settings() -> dict[str, Any]:
    """The settings of the Gunicorn worker this process is."""
    from gunicorn.workers.base import Worker  # type: ignore[import-untyped]

    for candidate in gc.get_objects():
        kind = type(candidate)
        if isinstance(candidate, Worker):
            cfg = candidate.cfg
            return {
                "worker": f"{kind.__module__}.{kind.__name__}",
                "pid": os.getpid(),
                "keepalive": cfg.keepalive,
                "worker_class": cfg.worker_class_str,
                "threads": cfg.threads,
                "graceful_timeout": cfg.graceful_timeout,
            }
    return {"worker": None, "pid": os.getpid()}


def _slow() -> Iterator[bytes]:
    yield b"started\n"
    time.sleep(SLOW_SECONDS)
    yield b"finished\n"


def wrap(app: Any) -> Any:
    """The app answering the probe paths too (an ASGI app stays one)."""
    asgi = inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__)
    return _wrap_asgi(app) if asgi else _wrap_wsgi(app)


def wrap_factory(factory: Callable[..., Any]) -> Callable[..., Any]:
    """A factory whose app answers the probe paths too."""

    @functools.wraps(factory)
    def create(*args: Any, **kwargs: Any) -> Any:
        return wrap(factory(*args, **kwargs))

    return create


def _wrap_asgi(app: Any) -> Any:
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        if path not in (SETTINGS_PATH, SLOW_PATH):
            await app(scope, receive, send)
            return
        body = json.dumps(worker_settings()).encode() if path == SETTINGS_PATH else b""
        headers = [(b"content-type", b"application/json" if body else b"text/plain")]
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if body:
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
        await asyncio.sleep(SLOW_SECONDS)
        await send({"type": "http.response.body", "body": b"finished\n"})

    return application


def _wrap_wsgi(app: WsgiApp) -> WsgiApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == SETTINGS_PATH:
            body = json.dumps(worker_settings()).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if path == SLOW_PATH:
            # No Content-Length: each part goes out as its own chunk, as soon as it is yielded.
            start_response("200 OK", [("Content-Type", "text/plain")])
            return _slow()
        return app(environ, start_response)

    return application
