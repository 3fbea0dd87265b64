"""The app's own configuration: its environment, the names of its secrets, its Gunicorn target
and its release step. Pure Python (no CDK import): the construct passes a predicate that tells
CloudFormation tokens apart, and the renderer writes what these checks accepted.

Where each value ends up on the instance, and so what it must not contain:

* ``environment`` values: ``/etc/gunicorn-alb/app.env``, a systemd ``EnvironmentFile=`` written
  by the user data with a quoted heredoc; one line each, quoted for systemd
  (:func:`env_assignment`).
* ``secrets``: only the variable's name, the source and the ARN go into the user data
  (``/etc/gunicorn-alb/secrets.list``); the boot script fetches each value into
  ``/etc/gunicorn-alb/secrets.env`` (root, 0600).
* ``wsgi_app``: ``boot.env`` (sourced by bash, single-quoted there), the unit's ``ExecStart=``
  (one double-quoted word) and Gunicorn's command line.
* ``pre_start_command``: ``/etc/gunicorn-alb/pre-start.env``, from which the oneshot unit
  ``gunicorn-app-prestart.service`` runs it with ``bash -c`` as the app user.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME_MAX = 128
RESERVED_PREFIXES = ("GUNICORN_",)
"""``GUNICORN_ALB_*`` are the construct's own (the coupled keep-alive); Gunicorn reads
``GUNICORN_CMD_ARGS``, which would override the generated settings."""
RESERVED_NAMES = frozenset(
    {
        # Set by the unit.
        "HEALTH_CHECK_PATH",
        "PYTHONUNBUFFERED",
        # Set by systemd for the service: its identity, its directories, its notification socket.
        "USER",
        "LOGNAME",
        "HOME",
        "SHELL",
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "MAINPID",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "SYSTEMD_EXEC_PID",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
        "STATE_DIRECTORY",
        "RUNTIME_DIRECTORY",
        "CACHE_DIRECTORY",
        "LOGS_DIRECTORY",
        "CONFIGURATION_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
    }
)
ENV_VALUE_MAX = 4096
SECRET_FIELD = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")

TARGET_MAX = 256
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_TARGET_CHARS = re.compile(r'^[A-Za-z0-9_.:(),=" +@/-]+$')
_LITERAL_TYPES = (str, int, float, bool, type(None))

PRE_START_MAX = 1024
HEREDOC_END = "GUNICORN_ALB_EOF"


def _reserved(name: str) -> str | None:
    if name.startswith(RESERVED_PREFIXES):
        return "it starts with GUNICORN_, which the construct and Gunicorn reserve"
    if name in RESERVED_NAMES:
        return "the unit or systemd sets it"
    return None


def check_names(argument: str, names: Iterable[str]) -> list[str]:
    """Each name is a valid environment variable name that nothing else sets."""
    problems = []
    for name in names:
        if not isinstance(name, str) or not ENV_NAME.match(name) or len(name) > ENV_NAME_MAX:
            problems.append(
                f"{argument} names must be environment variable names (a letter or _, then "
                f"letters, digits or _; at most {ENV_NAME_MAX} characters), got {name!r}"
            )
        elif (why := _reserved(name)) is not None:
            problems.append(f"{argument} must not set {name!r}: {why}")
    return problems


def check_environment(
    environment: Mapping[str, str] | None, is_token: Callable[[object], bool]
) -> list[str]:
    """``environment``: names as :func:`check_names`; values are strings of one line (or
    CloudFormation tokens, whose value is only known at deploy time)."""
    if environment is None:
        return []
    if not isinstance(environment, Mapping):
        return [f"environment must be a mapping of names to strings, got {environment!r}"]
    problems = check_names("environment", environment)
    for name, value in environment.items():
        if is_token(value):
            continue
        if not isinstance(value, str):
            problems.append(f"environment[{name!r}] must be a string, got {value!r}")
        elif "\n" in value or "\r" in value or "\0" in value:
            problems.append(
                f"environment[{name!r}] must be one line without NUL (pass multi-line values "
                f"through secrets), got {value!r}"
            )
        elif len(value) > ENV_VALUE_MAX:
            problems.append(
                f"environment[{name!r}] must be at most {ENV_VALUE_MAX} characters, "
                f"got {len(value)}"
            )
        elif HEREDOC_END in value:
            problems.append(f"environment[{name!r}] must not contain {HEREDOC_END}, got {value!r}")
    return problems


def check_secret_names(
    secret_names: Iterable[str], environment: Mapping[str, str] | None
) -> list[str]:
    """``secrets`` names: as :func:`check_names`, and none also in ``environment``."""
    names = list(secret_names)
    problems = check_names("secrets", names)
    for name in sorted(set(names) & set(environment or {})):
        problems.append(
            f"secrets and environment both set {name!r}: give each variable in one of them"
        )
    return problems


def check_secret_field(name: str, field: str | None) -> list[str]:
    if field is None or (isinstance(field, str) and SECRET_FIELD.match(field)):
        return []
    return [
        f"secrets[{name!r}] field must be a JSON key of 1-128 letters, digits or _.@+-, "
        f"got {field!r}"
    ]


def check_app_target(argument: str, target: str) -> list[str]:
    """What Gunicorn accepts as an app (``gunicorn.util.import_app``), limited to what is safe in
    boot.env, a systemd unit and a command line: ``module``, ``module:name`` or a factory call
    ``module:name(...)`` whose arguments are literal strings, numbers, booleans or None."""
    allowed = (
        f"{argument} must be a Gunicorn app target: module:name, or a factory call "
        "module:create_app() with literal arguments (strings in double quotes made of letters, "
        "digits, spaces and _.,:/@+=-; numbers; True, False, None)"
    )
    if not isinstance(target, str) or not target:
        return [f"{allowed}, got {target!r}"]
    if len(target) > TARGET_MAX or not _TARGET_CHARS.match(target):
        return [f"{allowed}, got {target!r}"]
    module, _, obj = target.partition(":")
    if not _MODULE.match(module):
        return [f"{allowed}, got {target!r}: {module!r} is not a module path"]
    if not obj:
        return [] if ":" not in target else [f"{allowed}, got {target!r}"]
    try:
        expression = ast.parse(obj, mode="eval").body
    except SyntaxError:
        return [f"{allowed}, got {target!r}: {obj!r} does not parse"]
    if isinstance(expression, ast.Name):
        return []
    if not isinstance(expression, ast.Call) or not isinstance(expression.func, ast.Name):
        return [f"{allowed}, got {target!r}: {obj!r} is neither a name nor a call of a name"]
    arguments = [*expression.args, *(keyword.value for keyword in expression.keywords)]
    if any(keyword.arg is None for keyword in expression.keywords) or not all(
        _is_literal(argument_node) for argument_node in arguments
    ):
        return [f"{allowed}, got {target!r}: the arguments are not plain literals"]
    return []


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
        return isinstance(node, ast.Constant) and type(node.value) in (int, float)
    return isinstance(node, ast.Constant) and isinstance(node.value, _LITERAL_TYPES)


def target_module(target: str) -> str:
    """The module part of a target (``mysite.wsgi`` of ``mysite.wsgi:application``)."""
    return target.partition(":")[0]


def check_pre_start_command(
    command: str | None, is_token: Callable[[object], bool], name: str = "pre_start_command"
) -> list[str]:
    """One line of bash, known at synth time: printable, no newline or NUL (the release step, or
    another command of the app's: ``name``)."""
    if command is None:
        return []
    allowed = (
        f"{name} must be one line of bash known at synth time (printable characters, "
        f"no newline, carriage return or NUL, at most {PRE_START_MAX} characters)"
    )
    if is_token(command):
        return [f"{allowed}, got a CloudFormation token"]
    if not isinstance(command, str) or not command.strip():
        return [f"{allowed}, got {command!r}"]
    if len(command) > PRE_START_MAX or not command.isprintable() or HEREDOC_END in command:
        return [f"{allowed}, got {command!r}"]
    return []


def env_assignment(name: str, value: str) -> str:
    """``NAME=value`` for a systemd ``EnvironmentFile=``, the value taken verbatim: single quotes
    keep every character but the single quote; otherwise double quotes, in which systemd
    recognises the escapes ``\\"``, ``\\\\``, ``\\$`` and ``\\```. The boot script writes fetched
    secrets the same way."""
    if "'" not in value:
        return f"{name}='{value}'"
    escaped = re.sub(r'([\\"$`])', r"\\\1", value)
    return f'{name}="{escaped}"'
