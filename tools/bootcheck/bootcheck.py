"""Boot check: run the instance user data of the synthesized reference stack, as root, in a
bubblewrap sandbox, and check that it boots Gunicorn the way an EC2 instance would.

    .venv/bin/python tools/bootcheck/bootcheck.py [--variant NAME]... [--keep] [--work-dir DIR]

For each variant the check synthesizes the reference app (``cdk synth``), takes the launch
template's user data exactly as the template holds it, substitutes the CloudFormation tokens with
the values a stack would get (parameters, region, account, stack name, the VPC's CIDR) and runs
it as ``/var/lib/cloud/instance/scripts/part-001``, as cloud-init does. The sandbox's /etc, /opt,
/srv, /var, /home, /run, /tmp, /root and /usr/local are fresh folders; the host's /usr is
read-only. Only what cannot run here is replaced, by recording stand-ins (``shims.py``): dnf,
systemctl, cfn-signal and ``aws s3 cp``. useradd, the virtualenv, pip installing the pinned
Gunicorn from PyPI, the files, the health wait with curl and Gunicorn itself are real.

Needs root, bubblewrap (``bwrap``), systemd-analyze, curl and network access to PyPI. Runs the
variants one after another: Gunicorn binds the app port (8000) on the host's network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gunicorn_alb import instance_logs, rendering

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# What the stack would get from CloudFormation in the boot check's imaginary deployment.
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

USER_DATA_PATH = "/var/lib/cloud/instance/scripts/part-001"
BOOT_ENV_PATH = rendering.BOOT_ENV_PATH
GUNICORN_CONF_PATH = "/etc/gunicorn-alb/gunicorn.conf.py"
COUPLING_ENV_PATH = "/etc/gunicorn-alb/coupling.env"
UNIT = "gunicorn-app.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
DROP_IN_PATH = f"/etc/systemd/system/{UNIT}.d/50-coupling.conf"
VENV = "/opt/gunicorn-alb/venv"
APP_DIR = "/srv/gunicorn-app"
APP_USER = "gunicorn-app"
SYSTEMCTL_STATE = f"/run/bootcheck-systemctl/{UNIT}.json"

# Folders the sandbox gets fresh (empty, or with the few host files below in /etc), and modes.
# /root is 0711 instead of AL2023's 0550 when the host's Python lives under it (pyenv), so that
# the unprivileged service user can reach the interpreter its virtualenv points to.
FRESH = {
    "/etc": 0o755,
    "/opt": 0o755,
    "/srv": 0o755,
    "/var": 0o755,
    "/home": 0o755,
    "/run": 0o755,
    "/tmp": 0o1777,
    "/root": 0o550,
    "/usr/local": 0o755,
}
CA_BUNDLE = "ssl/certs/ca-certificates.crt"
# Host files copied into the fresh /etc: name resolution for pip (resolv.conf, hosts,
# nsswitch.conf), the CA bundle and OpenSSL config, and useradd's policy (login.defs).
# A /etc/pip.conf pointing pip at the CA bundle is written besides (Sandbox.create).
HOST_ETC_FILES = (
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "login.defs",
    CA_BUNDLE,
    "ssl/openssl.cnf",
)
# The account files of a fresh AL2023 instance, reduced to root and nobody: useradd adds to them.
ETC_ACCOUNTS = {
    "passwd": (
        "root:x:0:0:root:/root:/bin/bash\n"
        "nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n",
        0o644,
    ),
    "group": ("root:x:0:\nnobody:x:65534:\n", 0o644),
    "shadow": ("root:*LOCK*:14600::::::\nnobody:*:19000:0:99999:7:::\n", 0o000),
    "gshadow": ("root:::\nnobody:::\n", 0o000),
}
# Network settings the sandboxed pip may need on a machine behind a proxy (passed through if set).
PASS_THROUGH_ENV = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
# vCPUs of the instance types the reference stack may use: the sandbox gets as many CPUs, so
# Gunicorn's `workers = CPUs * 2 + 1` comes out as on the instance.
INSTANCE_VCPUS = {"t3.micro": 2, "t3.small": 2, "t3.medium": 2, "t3.large": 2, "t3.xlarge": 4}

SYNTH_TIMEOUT_SECONDS = 600
BOOT_TIMEOUT_SECONDS = 900
"""Upper bound for one boot (the broken-app variant's boot is bounded by its health wait)."""


class BootCheckError(Exception):
    """The check cannot run (a missing tool, a busy port, a template it cannot resolve)."""


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    expected_idle: int
    context: dict[str, str] = field(default_factory=dict)
    """``cdk synth -c KEY=VALUE``."""
    parameters: dict[str, str] = field(default_factory=dict)
    """Stack parameters, as ``cdk deploy --parameters NAME=VALUE`` gives them."""
    broken_app: bool = False
    """Break the app asset (an import error in its WSGI module): the boot must signal failure."""
    health_wait_seconds: int | None = None
    """Replaces HEALTH_WAIT_SECONDS in the user data's boot.env."""

    @property
    def synth_key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.context.items())) or "default"


VARIANTS = (
    Variant("default", "reference stack, IdleTimeoutSeconds at its default 60", 60),
    Variant(
        "context-120",
        "cdk synth -c idleTimeoutSeconds=120, parameter left at its default",
        120,
        context={"idleTimeoutSeconds": "120"},
    ),
    Variant(
        "parameter-300",
        "parameter mode: IdleTimeoutSeconds=300 as with cdk deploy --parameters",
        300,
        parameters={"IdleTimeoutSeconds": "300"},
    ),
    Variant(
        "broken-app",
        "an import error in the app asset's app.py, HEALTH_WAIT_SECONDS=5",
        60,
        broken_app=True,
        health_wait_seconds=5,
    ),
)

# --- Synthesis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Synth:
    outdir: Path
    stack_name: str
    template: dict[str, Any]
    assets: dict[str, Any]


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


