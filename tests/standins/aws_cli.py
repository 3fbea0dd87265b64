"""A stand-in for the AWS CLI v2, put first on PATH as ``aws``, for the two read-only calls the boot
script and the coupling agent make: ``aws elbv2 describe-target-groups`` and ``aws elbv2
describe-load-balancer-attributes``, and the drain watcher's ``aws autoscaling
complete-lifecycle-action``. It answers from a JSON state file (``GUNICORN_ALB_AWS_STATE``)
with the response shapes of the ELBv2 API, applies ``--query`` with JMESPath (the library the CLI
uses) and prints ``--output text`` the way the CLI formats scalars and lists, so the scripts'
queries run for real. Every call is appended to ``calls`` in the state's directory.

State::

    {"target_groups": {"TG_ARN": ["LB_ARN", ...]},
     "load_balancers": {"LB_ARN": {"idle_timeout": 60}},
     "lifecycle_actions": [{"group": "G", "hook": "H", "instance": "i-..."}],
     "error": "An error occurred (Throttling) ..."}      # optional: every call fails with it
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import jmespath

LAUNCHER = """#!{python}
import sys
sys.path.insert(0, {here!r})
from aws_cli import main
sys.exit(main(sys.argv[1:]))
"""


def install(bin_dir: Path, state: Path) -> dict[str, str]:
    """Put the stand-in on ``bin_dir`` as ``aws``; returns the environment that selects it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    launcher = bin_dir / "aws"
    launcher.write_text(
        LAUNCHER.format(python=sys.executable, here=str(Path(__file__).resolve().parent))
    )
    launcher.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "GUNICORN_ALB_AWS_STATE": str(state)}


def _text(value: Any) -> str:
    """The CLI's ``--output text`` for what a query returns: scalars, lists of scalars."""
    if value is None:
        return "None"
    if isinstance(value, list):
        return "\t".join(_text(item) for item in value)
    return str(value)


def _options(argv: list[str]) -> dict[str, str]:
    options, words = {}, iter(argv)
    for word in words:
        if word.startswith("--"):
            options[word[2:]] = next(words, "")
    return options


def respond(state: dict[str, Any], service: str, operation: str, options: dict[str, str]) -> Any:
    """The API response (shaped like ELBv2's) for one call, or raise LookupError."""
    if (service, operation) == ("elbv2", "describe-target-groups"):
        arn = options["target-group-arns"]
        if arn not in state["target_groups"]:
            raise LookupError(
                "An error occurred (TargetGroupNotFound) when calling the DescribeTargetGroups "
                "operation: One or more target groups not found"
            )
        return {
            "TargetGroups": [
                {"TargetGroupArn": arn, "LoadBalancerArns": state["target_groups"][arn]}
            ]
        }
    if (service, operation) == ("elbv2", "describe-load-balancer-attributes"):
        arn = options["load-balancer-arn"]
        if arn not in state["load_balancers"]:
            raise LookupError(
                "An error occurred (LoadBalancerNotFound) when calling the "
                f"DescribeLoadBalancerAttributes operation: Load balancer '{arn}' not found"
            )
        return {
            "Attributes": [
                {"Key": "deletion_protection.enabled", "Value": "false"},
                {
                    "Key": "idle_timeout.timeout_seconds",
                    "Value": str(state["load_balancers"][arn]["idle_timeout"]),
                },
                {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
            ]
        }
    if (service, operation) == ("autoscaling", "complete-lifecycle-action"):
        # CompleteLifecycleAction (EC2 Auto Scaling API reference): the instance must wait in that
        # group's hook; the action completes once. The response has no output.
        waiting = state.get("lifecycle_actions", [])
        asked = {
            "group": options.get("auto-scaling-group-name"),
            "hook": options.get("lifecycle-hook-name"),
            "instance": options.get("instance-id"),
        }
        if asked not in waiting or options.get("lifecycle-action-result") not in (
            "CONTINUE",
            "ABANDON",
        ):
            raise LookupError(
                "An error occurred (ValidationError) when calling the CompleteLifecycleAction "
                f"operation: No active Lifecycle Action found with instance ID {asked['instance']}"
            )
        waiting.remove(asked)
        return {}
    raise LookupError(f"aws stand-in: `aws {service} {operation}` is not implemented")


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["GUNICORN_ALB_AWS_STATE"])
    with (state_path.parent / "calls").open("a") as calls:
        calls.write(json.dumps(argv) + "\n")
    state = json.loads(state_path.read_text())
    if state.get("error"):
        print(state["error"], file=sys.stderr)
        return 254
    options = _options(argv[2:])
    try:
        response = respond(state, argv[0], argv[1], options)
    except LookupError as error:
        print(error, file=sys.stderr)
        return 254
    state_path.write_text(json.dumps(state))  # what a call changed (a completed action)
    if "query" in options:
        response = jmespath.search(options["query"], response)
    if response == {}:
        pass  # the CLI prints nothing for an empty response
    elif options.get("output") == "text":
        print(_text(response))
    else:
        print(json.dumps(response, indent=4))
    return 0
