"""Render the files an instance receives: the user data, ``boot.env``, ``gunicorn.conf.py`` and
the systemd unit. No CDK import: values are plain strings or numbers, or CloudFormation token
strings that CDK later renders through ``Fn::Join``.

The boot script (``userdata/boot.sh``) is static; only the small config files are templated, with
``string.Template.substitute`` (a missing key fails).
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import re
import tarfile
from dataclasses import dataclass
from importlib import resources
from string import Template

from gunicorn_alb import app_config, instance_logs, timeouts
from gunicorn_alb.boot_budget import BOOT
from gunicorn_alb.timeouts import CoupledTimeouts

GUNICORN_VERSION = "27.0.1"
"""The Gunicorn installed on instances; the tests run this same version."""

PYTHON = "python3.12"
"""The Amazon Linux 2023 package (and command) for the app's Python: AL2023's python3 is 3.9."""

HEALTH_WAIT_SECONDS = BOOT.health_wait
"""How long the boot script waits for the health path before it signals failure (the boot budget,
:mod:`gunicorn_alb.boot_budget`, holds this and the other deadlines of the boot)."""

BOOT_SCRIPT_PATH = "/usr/local/sbin/gunicorn-alb-boot"
BOOT_ENV_PATH = "/etc/gunicorn-alb/boot.env"
GUNICORN_CONF_PATH = "/etc/gunicorn-alb/gunicorn.conf.py"
WORKER_SUBCLASSES = {
    "gthread": "gunicorn_alb_gthread.GthreadWorker",
    "gevent": "gunicorn_alb_gevent.GeventWorker",
    "asgi": "gunicorn_alb_asgi.AsgiWorker",
    "uvicorn_worker.UvicornWorker": "gunicorn_alb_uvicorn.UvicornWorker",
}
"""The class gunicorn.conf.py runs for each worker class: a subclass whose stop never closes an
idle kept-alive connection first (``userdata/gunicorn_alb_*.py``, one module per class, shipped
beside gunicorn.conf.py; each refuses any other version than the instances install)."""


def worker_module_path(worker_class: str) -> str:
    """Where the instance gets the module of ``worker_class``'s subclass."""
    return f"/etc/gunicorn-alb/{WORKER_SUBCLASSES[worker_class].split('.')[0]}.py"


UNIT_PATH = "/etc/systemd/system/gunicorn-app.service"
COUPLING_AGENT_PATH = "/usr/local/sbin/gunicorn-alb-coupling"
COUPLING_SERVICE_PATH = "/etc/systemd/system/gunicorn-alb-coupling.service"
COUPLING_TIMER_PATH = "/etc/systemd/system/gunicorn-alb-coupling.timer"
COUPLING_FILE_PATH = "/etc/gunicorn-alb/coupling.env"

COUPLING_PERIOD_MAX_SECONDS = timeouts.COUPLING_PERIOD_MAX
"""The coupling agent's timer starts it at most this long apart (the tests add up the timer)."""

APP_ENV_PATH = "/etc/gunicorn-alb/app.env"
SECRETS_LIST_PATH = "/etc/gunicorn-alb/secrets.list"
SECRETS_ENV_PATH = "/etc/gunicorn-alb/secrets.env"
"""Written at boot by gunicorn-alb-boot (root, 0600): the fetched secret values."""
PRE_START_ENV_PATH = "/etc/gunicorn-alb/pre-start.env"
PRE_START_UNIT_PATH = "/etc/systemd/system/gunicorn-app-prestart.service"
PRE_START_TIMEOUT_SECONDS = 300
"""How long the release step may run before it fails the boot."""

USER_DATA_SHEBANG = "#!/bin/bash"
_HEREDOC_END = app_config.HEREDOC_END
_LISTS = ("extra_pip_packages", "build_from_source")
"""boot.env values that are space-separated lists (quoted in the template)."""
_SAFE = re.compile(r"^[A-Za-z0-9_.:/,+=@%-]*$")