def synthesize(variants: Sequence[Variant], work: Path) -> dict[str, Synth]:
    """``cdk synth`` once per distinct context, in parallel; keyed by Variant.synth_key."""
    started: dict[str, tuple[subprocess.Popen[str], Path, list[str]]] = {}
    for variant in variants:
        if variant.synth_key in started:
            continue
        outdir = work / f"cdk.out-{re.sub(r'[^A-Za-z0-9]+', '-', variant.synth_key)}"
        command = synth_command(variant.context, outdir)
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=synth_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started[variant.synth_key] = (process, outdir, command)
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
        synths[key] = _load_synth(outdir)
    return synths


def _load_synth(outdir: Path) -> Synth:
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = [
        (artifact_id, artifact)
        for artifact_id, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    ]
    if len(stacks) != 1:
        raise BootCheckError(f"expected one stack in {outdir}, found {[s for s, _ in stacks]}")
    artifact_id, artifact = stacks[0]
    properties = artifact["properties"]
    template = json.loads((outdir / properties["templateFile"]).read_text())
    assets = json.loads((outdir / f"{artifact_id}.assets.json").read_text())
    return Synth(outdir, properties.get("stackName", artifact_id), template, assets)


# --- CloudFormation token substitution ----------------------------------------------------------


COUPLING_TIMER = "gunicorn-alb-coupling.timer"
ELBV2_ARNS = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "loadbalancer/app",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "targetgroup",
}


class StackValues:
    """Resolves the intrinsic functions a launch template's user data may hold, with the values
    CloudFormation would give this stack."""

    def __init__(self, synth: Synth, parameters: dict[str, str]) -> None:
        self.template = synth.template
        self.resources: dict[str, Any] = synth.template["Resources"]
        declared: dict[str, Any] = synth.template.get("Parameters", {})
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise BootCheckError(
                f"the stack has no parameter(s) {unknown}; it has {sorted(declared)}"
            )
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": synth.stack_name,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{synth.stack_name}/"
                "5a8bd8a0-0000-11f0-8000-0a1b2c3d4e5f"
            ),
        }
        self.parameters: dict[str, str] = {}
        for name, spec in declared.items():
            value = parameters.get(name, spec.get("Default"))
            if value is not None:
                self.parameters[name] = _check_parameter(name, spec, str(value))
        self.substituted: list[str] = []

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._note(value, self.ref(argument))
            if function == "Fn::Sub":
                return self._note(value, self.sub(argument))
            if function == "Fn::GetAtt":
                return self._note(value, self.get_att(argument))
            if function == "Fn::Join":
                delimiter, parts = argument
                return str(delimiter).join(self.resolve(part) for part in parts)
        raise BootCheckError(f"the boot check cannot resolve {json.dumps(value)} in the user data")

    def _note(self, token: Any, result: str) -> str:
        self.substituted.append(f"{json.dumps(token)} -> {result}")
        return result

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if self.resources.get(name, {}).get("Type") in ELBV2_ARNS:
            return self.arn(name)
        if name in self.parameters:
            if self.template["Parameters"][name]["Type"].startswith("AWS::SSM::"):
                raise BootCheckError(f"the user data refers to the SSM-typed parameter {name}")
            return self.parameters[name]
        resource = self.template.get("Resources", {}).get(name, {})
        if resource.get("Type") == "AWS::Logs::LogGroup":
            # A log group's Ref is its name, which CloudFormation makes from the stack name, the
            # logical id and a random suffix when the template names none.
            return str(
                resource.get("Properties", {}).get("LogGroupName")
                or f"{self.pseudo['AWS::StackName']}-{name}-Q1w2E3r4T5y6"
            )
        raise BootCheckError(
            f"the user data refers to {name!r}, which the boot check cannot resolve"
        )

    def arn(self, logical_id: str) -> str:
        """The ARN a Ref to a load balancer or target group returns (made-up ids)."""
        kind = ELBV2_ARNS[self.resources[logical_id]["Type"]]
        return (
            f"arn:{PARTITION}:elasticloadbalancing:{REGION}:{ACCOUNT}:{kind}/"
            f"{logical_id[:32]}/0123456789abcdef"
        )

    def live_load_balancers(self) -> dict[str, Any]:
        """What ``aws elbv2`` answers: each target group with the load balancers whose
        listeners forward to it, and each load balancer's idle timeout as deployed."""
        idle: dict[str, str] = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer":
                attributes = resource["Properties"].get("LoadBalancerAttributes", [])
                value = next(
                    (a["Value"] for a in attributes if a["Key"] == "idle_timeout.timeout_seconds"),
                    "60",
                )
                idle[self.arn(logical_id)] = self.resolve(value)
        groups: dict[str, list[str]] = {}
        for resource in self.resources.values():
            if resource["Type"] != "AWS::ElasticLoadBalancingV2::Listener":
                continue
            balancer = self.arn(resource["Properties"]["LoadBalancerArn"]["Ref"])
            for action in resource["Properties"].get("DefaultActions", []):
                target = action.get("TargetGroupArn")
                if isinstance(target, dict) and "Ref" in target:
                    groups.setdefault(self.arn(target["Ref"]), []).append(balancer)
        return {"target_groups": groups, "idle_timeouts": idle}

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name:
                return self.get_att(name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))

    def get_att(self, argument: Any) -> str:
        logical_id, attribute = argument
        resource = self.resources.get(logical_id)
        if resource is None:
            raise BootCheckError(f"Fn::GetAtt names {logical_id}, which the template does not have")
        if resource["Type"] == "AWS::EC2::VPC" and attribute == "CidrBlock":
            cidr = resource["Properties"].get("CidrBlock")
            if isinstance(cidr, str):
                return cidr
        raise BootCheckError(
            f"the boot check cannot resolve Fn::GetAtt {logical_id}.{attribute} "
            f"({resource['Type']})"
        )


def _check_parameter(name: str, spec: dict[str, Any], value: str) -> str:
    """CloudFormation's own checks of a Number parameter (a deploy would fail otherwise)."""
    if spec["Type"] != "Number":
        return value
    try:
        number = float(value)
    except ValueError:
        raise BootCheckError(f"parameter {name} must be a number, got {value!r}") from None
    low, high = spec.get("MinValue"), spec.get("MaxValue")
    if (low is not None and number < float(low)) or (high is not None and number > float(high)):
        raise BootCheckError(f"parameter {name}={value} is outside {low}..{high}")
    return value


