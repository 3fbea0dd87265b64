"""Render the files an instance receives: ``boot.env``, ``gunicorn.conf.py``, the systemd units,
the app's files. No CDK import: values are plain strings or numbers, or CloudFormation token
strings that CDK later renders through ``Fn::Join``. How they reach the instance (the user data
and the InstanceFiles asset) is :mod:`gunicorn_alb.delivery`.

The boot script (``userdata/boot.sh``) is static; only the small config files are templated, with
``string.Template.substitute`` (a missing key fails).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from string import Template

from gunicorn_alb import app_config, instance_logs, termination, timeouts
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
    instance_files_url: str = ""
    """The S3 URL of the InstanceFiles asset (:mod:`gunicorn_alb.delivery`) the user data
    fetches: the files below that hold no deploy-time value."""
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
    termination_hook_name: str = ""
    """The termination hook the drain watcher completes (:mod:`gunicorn_alb.termination`);
    empty: no hook, no watcher."""
    termination_command: str = ""
    """The app's clean-up on termination; empty for none."""


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
        "instance_files_url": config.instance_files_url,
        "build_from_source": " ".join(config.build_from_source),
        "cfn_stack": config.cfn_stack,
        "cfn_resource": config.cfn_resource,
        "cfn_region": config.cfn_region,
        "target_group_arn": config.target_group_arn,
        "aws_region": config.aws_region,
        "forwarded_allow_ips": config.forwarded_allow_ips,
        "log_group_name": config.log_group_name,
        "termination_hook_name": config.termination_hook_name,
        "termination_completion": termination.COMPLETION_BUDGET_SECONDS,
        "termination_cleanup_unit": termination.CLEANUP_UNIT if config.termination_command else "",
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
    return _render("boot.env.tmpl", values)


def render_gunicorn_conf(config: InstanceConfig) -> str:
    """``/etc/gunicorn-alb/gunicorn.conf.py``."""
    t = config.timeouts
    return _render(
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
    return _app_oneshot_unit(
        config, "gunicorn-app-prestart.service.tmpl", PRE_START_TIMEOUT_SECONDS
    )


def _app_oneshot_unit(config: InstanceConfig, template: str, timeout: int) -> str:
    """A oneshot unit of the app's command (release step, clean-up): the app's user and
    environment files (in ``template``) and the very hardening block of ``gunicorn-app.service``."""
    unit = render_unit(config)
    start, end = unit.find("\n# Hardening"), unit.find("\n[Install]")
    if start < 0 or end < start:
        raise ValueError("gunicorn-app.service.tmpl has no '# Hardening' block before [Install]")
    return _render(
        template,
        {
            "health_check_path": config.health_check_path,
            "timeout": timeout,
            "hardening": unit[start + 1 : end].rstrip("\n"),
        },
    )


def render_termination_files(config: InstanceConfig) -> dict[str, str]:
    """The drain watcher with its units (with a termination hook) and the app's clean-up on
    termination: its command in ``termination.env`` and its oneshot unit (with a command)."""
    if not config.termination_hook_name:
        return {}
    files = {
        termination.WATCHER_PATH: _resource("drain.sh"),
        termination.WATCHER_SERVICE_PATH: _resource("gunicorn-alb-drain.service"),
        termination.WATCHER_TIMER_PATH: _resource("gunicorn-alb-drain.timer"),
    }
    if config.termination_command:
        files[termination.CLEANUP_ENV_PATH] = (
            "# The app's clean-up (termination_command), run by gunicorn-app-termination.service.\n"
            + app_config.env_assignment("GUNICORN_ALB_TERMINATION", config.termination_command)
            + "\n"
        )
        files[termination.CLEANUP_UNIT_PATH] = _app_oneshot_unit(
            config, "gunicorn-app-termination.service.tmpl", termination.CLEANUP_TIMEOUT_SECONDS
        )
    return files


def coupling_agent() -> str:
    """The static coupling agent script, as shipped."""
    return _resource("coupling.sh")


def render_cloudwatch_agent_config() -> str:
    """The CloudWatch agent's configuration (:func:`gunicorn_alb.instance_logs.agent_config`):
    Gunicorn's logs and the boot log, one stream per instance, into the log group whose name
    gunicorn-alb-boot puts in at boot (``CLOUDWATCH_LOG_GROUP``)."""
    return instance_logs.render_agent_config()


def render_files(config: InstanceConfig) -> dict[str, str]:
    """Every file an instance receives, by absolute path, as rendered (with the templates'
    comments; :func:`gunicorn_alb.delivery.split_files` gives them as received). The coupling
    agent and its units come only with a target group to follow."""
    files = {
        BOOT_ENV_PATH: render_boot_env(config),
        GUNICORN_CONF_PATH: render_gunicorn_conf(config),
        UNIT_PATH: render_unit(config),
        BOOT_SCRIPT_PATH: boot_script(),
        APP_ENV_PATH: render_app_env(config),
        instance_logs.LOGROTATE_PATH: _resource("gunicorn-app.logrotate"),
    }
    if config.worker_class in WORKER_SUBCLASSES:  # validation refuses any other
        module = worker_module_path(config.worker_class)
        files[module] = _resource(module.rsplit("/", 1)[1])
    if config.target_group_arn:
        files[COUPLING_AGENT_PATH] = coupling_agent()
        files[COUPLING_SERVICE_PATH] = _resource("gunicorn-alb-coupling.service")
        files[COUPLING_TIMER_PATH] = _resource("gunicorn-alb-coupling.timer")
    if config.secrets:
        files[SECRETS_LIST_PATH] = render_secrets_list(config)
    if config.pre_start_command:
        files[PRE_START_ENV_PATH] = render_pre_start_env(config)
        files[PRE_START_UNIT_PATH] = render_pre_start_unit(config)
    if config.log_group_name:
        files[instance_logs.AGENT_CONFIG_PATH] = render_cloudwatch_agent_config()
    files.update(render_termination_files(config))
    return files