@dataclass(frozen=True)
class InstanceConfig:
    """Everything the instance files depend on. Strings may be CloudFormation tokens."""

    timeouts: CoupledTimeouts
    idle_timeout: str
    """The idle timeout as it goes into ``boot.env``: a number, or a token for a parameter."""
    app_port: int
    health_check_path: str
    wsgi_app: str
    app_asset_url: str
    app_requirements: str
    worker_class: str
    threads: int
    workers_per_cpu: int
    forwarded_allow_ips: str
    extra_pip_packages: tuple[str, ...] = ()
    wheelhouse_url: str = ""
    """The S3 URL of the wheelhouse (:mod:`gunicorn_alb.wheelhouse`) the boot installs from."""
    build_from_source: tuple[str, ...] = ()
    """Packages the boot may build from PyPI sources (no wheel for the platform)."""
    cfn_stack: str = ""
    cfn_resource: str = ""
    cfn_region: str = ""
    target_group_arn: str = ""
    """The target group whose load balancers' live idle timeouts the instance follows (at boot
    and through the coupling agent); empty: no live coupling, the configured value only."""
    aws_region: str = ""
    """The region of the AWS calls (the target group's); empty: the AWS CLI's own default."""
    environment: tuple[tuple[str, str], ...] = ()
    """The app's plain environment: (name, value) pairs; values may be tokens."""
    secrets: tuple[SecretRef, ...] = ()
    pre_start_command: str = ""
    """The release step; empty for none."""
    log_group_name: str = ""
    """The CloudWatch Logs group the agent ships to (a token in a stack); empty: no agent."""


@dataclass(frozen=True)
class SecretRef:
    """Where the instance reads one secret: only names and ARNs, never a value."""

    name: str
    source: str
    """``ssm`` or ``secretsmanager``."""
    arn: str
    field: str = ""
    """A key of a Secrets Manager secret's JSON value; empty for the whole value."""


def _resource(name: str) -> str:
    return resources.files("gunicorn_alb.userdata").joinpath(name).read_text(encoding="utf-8")


def _render(name: str, values: dict[str, object]) -> str:
    return Template(_resource(name)).substitute({k: str(v) for k, v in values.items()})


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


_TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}")
TOKEN_SIZE_ESTIMATE = 128
"""Bytes a deploy-time value is assumed to take (an ARN, a stack name: at most 128)."""


def user_data_size_estimate(user_data: str) -> int:
    """The user data's size in bytes once CloudFormation fills in its tokens, each counted as
    ``TOKEN_SIZE_ESTIMATE`` bytes."""
    return len(_TOKEN.sub("x" * TOKEN_SIZE_ESTIMATE, user_data).encode())


