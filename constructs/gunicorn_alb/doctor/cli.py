"""The ``gunicorn-alb-doctor`` command line: parse, read and check the fleet, print, exit code.

``gunicorn-alb-doctor [--stack S | --load-balancer LB] ...`` checks a fleet (:func:`check`).
Other commands register in :data:`SUBCOMMANDS` and run as ``gunicorn-alb-doctor NAME ...``: the
fleet check's arguments always start with an option, so a first word that is a registered name
is never one of them, and today's invocations keep their meaning.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable

from gunicorn_alb.doctor import probe
from gunicorn_alb.doctor.aws import aws_errors, connect
from gunicorn_alb.doctor.fleet import diagnose
from gunicorn_alb.doctor.model import PROG, DoctorError
from gunicorn_alb.doctor.report import to_json, to_text

WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400}
WINDOW_MAX_SECONDS = 15 * 86400

Command = Callable[[list[str]], int]
SUBCOMMANDS: dict[str, Command] = {"probe": probe.main}
"""``gunicorn-alb-doctor NAME ARGS...`` runs ``SUBCOMMANDS[NAME](ARGS)``, the exit code."""
SUBCOMMAND_PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {"probe": probe.build_parser}
"""Each subcommand's parser, for the fleet check's ``--help``."""


def parse_window(text: str) -> tuple[str, int]:
    """``30m``, ``3h``, ``1d`` -> (text, seconds); 1 minute to 15 days."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"window must be a number and a unit m, h or d (e.g. 30m, 3h), got {text!r}"
        )
    seconds = int(match.group(1)) * WINDOW_UNITS[match.group(2)]
    if not 60 <= seconds <= WINDOW_MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"window must be between 1m and 15d, got {text!r}")
    return text.strip(), seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a deployed ALB + Gunicorn fleet: keep-alive above the live idle "
        "timeout, worker class, max_requests jitter, drain order, ELB 502/504 counts.",
        epilog=_subcommands_help()
        + "\n\nExit codes: 0 healthy, 1 findings, 2 usage or AWS access errors.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="CloudFormation stack name: checks each ALB in it")
    target.add_argument("--load-balancer", help="the ALB's ARN or name")
    parser.add_argument("--region", help="AWS region (default: the environment's / profile's)")
    parser.add_argument("--profile", help="AWS profile (default: the environment's)")
    parser.add_argument(
        "--window",
        type=parse_window,
        default=parse_window("1h"),
        help="how far back to count ELB 502/504s: 30m, 3h, 1d... (default: 1h)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when anything could not be determined"
    )
    return parser


def _subcommands_help() -> str:
    """The other commands (:data:`SUBCOMMANDS`), each with its usage and description."""
    lines = ["other commands:"]
    for name in SUBCOMMANDS:
        parser = SUBCOMMAND_PARSERS[name]()
        usage = " ".join(parser.format_usage().removeprefix("usage:").split())
        lines += textwrap.wrap(
            usage, 88, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False
        )
        lines += textwrap.wrap(
            parser.description or "", 88, initial_indent="    ", subsequent_indent="    "
        )
        lines.append(f"    (see {PROG} {name} --help)")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        report = aws_errors(lambda: diagnose(connect(args.region, args.profile), args))
    except DoctorError as error:
        return _fail(str(error))
    if args.json:
        print(json.dumps(to_json(report, args.strict), indent=2))
    else:
        print(to_text(report, args.strict))
    return report.exit_code(args.strict)


def check(argv: list[str]) -> int:
    """The fleet check: parse its options, read and check, print the report; the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    return run(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gunicorn-alb-doctor`` and ``python -m gunicorn_alb doctor``."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments and arguments[0] in SUBCOMMANDS:
        return SUBCOMMANDS[arguments[0]](arguments[1:])
    return check(arguments)