@dataclass(frozen=True)
class UserData:
    launch_template_id: str
    text: str
    substituted: list[str]
    instance_type: str
    elbv2: dict[str, Any]


def resolve_user_data(synth: Synth, parameters: dict[str, str]) -> UserData:
    templates = {
        logical_id: resource
        for logical_id, resource in synth.template["Resources"].items()
        if resource["Type"] == "AWS::EC2::LaunchTemplate"
    }
    if len(templates) != 1:
        raise BootCheckError(f"expected one AWS::EC2::LaunchTemplate, found {sorted(templates)}")
    ((logical_id, resource),) = templates.items()
    data = resource["Properties"]["LaunchTemplateData"]
    user_data = data.get("UserData")
    if not (isinstance(user_data, dict) and set(user_data) == {"Fn::Base64"}):
        raise BootCheckError(f"{logical_id}: UserData is not {{'Fn::Base64': ...}}: {user_data!r}")
    values = StackValues(synth, parameters)
    text = values.resolve(user_data["Fn::Base64"])
    return UserData(
        logical_id,
        text,
        values.substituted,
        str(data.get("InstanceType", "")),
        values.live_load_balancers(),
    )


def heredoc(user_data: str, path: str) -> str:
    """The content the user data writes to PATH with ``cat > PATH <<'END'``."""
    content = rendering.written_file(user_data, path)
    if content is None:
        raise BootCheckError(f"the user data does not write {path} with a quoted heredoc")
    return content


def set_health_wait(user_data: str, seconds: int) -> str:
    changed, count = re.subn(
        r"^HEALTH_WAIT_SECONDS=\d+$",
        f"HEALTH_WAIT_SECONDS={seconds}",
        user_data,
        flags=re.MULTILINE,
    )
    if count != 1:
        raise BootCheckError(
            f"expected one HEALTH_WAIT_SECONDS= line in the user data, found {count}"
        )
    return changed


# --- Assets -------------------------------------------------------------------------------------


def cdk_zip(directory: Path, target: Path) -> None:
    """Zip a directory asset as cdk-assets does (aws-cdk's writeZipFile): every file (dot files
    too, symlinks followed), no directory entries, the date 1980-01-01 and the file's mode."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), (1980, 1, 1, 0, 0, 0))
            info.create_system = 3  # Unix: the mode is in the upper 16 bits of external_attr
            info.external_attr = (path.stat().st_mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def publish_assets(
    synth: Synth, s3_root: Path, app_key: str, replace_app: Path | None = None
) -> list[str]:
    """Put every file asset where ``cdk deploy`` would upload it (bucket/key with this stack's
    account and region), under s3_root. ``replace_app`` stands in for the asset at ``app_key``."""
    published = []
    for asset_hash, asset in synth.assets.get("files", {}).items():
        source = synth.outdir / asset["source"]["path"]
        for destination in asset["destinations"].values():
            bucket = _sub_pseudo(destination["bucketName"])
            key = destination["objectKey"]
            target = s3_root / bucket / key
            if key == app_key and replace_app is not None:
                source = replace_app
            if asset["source"].get("packaging") == "zip":
                cdk_zip(source, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            published.append(f"s3://{bucket}/{key} ({asset_hash[:12]})")
    return published


def _sub_pseudo(text: str) -> str:
    values = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)


def app_asset(synth: Synth, asset_url: str) -> tuple[str, Path]:
    """The object key and source folder of the asset the user data downloads."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", asset_url)
    if match is None:
        raise BootCheckError(f"APP_ASSET_URL {asset_url!r} is not an s3:// URL")
    key = match.group(2)
    for asset in synth.assets.get("files", {}).values():
        for destination in asset["destinations"].values():
            if destination["objectKey"] == key:
                return key, synth.outdir / asset["source"]["path"]
    raise BootCheckError(f"no asset in the assets manifest has the object key {key}")


def break_app(source: Path, wsgi_app: str, target: Path) -> str:
    """A copy of the app asset whose WSGI module fails to import. Returns the missing module."""
    shutil.copytree(source, target)
    module = target / (wsgi_app.split(":", 1)[0].replace(".", "/") + ".py")
    missing = "gunicorn_alb_bootcheck_missing_module"
    module.write_text(
        f"import {missing}  # deliberately broken by the boot check\n" + module.read_text()
    )
    return missing


# --- The sandbox --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPython:
    """The host's Python, which the dnf stand-in offers as python3.X (bound read-only)."""

    interpreter: Path
    prefix: Path
    stdlib: Path
    version: str

    @classmethod
    def current(cls) -> HostPython:
        prefix = Path(sys.base_prefix).resolve()
        name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        interpreter = prefix / "bin" / name
        stdlib = Path(os.__file__).resolve().parent
        if not os.access(interpreter, os.X_OK) or stdlib != prefix / "lib" / name:
            raise BootCheckError(
                f"expected the host's base Python at {interpreter} with its standard library in "
                f"{prefix / 'lib' / name} (found {stdlib})"
            )
        usr_local = Path("/usr/local")
        if prefix == usr_local or usr_local in prefix.parents:
            raise BootCheckError(
                f"the host's Python lives in {prefix}, inside /usr/local, which the sandbox "
                "replaces with a fresh folder: make .venv with a Python installed elsewhere"
            )
        return cls(interpreter, prefix, stdlib, platform.python_version())

    @property
    def under_usr(self) -> bool:
        """Inside the host's /usr, which the sandbox has read-only anyway."""
        return self.prefix == Path("/usr") or Path("/usr") in self.prefix.parents


