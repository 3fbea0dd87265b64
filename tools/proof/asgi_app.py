"""The proof's ASGI target: the sample app's two answers (the health path and a small page) as a
bare ASGI callable, so the ASGI workers are measured with no framework in the way."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

HEALTH = os.environ.get("HEALTH_CHECK_PATH", "/healthz")


async def application(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"ok\n" if scope["path"] == HEALTH else b"Hello from Gunicorn's ASGI worker\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
