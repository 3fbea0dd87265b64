#!/usr/bin/env python3
"""The reference app: reads context and builds the stack. No resources here, no AWS calls.

npx cdk synth -c idleTimeoutSeconds=120 -c keepaliveMarginSeconds=5
npx cdk deploy -c deletionProtection=true     # once the first deploy has succeeded
npx cdk synth -c privateIsolated=true     # no NAT gateway: isolated subnets, VPC endpoints
npx cdk synth -c 'amiIds={"eu-west-1":"ami-0123456789abcdef0"}'   # pin the image
npx cdk synth -c terminationHookSeconds=4300 -c terminationCommand='...'   # drain via a hook
npx cdk synth -c example=django      # or example=fastapi: the examples/ stacks instead
npx cdk synth -c environmentFile=env.json    # the sample app's environment: a JSON object
"""

import json

import aws_cdk as cdk

from stacks.gunicorn_service_stack import GunicornServiceStack


def context_int(app: cdk.App, key: str, default: int) -> int:
    """An integer from ``-c key=value`` or cdk.json; a clear error names the key otherwise."""
    value = app.node.try_get_context(key)
    if value is None:
        return default
    try:
        return int(str(value))
    except ValueError:
        raise SystemExit(
            f"context {key} must be a whole number of seconds, got {value!r}"
        ) from None


def context_bool(app: cdk.App, key: str, default: bool) -> bool:
    """``true`` or ``false`` from ``-c key=value`` or cdk.json; a clear error otherwise."""
    value = app.node.try_get_context(key)
    if value is None:
        return default
    if str(value).lower() not in ("true", "false"):
        raise SystemExit(f"context {key} must be true or false, got {value!r}")
    return str(value).lower() == "true"


def context_flag(app: cdk.App, key: str) -> bool:
    """``-c key=true`` (or false); a clear error names the key otherwise. Default: false."""
    value = str(app.node.try_get_context(key) or "false").lower()
    if value not in ("true", "false"):
        raise SystemExit(f"context {key} must be true or false, got {value!r}")
    return value == "true"


def context_map(app: cdk.App, key: str) -> dict[str, str] | None:
    """A JSON object from ``-c key='{...}'`` (or an object in cdk.json), or None."""
    value = app.node.try_get_context(key)
    if value is None or isinstance(value, dict):
        return value
    try:
        parsed = json.loads(str(value))
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise SystemExit(f"context {key} must be a JSON object, got {value!r}")
    return parsed


def context_json_file(app: cdk.App, key: str) -> dict[str, str] | None:
    """A JSON object of strings read from the file ``-c key=PATH`` names, or None."""
    path = app.node.try_get_context(key)
    if path is None:
        return None
    try:
        with open(str(path), encoding="utf-8") as file:
            parsed = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(
            f"context {key}: cannot read a JSON object from {path!r}: {error}"
        ) from None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise SystemExit(f"context {key}: {path!r} must hold a JSON object of strings")
    return parsed


app = cdk.App()
example = app.node.try_get_context("example")
if example == "django":
    from examples.django.stack import DjangoExampleStack

    DjangoExampleStack(
        app, "GunicornAlbDjangoExample", description="cdk-gunicorn-alb: Django example"
    )
elif example == "fastapi":
    from examples.fastapi.stack import FastApiExampleStack

    FastApiExampleStack(
        app, "GunicornAlbFastApiExample", description="cdk-gunicorn-alb: FastAPI example"
    )
elif example is not None:
    raise SystemExit(f"context example must be django or fastapi, got {example!r}")
else:
    GunicornServiceStack(
        app,
        "GunicornAlbReference",
        idle_timeout_seconds=context_int(app, "idleTimeoutSeconds", 60),
        keepalive_margin_seconds=context_int(app, "keepaliveMarginSeconds", 5),
        certificate_arn=app.node.try_get_context("certificateArn"),
        deletion_protection=context_bool(app, "deletionProtection", False),
        private_isolated=context_flag(app, "privateIsolated"),
        machine_image_ids=context_map(app, "amiIds"),
        environment=context_json_file(app, "environmentFile"),
        termination_hook_seconds=(
            None
            if app.node.try_get_context("terminationHookSeconds") is None
            else context_int(app, "terminationHookSeconds", 0)
        ),
        termination_command=app.node.try_get_context("terminationCommand"),
        description="cdk-gunicorn-alb reference: Gunicorn on EC2 behind an ALB, keep-alive coupled",
    )
app.synth()
