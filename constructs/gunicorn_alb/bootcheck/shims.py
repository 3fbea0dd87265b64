"""Stand-ins for the commands the boot script needs that cannot run in the boot check's container:
``dnf``, ``cfn-signal``, the AWS CLI (``aws s3 cp``, the ``aws elbv2`` reads, the secret
reads) and the CloudWatch agent's ``amazon-cloudwatch-agent-ctl``. Everything else the boot
runs is the real program, systemd, systemctl and logrotate included.

Runs inside the container, under its Python in isolated mode (``python3 -I shims.py TOOL
ARGS...``), from small launchers ``instance.py`` installs where Amazon Linux 2023 has the real
commands. Settings come from ``/bootcheck/config.json``; every call appends one JSON line to the
calls log, so the boot check can assert what was called, in which order, with which result.

Standard library only; Python 3.10+.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CONFIG_PATH = Path("/bootcheck/config.json")


class ShimError(Exception):
    """A call the real program would refuse (or that this stand-in does not implement)."""


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CONFIG_PATH.read_text())
    return loaded


def record(tool: str, argv: list[str], exit_code: int, **details: object) -> None:
    """Append one line to the calls log (O_APPEND: lines from concurrent calls do not mix)."""
    entry = {
        "tool": tool,
        "argv": argv,
        "exit": exit_code,
        "time": time.time(),
        "monotonic": time.monotonic(),
        "pid": os.getpid(),
        "unit": _unit(),
        **details,
    }
    line = json.dumps(entry, sort_keys=True) + "\n"
    fd = os.open(config()["calls_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _unit() -> str:
    """The systemd unit the caller runs in (its cgroup's last component), e.g. the user data's
    unit or the coupling agent's."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as file:
            paths = [line.rstrip("\n").split(":", 2)[2] for line in file]
    except OSError:
        return ""
    units = [p.rsplit("/", 1)[-1] for p in paths if p.endswith((".service", ".scope"))]
    return units[0] if units else ""


def say(tool: str, message: str) -> None:
    print(f"{tool} (boot check stand-in): {message}", file=sys.stderr, flush=True)


# --- dnf ----------------------------------------------------------------------------------------

_PYTHON = re.compile(r"^python3\.(\d+)$")
_PYTHON_PIP = re.compile(r"^python3\.(\d+)-pip$")
_PYTHON_DEVEL = re.compile(r"^python3\.(\d+)-devel$")


def dnf(argv: list[str]) -> int:
    """``dnf install [-y] NAME...``: refuses a name that is not an Amazon Linux 2023 package (as
    dnf does: "No match for argument"), and provides the ones the boot check can provide."""
    settings = config()
    options = [a for a in argv if a.startswith("-")]
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] != "install":
        raise ShimError(f"only `dnf install` is implemented, got `dnf {shlex.join(argv)}`")
    unsupported = [o for o in options if o not in ("-y", "--assumeyes", "-q", "--quiet")]
    if unsupported:
        raise ShimError(f"dnf option(s) not implemented: {' '.join(unsupported)}")
    names = words[1:]
    if not names:
        raise ShimError("dnf install without package names")
    known = set(settings["al2023_packages"])
    unknown = [n for n in names if n not in known]
    if unknown:
        for name in unknown:
            print(f"No match for argument: {name}", file=sys.stderr)
        print(f"Error: Unable to find a match: {' '.join(unknown)}", file=sys.stderr)
        record("dnf", argv, 1, packages=names, unknown=unknown)
        return 1
    provided = {name: _provide(name, settings) for name in names}
    record("dnf", argv, 0, packages=names, provided=provided)
    return 0