def _without_comment_lines(text: str) -> str:
    """``text`` without its comment-only lines: for boot.env and gunicorn.conf.py, whose lines
    starting with ``#`` are comments only (no multi-line string holds one; a test compares the
    Python before and after), so the user data stays within EC2's 16 KB. The commented templates
    ship in the package (``gunicorn_alb.userdata``)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines) + "\n"


def boot_script() -> str:
    """The static boot script, as shipped."""
    return _resource("boot.sh")


def render_boot_env(config: InstanceConfig) -> str:
    """``/etc/gunicorn-alb/boot.env``: the inputs of the boot script."""
    t = config.timeouts
    values: dict[str, object] = {
        "idle_timeout": config.idle_timeout,
        "keepalive_margin": t.keepalive_margin,
        "deregistration_delay": t.deregistration_delay,
        "graceful_timeout_override": _blank(t.graceful_timeout_override),
        "stop_timeout_override": _blank(t.stop_timeout_override),
        "synth_keepalive": _blank(t.keepalive),
        "synth_graceful_timeout": _blank(t.graceful_timeout),
        "synth_stop_timeout": _blank(t.stop_timeout),
        "app_port": config.app_port,
        "health_check_path": config.health_check_path,
        "health_wait": HEALTH_WAIT_SECONDS,
        "install_budget": BOOT.install,
        "signal_budget": BOOT.signal,
        "retry_attempts": BOOT.retry_attempts,
        "retry_delay": BOOT.retry_delay,
        "retry_max_delay": BOOT.retry_max_delay,
        "wsgi_app": config.wsgi_app,
        "app_asset_url": config.app_asset_url,
        "app_requirements": config.app_requirements,
        "python": PYTHON,
        "gunicorn_version": GUNICORN_VERSION,
        "extra_pip_packages": " ".join(config.extra_pip_packages),
        "wheelhouse_url": config.wheelhouse_url,
        "build_from_source": " ".join(config.build_from_source),
        "cfn_stack": config.cfn_stack,
        "cfn_resource": config.cfn_resource,
        "cfn_region": config.cfn_region,
        "target_group_arn": config.target_group_arn,
        "aws_region": config.aws_region,
        "forwarded_allow_ips": config.forwarded_allow_ips,
        "log_group_name": config.log_group_name,
    }
    if app_config.check_app_target("wsgi_app", config.wsgi_app):
        raise ValueError(
            f"wsgi_app {config.wsgi_app!r} has characters that are not safe in boot.env"
        )
    for key, value in values.items():
        if key == "wsgi_app":
            continue  # checked above; single-quoted in the template
        # Space-separated lists are quoted in the template; everything else must be one word.
        for word in str(value).split(" ") if key in _LISTS else [str(value)]:
            if "${Token[" not in word and not _SAFE.match(word):
                raise ValueError(f"{key} {word!r} has characters that are not safe in boot.env")
    return _without_comment_lines(_render("boot.env.tmpl", values))


def render_gunicorn_conf(config: InstanceConfig) -> str:
    """``/etc/gunicorn-alb/gunicorn.conf.py``."""
    t = config.timeouts
    return _without_comment_lines(
        _render(
            "gunicorn.conf.py.tmpl",
            {
                "app_port": config.app_port,
                "worker_class": config.worker_class,
                "worker_subclass": WORKER_SUBCLASSES.get(config.worker_class, config.worker_class),
                "threads": config.threads,
                "workers_per_cpu": config.workers_per_cpu,
                "max_requests": t.max_requests,
                "max_requests_jitter": t.max_requests_jitter,
                "access_log_format": repr(instance_logs.ACCESS_LOG_FORMAT),
            },
        )
    )


def _unit_word(word: str) -> str:
    """One word of a systemd command line: double-quoted (C-style escapes) unless plain."""
    if _SAFE.match(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(config: InstanceConfig) -> str:
    """``/etc/systemd/system/gunicorn-app.service``."""
    return _render(
        "gunicorn-app.service.tmpl",
        {
            "wsgi_app": config.wsgi_app,
            "wsgi_app_word": _unit_word(config.wsgi_app),
            "health_check_path": config.health_check_path,
        },
    )


def render_app_env(config: InstanceConfig) -> str:
    """``/etc/gunicorn-alb/app.env``: the app's plain environment, for ``EnvironmentFile=``."""
    lines = ["# The app's environment (the construct's environment prop); root-only at boot."]
    lines += [app_config.env_assignment(name, value) for name, value in config.environment]
    return "\n".join(lines) + "\n"


def render_secrets_list(config: InstanceConfig) -> str:
    """``/etc/gunicorn-alb/secrets.list``: NAME SOURCE ARN [FIELD] per secret, no values."""
    lines = ["# Secrets gunicorn-alb-boot reads into secrets.env at boot: NAME SOURCE ARN [FIELD]"]
    lines += [" ".join(filter(None, (s.name, s.source, s.arn, s.field))) for s in config.secrets]
    return "\n".join(lines) + "\n"


def render_pre_start_env(config: InstanceConfig) -> str:
    """``/etc/gunicorn-alb/pre-start.env``: the release step, for the oneshot unit."""
    return (
        "# The release step (pre_start_command), run by gunicorn-app-prestart.service.\n"
        + app_config.env_assignment("GUNICORN_ALB_PRE_START", config.pre_start_command)
        + "\n"
    )


