"""Answer the load balancer's health check before anything else runs.

The ALB sends it with the instance's private address as Host, which ALLOWED_HOSTS rightly
refuses; answering first keeps ALLOWED_HOSTS strict for every other request."""

import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEALTH_CHECK_PATH = os.environ.get("HEALTH_CHECK_PATH", "/healthz")


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_CHECK_PATH:
            return HttpResponse("ok\n", content_type="text/plain")
        return self.get_response(request)