class Sandbox:
    """The fresh folders of one boot, and the bubblewrap command line that puts them in place."""

    def __init__(self, work: Path, python: HostPython) -> None:
        self.work = work
        self.python = python
        self.root = work / "root"
        self.log = work / "bootcheck" / "log"
        self.bin = work / "bootcheck" / "bin"
        self.libexec = work / "bootcheck" / "libexec"
        self.s3 = work / "bootcheck" / "s3"
        self.config = work / "bootcheck" / "config.json"
        self.calls_log = self.log / "calls.jsonl"
        self.mount_ns_file = self.log / "mnt-ns"

    def host_path(self, path: str) -> Path:
        """Where a sandbox path under one of the fresh folders lives on the host."""
        for mount in sorted(FRESH, key=len, reverse=True):
            if path == mount or path.startswith(mount + "/"):
                return self.root / mount.lstrip("/") / path[len(mount) :].lstrip("/")
        if path.startswith("/bootcheck/log/"):
            return self.log / path[len("/bootcheck/log/") :]
        raise ValueError(f"{path} is not in a fresh folder of the sandbox")

    def create(self, health_url: str, elbv2: dict[str, Any] | None = None) -> None:
        for mount, mode in FRESH.items():
            folder = self.root / mount.lstrip("/")
            folder.mkdir(parents=True)
            folder.chmod(mode)
        if self._python_under("/root"):
            (self.root / "root").chmod(0o711)
        etc = self.root / "etc"
        for name in HOST_ETC_FILES:
            source = Path("/etc") / name
            if source.exists():
                (etc / name).parent.mkdir(parents=True, exist_ok=True)
                (etc / name).write_bytes(source.read_bytes())
        if (etc / CA_BUNDLE).is_file():
            # pip uses its own CA list unless told otherwise; the host may sit behind a TLS proxy
            # whose CA only the system bundle has.
            (etc / "pip.conf").write_text(f"[global]\ncert = /etc/{CA_BUNDLE}\n")
        for name, (content, mode) in ETC_ACCOUNTS.items():
            (etc / name).write_text(content)
            (etc / name).chmod(mode)
        for folder in (self.log, self.bin, self.libexec, self.s3):
            folder.mkdir(parents=True, exist_ok=True)
        packages = [
            line.strip()
            for line in (HERE / "al2023_packages.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        self.config.write_text(
            json.dumps(
                {
                    "calls_log": "/bootcheck/log/calls.jsonl",
                    "journal_dir": "/bootcheck/log",
                    "s3_root": "/bootcheck/s3",
                    "health_url": health_url,
                    "python": str(self.python.interpreter),
                    "python_version": self.python.version,
                    "python_stdlib": str(self.python.stdlib),
                    "python_stdlib_name": self.python.stdlib.name,
                    "al2023_packages": packages,
                    "cfn_signal_launcher": "/bootcheck/libexec/cfn-signal",
                    "elbv2": elbv2 or {"target_groups": {}, "idle_timeouts": {}},
                    "agent_ctl_launcher": "/bootcheck/libexec/amazon-cloudwatch-agent-ctl",
                },
                indent=2,
            )
        )
        # On PATH: dnf, systemctl, aws. cfn-signal appears at /opt/aws/bin only once dnf
        # installs aws-cfn-bootstrap, as on the instance.
        for tool, folder in (
            ("dnf", self.bin),
            ("systemctl", self.bin),
            ("aws", self.bin),
            ("cfn-signal", self.libexec),
            ("amazon-cloudwatch-agent-ctl", self.libexec),
        ):
            launcher = folder / tool
            launcher.write_text(
                "#!/bin/sh\n"
                f'exec {self.python.interpreter} -I /bootcheck/src/shims.py {tool} "$@"\n'
            )
            launcher.chmod(0o755)

    def _python_under(self, mount: str) -> bool:
        return str(self.python.prefix).startswith(mount + "/")

    def bwrap(self) -> list[str]:
        args = ["bwrap", "--die-with-parent", "--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            top = Path("/") / name
            if top.is_symlink():
                args += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir():
                args += ["--ro-bind", str(top), str(top)]
        for mount in FRESH:
            args += ["--bind", str(self.root / mount.lstrip("/")), mount]
        prefix = self.python.prefix
        if not self.python.under_usr:
            for parent in reversed(prefix.parents[:-1]):
                if str(parent) not in FRESH:
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(prefix), str(prefix)]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
        args += [
            "--ro-bind", str(HERE), "/bootcheck/src",
            "--ro-bind", str(self.bin), "/bootcheck/bin",
            "--ro-bind", str(self.libexec), "/bootcheck/libexec",
            "--ro-bind", str(self.s3), "/bootcheck/s3",
            "--ro-bind", str(self.config), "/bootcheck/config.json",
            "--bind", str(self.log), "/bootcheck/log",
            "--chdir", "/",
        ]  # fmt: skip
        return args

    def env(self) -> dict[str, str]:
        """The environment cloud-init runs user data with (plus a proxy, if the host needs one)."""
        env = {
            "PATH": "/bootcheck/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
        }
        env |= {name: os.environ[name] for name in PASS_THROUGH_ENV if name in os.environ}
        return env

    def run(
        self, command: list[str], timeout: float, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.bwrap(), "--", *command],
            env=self.env(),
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_log.exists():
            return []
        return [json.loads(line) for line in self.calls_log.read_text().splitlines() if line]

    def mount_namespace(self) -> str | None:
        return self.mount_ns_file.read_text().strip() if self.mount_ns_file.exists() else None

    def read(self, path: str) -> str:
        host = self.host_path(path)
        return host.read_text() if host.is_file() else ""


# --- Processes ----------------------------------------------------------------------------------


def processes_in(mount_namespace: str) -> dict[int, str]:
    """PID -> command line of every live process in the sandbox's mount namespace."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "mnt") != mount_namespace:
                continue
            if _proc_stat(int(entry.name))[0] == "Z":
                continue
            found[int(entry.name)] = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            )
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(mount_namespace: str, parent: int) -> list[int]:
    """The live child processes of PARENT in the sandbox."""
    found = []
    for pid in processes_in(mount_namespace):
        with suppress(FileNotFoundError, ProcessLookupError):
            if int(_proc_stat(pid)[1]) == parent:
                found.append(pid)
    return found


def session_of(pid: int) -> int | None:
    """The session ID of PID (the systemctl stand-in starts each unit in its own session), or
    None once it is gone."""
    try:
        return int(_proc_stat(pid)[3])
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_ids(pid: int, key: str) -> list[int]:
    """The Uid: or Gid: line of /proc/PID/status (real, effective, saved, filesystem)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return [int(v) for v in line.split()[1:]]
    raise BootCheckError(f"/proc/{pid}/status has no {key}: line")


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def port_owner_hint(port: int) -> str:
    ss = shutil.which("ss")
    if ss is None:
        return ""
    result = subprocess.run(
        [ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    )
    return f": {result.stdout.strip()}" if result.stdout.strip() else ""


def require_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            raise BootCheckError(
                f"port {port} is in use ({error.strerror}){port_owner_hint(port)}. The boot check "
                f"runs Gunicorn on the app port {port} on the host's network: stop what listens "
                "there and run it again"
            ) from None


def http_get(url: str) -> tuple[int | str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        return f"no answer ({error})", b""


# --- Checks -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    variant: Variant
    work: Path
    results: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    boot_seconds: float = 0.0
    total_seconds: float = 0.0

    def check(self, ok: bool, what: str) -> bool:
        self.results.append((bool(ok), what))
        return bool(ok)

    def equal(self, what: str, actual: object, expected: object) -> bool:
        if actual == expected:
            return self.check(True, f"{what}: {actual!r}")
        return self.check(False, f"{what}: expected {expected!r}, got {actual!r}")

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(ok for ok, _ in self.results)

    def report(self) -> str:
        lines = [f"== {self.variant.name}: {self.variant.description}"]
        lines += [f"   {note}" for note in self.notes]
        lines += [f"   [{'ok' if ok else 'FAIL'}] {what}" for ok, what in self.results]
        status = "passed" if self.ok else "FAILED"
        lines.append(
            f"   {status}: boot {self.boot_seconds:.1f} s, variant {self.total_seconds:.1f} s"
            + ("" if self.ok else f" (logs: {self.work / 'bootcheck' / 'log'})")
        )
        return "\n".join(lines)


def _cfn_signals(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call for call in calls if call["tool"] == "cfn-signal"]


def _systemctl(calls: list[dict[str, Any]], verb: str) -> list[dict[str, Any]]:
    return [c for c in calls if c["tool"] == "systemctl" and verb in c["argv"]]


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join("      | " + line for line in text.splitlines()[-lines:])


def check_template(outcome: Outcome, synth: Synth, boot_env: dict[str, str]) -> None:
    resource = synth.template["Resources"].get(boot_env.get("CFN_RESOURCE", ""), {})
    outcome.check(
        resource.get("Type") == "AWS::AutoScaling::AutoScalingGroup"
        and "ResourceSignal" in resource.get("CreationPolicy", {}),
        f"CFN_RESOURCE={boot_env.get('CFN_RESOURCE')} is the Auto Scaling group whose "
        "CreationPolicy waits for the signals",
    )


def check_written_files(outcome: Outcome, box: Sandbox, idle: int) -> None:
    boot_env = rendering.parse_env(box.read(BOOT_ENV_PATH))
    outcome.equal("boot.env IDLE_TIMEOUT_SECONDS", boot_env.get("IDLE_TIMEOUT_SECONDS"), str(idle))
    coupling = rendering.parse_env(box.read(COUPLING_ENV_PATH))
    outcome.equal(
        "coupling.env GUNICORN_ALB_KEEPALIVE", coupling.get("GUNICORN_ALB_KEEPALIVE"), str(idle + 5)
    )
    drop_in = rendering.parse_env(box.read(DROP_IN_PATH))
    graceful = coupling.get("GUNICORN_ALB_GRACEFUL_TIMEOUT", "")
    stop = drop_in.get("TimeoutStopSec", "")
    outcome.check(
        graceful.isdigit() and stop.isdigit() and int(stop) > int(graceful),
        f"drop-in TimeoutStopSec={stop} exceeds Gunicorn's graceful_timeout={graceful}",
    )
    app = box.host_path(APP_DIR)
    loose = [
        str(path.relative_to(app))
        for path in ([app, *app.rglob("*")] if app.is_dir() else [])
        if path.lstat().st_uid != 0 or path.lstat().st_mode & 0o022
    ]
    outcome.check(
        app.is_dir() and not loose,
        f"{APP_DIR} is root-owned and not writable by the app user"
        + (f" (not so: {loose})" if loose else ""),
    )


def check_gunicorn_config(outcome: Outcome, box: Sandbox, idle: int, version: str) -> None:
    result = box.run(
        [
            f"{VENV}/bin/python",
            "-I",
            "/bootcheck/src/config_probe.py",
            GUNICORN_CONF_PATH,
            COUPLING_ENV_PATH,
        ],
        timeout=60,
        capture_output=True,
    )
    if not outcome.check(
        result.returncode == 0,
        "gunicorn.conf.py loads through Gunicorn's Config (with coupling.env's environment)"
        + ("" if result.returncode == 0 else f":\n{_tail(result.stdout + result.stderr)}"),
    ):
        return
    settings = json.loads(result.stdout)
    outcome.equal(
        "Gunicorn version in the instance's virtualenv", settings["gunicorn_version"], version
    )
    outcome.equal(f"Gunicorn keepalive (idle {idle} + 5)", settings["keepalive"], idle + 5)
    outcome.equal("Gunicorn worker_class", settings["worker_class"], "gthread")


def check_unit_verifies(outcome: Outcome, box: Sandbox) -> None:
    result = box.run(["systemd-analyze", "verify", UNIT_PATH], timeout=120, capture_output=True)
    output = (result.stdout + result.stderr).strip()
    outcome.check(
        result.returncode == 0 and not output,
        f"`systemd-analyze verify {UNIT_PATH}` (with its drop-in, in the sandbox) is clean"
        + (
            ""
            if not output and result.returncode == 0
            else f" (exit {result.returncode}):\n{_tail(output)}"
        ),
    )
    enabled = box.host_path(f"/etc/systemd/system/multi-user.target.wants/{UNIT}")
    outcome.check(enabled.is_symlink(), f"{UNIT} is enabled (multi-user.target.wants)")


def check_running(
    outcome: Outcome, box: Sandbox, boot_env: dict[str, str], workers_expected: int
) -> int | None:
    """Gunicorn runs as the app user and answers the health path. Returns its main PID."""
    state = box.host_path(SYSTEMCTL_STATE)
    if not outcome.check(state.is_file(), f"systemctl start recorded {UNIT}'s main PID"):
        return None
    main_pid = int(json.loads(state.read_text())["main_pid"])
    try:
        uids, gids = proc_ids(main_pid, "Uid"), proc_ids(main_pid, "Gid")
    except FileNotFoundError:
        outcome.check(False, f"Gunicorn's main process {main_pid} is running")
        return None
    account = next(
        (
            line.split(":")
            for line in box.read("/etc/passwd").splitlines()
            if line.startswith(f"{APP_USER}:")
        ),
        None,
    )
    if not outcome.check(account is not None, f"useradd created {APP_USER}"):
        return main_pid
    assert account is not None
    uid, gid = int(account[2]), int(account[3])
    outcome.check(
        uid != 0 and uids == [uid] * 4 and gids == [gid] * 4,
        f"Gunicorn master {main_pid} runs as {APP_USER} (uid {uid}, gid {gid}), not root: "
        f"/proc/{main_pid}/status Uid {uids} Gid {gids}",
    )
    # The master forks its workers one by one (a random pause of up to 0.1 s between them) and
    # the first one may answer the health path before the last one exists.
    namespace = box.mount_namespace() or ""
    deadline = time.monotonic() + 10
    while len(workers := children(namespace, main_pid)) < workers_expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    worker_uids = {pid: proc_ids(pid, "Uid") for pid in workers}
    outcome.check(
        len(workers) == workers_expected and all(ids == [uid] * 4 for ids in worker_uids.values()),
        f"{len(workers)} Gunicorn workers (expected {workers_expected}: CPUs * 2 + 1), "
        f"all as uid {uid}",
    )
    url = f"http://127.0.0.1:{boot_env['APP_PORT']}{boot_env['HEALTH_CHECK_PATH']}"
    status, body = http_get(url)
    outcome.check(
        status == 200 and body == b"ok\n",
        f"GET {url} through the started Gunicorn: {status} {body!r}",
    )
    return main_pid


def check_signal(
    outcome: Outcome, calls: list[dict[str, Any]], boot_env: dict[str, str], success: bool
) -> None:
    signals = _cfn_signals(calls)
    if not outcome.check(
        len(signals) == 1, f"cfn-signal called exactly once (called {len(signals)} times)"
    ):
        return
    options = signals[0]["options"]
    expected = {
        "--stack": boot_env["CFN_STACK"],
        "--resource": boot_env["CFN_RESOURCE"],
        "--region": REGION,
    }
    outcome.equal(
        "cfn-signal --stack/--resource/--region",
        {k: options.get(k) for k in expected},
        expected,
    )
    starts = _systemctl(calls, "start")
    signalled_after_start = bool(starts) and signals[0]["monotonic"] > starts[-1]["monotonic"]
    if success:
        outcome.equal("cfn-signal --exit-code", options.get("--exit-code"), "0")
        outcome.check(
            signalled_after_start and signals[0]["health_at_call"] == 200,
            "cfn-signal came after systemctl start, with the health path answering 200 at that "
            f"moment (it answered: {signals[0]['health_at_call']})",
        )
    else:
        outcome.check(
            options.get("--exit-code") not in (None, "", "0"),
            f"cfn-signal signals failure: --exit-code {options.get('--exit-code')}",
        )


def check_calls(outcome: Outcome, calls: list[dict[str, Any]], boot_env: dict[str, str]) -> None:
    dnf = [c for c in calls if c["tool"] == "dnf"]
    requested = [p for c in dnf for p in c.get("packages", [])]
    python = boot_env["PYTHON"]
    expected = {python, f"{python}-pip", "aws-cfn-bootstrap", "logrotate"}
    if boot_env.get("CLOUDWATCH_AGENT_CONFIG"):
        expected.add("amazon-cloudwatch-agent")
    outcome.check(
        bool(dnf) and all(c["exit"] == 0 for c in dnf) and expected <= set(requested),
        f"dnf installs real AL2023 packages: {' '.join(requested) or 'none'}",
    )
    aws = [c for c in calls if c["tool"] == "aws" and c["argv"][:2] == ["s3", "cp"]]
    outcome.check(
        len(aws) == 1 and aws[0]["exit"] == 0,
        "aws s3 cp fetched the app asset: "
        + ", ".join(f"s3://{c.get('bucket')}/{c.get('key')} (exit {c['exit']})" for c in aws),
    )
    coupled = bool(boot_env.get("TARGET_GROUP_ARN"))
    if coupled:
        reads = [c for c in calls if c["tool"] == "aws" and c["argv"][:1] == ["elbv2"]]
        outcome.equal(
            "the boot's live idle-timeout reads (aws elbv2, exit code)",
            [(c["argv"][1], c["exit"]) for c in reads],
            [("describe-target-groups", 0), ("describe-load-balancer-attributes", 0)],
        )
    sequence = [" ".join(c["argv"]) for c in calls if c["tool"] == "systemctl"]
    agent = [f"enable {COUPLING_TIMER}", f"start {COUPLING_TIMER}"] if coupled else []
    outcome.equal(
        "systemctl calls",
        sequence,
        ["daemon-reload", f"enable {UNIT}", f"start {UNIT}", *agent],
    )
    starts = _systemctl(calls, "start")
    if starts:
        outcome.check(
            starts[0]["exit"] == 0,
            f"systemctl start {UNIT} succeeded ({starts[0].get('ready')}, "
            f"after {starts[0].get('start_seconds')} s; settings the stand-in does not emulate: "
            f"{', '.join(starts[0].get('not_emulated', [])) or 'none'})",
        )


def check_log_agent(
    outcome: Outcome, calls: list[dict[str, Any]], boot_env: dict[str, str]
) -> None:
    """The CloudWatch agent got the written configuration before Gunicorn started (so even a
    failed boot's log is shipped), collecting Gunicorn's logs and the boot log."""
    config_path = boot_env.get("CLOUDWATCH_AGENT_CONFIG", "")
    agent = [c for c in calls if c["tool"] == "amazon-cloudwatch-agent-ctl"]
    if not config_path:
        outcome.check(not agent, "no CloudWatch agent without a log group")
        return
    starts = [i for i, c in enumerate(calls) if c["tool"] == "systemctl" and "start" in c["argv"]]
    first = next((i for i, c in enumerate(calls) if c["tool"] == "amazon-cloudwatch-agent-ctl"), -1)
    collected = [path for path, _ in agent[0].get("collected", [])] if agent else []
    outcome.check(
        len(agent) == 1
        and agent[0]["exit"] == 0
        and agent[0]["argv"]
        == ["-a", "fetch-config", "-m", "ec2", "-c", f"file:{config_path}", "-s"]
        and (not starts or first < starts[0])
        and collected
        == [instance_logs.ACCESS_LOG, instance_logs.ERROR_LOG, instance_logs.BOOT_LOG],
        f"the CloudWatch agent was configured once from {config_path}, before Gunicorn started, "
        f"collecting {', '.join(collected) or 'nothing'}",
    )


def check_app_logs(outcome: Outcome, box: Sandbox, boot_env: dict[str, str]) -> None:
    """Gunicorn writes its access log under LogsDirectory= in the documented format, and the
    written logrotate configuration rotates it under the real logrotate without losing Gunicorn's
    file (copytruncate: the next request lands in the truncated file)."""
    access = box.host_path(instance_logs.ACCESS_LOG)
    lines = access.read_text().splitlines() if access.is_file() else []
    try:
        parsed = instance_logs.parse_access_line(lines[-1]) if lines else None
    except ValueError:
        parsed = None
    outcome.check(
        parsed is not None and parsed.status == 200,
        f"Gunicorn's access log {instance_logs.ACCESS_LOG} holds the health probes in "
        f"ACCESS_LOG_FORMAT (last line: {lines[-1] if lines else 'none'})",
    )
    result = box.run(
        ["logrotate", "-f", "-s", "/tmp/logrotate.status", instance_logs.LOGROTATE_PATH],
        timeout=60,
        capture_output=True,
    )
    rotated = box.host_path(f"{instance_logs.ACCESS_LOG}.1")
    url = f"http://127.0.0.1:{boot_env['APP_PORT']}{boot_env['HEALTH_CHECK_PATH']}?rotated"
    http_get(url)
    after = access.read_text().splitlines() if access.is_file() else []
    outcome.check(
        result.returncode == 0
        and rotated.is_file()
        and rotated.read_text().splitlines() == lines
        and len(after) == 1
        and "?rotated " in after[0],
        f"logrotate -f {instance_logs.LOGROTATE_PATH} (exit {result.returncode}) moved "
        f"{len(lines)} lines to access.log.1 and Gunicorn wrote on into the truncated file"
        + ("" if result.returncode == 0 else f":\n{_tail(result.stdout + result.stderr)}"),
    )


def check_failed_boot(
    outcome: Outcome, box: Sandbox, calls: list[dict[str, Any]], boot_env: dict[str, str],
    output: str, missing_module: str,
) -> None:  # fmt: skip
    wait = int(boot_env["HEALTH_WAIT_SECONDS"])
    outcome.check(
        f"did not answer within {wait} s" in output,
        f"the boot script gave up on the health path after HEALTH_WAIT_SECONDS={wait}",
    )
    journal = box.log / f"{UNIT}.log"
    error_log = box.host_path(instance_logs.ERROR_LOG)
    said = "".join(p.read_text() for p in (journal, error_log) if p.is_file())
    outcome.check(
        f"No module named '{missing_module}'" in said,
        f"Gunicorn's error log ({instance_logs.ERROR_LOG}, shipped to CloudWatch) shows the "
        f"app's import error (No module named '{missing_module}')",
    )
    starts, signals = _systemctl(calls, "start"), _cfn_signals(calls)
    if starts and signals:
        waited = signals[0]["monotonic"] - starts[0]["monotonic"]
        # curl's --max-time 2 and the 1 s sleep may overshoot the deadline by a few seconds.
        outcome.check(
            wait - 1 <= waited <= wait + 6,
            f"failure signalled {waited:.1f} s after systemctl start "
            f"(bounded by the {wait} s wait)",
        )
    stops = _systemctl(calls, "stop")
    outcome.check(
        len(stops) == 1 and bool(starts) and stops[0]["monotonic"] > starts[0]["monotonic"],
        f"the EXIT trap ran systemctl stop {UNIT} "
        f"({len(stops)} call(s), actions {[s.get('actions') for s in stops]})",
    )


# --- One variant --------------------------------------------------------------------------------


def run_variant(variant: Variant, synth: Synth, work: Path, python: HostPython) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(variant, work)
    user_data = resolve_user_data(synth, variant.parameters)
    text = user_data.text
    if variant.health_wait_seconds is not None:
        text = set_health_wait(text, variant.health_wait_seconds)
    boot_env = rendering.parse_env(heredoc(text, BOOT_ENV_PATH))
    outcome.notes.append(
        f"user data of {user_data.launch_template_id} ({len(text)} bytes); substituted: "
        + "; ".join(user_data.substituted)
    )
    check_template(outcome, synth, boot_env)
    health_url = f"http://127.0.0.1:{boot_env['APP_PORT']}{boot_env['HEALTH_CHECK_PATH']}"

    if work.exists():
        raise BootCheckError(f"{work} exists: give the boot check an empty --work-dir")
    box = Sandbox(work, python)
    box.create(health_url, user_data.elbv2)
    app_key, app_source = app_asset(synth, boot_env["APP_ASSET_URL"])
    missing_module = ""
    replacement = None
    if variant.broken_app:
        replacement = work / "broken-app-asset"
        missing_module = break_app(app_source, boot_env["WSGI_APP"], replacement)
    publish_assets(synth, box.s3, app_key, replacement)
    script = box.host_path(USER_DATA_PATH)
    script.parent.mkdir(parents=True)
    script.write_text(text)
    script.chmod(0o700)
    vcpus = INSTANCE_VCPUS.get(user_data.instance_type)
    cpus = sorted(os.sched_getaffinity(0))[: vcpus or 2]
    outcome.notes.append(
        f"instance type {user_data.instance_type}"
        + ("" if vcpus else " (vCPUs unknown to the boot check, assuming 2)")
        + f": the sandbox gets {len(cpus)} CPU(s) {cpus}; "
        f"{boot_env['PYTHON']} is the host's Python {python.version}"
    )
    require_port_free(int(boot_env["APP_PORT"]))

    namespace: str | None = None
    try:
        output_path = box.log / "boot-output.log"
        boot_started = time.monotonic()
        exit_code = boot(box, cpus, output_path)
        outcome.boot_seconds = time.monotonic() - boot_started
        namespace = box.mount_namespace()
        output = output_path.read_text(errors="replace")
        calls = box.calls()
        success = not variant.broken_app
        if exit_code is None:
            outcome.check(False, f"the user data finished within {BOOT_TIMEOUT_SECONDS} s")
        elif success:
            outcome.check(
                exit_code == 0,
                f"the user data exits 0 under set -euo pipefail (exit {exit_code})"
                + ("" if exit_code == 0 else f":\n{_tail(output)}"),
            )
        else:
            outcome.check(exit_code != 0, f"the user data exits non-zero (exit {exit_code})")
        if success:
            check_calls(outcome, calls, boot_env)
            check_log_agent(outcome, calls, boot_env)
            check_written_files(outcome, box, variant.expected_idle)
            check_gunicorn_config(outcome, box, variant.expected_idle, boot_env["GUNICORN_VERSION"])
            check_unit_verifies(outcome, box)
            main_pid = check_running(outcome, box, boot_env, len(cpus) * 2 + 1)
            check_app_logs(outcome, box, boot_env)
            check_signal(outcome, calls, boot_env, success=True)
            if namespace is not None and main_pid is not None:
                strays = {
                    pid: command
                    for pid, command in processes_in(namespace).items()
                    if session_of(pid) not in (main_pid, None)
                }
                outcome.check(
                    not strays, f"only {UNIT}'s processes run after the boot (others: {strays})"
                )
        else:
            check_signal(outcome, calls, boot_env, success=False)
            check_log_agent(outcome, calls, boot_env)
            check_failed_boot(outcome, box, calls, boot_env, output, missing_module)
            left = processes_in(namespace) if namespace else {}
            outcome.check(
                not left, f"nothing is left running after the failed boot (found: {left})"
            )
    finally:
        stop_and_reap(outcome, box, namespace or box.mount_namespace())
    outcome.total_seconds = time.monotonic() - started
    return outcome


def boot(box: Sandbox, cpus: list[int], output_path: Path) -> int | None:
    """Run the user data as cloud-init does (executed as a script, as root), on CPUS. Returns
    its exit status, or None when it ran past BOOT_TIMEOUT_SECONDS (it is killed then)."""
    with open(output_path, "wb") as output_file:
        process = subprocess.Popen(
            [
                *box.bwrap(),
                "--",
                "/bin/sh",
                "-c",
                'readlink /proc/self/ns/mnt >/bootcheck/log/mnt-ns && exec "$0"',
                USER_DATA_PATH,
            ],
            env=box.env(),
            stdin=subprocess.DEVNULL,
            stdout=output_file,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        try:
            return process.wait(timeout=BOOT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return None
        finally:
            # bwrap --die-with-parent: killing bwrap kills the script (not what it started in
            # the background; stop_and_reap finds that).
            if process.poll() is None:
                process.kill()
                process.wait()


def stop_and_reap(outcome: Outcome, box: Sandbox, namespace: str | None) -> None:
    """Stop Gunicorn with the unit's own `systemctl stop` (by its recorded PID), then make sure
    no process of the sandbox is left; any that is gets SIGKILL by PID and fails the check."""
    if box.host_path(SYSTEMCTL_STATE).is_file():
        result = box.run(["systemctl", "stop", UNIT], timeout=300, capture_output=True)
        outcome.check(
            result.returncode == 0,
            f"systemctl stop {UNIT} after the checks (exit {result.returncode})"
            + (f":\n{_tail(result.stderr)}" if result.returncode else ""),
        )
    if namespace is None:
        return
    deadline = time.monotonic() + 5
    while (left := processes_in(namespace)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        kill_all(list(left))
        outcome.check(False, f"processes left in the sandbox were killed: {left}")


# --- Entry points -------------------------------------------------------------------------------


def preflight() -> HostPython:
    """What the check needs, all named at once."""
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root: the user data runs as root inside bubblewrap")
    for program, package in (
        ("bwrap", "bubblewrap"),
        ("systemd-analyze", "systemd"),
        ("curl", "curl"),
        ("useradd", "passwd"),
    ):
        if shutil.which(program) is None:
            problems.append(f"{program} is not installed (apt-get install -y {package})")
    if not (ROOT / "node_modules/.bin/cdk").exists():
        problems.append("the pinned CDK CLI is missing: run `make setup` (npm ci)")
    if problems:
        raise BootCheckError("the boot check cannot run:\n" + "\n".join(f"- {p}" for p in problems))
    return HostPython.current()


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
            print(f"kept the sandboxes in {work.path} (each variant's bootcheck/log/ has its logs)")
        else:
            shutil.rmtree(work.path, ignore_errors=True)


def run(variants: Sequence[Variant], work: Path) -> list[Outcome]:
    python = preflight()
    started = time.monotonic()
    print(
        f"synthesizing {len({v.synth_key for v in variants})} cloud assembly(ies) ...", flush=True
    )
    synths = synthesize(variants, work)
    print(f"synthesized in {time.monotonic() - started:.1f} s", flush=True)
    outcomes = []
    for variant in variants:
        print(f"booting {variant.name} ...", flush=True)
        outcome = run_variant(variant, synths[variant.synth_key], work / variant.name, python)
        print(outcome.report(), flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    names = [v.name for v in VARIANTS]
    parser.add_argument(
        "--variant", action="append", choices=names, help="run only these (repeatable)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the sandboxes' folders (kept on failure anyway)"
    )
    parser.add_argument("--work-dir", type=Path, help="put the sandboxes here (kept)")
    args = parser.parse_args(argv)
    variants = [v for v in VARIANTS if not args.variant or v.name in args.variant]
    started = time.monotonic()
    try:
        with work_dir(args.work_dir, args.keep) as work:
            outcomes = run(variants, work.path)
            failed = [o.variant.name for o in outcomes if not o.ok]
            work.keep = work.keep or bool(failed)
    except BootCheckError as error:
        print(f"boot check: {error}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    print(
        f"boot check {'FAILED: ' + ', '.join(failed) if failed else 'passed'}: "
        f"{len(outcomes)} variant(s) in {elapsed:.1f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
