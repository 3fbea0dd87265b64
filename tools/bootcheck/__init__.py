"""The boot check of the reference app (`make boot-check`, `make boot-time`): its variants,
synthesized with the repository's pinned CDK CLI and booted with `gunicorn_alb.bootcheck`."""
