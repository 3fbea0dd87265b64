"""Boot check: boot a synthesized stack's instance user data under a real systemd and check that it
brings Gunicorn up the way an EC2 instance would. ``gunicorn-alb boot-check`` (``cli.py``) boots
a service of the user's own cloud assembly; ``tools/bootcheck`` boots the reference app's variants.

For each boot the check takes the launch template's user data exactly as the template holds it
(``assembly.py`` finds it), substitutes the CloudFormation tokens with the values a stack would
get (``stack.py``), and boots a container with systemd 252 as PID 1 (``systemd-nspawn -b`` on a
cached Debian 12 root filesystem; ``rootfs.py``, ``container.py``) whose oneshot unit runs the
user data as cloud-init's cloud-final.service does (``instance.py``). The unit, its drop-in, the
hardening, ``Type=notify`` and ``Restart=`` are systemd's own. The container has no network but
its loopback. Only dnf, cfn-signal and the AWS CLI and the CloudWatch agent's control script are
stand-ins (``shims.py``), each recording its calls. The checks (``checks.py``, ``running.py``)
cover the signal, the written files, the agent's configuration, the unit as systemd runs it, the
health path, the access log's format with an ALB trace id, a real logrotate run, the keep-alive a
running worker holds, a restart after the main process is killed, and a graceful stop with a
request in flight (with the termination drain: through the group's termination, played in the
instance metadata stand-in ``imds.py``; ``drain_checks.py``); for an app with an environment,
secrets or a release step, ``app_checks.py`` covers the secrets as the boot read them (made-up
values, never a real read), the running Gunicorn's environment, the root-only environment files,
the release step, the app's own page, and that no secret value shows anywhere the boot writes or
logs.

Needs root, systemd-nspawn (``systemd-container``), nsenter, overlayfs and, once per machine,
mmdebstrap and a Debian mirror to build the root filesystem (``prerequisites.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from gunicorn_alb import delivery, rendering
from gunicorn_alb.bootcheck import (
    app_checks,
    checks,
    drain_checks,
    log_checks,
    prerequisites,
    rootfs,
    running,
    stack,
)
from gunicorn_alb.bootcheck.checks import Outcome
from gunicorn_alb.bootcheck.container import ContainerError
from gunicorn_alb.bootcheck.instance import Instance
from gunicorn_alb.bootcheck.stack import BootCheckError, Synth

HERE = Path(__file__).resolve().parent
# vCPUs of the instance types the reference stack may use: the container gets as many CPUs, so
# Gunicorn's `workers = CPUs * workers_per_cpu + 1` comes out as on the instance.
INSTANCE_VCPUS = {"t3.micro": 2, "t3.small": 2, "t3.medium": 2, "t3.large": 2, "t3.xlarge": 4}
BOOT_TIMEOUT_SECONDS = 900
"""Upper bound for one boot (the broken-app variant's boot is bounded by its health wait)."""
CONTAINER_PYTHON_VERSION = "3.11"
"""Debian 12's Python, which dnf's stand-in offers as the python3.X the boot asks for."""


@dataclass(frozen=True)
class Variant:
    """One boot of a stack, and what it is to show beyond the stack's own settings."""

    name: str
    description: str
    expected_idle: int | None = None
    """The idle timeout the boot must derive keep-alive from; None: the stack's own (boot.env's
    IDLE_TIMEOUT_SECONDS as the deployment resolves it)."""
    parameters: dict[str, str] = field(default_factory=dict)
    """Stack parameters, as ``cdk deploy --parameters NAME=VALUE`` gives them."""
    broken_app: bool = False
    """Break the app asset (an import error in its WSGI module): the boot must signal failure."""
    health_wait_seconds: int | None = None
    """Replaces HEALTH_WAIT_SECONDS in the user data's boot.env."""
    retry_delay_seconds: int | None = None
    """Replaces RETRY_DELAY_SECONDS (the first wait of a retried network step) in boot.env."""
    flaky_network: bool = False
    """The stand-ins fail the first attempt of every network step (dnf, ``aws s3 cp``,
    cfn-signal): the boot must retry each one and still succeed."""
    worker_class: str | None = None
    """The Gunicorn worker class expected; None: the one the stack configures."""
    workers_per_cpu: int | None = None
    """Gunicorn workers per CPU expected; None: the stack's own."""
    keepalive_margin: int | None = None
    """Seconds keep-alive must exceed the idle timeout by; None: the stack's own."""
    health_body: str | None = None
    """What the health path must answer besides 200 (the ALB's matcher); None: any body."""
    app: app_checks.AppExpectations | None = None
    """What the app shows once booted (its page, its release step's work)."""
    from_pypi: bool = False
    """Before the wheelhouse, for the boot-time comparison (``--before-wheelhouse``): the S3
    stand-in serves an empty wheelhouse and boot.env's BUILD_FROM_SOURCE lets pip use PyPI, so
    pip resolves and downloads every package at boot, as each boot did before the wheelhouse.
    The container then shares the host's network (to reach PyPI)."""


# --- One variant --------------------------------------------------------------------------------


def al2023_packages() -> list[str]:
    lines = (HERE / "al2023_packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def run_variant(variant: Variant, synth: Synth, work: Path, root: Path) -> Outcome:
    """Boot VARIANT's user data in a container on ROOT (the cached root filesystem), check it,
    power the container off."""
    started = time.monotonic()
    outcome = Outcome(variant.name, variant.description, work)
    user_data = stack.resolve_user_data(synth, variant.parameters)
    text = user_data.text
    if variant.health_wait_seconds is not None:
        text = stack.set_boot_env(text, "HEALTH_WAIT_SECONDS", str(variant.health_wait_seconds))
    if variant.retry_delay_seconds is not None:
        text = stack.set_boot_env(text, "RETRY_DELAY_SECONDS", str(variant.retry_delay_seconds))
    if variant.from_pypi:
        text = stack.set_boot_env(text, "BUILD_FROM_SOURCE", '"all"')
    boot_env = delivery.parse_env(stack.heredoc(text, rendering.BOOT_ENV_PATH))
    outcome.notes.append(
        f"user data of {user_data.launch_template_id} ({len(text)} bytes); substituted: "
        + "; ".join(user_data.substituted)
    )
    expected = _expected(variant, boot_env)
    checks.check_template(outcome, synth.template, boot_env)
    checks.check_log_group(outcome, synth.template, boot_env, user_data.log_groups)
    health_url = f"http://127.0.0.1:{boot_env['APP_PORT']}{boot_env['HEALTH_CHECK_PATH']}"

    if work.exists():
        raise BootCheckError(f"{work} exists: give the boot check an empty --work-dir")
    work.mkdir(parents=True)
    instance = Instance(work, root, _machine(variant.name, work.name), variant.from_pypi)
    app_key, app_source = stack.asset_source(synth, boot_env["APP_ASSET_URL"])
    wheelhouse_key, wheelhouse = stack.asset_source(synth, boot_env["WHEELHOUSE_URL"])
    # Before the wheelhouse (from_pypi) the boot gets an empty one; else the synth's, as the
    # container's Python installs it.
    if variant.from_pypi:
        container_wheels = work / "empty-wheelhouse"
        container_wheels.mkdir()
    else:
        container_wheels = stack.wheelhouse_for_container(
            wheelhouse, CONTAINER_PYTHON_VERSION, rootfs.cache_base() / "bootcheck-wheels"
        )
    app_copy = work / "app-asset"
    success = not variant.broken_app
    missing_module = ""
    if success:
        stack.add_probe(app_source, boot_env["WSGI_APP"], app_copy)
    else:
        missing_module = stack.break_app(app_source, boot_env["WSGI_APP"], app_copy)
    stack.publish_assets(synth, instance.s3, {app_key: app_copy, wheelhouse_key: container_wheels})
    vcpus = INSTANCE_VCPUS.get(user_data.instance_type)
    cpus = sorted(os.sched_getaffinity(0))[: vcpus or 2]
    outcome.notes.append(
        f"instance type {user_data.instance_type}"
        + ("" if vcpus else " (vCPUs unknown to the boot check, assuming 2)")
        + f": the container gets {len(cpus)} CPU(s) {cpus}; {boot_env['PYTHON']} is the "
        f"container's Python {CONTAINER_PYTHON_VERSION}"
        + (
            "; an empty wheelhouse, pip uses PyPI (the host's network)"
            if variant.from_pypi
            else ""
            if container_wheels == wheelhouse
            else f"; its binary wheels for Python {CONTAINER_PYTHON_VERSION}: {container_wheels}"
        )
    )
    secrets = app_checks.fresh_secrets(text)
    if secrets:
        outcome.notes.append(
            "secrets (values made up for this boot, answered by the aws stand-in): "
            + "; ".join(f"{s.name} {s.source} {s.arn} {s.field}".rstrip() for s in secrets)
        )
    hooked = bool(boot_env.get("TERMINATION_HOOK_NAME"))
    drain = (
        drain_checks.settings(
            synth.template, user_data.launch_template_id, boot_env, synth.stack_name
        )
        if hooked
        else {}
    )
    settings = {
        **drain,
        "health_url": health_url,
        "al2023_packages": al2023_packages(),
        "elbv2": user_data.elbv2,
        "fail_first": variant.flaky_network,
        "secret_answers": app_checks.stand_in_answers(secrets),
    }
    instance.prepare(text, settings)
    if drain:
        drain_checks.install_metadata_service(instance)
    try:
        instance.boot(cpus)
        if drain:
            drain_checks.add_metadata_address(outcome, instance)
        instance.wait_for_user_data(BOOT_TIMEOUT_SECONDS)
        checks.check_user_data_ran(outcome, instance, success)
        if instance.user_data is not None and success:
            _check_running_instance(
                outcome, instance, expected, boot_env, len(cpus), secrets, app_source, drain
            )
        elif instance.user_data is not None:
            checks.check_signal(outcome, instance, boot_env, stack.REGION, success=False)
            checks.check_log_agent(outcome, instance, boot_env)
            checks.check_failed_boot(outcome, instance, boot_env, missing_module)
    except (ContainerError, subprocess.TimeoutExpired) as error:
        outcome.check(False, f"the container answered: {error}")
    finally:
        if not outcome.ok:
            outcome.diagnosis = checks.diagnose(instance)
        status = instance.shutdown()
        outcome.check(
            status == 0 or instance.container.stopped_every_unit(),
            f"the container powered off cleanly (systemd-nspawn exit {status})"
            if status == 0
            else "the container's systemd stopped every unit (reached final.target) but its "
            f"last step, systemd-halt.service, did not end it (systemd-nspawn exit {status}; "
            "see console.log)",
        )
    outcome.total_seconds = time.monotonic() - started
    return outcome


def _machine(name: str, run: str) -> str:
    """The container's machine name: a valid host name (letters, digits, hyphens; at most 64
    characters), unique per process and run (a construct path has slashes)."""
    suffix = f"-{os.getpid()}-{run}"
    stem = re.sub(r"[^A-Za-z0-9]+", "-", f"bootcheck-{name}").strip("-")
    return stem[: 64 - len(suffix)] + re.sub(r"[^A-Za-z0-9-]+", "-", suffix)


def _expected(variant: Variant, boot_env: dict[str, str]) -> Variant:
    """The variant with every expectation it leaves open set to the stack's own (boot.env's, as
    the deployment resolves it; gunicorn.conf.py's are read once the instance has it)."""
    idle, margin = variant.expected_idle, variant.keepalive_margin
    return replace(
        variant,
        expected_idle=int(boot_env["IDLE_TIMEOUT_SECONDS"]) if idle is None else idle,
        keepalive_margin=int(boot_env["KEEPALIVE_MARGIN_SECONDS"]) if margin is None else margin,
    )


def _configured(instance: Instance) -> dict[str, str]:
    """The worker class and workers per CPU the instance's gunicorn.conf.py sets (as
    ``rendering.render_gunicorn_conf`` writes them); "" and "0" when it sets none (the checks
    then fail, naming what they found)."""
    text = instance.container.read(rendering.GUNICORN_CONF_PATH)
    worker_class = re.search(r'^worker_class = "([^"]+)"$', text, re.MULTILINE)
    per_cpu = re.search(
        r"^workers = len\(os\.sched_getaffinity\(0\)\) \* (\d+) \+ 1$", text, re.MULTILINE
    )
    return {
        "worker_class": worker_class.group(1) if worker_class else "",
        "workers_per_cpu": per_cpu.group(1) if per_cpu else "0",
    }


def _check_running_instance(
    outcome: Outcome,
    instance: Instance,
    variant: Variant,
    boot_env: dict[str, str],
    cpus: int,
    secrets: list[app_checks.SecretValue],
    app_source: Path,
    drain: dict[str, Any],
) -> None:
    assert variant.expected_idle is not None and variant.keepalive_margin is not None
    configured = _configured(instance)
    worker_class = variant.worker_class or configured["worker_class"]
    workers = cpus * (variant.workers_per_cpu or int(configured["workers_per_cpu"])) + 1
    keepalive = variant.expected_idle + variant.keepalive_margin
    outcome.idle_timeout = variant.expected_idle
    health_url = f"http://127.0.0.1:{boot_env['APP_PORT']}{boot_env['HEALTH_CHECK_PATH']}"
    checks.check_calls(outcome, instance.calls(), boot_env)
    checks.check_log_agent(outcome, instance, boot_env)
    if variant.flaky_network:
        checks.check_retried(outcome, instance.calls(injected=True), instance.calls())
    checks.check_written_files(outcome, instance, variant.expected_idle, keepalive)
    checks.check_signal(outcome, instance, boot_env, stack.REGION, success=True)
    main_pid = running.check_unit(outcome, instance, boot_env)
    running.check_unit_verifies(outcome, instance)
    if main_pid is None:
        return
    running.check_workers(outcome, instance, main_pid, workers)
    running.check_health(outcome, instance, health_url, variant.health_body)
    checks.check_logs_written(outcome, instance)
    log_checks.check_access_log(outcome, instance, health_url, worker_class)
    log_checks.check_log_rotation(outcome, instance, health_url)
    running.check_effective_config(
        outcome,
        instance,
        boot_env["APP_PORT"],
        keepalive,
        boot_env["GUNICORN_VERSION"],
        worker_class,
    )
    checks.check_nothing_left_by_user_data(outcome, instance)
    running.check_coupling_agent(outcome, instance, boot_env)
    app_checks.check_app(
        outcome, instance, main_pid, boot_env["APP_PORT"], secrets, variant.app, app_source
    )
    outcome.notes.append(f"systemd-analyze security: {running.exposure(instance)}")
    running.check_restart(outcome, instance, health_url, variant.health_body, workers, worker_class)
    if drain:  # the group terminates the instance: the drain stops Gunicorn
        drain_checks.check_drain(outcome, instance, boot_env, drain)
    else:
        running.check_graceful_stop(outcome, instance, boot_env["APP_PORT"])
    app_checks.check_no_leaks(outcome, instance, secrets)


# --- Entry points -------------------------------------------------------------------------------


def preflight(log: rootfs.Log = print) -> Path:
    """What the check needs, all named at once (``prerequisites.py``); then the root filesystem
    (built if this machine has none yet)."""
    problems, packages = prerequisites.missing()
    if problems:
        raise BootCheckError(prerequisites.message(problems, packages))
    try:
        return rootfs.ensure(log)
    except rootfs.RootfsError as error:
        raise BootCheckError(str(error)) from None


def run_variants(
    boots: Sequence[tuple[Variant, Synth]], work: Path, root: Path, runs: int = 1
) -> list[Outcome]:
    """Each variant RUNS times; the variants of one run boot in parallel (one container each),
    unless one shares the host's network (``from_pypi``): then one at a time (one port 8000, and
    boot times measured alone)."""
    outcomes: list[Outcome] = []
    parallel = 1 if any(v.from_pypi for v, _ in boots) else len(boots)
    for run in range(1, runs + 1):
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = [
                pool.submit(run_variant, v, synth, work / _folder(v.name) / f"run-{run}", root)
                for v, synth in boots
            ]
            outcomes += [future.result() for future in futures]
    return outcomes


def _folder(name: str) -> str:
    """A folder name for a variant (a construct path has slashes)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def boot_to_signal_summary(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per variant: the median boot-to-signal seconds over its runs; then, for each
    variant booted before the wheelhouse too, the two side by side."""
    lines, medians = [], {}
    for name in dict.fromkeys(o.name for o in outcomes):
        seconds = [o.boot_to_signal for o in outcomes if o.name == name]
        measured = [s for s in seconds if s is not None]
        if measured:
            medians[name] = statistics.median(measured)
        median = f"{medians[name]:.1f} s" if measured else "no signal"
        lines.append(
            f"{name}: boot to signal {median} (median of {len(measured)} run(s): "
            + ", ".join("-" if s is None else f"{s:.1f}" for s in seconds)
            + ")"
        )
    for name, before in medians.items():
        after = medians.get(name.removesuffix(PYPI_SUFFIX))
        if name.endswith(PYPI_SUFFIX) and after is not None:
            lines.append(
                f"{name.removesuffix(PYPI_SUFFIX)}: boot to signal {before:.1f} s with pip "
                f"from PyPI at boot, {after:.1f} s from the wheelhouse ({after - before:+.1f} s)"
            )
    return lines


PYPI_SUFFIX = "-pypi"


_V = TypeVar("_V", bound=Variant)


def before_wheelhouse(variant: _V) -> _V:
    """The variant as it booted before the wheelhouse (:attr:`Variant.from_pypi`)."""
    return replace(
        variant,
        name=variant.name + PYPI_SUFFIX,
        description=variant.description + "; before the wheelhouse: pip from PyPI at boot",
        from_pypi=True,
    )


@dataclass
class WorkDir:
    path: Path
    keep: bool
    """Set it to keep a temporary folder (a failure does, for its logs)."""


@contextmanager
def work_dir(path: Path | None, keep: bool) -> Iterator[WorkDir]:
    """The given folder (always kept), or a temporary one removed unless ``keep`` is set."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield WorkDir(path, keep=True)
        return
    work = WorkDir(Path(tempfile.mkdtemp(prefix="bootcheck-")), keep)
    try:
        yield work
    finally:
        if work.keep:
            print(f"kept the boots' folders in {work.path} (each has log/ and container/)")
        else:
            shutil.rmtree(work.path, ignore_errors=True)


if __name__ == "__main__":
    # This module was the command once: say where it went rather than exit 0 having booted nothing.
    raise SystemExit(
        "the boot check's command is `gunicorn-alb boot-check` (your stack's cdk.out); in this "
        "repository, `make boot-check` or `python -m tools.bootcheck` boots the reference variants"
    )
