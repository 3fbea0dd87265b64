"""Settings of the example project, all from the environment the construct gives the app:
``environment`` (plain values) and ``secrets`` (fetched on the instance at boot)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# From the construct's ``secrets``: a missing key is an error, never a default.
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
# Behind the ALB the Host header is the load balancer's name (or your domain); the health
# check, which comes with the instance's address, is answered before Django checks the host.
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]
# The ALB terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = [
    "mysite.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# The release step (pre_start_command: collectstatic) writes here; the app serves it with
# WhiteNoise. The app's code is read-only on the instance; systemd's StateDirectory
# (/var/lib/gunicorn-app, in $STATE_DIRECTORY) is the one place the app user may write.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATE_DIRECTORY", BASE_DIR / "var")) / "static"