def _provide(name: str, settings: dict[str, Any]) -> str:
    """Make the package's command available; returns what was done, for the calls log."""
    interpreter = settings["python"]
    if _PYTHON.match(name):
        # Where AL2023's package puts the command. The container's Debian has one Python (3.11):
        # python3.X is that interpreter under the name the boot asks for.
        link = Path("/usr/bin") / name
        if not link.exists():
            link.symlink_to(Path(interpreter).name)
        say("dnf", f"{name}: the container's {Path(interpreter).name} ({link} -> {interpreter})")
        return f"{link} -> {interpreter}"
    if _PYTHON_PIP.match(name):
        return "pip comes from the interpreter's ensurepip (python -m venv)"
    if name == "gcc" or _PYTHON_DEVEL.match(name):
        # Asked for by a boot that builds packages from source (BUILD_FROM_SOURCE): the
        # container's Debian has no compiler; pip then builds nothing (every package has a wheel).
        return "recorded only: the container has no compiler"
    if name == "amazon-cloudwatch-agent":
        # The real package installs the agent and its control script under
        # /opt/aws/amazon-cloudwatch-agent; the agent itself cannot ship anything from here.
        target = Path(AGENT_CTL)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(settings["agent_ctl_launcher"])
        return f"{target} (the recording amazon-cloudwatch-agent-ctl)"
    if name == "logrotate":
        found = shutil.which("logrotate", path="/usr/sbin:/usr/bin")
        if found is None:
            raise ShimError("logrotate is not in the container's root filesystem (rootfs.py)")
        return f"{found} (Debian's logrotate, in the root filesystem)"
    if name == "aws-cfn-bootstrap":
        # The real package installs /opt/aws/bin/cfn-signal (and cfn-init, cfn-hup, ...).
        target = Path("/opt/aws/bin/cfn-signal")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(settings["cfn_signal_launcher"])
        return f"{target} (the recording cfn-signal)"
    raise ShimError(
        f"{name} is an AL2023 package the boot check cannot provide; add a rule to shims.py"
    )


# --- amazon-cloudwatch-agent-ctl ----------------------------------------------------------------

AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"


def agent_ctl(argv: list[str]) -> int:
    """``amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:PATH``: reads the
    configuration file as the agent's translator would (JSON, or it fails) and records it whole,
    for the boot check to judge; nothing is shipped and no agent runs."""
    options = _options([a for a in argv if a != "-s"], {})  # -s (start) takes no value
    if (options.get("-a"), options.get("-m"), "-s" in argv) != ("fetch-config", "ec2", True):
        raise ShimError(
            f"only `-a fetch-config -m ec2 -s -c file:PATH` is implemented, got {shlex.join(argv)}"
        )
    source = options.get("-c", "")
    if not source.startswith("file:"):
        raise ShimError(f"only a file: configuration is implemented, got -c {source!r}")
    path = Path(source.removeprefix("file:"))
    try:
        agent = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        print(f"E! invalid agent configuration {path}: {error}", file=sys.stderr)
        record("amazon-cloudwatch-agent-ctl", argv, 1, config_path=str(path), error=str(error))
        return 1
    say("amazon-cloudwatch-agent-ctl", f"configuration {path} read; nothing is shipped")
    record("amazon-cloudwatch-agent-ctl", argv, 0, config_path=str(path), config=agent)
    return 0


# --- cfn-signal ---------------------------------------------------------------------------------


def cfn_signal(argv: list[str]) -> int:
    """Records the signal. Also records whether the health URL answered at that moment, which is
    what a success signal claims."""
    url = config()["health_url"]
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            health: object = response.status
    except urllib.error.HTTPError as error:
        health = error.code
    except (urllib.error.URLError, OSError) as error:
        health = f"no answer: {error}"
    parsed = _options(argv, {"-e": "--exit-code", "-s": "--stack", "-r": "--resource"})
    record("cfn-signal", argv, 0, options=parsed, health_at_call=health, health_url=url)
    return 0


