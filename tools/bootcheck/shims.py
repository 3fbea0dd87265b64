"""Stand-ins for the commands the boot script needs that cannot run in the boot check's sandbox:
``dnf``, ``systemctl``, ``cfn-signal``, ``aws s3 cp`` and the CloudWatch agent's
``amazon-cloudwatch-agent-ctl``. Everything else the boot script runs is the real program.

Runs inside the sandbox, under the host's Python in isolated mode (``python -I shims.py TOOL
ARGS...``), from small launchers ``bootcheck.py`` writes. Settings come from
``/bootcheck/config.json``; every call appends one JSON line to the calls log, so the boot check
can assert what was called, in which order, with which result.

Standard library only; Python 3.10+.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CONFIG_PATH = Path("/bootcheck/config.json")
UNIT_DIR = Path("/etc/systemd/system")
STATE_DIR = Path("/run/bootcheck-systemctl")
NOTIFY_SOCKET = Path("/run/systemd/notify")
# systemd's defaults (systemd-system.conf): DefaultTimeoutStartSec=, DefaultTimeoutStopSec=.
DEFAULT_TIMEOUT_START = 90.0
DEFAULT_TIMEOUT_STOP = 90.0
# The PATH systemd gives services on a merged-/usr system.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
# [Service] settings the systemctl stand-in applies; any other (Restart=, the sandboxing and
# hardening options) is listed as not emulated in the calls log. systemd-analyze verify, which
# the boot check runs on the unit, still checks them.
EMULATED_SERVICE_KEYS = frozenset(
    {
        "Type",
        "NotifyAccess",
        "ExecStart",
        "User",
        "Group",
        "WorkingDirectory",
        "Environment",
        "EnvironmentFile",
        "StateDirectory",
        "LogsDirectory",
        "UMask",
        "KillMode",
        "TimeoutStartSec",
        "TimeoutStopSec",
    }
)


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
        **details,
    }
    line = json.dumps(entry, sort_keys=True) + "\n"
    fd = os.open(config()["calls_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def say(tool: str, message: str) -> None:
    print(f"{tool} (boot check stand-in): {message}", file=sys.stderr, flush=True)


# --- dnf ----------------------------------------------------------------------------------------

_PYTHON = re.compile(r"^python3\.(\d+)$")
_PYTHON_PIP = re.compile(r"^python3\.(\d+)-pip$")


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
        # The command, and the host Python's standard library next to it: a virtualenv made
        # with /usr/local/bin/python3.X looks for its standard library upwards from
        # /usr/local/bin and would otherwise find whatever Python the host keeps in /usr/lib.
        links = {
            Path("/usr/local/bin") / name: Path(interpreter),
            Path("/usr/local/lib") / settings["python_stdlib_name"]: Path(
                settings["python_stdlib"]
            ),
        }
        for link, target in links.items():
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
        say("dnf", f"{name}: the host's Python {settings['python_version']} ({interpreter})")
        return ", ".join(f"{link} -> {target}" for link, target in links.items())
    if _PYTHON_PIP.match(name):
        return "pip comes from the host interpreter's ensurepip (python -m venv)"
    if name == "aws-cfn-bootstrap":
        # The real package installs /opt/aws/bin/cfn-signal (and cfn-init, cfn-hup, ...).
        target = Path("/opt/aws/bin/cfn-signal")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(settings["cfn_signal_launcher"])
        return f"{target} (the recording cfn-signal)"
    if name == "amazon-cloudwatch-agent":
        # The real package installs the agent under /opt/aws/amazon-cloudwatch-agent.
        target = Path(AGENT_CTL)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(settings["agent_ctl_launcher"])
        return f"{target} (the recording amazon-cloudwatch-agent-ctl)"
    if name == "logrotate":
        # The host's logrotate (read-only /usr); the boot check runs it on the written config.
        return "the host's logrotate"
    raise ShimError(
        f"{name} is an AL2023 package the boot check cannot provide; add a rule to shims.py"
    )


# --- systemctl ----------------------------------------------------------------------------------


Unit = dict[str, dict[str, list[str]]]
"""section -> key -> values, in file order (drop-ins appended; an empty value resets)."""


def _parse_unit_text(text: str, unit: Unit) -> None:
    section = ""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if logical:
            line = logical + " " + line
            logical = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            logical = line[:-1].rstrip()
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.setdefault(section, {})
            continue
        if "=" not in line or not section:
            raise ShimError(f"cannot parse unit line {raw!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        values = unit[section].setdefault(key, [])
        if value == "":
            values.clear()
        else:
            values.append(value)


def load_unit(name: str) -> Unit:
    path = UNIT_DIR / name
    if not path.is_file():
        raise ShimError(f"Unit {name} not found.")
    unit: Unit = {}
    _parse_unit_text(path.read_text(), unit)
    drop_ins = UNIT_DIR / f"{name}.d"
    if drop_ins.is_dir():
        for drop_in in sorted(drop_ins.glob("*.conf")):
            _parse_unit_text(drop_in.read_text(), unit)
    return unit


def _last(unit: Unit, section: str, key: str, default: str = "") -> str:
    values = unit.get(section, {}).get(key, [])
    return values[-1] if values else default


def _seconds(value: str, default: float) -> float:
    if not value:
        return default
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value.strip())
    if match is None:
        raise ShimError(f"time span {value!r} not implemented (use whole seconds or minutes)")
    number = int(match.group(1))
    return number * 60.0 if match.group(2) in ("min", "m") else float(number)


def _unescape(word: str) -> str:
    """systemd command-line escapes: ``$$`` is a literal ``$``, ``%%`` a literal ``%``."""
    if re.search(r"%[^%]", word):
        raise ShimError(f"unit specifiers are not implemented: {word!r}")
    return word.replace("$$", "$").replace("%%", "%")


def _exec_start(unit: Unit) -> list[str]:
    values = unit.get("Service", {}).get("ExecStart", [])
    if len(values) != 1:
        raise ShimError(f"expected exactly one ExecStart=, got {len(values)}")
    command = values[0].lstrip("@-:+!")
    argv = [_unescape(word) for word in shlex.split(command)]
    if not argv or not argv[0].startswith("/"):
        raise ShimError(f"ExecStart= must start with an absolute path, got {values[0]!r}")
    return argv


def _environment_file(path: str) -> dict[str, str]:
    optional = path.startswith("-")
    file = Path(path.lstrip("-"))
    if not file.is_file():
        if optional:
            return {}
        raise ShimError(f"Failed to load environment files: {file} does not exist")
    env: dict[str, str] = {}
    for line in file.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def _service_environment(unit: Unit, user: pwd.struct_passwd | None) -> dict[str, str]:
    """What systemd gives a service: its base environment, the user's identity, Environment=,
    then EnvironmentFile= (which overrides Environment=)."""
    service = unit.get("Service", {})
    env = {"PATH": SERVICE_PATH, "LANG": "C.UTF-8", "INVOCATION_ID": os.urandom(16).hex()}
    if user is not None:
        env |= {
            "HOME": user.pw_dir,
            "LOGNAME": user.pw_name,
            "USER": user.pw_name,
            "SHELL": user.pw_shell,
        }
    for name in service.get("StateDirectory", []):
        env["STATE_DIRECTORY"] = f"/var/lib/{name}"
    for name in service.get("LogsDirectory", []):
        env["LOGS_DIRECTORY"] = f"/var/log/{name}"
    for value in service.get("Environment", []):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = _unescape(val)
    for path in service.get("EnvironmentFile", []):
        env |= _environment_file(path)
    return env


def _state_file(name: str) -> Path:
    return STATE_DIR / f"{name}.json"


def _running(name: str) -> dict[str, Any] | None:
    path = _state_file(name)
    if not path.is_file():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    return state if _alive(int(state["main_pid"])) else None


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _session_members(session: int) -> list[int]:
    """Processes of the unit's session: the boot check's stand-in for the unit's cgroup."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_ready(
    process: subprocess.Popen[bytes], sock: socket.socket, timeout: float, notify_access: str
) -> tuple[bool, str]:
    """Type=notify: wait for READY=1 from the main process (NotifyAccess=main) or its end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False, f"the main process exited with status {process.returncode} before READY=1"
        readable, _, _ = select.select([sock], [], [], 0.2)
        if not readable:
            continue
        data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        sender = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                sender, _, _ = struct.unpack("3i", payload[:12])
        if notify_access == "main" and sender != process.pid:
            say("systemctl", f"ignored a notification from PID {sender} (NotifyAccess=main)")
            continue
        if "READY=1" in data.decode(errors="replace").splitlines():
            return True, f"READY=1 from PID {sender}"
    return False, f"no READY=1 within TimeoutStartSec={timeout:g}s"


def _start(name: str, argv: list[str]) -> int:
    if (state := _running(name)) is not None:
        record("systemctl", argv, 0, unit=name, already_running=state["main_pid"])
        return 0
    unit = load_unit(name)
    service = unit.get("Service", {})
    command = _exec_start(unit)
    user_name = _last(unit, "Service", "User")
    user = pwd.getpwnam(user_name) if user_name else None
    group = _last(unit, "Service", "Group") or (user_name if user else "")
    env = _service_environment(unit, user)
    working_directory = _last(unit, "Service", "WorkingDirectory", "/").lstrip("-")
    if working_directory == "~":
        working_directory = user.pw_dir if user else "/root"
    for root, key in (("/var/lib", "StateDirectory"), ("/var/log", "LogsDirectory")):
        for state_name in service.get(key, []):
            state_dir = Path(root) / state_name
            state_dir.mkdir(parents=True, exist_ok=True)
            if user is not None:
                os.chown(state_dir, user.pw_uid, user.pw_gid)
    kill_mode = _last(unit, "Service", "KillMode", "control-group")
    if kill_mode not in ("mixed", "control-group"):
        raise ShimError(f"KillMode={kill_mode} is not implemented")
    service_type = _last(unit, "Service", "Type", "simple")
    notify_access = _last(unit, "Service", "NotifyAccess", "main")
    sock: socket.socket | None = None
    if service_type == "notify":
        NOTIFY_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        NOTIFY_SOCKET.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(NOTIFY_SOCKET))
        NOTIFY_SOCKET.chmod(0o777)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        env["NOTIFY_SOCKET"] = str(NOTIFY_SOCKET)
    elif service_type not in ("simple", "exec"):
        raise ShimError(f"Type={service_type} is not implemented")
    journal_path = Path(config()["journal_dir"]) / f"{name}.log"
    journal = open(journal_path, "ab")  # noqa: SIM115 - handed to the service, closed below
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=journal,
            stderr=journal,
            env=env,
            cwd=working_directory,
            user=user.pw_uid if user else None,
            group=group or None,
            extra_groups=[] if user else None,
            umask=int(_last(unit, "Service", "UMask", "0022"), 8),
            start_new_session=True,
            close_fds=True,
        )
    finally:
        journal.close()
    ready, how = True, "started"
    if sock is not None:
        try:
            ready, how = _wait_ready(
                process,
                sock,
                _seconds(_last(unit, "Service", "TimeoutStartSec"), DEFAULT_TIMEOUT_START),
                notify_access,
            )
        finally:
            sock.close()
            NOTIFY_SOCKET.unlink(missing_ok=True)
    details: dict[str, object] = {
        "unit": name,
        "main_pid": process.pid,
        "user": user_name or "root",
        "command": command,
        "ready": how,
        "start_seconds": round(time.monotonic() - started, 3),
        "not_emulated": sorted(set(service) - EMULATED_SERVICE_KEYS),
    }
    if not ready:
        if process.poll() is None:
            _stop_processes(process.pid, 0.0)
        print(
            f"Job for {name} failed because {how}.\nSee the journal: {journal_path}",
            file=sys.stderr,
        )
        record("systemctl", argv, 1, **details)
        return 1
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = {
        "main_pid": process.pid,
        "stop_timeout": _seconds(_last(unit, "Service", "TimeoutStopSec"), DEFAULT_TIMEOUT_STOP),
        "kill_mode": kill_mode,
        "user": user_name,
    }
    _state_file(name).write_text(json.dumps(state))
    record("systemctl", argv, 0, **details)
    return 0


def _stop_processes(main_pid: int, stop_timeout: float, kill_mode: str = "mixed") -> list[str]:
    """SIGTERM to the main process (KillMode=mixed) or to every process of the unit
    (control-group); once the main process is gone, or after TimeoutStopSec, SIGKILL to whatever
    is left of the unit. The unit's processes are its session (the stand-in for its cgroup).
    Returns what was done."""
    actions = []
    session = main_pid  # start_new_session: the main process leads its own session
    if _alive(main_pid):
        for pid in [main_pid] if kill_mode == "mixed" else _session_members(session):
            os.kill(pid, signal.SIGTERM)
            actions.append(f"SIGTERM {pid}")
        deadline = time.monotonic() + stop_timeout
        while _alive(main_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for pid in _session_members(session):
        os.kill(pid, signal.SIGKILL)
        actions.append(f"SIGKILL {pid}")
    return actions


def _stop(name: str, argv: list[str]) -> int:
    path = _state_file(name)
    if not path.is_file():
        record("systemctl", argv, 0, unit=name, actions=[], note="not started")
        return 0
    state = json.loads(path.read_text())
    actions = _stop_processes(
        int(state["main_pid"]), float(state["stop_timeout"]), state["kill_mode"]
    )
    path.unlink()
    record("systemctl", argv, 0, unit=name, main_pid=state["main_pid"], actions=actions)
    return 0


def _enable(name: str, argv: list[str]) -> int:
    unit = load_unit(name)
    created = []
    for target in unit.get("Install", {}).get("WantedBy", []):
        for wanted_by in target.split():
            link = UNIT_DIR / f"{wanted_by}.wants" / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(UNIT_DIR / name)
                print(f"Created symlink {link} \u2192 {UNIT_DIR / name}.", file=sys.stderr)
                created.append(str(link))
    record("systemctl", argv, 0, unit=name, created=created)
    return 0


def _timer(verb: str, name: str, argv: list[str]) -> int:
    """``enable`` / ``start`` of a timer: enabling links it where its [Install] says; starting
    records it (the boot check runs no timer: the agent it starts is tested on its own)."""
    path = UNIT_DIR / name
    if not path.is_file():
        raise ShimError(f"Unit {name} not found.")
    if verb == "enable":
        unit: Unit = {}
        _parse_unit_text(path.read_text(), unit)
        created = []
        for wanted_by in " ".join(unit.get("Install", {}).get("WantedBy", [])).split():
            link = UNIT_DIR / f"{wanted_by}.wants" / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(path)
                created.append(str(link))
        record("systemctl", argv, 0, unit=name, created=created)
        return 0
    if verb == "start":
        record("systemctl", argv, 0, unit=name, started="timer (not run by the boot check)")
        return 0
    raise ShimError(f"`systemctl {verb}` of a timer is not implemented")


def systemctl(argv: list[str]) -> int:
    """``systemctl daemon-reload | enable UNIT | start UNIT | stop UNIT`` (and ``enable`` /
    ``start`` of a ``.timer``)."""
    words = [a for a in argv if not a.startswith("-")]
    options = [a for a in argv if a.startswith("-")]
    if options:
        raise ShimError(f"systemctl options are not implemented: {' '.join(options)}")
    if words == ["daemon-reload"]:
        # Loading every unit is what daemon-reload does; a unit that does not parse fails here.
        for path in sorted(UNIT_DIR.glob("*.service")):
            load_unit(path.name)
        record("systemctl", argv, 0)
        return 0
    if len(words) != 2:
        raise ShimError(f"`systemctl {shlex.join(argv)}` is not implemented")
    verb, name = words
    if name.endswith(".timer"):
        return _timer(verb, name, argv)
    if not name.endswith(".service"):
        name += ".service"
    if verb == "enable":
        return _enable(name, argv)
    if verb == "start":
        return _start(name, argv)
    if verb == "stop":
        return _stop(name, argv)
    raise ShimError(f"`systemctl {verb}` is not implemented")


# --- amazon-cloudwatch-agent-ctl ----------------------------------------------------------------

AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"


def agent_ctl(argv: list[str]) -> int:
    """``amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -c file:PATH -s``: reads the
    configuration as the agent would (JSON with files to collect into a log group) and records
    it; nothing is shipped."""
    options = _options(argv, {})
    if (options.get("-a"), options.get("-m"), "-s" in argv) != ("fetch-config", "ec2", True):
        raise ShimError(f"only `-a fetch-config -m ec2 -c file:... -s` is implemented: {argv}")
    source = options.get("-c", "")
    if not source.startswith("file:"):
        raise ShimError(f"only a file: configuration is implemented, got -c {source!r}")
    path = Path(source.removeprefix("file:"))
    try:
        agent = json.loads(path.read_text())
        files = agent["logs"]["logs_collected"]["files"]["collect_list"]
        collected = [(entry["file_path"], entry["log_group_name"]) for entry in files]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"E! invalid agent configuration {path}: {error!r}", file=sys.stderr)
        record("amazon-cloudwatch-agent-ctl", argv, 1, config=str(path), error=repr(error))
        return 1
    record("amazon-cloudwatch-agent-ctl", argv, 0, config=str(path), collected=collected)
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


def aws(argv: list[str]) -> int:
    """``aws s3 cp [--only-show-errors|--quiet|--no-progress] s3://BUCKET/KEY DEST``, served from
    the assets the boot check published (zipped from cdk.out the way cdk-assets zips them), and
    the boot script's two ``aws elbv2`` reads (:func:`elbv2`)."""
    if argv[:1] == ["elbv2"]:
        return elbv2(argv)
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
    "systemctl": systemctl,
    "cfn-signal": cfn_signal,
    "aws": aws,
    "amazon-cloudwatch-agent-ctl": agent_ctl,
}


def main() -> int:
    tool, argv = sys.argv[1], sys.argv[2:]
    try:
        return TOOLS[tool](argv)
    except ShimError as error:
        print(f"{tool}: {error}", file=sys.stderr)
        record(tool, argv, 1, error=str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
