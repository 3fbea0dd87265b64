"""The stack side of the boot check: the user data of a synthesized stack's launch template
(``assembly.py`` reads the cloud assembly) with its CloudFormation tokens resolved as a deployment
would resolve them (parameters, pseudo parameters, the VPC's CIDR, the ARNs of load balancers,
target groups and secrets, the names of SSM parameters), and the file assets put where ``cdk
deploy`` would upload them (the ``aws s3 cp`` stand-in serves them from there).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn_alb import delivery

HERE = Path(__file__).resolve().parent

# What the stack would get from CloudFormation in the boot check's imaginary deployment.
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


class BootCheckError(Exception):
    """The check cannot run (a missing tool, a template it cannot resolve, ...)."""


@dataclass(frozen=True)
class Synth:
    """One synthesized stack of a cloud assembly (``assembly.load``)."""

    outdir: Path
    stack_name: str
    template: dict[str, Any]
    assets: dict[str, Any]
    launch_template: str | None = None
    """The logical id of the service's launch template (None: the stack's only one)."""


# --- CloudFormation token substitution ----------------------------------------------------------


ELBV2_ARNS = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "loadbalancer/app",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "targetgroup",
}
SECRET_ARN_SUFFIX = "AbCdEf"
"""Secrets Manager ends every secret's ARN with a hyphen and six random characters."""
PARAMETER_NAME_SUFFIX = "Q1W2E3R4T5Y6"
"""CloudFormation names a parameter without a ``Name``: ``CFN-<LogicalId>-<12 random
characters>``."""


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
        self.log_groups: dict[str, str] = {}
        """The log groups the user data names: the name CloudFormation gives each, by logical id."""

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
        kind = self.resources.get(name, {}).get("Type")
        if kind in ELBV2_ARNS:
            return self.arn(name)
        if kind == "AWS::SecretsManager::Secret":
            return self.secret_arn(name)
        if kind == "AWS::SSM::Parameter":
            return self.parameter_name(name)
        if kind == "AWS::Logs::LogGroup":
            return self.log_group_name(name)
        if name in self.parameters:
            if self.template["Parameters"][name]["Type"].startswith("AWS::SSM::"):
                raise BootCheckError(f"the user data refers to the SSM-typed parameter {name}")
            return self.parameters[name]
        raise BootCheckError(
            f"the user data refers to {name!r}, which the boot check cannot resolve"
        )

    def log_group_name(self, logical_id: str) -> str:
        """What a Ref to a log group returns: its LogGroupName, or the name CloudFormation makes
        when the template gives none (stack name, logical id, a random suffix)."""
        given = self.resources[logical_id].get("Properties", {}).get("LogGroupName")
        name = str(given) if given else f"{self.pseudo['AWS::StackName']}-{logical_id}-Q1w2E3r4T5y6"
        self.log_groups[logical_id] = name
        return name

    def arn(self, logical_id: str) -> str:
        """The ARN a Ref to a load balancer or target group returns (made-up ids)."""
        kind = ELBV2_ARNS[self.resources[logical_id]["Type"]]
        return (
            f"arn:{PARTITION}:elasticloadbalancing:{REGION}:{ACCOUNT}:{kind}/"
            f"{logical_id[:32]}/0123456789abcdef"
        )

    def secret_arn(self, logical_id: str) -> str:
        """What a Ref to a Secrets Manager secret returns: its ARN (the secret's ``Name``, or
        its logical id when CloudFormation names it, and a made-up random suffix)."""
        name = self._name(logical_id) or logical_id
        return (
            f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{SECRET_ARN_SUFFIX}"
        )

    def parameter_name(self, logical_id: str) -> str:
        """What a Ref to an SSM parameter returns: its name (``Name``, or the one CloudFormation
        generates, with a made-up random suffix)."""
        return self._name(logical_id) or f"CFN-{logical_id}-{PARAMETER_NAME_SUFFIX}"

    def _name(self, logical_id: str) -> str | None:
        name = self.resources[logical_id].get("Properties", {}).get("Name")
        return None if name is None else self.resolve(name)

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
    """What the ``aws elbv2`` stand-in answers (StackValues.live_load_balancers)."""
    log_groups: dict[str, str]
    """The log groups the user data names, by logical id (StackValues.log_groups)."""


def resolve_user_data(synth: Synth, parameters: dict[str, str]) -> UserData:
    templates = {
        logical_id: resource
        for logical_id, resource in synth.template["Resources"].items()
        if resource["Type"] == "AWS::EC2::LaunchTemplate"
        and synth.launch_template in (None, logical_id)
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
        dict(values.log_groups),
    )


def heredoc(user_data: str, path: str) -> str:
    """The content the user data writes to PATH with ``cat > PATH <<'END'``."""
    content = delivery.written_file(user_data, path)
    if content is None:
        raise BootCheckError(f"the user data does not write {path} with a quoted heredoc")
    return content


