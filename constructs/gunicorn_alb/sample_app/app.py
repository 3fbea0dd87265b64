"""The sample WSGI app the construct deploys when no app is given: a page and the health path."""

import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

HEALTH_CHECK_PATH = os.environ.get("HEALTH_CHECK_PATH", "/healthz")
_HOST = socket.gethostname()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == HEALTH_CHECK_PATH:
        body = b"ok\n"
    elif path == "/":
        body = f"Hello from Gunicorn on {_HOST}\n".encode()
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
