"""The FastAPI example: an ASGI app built by a factory, ``wsgi_app="main:create_app()"``."""

import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse


def create_app(title: str = "FastAPI behind an Application Load Balancer") -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    health_path = os.environ.get("HEALTH_CHECK_PATH", "/healthz")

    @app.get(health_path, response_class=PlainTextResponse)
    async def health() -> str:
        return "ok\n"

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"message": f"Hello from {title}", "stage": os.environ.get("APP_STAGE", "")}

    return app
