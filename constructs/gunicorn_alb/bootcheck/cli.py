"""``gunicorn-alb boot-check``: boot a service of your own cloud assembly before you deploy it.

    cdk synth
    sudo .venv/bin/gunicorn-alb boot-check [--app cdk.out] [--stack NAME] [--construct PATH]
                                           [--parameters NAME=VALUE]... [--runs N] [--keep]
                                           [--work-dir DIR]

Reads the cloud assembly ``cdk synth`` wrote (it synthesizes nothing), finds the
``ApplicationLoadBalancedGunicornService`` to boot (``assembly.py``), and boots that stack's own
user data, app asset and wheelhouse under a real systemd in a container without network
(``bootcheck.run_variant``): the checks ``make boot-check`` makes for the reference app. Secrets
get made-up values (never a real read); CloudFormation tokens resolve to stand-ins.

Prints each check, then the boot-to-signal seconds, the health path's answer and the keep-alive
read back from the running Gunicorn; on failure the step that failed and the boot log and journal
lines that explain it. Exit 0 when every check passed, 1 when one failed, 2 when the check cannot
run (a missing prerequisite, no such service, a template it cannot resolve).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn_alb.bootcheck import prerequisites

if TYPE_CHECKING:
    from gunicorn_alb.bootcheck.checks import Outcome

PROG = "gunicorn-alb boot-check"


def _assignment(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return text


def add_parser(commands: Any) -> None:
    """Register ``boot-check`` on the ``gunicorn-alb`` command's subparsers."""
    parser = commands.add_parser(
        "boot-check",
        help="boot your synthesized stack's instance under systemd in a container (Linux, root)",
        description="Boot a service of your cloud assembly (`cdk synth` first) under a real "
        "systemd in a container without network, and check it the way `make boot-check` checks "
        "the reference app. Needs Linux, root, systemd-nspawn, nsenter, overlayfs (and mmdebstrap "
        "until its root filesystem is cached).",
    )
    parser.add_argument(
        "--app",
        type=Path,
        default=Path("cdk.out"),
        metavar="DIR",
        help="the cloud assembly `cdk synth` wrote (default: %(default)s)",
    )
    parser.add_argument(
        "--stack", metavar="NAME", help="the stack to boot, when the assembly has several"
    )
    parser.add_argument(
        "--construct",
        metavar="PATH",
        help="the service's construct path (whole, or below its stack), when a stack has several",
    )
    parser.add_argument(
        "--parameters",
        action="append",
        default=[],
        type=_assignment,
        metavar="NAME=VALUE",
        help="a stack parameter's value, as `cdk deploy --parameters` (default: its Default)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, metavar="N", help="boots (the median is reported; 1)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the boot's folder (kept on failure anyway)"
    )
    parser.add_argument(
        "--work-dir", type=Path, metavar="DIR", help="put the boot's folder here (kept)"
    )


def run(args: argparse.Namespace) -> int:
    """The command: 0 passed, 1 a check failed, 2 the check cannot run."""
    problems, packages = prerequisites.missing()
    if problems:
        print(prerequisites.message(problems, packages), file=sys.stderr)
        return 2
    # Imported once the machine can run it (the machinery is POSIX and Linux only; `gunicorn-alb
    # render` and `doctor` load this module on any system).
    from gunicorn_alb.bootcheck import assembly, bootcheck
    from gunicorn_alb.bootcheck.stack import BootCheckError

    started = time.monotonic()
    try:
        app = Path(args.app)
        service = assembly.select(app, assembly.services(app), args.stack, args.construct)
        synth = assembly.load(service)
        root = bootcheck.preflight()
    except BootCheckError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    variant = bootcheck.Variant(
        service.construct_path,
        f"{service.stack} from {app} (launch template {service.launch_template})",
        parameters=dict(pair.split("=", 1) for pair in args.parameters),
    )
    print(f"booting {service.construct_path} ({service.stack} in {app}) ...", flush=True)
    with bootcheck.work_dir(args.work_dir, args.keep) as work:
        try:
            outcomes = bootcheck.run_variants(
                [(variant, synth)], work.path, root, max(1, args.runs)
            )
        except BootCheckError as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            return 2
        for outcome in outcomes:
            print(outcome.report())
        work.keep = work.keep or not all(o.ok for o in outcomes)
    print("\n".join(summary(outcomes, time.monotonic() - started)))
    return 0 if all(o.ok for o in outcomes) else 1


def summary(outcomes: list[Outcome], seconds: float) -> list[str]:
    """The few lines a user reads: passed or not, boot to signal, the health answer, the
    keep-alive; for a failure, the failed check and step."""
    ok = all(o.ok for o in outcomes)
    last = outcomes[-1]
    signals = [o.boot_to_signal for o in outcomes if o.boot_to_signal is not None]
    median = f"{statistics.median(signals):.1f} s" if signals else "no signal"
    lines = [
        f"{PROG} {'passed' if ok else 'FAILED'}: {last.name}, {len(outcomes)} boot(s) in "
        f"{seconds:.1f} s",
        f"  boot to signal: {median}"
        + (f" (median of {len(signals)})" if len(outcomes) > 1 else ""),
        f"  health path:    {last.health or 'no answer'}",
        "  keep-alive:     "
        + (
            f"{last.keepalive} s, read back from a running Gunicorn worker (ALB idle timeout "
            f"{last.idle_timeout} s)"
            if last.keepalive is not None
            else "not read (Gunicorn did not run)"
        ),
    ]
    for outcome in outcomes:
        if not outcome.ok:
            failed = [what for passed, what in outcome.results if not passed]
            lines.append(f"  failed check:   {failed[0].splitlines()[0] if failed else '?'}")
            lines += [f"  {line}" for line in outcome.diagnosis[:1]]
            lines.append(f"  logs:           {outcome.work}")
    return lines
