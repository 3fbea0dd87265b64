"""Command line.

``python -m gunicorn_alb render --idle-timeout 60 --out DIR`` writes the exact files an instance
receives (the user data, and each file it writes or fetches: boot.env, gunicorn.conf.py, the
systemd unit, the boot script) and prints the coupled timeouts.

``python -m gunicorn_alb render --template cdk.out/Stack.template.json [--out DIR]`` writes the
files a synthesized stack's instances receive (:mod:`gunicorn_alb.render_template`).

``python -m gunicorn_alb doctor ...`` is ``gunicorn-alb-doctor``: it checks a deployed fleet
(``python -m gunicorn_alb doctor probe URL`` measures one target's keep-alive on the wire).

``python -m gunicorn_alb boot-check`` boots a synthesized stack's instance under systemd in a
container (``gunicorn_alb.bootcheck.cli``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gunicorn_alb import app_config, delivery, rendering, timeouts
from gunicorn_alb.bootcheck import cli as boot_check


def _render(args: argparse.Namespace) -> int:
    if args.template:
        from gunicorn_alb import render_template

        return render_template.run(args.template, args.out, args.construct)
    if not args.out:
        print("gunicorn-alb render: --out DIR is required (or --template)", file=sys.stderr)
        return 2
    try:
        coupled = timeouts.derive_timeouts(
            args.idle_timeout,
            keepalive_margin=args.keepalive_margin,
            max_requests=args.max_requests,
            max_requests_jitter=args.max_requests_jitter,
        )
    except timeouts.TimeoutRuleError as error:
        print(f"gunicorn-alb render: invalid settings:\n{error}", file=sys.stderr)
        return 2
    threads = timeouts.default_threads(args.worker_class) if args.threads is None else args.threads
    environment = dict(pair.split("=", 1) for pair in args.env)
    problems = [
        *timeouts.check_worker(args.worker_class, threads),
        *app_config.check_app_target("wsgi_app", args.wsgi_app),
        *app_config.check_environment(environment, lambda _: False),
        *app_config.check_pre_start_command(args.pre_start_command, lambda _: False),
    ]
    if problems:
        print("gunicorn-alb render: " + "; ".join(problems), file=sys.stderr)
        return 2
    config = rendering.InstanceConfig(
        timeouts=coupled,
        idle_timeout=str(coupled.idle_timeout),
        app_port=args.app_port,
        health_check_path=args.health_check_path,
        wsgi_app=args.wsgi_app,
        app_asset_url=args.asset_url,
        wheelhouse_url=args.wheelhouse_url,
        instance_files_url=args.instance_files_url,
        app_requirements=args.app_requirements,
        worker_class=args.worker_class,
        threads=threads,
        workers_per_cpu=args.workers_per_cpu,
        forwarded_allow_ips=args.vpc_cidr,
        extra_pip_packages=timeouts.KEEPALIVE_WORKER_CLASSES[args.worker_class],
        cfn_stack=args.stack_name,
        cfn_resource=args.signal_resource if args.stack_name else "",
        cfn_region=args.region if args.stack_name else "",
        target_group_arn=args.target_group_arn,
        aws_region=args.region if args.target_group_arn else "",
        environment=tuple(environment.items()),
        pre_start_command=args.pre_start_command or "",
        log_group_name=args.log_group,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = {"user-data.sh": delivery.render_user_data(config)}
    written.update(
        {
            # /etc/logrotate.d/gunicorn-app is written as logrotate.d-gunicorn-app.
            path.removeprefix("/etc/").replace("/", "-")
            if "/logrotate.d/" in path
            else Path(path).name: content
            for path, content in delivery.instance_files(config).items()
        }
    )
    for name, content in written.items():
        (out / name).write_text(content, encoding="utf-8")
    for name in sorted(written):
        print(out / name)
    rows = [
        ("ALB idle timeout", coupled.idle_timeout),
        ("Gunicorn keepalive", coupled.keepalive),
        ("target-group deregistration delay", coupled.deregistration_delay),
        ("Gunicorn graceful_timeout", coupled.graceful_timeout),
        ("systemd TimeoutStopSec", coupled.stop_timeout),
    ]
    for label, value in rows:
        print(f"{label:<36}{value} s")
    return 0


def _assignment(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return text


CONSOLE_SCRIPT = "gunicorn-alb"


def prog() -> str:
    """``gunicorn-alb`` when run as the console script, else ``python -m gunicorn_alb``."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else "python -m gunicorn_alb"


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["doctor"]:
        # Imported here: boto3 is needed by the doctor only.
        from gunicorn_alb.doctor import main as doctor_main

        return doctor_main(args_in[1:])
    parser = argparse.ArgumentParser(prog=prog())
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check a deployed ALB + Gunicorn fleet (see --help there)")
    boot_check.add_parser(commands)
    render = commands.add_parser("render", help="write the files an instance receives")
    render.add_argument(
        "--idle-timeout",
        type=int,
        default=timeouts.IDLE_TIMEOUT_DEFAULT,
        help="ALB idle timeout in seconds (default: %(default)s)",
    )
    render.add_argument(
        "--keepalive-margin",
        type=int,
        default=timeouts.KEEPALIVE_MARGIN_DEFAULT,
        help="seconds added for Gunicorn's keepalive (default: %(default)s)",
    )
    render.add_argument(
        "--out", help="directory to write the files to (with --template: ./instance-files)"
    )
    render.add_argument(
        "--template",
        help="a synthesized template (cdk.out/Stack.template.json): write the files that "
        "stack's instances receive, at their instance paths (the other options are ignored)",
    )
    render.add_argument(
        "--construct",
        help="with --template: the launch template's logical id or the service's construct "
        "path, when the template has several services",
    )
    render.add_argument("--app-port", type=int, default=8000)
    render.add_argument("--health-check-path", default="/healthz")
    render.add_argument("--wsgi-app", default="app:application")
    render.add_argument("--app-requirements", default="requirements.txt")
    render.add_argument("--worker-class", default="gthread")
    render.add_argument(
        "--threads", type=int, default=None, help="default: 4 for gthread, 1 for the others"
    )
    render.add_argument("--workers-per-cpu", type=int, default=2)
    render.add_argument(
        "--env",
        action="append",
        default=[],
        type=_assignment,
        metavar="NAME=VALUE",
        help="an environment variable of the app (repeatable)",
    )
    render.add_argument("--pre-start-command", default=None, help="the release step")
    render.add_argument("--max-requests", type=int, default=0)
    render.add_argument("--max-requests-jitter", type=int, default=0)
    render.add_argument(
        "--vpc-cidr",
        default="10.0.0.0/16",
        help="the VPC CIDR Gunicorn trusts for X-Forwarded-* (default: %(default)s)",
    )
    render.add_argument(
        "--asset-url",
        default="s3://ASSET-BUCKET/ASSET-KEY.zip",
        help="the app asset's S3 URL (a stack fills in its own)",
    )
    render.add_argument(
        "--wheelhouse-url",
        default="s3://ASSET-BUCKET/WHEELHOUSE-KEY.zip",
        help="the wheelhouse asset's S3 URL (a stack fills in its own)",
    )
    render.add_argument(
        "--instance-files-url",
        default="s3://ASSET-BUCKET/INSTANCE-FILES-KEY.tgz",
        help="the InstanceFiles asset's S3 URL (a stack fills in its own)",
    )
    render.add_argument(
        "--stack-name", default="", help="CloudFormation stack to signal (default: none, no signal)"
    )
    render.add_argument("--signal-resource", default="AutoScalingGroup")
    render.add_argument("--region", default="us-east-1")
    render.add_argument(
        "--target-group-arn",
        default="",
        help="the target group whose load balancers' live idle timeout the instances follow "
        "(adds the coupling agent; default: none, the configured idle timeout only)",
    )
    render.add_argument(
        "--log-group",
        default="",
        help="CloudWatch Logs group for the CloudWatch agent (default: none, no agent)",
    )
    args = parser.parse_args(args_in)
    if args.command == "boot-check":
        return boot_check.run(args)
    return _render(args)


if __name__ == "__main__":
    sys.exit(main())