def _options(argv: list[str], aliases: dict[str, str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    words = iter(argv)
    for word in words:
        if word.startswith("-"):
            key, eq, value = word.partition("=")
            parsed[aliases.get(key, key)] = value if eq else next(words, "")
    return parsed


# --- aws s3 cp ----------------------------------------------------------------------------------


# What the boot script asks the ELB API (boot.sh live_idle_timeout), and how the CLI's
# ``--output text`` prints the answer to each query.
_ELBV2_QUERIES = {
    "describe-target-groups": "TargetGroups[0].LoadBalancerArns",
    "describe-load-balancer-attributes": (
        "Attributes[?Key=='idle_timeout.timeout_seconds'].Value | [0]"
    ),
}


def elbv2(argv: list[str]) -> int:
    """``aws elbv2 describe-target-groups`` / ``describe-load-balancer-attributes`` with the
    queries the boot script uses, answered from the stack's template as CloudFormation would
    have created it (the load balancers' idle_timeout.timeout_seconds, the parameter resolved)."""
    operation = argv[1] if len(argv) > 1 else ""
    options = _options(argv[2:], {})
    if _ELBV2_QUERIES.get(operation) != options.get("--query") or options.get("--output") != "text":
        raise ShimError(f"`aws {shlex.join(argv)}` is not implemented")
    live = config()["elbv2"]
    if operation == "describe-target-groups":
        arn = options.get("--target-group-arns", "")
        if arn not in live["target_groups"]:
            print(
                "An error occurred (TargetGroupNotFound) when calling the DescribeTargetGroups "
                "operation: One or more target groups not found",
                file=sys.stderr,
            )
            record("aws", argv, 254)
            return 254
        print("\t".join(live["target_groups"][arn]))
    else:
        print(live["idle_timeouts"][options["--load-balancer-arn"]])
    record("aws", argv, 0)
    return 0


# The secret reads of the boot script (boot.sh secret_reader), by (service, operation): the
# option naming the ARN, the options that come before it, the IAM action and the API operation.
SECRET_READS = {
    ("ssm", "get-parameter"): ("--name", ["--with-decryption"], "ssm:GetParameter", "GetParameter"),
    ("secretsmanager", "get-secret-value"): (
        "--secret-id",
        [],
        "secretsmanager:GetSecretValue",
        "GetSecretValue",
    ),
}


def read_secret(argv: list[str]) -> int:
    """``aws ssm get-parameter --region R --with-decryption --name ARN --output json`` and ``aws
    secretsmanager get-secret-value --region R --secret-id ARN --output json``, exactly as the
    boot script calls them (R the ARN's region): prints the answer the config holds for the ARN
    (``secret_answers``: by service, by ARN; the CLI's JSON). An ARN without an answer is
    AccessDenied (exit 254), as for an instance role without the grant. The calls log gets the
    ARN, never the answer."""
    service, operation = argv[0], argv[1]
    id_option, flags, action, api = SECRET_READS[(service, operation)]
    arn = _options([w for w in argv[2:] if w not in flags], {}).get(id_option, "")
    fields = arn.split(":")
    expected = [service, operation, "--region", fields[3] if len(fields) > 5 else "REGION"]
    expected += [*flags, id_option, arn, "--output", "json"]
    if argv != expected:
        raise ShimError(
            f"`aws {shlex.join(argv)}` is not implemented (the boot's secret reads are "
            f"`aws {shlex.join(expected)}`)"
        )
    answer = config().get("secret_answers", {}).get(service, {}).get(arn)
    if answer is None:
        print(
            f"\nAn error occurred (AccessDeniedException) when calling the {api} operation: "
            f"User: arn:aws:sts::{fields[4]}:assumed-role/bootcheck-instance-role/"
            f"i-0123456789abcdef0 is not authorized to perform: {action} on resource: {arn} "
            f"because no identity-based policy allows the {action} action",
            file=sys.stderr,
        )
        record("aws", argv, 254, arn=arn)
        return 254
    print(json.dumps(answer, indent=4))
    record("aws", argv, 0, arn=arn)
    return 0


def complete_lifecycle_action(argv: list[str]) -> int:
    """``aws autoscaling complete-lifecycle-action --region R --lifecycle-hook-name H
    --auto-scaling-group-name G --lifecycle-action-result CONTINUE|ABANDON --instance-id I``
    (CompleteLifecycleAction; EC2 Auto Scaling API reference): accepted, once, when the instance
    waits in that group's hook (the config's ``lifecycle_action``: its group, hook and instance;
    the boot check writes ``Terminated`` into the metadata first); otherwise the API's
    ValidationError, exit 254. Prints nothing, as the CLI does for this call."""
    options = _options(argv[2:], {})
    waiting = config().get("lifecycle_action") or {}
    state = Path(config()["imds"]["state_file"]) if "imds" in config() else None
    terminating = (
        state is not None and state.is_file() and state.read_text().strip() == "Terminated"
    )
    done = Path(config()["calls_log"]).parent / "lifecycle-action-completed"
    matches = (
        terminating
        and not done.exists()
        and options.get("--auto-scaling-group-name") == waiting.get("group")
        and options.get("--lifecycle-hook-name") == waiting.get("hook")
        and options.get("--instance-id") == waiting.get("instance")
        and options.get("--lifecycle-action-result") in ("CONTINUE", "ABANDON")
    )
    if not matches:
        print(
            "\nAn error occurred (ValidationError) when calling the CompleteLifecycleAction "
            "operation: No active Lifecycle Action found with instance ID "
            f"{options.get('--instance-id')}",
            file=sys.stderr,
        )
        record("aws", argv, 254, options=options)
        return 254
    done.touch()
    record("aws", argv, 0, options=options)
    return 0


def aws(argv: list[str]) -> int:
    """``aws s3 cp [--only-show-errors|--quiet|--no-progress] s3://BUCKET/KEY DEST``, served from
    the assets the boot check published (zipped from cdk.out the way cdk-assets zips them), the
    boot script's two ``aws elbv2`` reads (:func:`elbv2`) and its secret reads
    (:func:`read_secret`)."""
    if argv[:1] == ["elbv2"]:
        return elbv2(argv)
    if argv[:2] == ["autoscaling", "complete-lifecycle-action"]:
        return complete_lifecycle_action(argv)
    if tuple(argv[:2]) in SECRET_READS:
        return read_secret(argv)
    if argv[:2] != ["s3", "cp"]:
        raise ShimError(f"only `aws s3 cp` is implemented, got `aws {shlex.join(argv)}`")
    rest = argv[2:]
    options = [a for a in rest if a.startswith("--")]
    paths = [a for a in rest if not a.startswith("--")]
    unsupported = [
        o for o in options if o not in ("--only-show-errors", "--quiet", "--no-progress")
    ]
    if unsupported or len(paths) != 2 or not paths[0].startswith("s3://"):
        raise ShimError(
            f"`aws {shlex.join(argv)}` is not implemented (only s3://... to a local path)"
        )
    source, destination = paths
    bucket, _, key = source[len("s3://") :].partition("/")
    published = Path(config()["s3_root"]) / bucket / key
    if not key or not published.is_file():
        print(
            "fatal error: An error occurred (404) when calling the HeadObject operation: "
            f"Key {key!r} does not exist in bucket {bucket!r}",
            file=sys.stderr,
        )
        record("aws", argv, 1, bucket=bucket, key=key)
        return 1
    target = Path(destination)
    if destination.endswith("/") or target.is_dir():
        target = target / Path(key).name
    shutil.copyfile(published, target)
    if not ("--only-show-errors" in options or "--quiet" in options):
        print(f"download: {source} to {destination}")
    record("aws", argv, 0, bucket=bucket, key=key, bytes=target.stat().st_size)
    return 0


TOOLS = {
    "dnf": dnf,
    "cfn-signal": cfn_signal,
    "aws": aws,
    "amazon-cloudwatch-agent-ctl": agent_ctl,
}


def network_step(tool: str, argv: list[str]) -> bool:
    """The boot's network steps that retry (boot.sh's ``retry``): dnf, ``aws s3 cp``, cfn-signal.
    The live idle-timeout reads (``aws elbv2``) fall back to the configured value by design."""
    return tool in ("dnf", "cfn-signal") or (tool == "aws" and argv[:2] == ["s3", "cp"])


def fail_first_attempt(tool: str, argv: list[str]) -> bool:
    """With ``fail_first`` set, the first attempt of each distinct network step fails the way a
    transient network error does (exit 1, an endpoint error on stderr), and is recorded as
    ``injected``; the next attempt of the same command runs normally."""
    if not config().get("fail_first") or not network_step(tool, argv):
        return False
    marks = Path(config()["calls_log"]).parent / "failed-once"
    marks.mkdir(exist_ok=True)
    mark = marks / hashlib.sha256(json.dumps([tool, argv]).encode()).hexdigest()
    try:
        mark.touch(exist_ok=False)
    except FileExistsError:
        return False
    print(
        f"{tool}: Could not connect to the endpoint URL (boot check: first attempt fails)",
        file=sys.stderr,
    )
    record(tool, argv, 1, injected=True)
    return True


def main() -> int:
    tool, argv = sys.argv[1], sys.argv[2:]
    if fail_first_attempt(tool, argv):
        return 1
    try:
        return TOOLS[tool](argv)
    except ShimError as error:
        print(f"{tool}: {error}", file=sys.stderr)
        record(tool, argv, 1, error=str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
