import os

from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static


def index(request: HttpRequest) -> HttpResponse:
    greeting = os.environ.get("GREETING", "Hello")
    return HttpResponse(
        "<!doctype html><title>Django on Gunicorn</title>"
        f'<link rel="stylesheet" href="{static("example/site.css")}">'
        f"<h1>{greeting} from Django behind an Application Load Balancer</h1>"
    )
