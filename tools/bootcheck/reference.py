"""The boot check of the reference app: each variant synthesizes this repository's app
(``cdk synth -c ...`` with the pinned CLI) and boots its service with the package's machinery
(``gunicorn_alb.bootcheck``), the way ``gunicorn-alb boot-check`` boots a user's own stack.

    .venv/bin/python -m tools.bootcheck [--variant NAME]... [--runs N] [--keep] [--work-dir DIR]
                                        [--before-wheelhouse]

The variants boot in parallel, one container each. Prints each variant's boot-to-signal seconds
(the median over ``--runs``). ``make boot-check`` runs it; ``tests/bootcheck`` boots every
variant once.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gunicorn_alb.bootcheck import app_checks, assembly, bootcheck, drain_checks, rootfs, stack
from gunicorn_alb.bootcheck.bootcheck import Variant
from gunicorn_alb.bootcheck.stack import BootCheckError, Synth

ROOT = Path(__file__).resolve().parents[2]
SYNTH_TIMEOUT_SECONDS = 600
HOST = f"gunicorn-alb-0123456789.{stack.REGION}.elb.{stack.URL_SUFFIX}"
"""The load balancer's name in the boot check's deployment: the Host the examples accept."""


@dataclass(frozen=True)
class ReferenceVariant(Variant):
    """A variant of the reference app: its ``cdk synth`` context, and the expectations the
    reference app sets independently of the template it synthesizes."""

    worker_class: str | None = "gthread"
    workers_per_cpu: int | None = 2
    keepalive_margin: int | None = 5
    health_body: str | None = "ok\n"
    context: dict[str, str] = field(default_factory=dict)
    """``cdk synth -c KEY=VALUE``."""

    @property
    def synth_key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.context.items())) or "default"


DRAIN = {
    "terminationHookSeconds": "4300",
    "terminationCommand": drain_checks.TERMINATION_COMMAND,
}
"""``-c terminationHookSeconds=4300 -c terminationCommand=...``: the termination drain, on the
default variant only (its watcher in several containers at once meets this host's cgroup v1:
systemd in a container then fails to kill the watcher's control group after each run)."""

VARIANTS = (
    ReferenceVariant(
        "default",
        "reference stack, IdleTimeoutSeconds at its default 60, with the termination drain "
        "(-c terminationHookSeconds=4300 -c terminationCommand=...)",
        60,
        context=DRAIN,
    ),
    ReferenceVariant(
        "context-120",
        "cdk synth -c idleTimeoutSeconds=120, parameter left at its default; ten environment "
        "values of 1000 characters (-c environmentFile=long_environment.json)",
        120,
        context={
            "idleTimeoutSeconds": "120",
            "environmentFile": str(Path(__file__).with_name("long_environment.json")),
        },
    ),
    ReferenceVariant(
        "parameter-300-flaky",
        "parameter mode: IdleTimeoutSeconds=300 as with cdk deploy --parameters; the first attempt "
        "of every network step fails (dnf, aws s3 cp, cfn-signal): the boot retries each and "
        "succeeds (RETRY_DELAY_SECONDS=1: the same backoff, shorter waits)",
        300,
        parameters={"IdleTimeoutSeconds": "300"},
        flaky_network=True,
        retry_delay_seconds=1,
    ),
    ReferenceVariant(
        "broken-app",
        "an import error in the app asset's app.py, HEALTH_WAIT_SECONDS=5",
        60,
        broken_app=True,
        health_wait_seconds=5,
    ),
    ReferenceVariant(
        "example-django",
        "the Django example (cdk synth -c example=django): DJANGO_SECRET_KEY from Secrets "
        "Manager and GREETING from SSM read at boot, collectstatic as the release step",
        60,
        context={"example": "django"},
        app=app_checks.AppExpectations(
            host=HOST,
            page_shows="GREETING",
            static_file="example/site.css",
            # examples/django/app/mysite/settings.py: STATIC_ROOT = $STATE_DIRECTORY/static
            static_root="/var/lib/gunicorn-app/static",
        ),
    ),
    ReferenceVariant(
        "example-fastapi",
        "the FastAPI example (cdk synth -c example=fastapi): an ASGI app from a factory "
        "(main:create_app()) under uvicorn's Gunicorn worker, pydantic-core's compiled wheel",
        60,
        context={"example": "fastapi"},
        worker_class="uvicorn_worker.UvicornWorker",
        app=app_checks.AppExpectations(
            host=HOST,
            # examples/fastapi/app/main.py: the stage comes from the `environment` prop
            page_contains='"stage":"example"',
        ),
    ),
)


# --- Synthesis with the pinned CLI --------------------------------------------------------------


def synth_command(context: dict[str, str], outdir: Path) -> list[str]:
    """`npx cdk synth` of the reference app with the pinned CLI, into ``outdir``."""
    command = ["npx", "cdk", "synth", "--no-notices", "--quiet", "-o", str(outdir)]
    for key, value in sorted(context.items()):
        command += ["-c", f"{key}={value}"]
    return command


def synth_env() -> dict[str, str]:
    """The pinned CLI and Node 22 first on PATH, and no AWS credentials."""
    return {
        **os.environ,
        "PATH": f"{ROOT / 'node_modules/.bin'}:{ROOT / '.venv/bin'}:{os.environ.get('PATH', '')}",
        "JSII_NODE": str(ROOT / "node_modules/.bin/node"),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        # No AWS account anywhere: synth must not need credentials.
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_PROFILE": "",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def synthesize_contexts(contexts: Mapping[str, dict[str, str]], work: Path) -> dict[str, Synth]:
    """``cdk synth`` once per context (``-c`` values by a key), in parallel; each assembly's one
    service, found as ``gunicorn-alb boot-check`` finds a user's (``assembly.py``)."""
    if not (ROOT / "node_modules/.bin/cdk").exists():
        raise BootCheckError("the pinned CDK CLI is missing: run `make setup` (npm ci)")
    started: dict[str, tuple[subprocess.Popen[str], Path, list[str]]] = {}
    for key, context in contexts.items():
        outdir = work / f"cdk.out-{re.sub(r'[^A-Za-z0-9]+', '-', key)}"
        command = synth_command(context, outdir)
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=synth_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started[key] = (process, outdir, command)
    synths = {}
    for key, (process, outdir, command) in started.items():
        try:
            output, _ = process.communicate(timeout=SYNTH_TIMEOUT_SECONDS)
        except BaseException:
            for other, _, _ in started.values():
                other.kill()
            raise
        if process.returncode != 0:
            raise BootCheckError(
                f"`{shlex.join(command)}` failed (exit {process.returncode}):\n{output[-3000:]}"
            )
        synths[key] = assembly.load(assembly.select(outdir, assembly.services(outdir)))
    return synths


def synthesize(variants: Sequence[ReferenceVariant], work: Path) -> dict[str, Synth]:
    """``cdk synth`` once per distinct context, in parallel; keyed by ReferenceVariant.synth_key."""
    return synthesize_contexts({v.synth_key: v.context for v in variants}, work)


# --- The command --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bootcheck",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    names = [v.name for v in VARIANTS]
    parser.add_argument(
        "--variant", action="append", choices=names, help="run only these (repeatable)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="boots per variant (the median is reported; 3)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the boots' folders (kept on failure anyway)"
    )
    parser.add_argument("--work-dir", type=Path, help="put the boots' folders here (kept)")
    parser.add_argument(
        "--before-wheelhouse",
        action="store_true",
        help="also boot each variant as before the wheelhouse (pip from PyPI at boot, with the "
        "host's network) and compare the boot times; the boots then run one at a time",
    )
    args = parser.parse_args(argv)
    variants: list[ReferenceVariant] = [
        v for v in VARIANTS if not args.variant or v.name in args.variant
    ]
    if args.before_wheelhouse:
        variants += [
            bootcheck.before_wheelhouse(v)
            for v in variants
            if not (v.broken_app or v.flaky_network)
        ]
    started = time.monotonic()
    try:
        root = bootcheck.preflight()
        built = rootfs.build_seconds()
        print(f"root filesystem {root}" + (f" (built once, in {built:.0f} s)" if built else ""))
        with bootcheck.work_dir(args.work_dir, args.keep) as work:
            print(f"synthesizing {len({v.synth_key for v in variants})} cloud assembly(ies) ...")
            synths = synthesize(variants, work.path)
            print(f"synthesized in {time.monotonic() - started:.1f} s", flush=True)
            boots = [(v, synths[v.synth_key]) for v in variants]
            outcomes = bootcheck.run_variants(boots, work.path, root, max(1, args.runs))
            for outcome in outcomes:
                print(outcome.report())
            failed = sorted({o.name for o in outcomes if not o.ok})
            work.keep = work.keep or bool(failed)
    except BootCheckError as error:
        print(f"boot check: {error}", file=sys.stderr)
        return 2
    print("\n".join(bootcheck.boot_to_signal_summary(outcomes)))
    print(
        f"boot check {'FAILED: ' + ', '.join(failed) if failed else 'passed'}: "
        f"{len(outcomes)} boot(s) in {time.monotonic() - started:.1f} s"
    )
    return 1 if failed else 0