def render_pre_start_unit(config: InstanceConfig) -> str:
    """``gunicorn-app-prestart.service``: the release step as a oneshot unit, with the app's
    user, environment files and the very hardening block of ``gunicorn-app.service``."""
    unit = render_unit(config)
    start, end = unit.find("\n# Hardening"), unit.find("\n[Install]")
    if start < 0 or end < start:
        raise ValueError("gunicorn-app.service.tmpl has no '# Hardening' block before [Install]")
    return _render(
        "gunicorn-app-prestart.service.tmpl",
        {
            "health_check_path": config.health_check_path,
            "timeout": PRE_START_TIMEOUT_SECONDS,
            "hardening": unit[start + 1 : end].rstrip("\n"),
        },
    )


def coupling_agent() -> str:
    """The static coupling agent script, as shipped."""
    return _resource("coupling.sh")


def render_cloudwatch_agent_config() -> str:
    """The CloudWatch agent's configuration (:func:`gunicorn_alb.instance_logs.agent_config`):
    Gunicorn's logs and the boot log, one stream per instance, into the log group whose name
    gunicorn-alb-boot puts in at boot (``CLOUDWATCH_LOG_GROUP``)."""
    return instance_logs.render_agent_config()


def render_files(config: InstanceConfig) -> dict[str, str]:
    """Every file the user data drops on the instance, by absolute path. The coupling agent and
    its units come only with a target group to follow."""
    files = {
        BOOT_ENV_PATH: render_boot_env(config),
        GUNICORN_CONF_PATH: render_gunicorn_conf(config),
        UNIT_PATH: render_unit(config),
        BOOT_SCRIPT_PATH: strip_comments(boot_script()),
        APP_ENV_PATH: render_app_env(config),
        instance_logs.LOGROTATE_PATH: _resource("gunicorn-app.logrotate"),
    }
    if config.worker_class in WORKER_SUBCLASSES:  # validation refuses any other
        module = worker_module_path(config.worker_class)
        files[module] = strip_python(_resource(module.rsplit("/", 1)[1]))
    if config.target_group_arn:
        files[COUPLING_AGENT_PATH] = strip_comments(coupling_agent())
        files[COUPLING_SERVICE_PATH] = _resource("gunicorn-alb-coupling.service")
        files[COUPLING_TIMER_PATH] = _resource("gunicorn-alb-coupling.timer")
    if config.secrets:
        files[SECRETS_LIST_PATH] = render_secrets_list(config)
    if config.pre_start_command:
        files[PRE_START_ENV_PATH] = render_pre_start_env(config)
        files[PRE_START_UNIT_PATH] = render_pre_start_unit(config)
    if config.log_group_name:
        files[instance_logs.AGENT_CONFIG_PATH] = render_cloudwatch_agent_config()
    return files


PACKED_PATHS = (
    BOOT_SCRIPT_PATH,
    GUNICORN_CONF_PATH,
    *(worker_module_path(worker_class) for worker_class in WORKER_SUBCLASSES),
    instance_logs.AGENT_CONFIG_PATH,
    UNIT_PATH,
    COUPLING_AGENT_PATH,
    COUPLING_SERVICE_PATH,
    COUPLING_TIMER_PATH,
    PRE_START_UNIT_PATH,
    instance_logs.LOGROTATE_PATH,
)
"""Files the user data carries in one gzip-compressed tar, base64-encoded (those without a
CloudFormation token): EC2 limits user data to 16 KB before its own base64 encoding, and the
scripts are most of it. gunicorn.conf.py and the CloudWatch agent's configuration hold no
deployment-time value (they read the VPC's CIDR and the log group's name from boot.env), so they
travel compressed too; boot.env, the per-stack settings with CloudFormation's values, stays
readable."""

USER_DATA_LIMIT = 16 * 1024
"""EC2: "User data is limited to 16 KB, in raw form, before it is base64-encoded" (EC2 user
guide, "Work with instance user data")."""
USER_DATA_MAX_BYTES = USER_DATA_LIMIT

_BUNDLE = f"base64 -d <<'{_HEREDOC_END}' | tar -xz -C /"


_HEREDOC_START = re.compile(r"<<-?\s*'?(\w+)'?\s*$")