def set_boot_env(user_data: str, name: str, value: str) -> str:
    """The user data with boot.env's one ``NAME=...`` line set to ``NAME=VALUE``."""
    changed, count = re.subn(
        rf"^{name}=.*$", lambda _: f"{name}={value}", user_data, flags=re.MULTILINE
    )
    if count != 1:
        raise BootCheckError(f"expected one {name}= line in the user data, found {count}")
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


def publish_assets(synth: Synth, s3_root: Path, replace: Mapping[str, Path]) -> list[str]:
    """Put every file asset where ``cdk deploy`` would upload it (bucket/key with this stack's
    account and region), under s3_root. ``replace`` maps an object key to the folder that stands
    in for its asset."""
    published = []
    for asset_hash, asset in synth.assets.get("files", {}).items():
        source = synth.outdir / asset["source"]["path"]
        for destination in asset["destinations"].values():
            bucket = _sub_pseudo(destination["bucketName"])
            key = destination["objectKey"]
            target = s3_root / bucket / key
            source = replace.get(key, source)
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


def asset_source(synth: Synth, asset_url: str) -> tuple[str, Path]:
    """The object key and source folder of an asset the user data downloads."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", asset_url)
    if match is None:
        raise BootCheckError(f"{asset_url!r} is not an s3:// URL")
    key = match.group(2)
    for asset in synth.assets.get("files", {}).values():
        for destination in asset["destinations"].values():
            if destination["objectKey"] == key:
                return key, synth.outdir / asset["source"]["path"]
    raise BootCheckError(f"no asset in the assets manifest has the object key {key}")


# A wheel file name (PEP 427): name, version, optional build tag, python-abi-platform tags.
_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<tags>[^-]+-[^-]+-[^-]+)\.whl$"
)


def wheelhouse_for_container(wheelhouse: Path, python_version: str, cache: Path) -> Path:
    """The synth's wheelhouse as the container's Python can install it: the same distributions
    at the same versions; a wheel built for one CPython (the instances' 3.12) is replaced by the
    same release's wheel for the container's Python (Debian 12's 3.11), downloaded once and
    cached. Pure-Python wheels are the synth's own files."""
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    pure = [w for w in wheels if (m := _WHEEL.match(w)) and m["tags"].endswith("-none-any")]
    binary = [w for w in wheels if w not in pure]
    if not binary:
        return wheelhouse
    recipe = json.dumps([python_version, platform.machine(), wheels])
    folder = cache / hashlib.sha256(recipe.encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the variants boot in parallel
        done = folder.with_name(folder.name + ".complete")
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for name in pure:
                shutil.copyfile(wheelhouse / name, folder / name)
            pins = [f"{m['name']}=={m['version']}" for w in binary if (m := _WHEEL.match(w))]
            machine = platform.machine()
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--disable-pip-version-check", "--only-binary=:all:",
                 f"--python-version={python_version}", "--implementation=cp",
                 f"--platform=manylinux2014_{machine}", f"--platform=manylinux_2_28_{machine}",
                 "--dest", str(folder), *pins],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise BootCheckError(
                    f"pip download of {', '.join(pins)} for the container's Python "
                    f"{python_version} failed:\n{result.stderr[-2000:]}"
                )
            done.write_text("\n".join(wheels) + "\n")
    return folder


def break_app(source: Path, wsgi_app: str, target: Path) -> str:
    """A copy of the app asset whose WSGI module fails to import. Returns the missing module."""
    shutil.copytree(source, target)
    module = target / (wsgi_app.split(":", 1)[0].replace(".", "/") + ".py")
    missing = "gunicorn_alb_bootcheck_missing_module"
    module.write_text(
        f"import {missing}  # deliberately broken by the boot check\n" + module.read_text()
    )
    return missing


def add_probe(source: Path, wsgi_app: str, target: Path) -> None:
    """A copy of the app asset whose app (WSGI or ASGI, or the one its factory makes) also
    answers the probe paths of ``app_probe.py`` (shipped next to it as ``bootcheck_probe.py``)."""
    shutil.copytree(source, target)
    module_name, _, spec = wsgi_app.partition(":")
    callable_name, call, _ = (spec or "application").partition("(")
    if not callable_name.isidentifier():
        raise BootCheckError(
            f"the probe cannot wrap WSGI_APP={wsgi_app!r} (not module:name or module:factory(...))"
        )
    wrapper = "wrap_factory" if call else "wrap"
    module = target / (module_name.replace(".", "/") + ".py")
    if not module.is_file():
        raise BootCheckError(f"the app asset has no {module.relative_to(target)} for {wsgi_app}")
    shutil.copyfile(HERE / "app_probe.py", target / "bootcheck_probe.py")
    module.write_text(
        module.read_text()
        + "\n\n# Added by the boot check to its copy of the app (bootcheck/app_probe.py).\n"
        + "import bootcheck_probe as _bootcheck_probe  # noqa: E402\n\n"
        + f"{callable_name} = _bootcheck_probe.{wrapper}({callable_name})\n"
    )
