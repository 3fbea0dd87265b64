"""The checks of the app itself and of what the instances install for it: its directory,
target and requirements file, its configuration (environment, secrets, release step), the
packages built from source, and the wheelhouse resolved for it. Gathered by
:func:`gunicorn_alb.validation.check_props`, which reports every problem at once."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2

from gunicorn_alb import app_config, app_target, rendering, timeouts, wheelhouse
from gunicorn_alb.props import ServiceProps
from gunicorn_alb.secret import check_secrets

_REQUIREMENTS = re.compile(r"^[A-Za-z0-9._/-]+$")


def check_app_config(props: ServiceProps) -> list[str]:
    """The app's environment, secrets and release step (:mod:`gunicorn_alb.app_config`)."""
    return [
        *app_config.check_environment(props.environment, cdk.Token.is_unresolved),
        *check_secrets(props.secrets, props.environment),
        *app_config.check_pre_start_command(props.pre_start_command, cdk.Token.is_unresolved),
        *app_config.check_pre_start_command(
            props.termination_command, cdk.Token.is_unresolved, "termination_command"
        ),
    ]


def check_app(
    problems: list[str], app_directory: str | None, wsgi_app: str, app_requirements: str | None
) -> tuple[Path | None, str]:
    """Return the app's directory and requirements file; append any problem found."""
    target_problems = app_config.check_app_target("wsgi_app", wsgi_app)
    problems += target_problems
    if app_directory is not None and not isinstance(app_directory, str | os.PathLike):
        problems.append(f"app_directory must be a path (a string), got {app_directory!r}")
        return None, ""
    if app_requirements is not None and not isinstance(app_requirements, str):
        problems.append(
            f"app_requirements must be a path inside app_directory (a string), got "
            f"{app_requirements!r}"
        )
        app_requirements = None
    if app_directory is None:
        directory = Path(str(resources.files("gunicorn_alb").joinpath("sample_app")))
    else:
        directory = Path(app_directory)
        if not directory.is_dir():
            problems.append(f"app_directory must be an existing directory, got {app_directory!r}")
            return None, ""
    if not target_problems:
        module = app_config.target_module(wsgi_app).replace(".", "/")
        if not (
            (directory / f"{module}.py").is_file() or (directory / module / "__init__.py").is_file()
        ):
            problems.append(
                f"wsgi_app {wsgi_app!r} names module {module.replace('/', '.')!r}, but "
                f"app_directory {str(directory)!r} has no {module}.py or {module}/__init__.py"
            )
    if app_requirements is None:
        return directory, "requirements.txt" if (directory / "requirements.txt").is_file() else ""
    if not _REQUIREMENTS.match(app_requirements) or ".." in app_requirements.split("/"):
        problems.append(
            "app_requirements must be a relative path inside app_directory, "
            f"got {app_requirements!r}"
        )
    elif not (directory / app_requirements).is_file():
        problems.append(
            f"app_requirements {app_requirements!r} is not a file in app_directory "
            f"{str(directory)!r}"
        )
    return directory, app_requirements


def check_target_defined(
    problems: list[str], directory: Path | None, wsgi_app: str
) -> list[tuple[str, str]]:
    """The app target names what its module defines (:mod:`gunicorn_alb.app_target`, read
    statically); append the problems, return what a static read cannot decide as advisories."""
    if directory is None or app_config.check_app_target("wsgi_app", wsgi_app):
        return []  # no directory, or a malformed target: already a problem
    report = app_target.check_target("wsgi_app", wsgi_app, directory)
    problems += report.problems
    return [("app-target-unchecked", message) for message in report.advisories]


_DISTRIBUTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_source_builds(props: ServiceProps) -> list[str]:
    names = list(props.build_from_source)
    problems = [
        f"build_from_source must hold distribution names such as psycopg2, got {name!r}"
        for name in names
        if not isinstance(name, str) or not _DISTRIBUTION.match(name)
    ]
    selection = props.vpc_subnets
    if names and selection is not None and selection.subnet_type == ec2.SubnetType.PRIVATE_ISOLATED:
        problems.append(
            "build_from_source needs a route to PyPI at boot, but vpc_subnets selects "
            "PRIVATE_ISOLATED subnets: use packages with wheels for the instances, or "
            "subnets with a NAT gateway"
        )
    return problems


def resolve_wheelhouse(
    props: ServiceProps, machine: str, requirements: Path | None
) -> tuple[Path | None, list[str]]:
    """The wheelhouse of the pinned Gunicorn, the worker's packages and the app's requirements,
    for the instances' machine; a missing wheel is a problem like any other: returns the folder,
    or None and the problem."""
    spec = wheelhouse.WheelhouseSpec(
        requirements=(
            f"gunicorn=={rendering.GUNICORN_VERSION}",
            *timeouts.KEEPALIVE_WORKER_CLASSES[props.worker_class],
        ),
        requirement_files=(requirements,) if requirements is not None else (),
        architecture=machine,
        build_from_source=tuple(props.build_from_source),
    )
    try:
        return wheelhouse.build(spec), []
    except wheelhouse.WheelhouseError as error:
        if error.network:
            return None, [f"wheelhouse: {error}"]
        pinned = {wheelhouse.normalize(r.split("=")[0]) for r in spec.requirements}
        source = (
            "worker_class"
            if error.requirement in pinned or requirements is None
            else "app_requirements"
        )
        return None, [f"{source}: {error}"]