def strip_python(source: str) -> str:
    """A Python module without its comments and docstrings (``ast.unparse``): the same code in
    fewer bytes of user data. The commented module ships in the package."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[:1] = [ast.Pass()] if len(body) == 1 else []
    return ast.unparse(tree) + "\n"


def strip_comments(script: str) -> str:
    """A bash script without its comment lines (the shebang and heredoc bodies kept as they
    are): what runs is unchanged, and the user data stays within EC2's 16 KB. The commented
    script ships in the package (``gunicorn_alb.userdata``)."""
    lines, heredoc = [], None
    for number, line in enumerate(script.splitlines()):
        if heredoc is not None:
            lines.append(line)
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if number > 0 and line.lstrip().startswith("#"):
            continue
        lines.append(line)
        match = _HEREDOC_START.search(line)
        heredoc = match.group(1) if match else None
    return "\n".join(lines) + "\n"


def _bundle(files: dict[str, str]) -> str:
    """A gzip-compressed tar of ``files`` (deterministic: no timestamps, root-owned), base64
    in 76-character lines."""
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o755 if path.startswith("/usr/local/sbin/") else 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    text = base64.b64encode(raw.getvalue()).decode()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def render_user_data_body(config: InstanceConfig) -> str:
    """The user data after its shebang: unpacks the static files (:data:`PACKED_PATHS`), writes
    the others with quoted heredocs, then runs the boot script. CDK's
    ``UserData.for_linux(shebang=USER_DATA_SHEBANG)`` adds the first line."""
    lines = [
        "# User data written by the gunicorn-alb construct: drops the files below, then runs",
        f"# {BOOT_SCRIPT_PATH}, which derives the coupled timeouts and starts Gunicorn.",
        "set -euo pipefail",
        "umask 022",
    ]
    files = render_files(config)
    packed = {
        path: content
        for path, content in files.items()
        if path in PACKED_PATHS and "${Token[" not in content
    }
    if packed:
        lines += [
            f"# A gzip-compressed tar of {', '.join(packed)}",
            _BUNDLE,
            _bundle(packed),
            _HEREDOC_END,
        ]
    for path, content in files.items():
        if path in packed:
            continue
        if _HEREDOC_END in content:
            raise ValueError(f"{path} contains the heredoc delimiter {_HEREDOC_END}")
        lines += [
            f"mkdir -p {path.rsplit('/', 1)[0]}",
            f"cat > {path} <<'{_HEREDOC_END}'",
            content.rstrip("\n"),
            _HEREDOC_END,
        ]
    lines += [
        f"chmod 0755 {' '.join(p for p in files if p.startswith('/usr/local/sbin/'))}",
        f"exec {BOOT_SCRIPT_PATH} {BOOT_ENV_PATH}",
    ]
    return "\n".join(lines)


def written_file(user_data: str, path: str) -> str | None:
    """What ``user_data`` writes to ``path`` (the inverse of :func:`render_user_data_body`;
    without the final newline), or None when it writes no such file."""
    match = re.search(
        rf"^cat > {re.escape(path)} <<'(\w+)'\n(.*?)\n\1$", user_data, re.MULTILINE | re.DOTALL
    )
    if match:
        return match.group(2)
    bundle = re.search(
        rf"^{re.escape(_BUNDLE)}\n(.*?)\n{_HEREDOC_END}$", user_data, re.MULTILINE | re.DOTALL
    )
    if bundle is None:
        return None
    data = io.BytesIO(base64.b64decode(bundle.group(1)))
    with tarfile.open(fileobj=data, mode="r:gz") as tar:
        try:
            member = tar.extractfile(path.lstrip("/"))
        except KeyError:
            return None
        assert member is not None
        return member.read().decode().rstrip("\n")


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of boot.env or coupling.env; comments skipped, quotes dropped."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
            env[key] = value[1:-1] if quoted else value
    return env


def render_user_data(config: InstanceConfig) -> str:
    """The whole user data, exactly as the launch template carries it."""
    return f"{USER_DATA_SHEBANG}\n{render_user_data_body(config)}"
