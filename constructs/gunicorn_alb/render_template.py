"""``gunicorn-alb render --template cdk.out/Stack.template.json [--out DIR]``: the files a
synthesized stack's instances receive, written at their instance paths under DIR, so a user can
read what will run. No CDK import: it reads the cloud assembly (the template, its asset manifest
``*.assets.json`` and the asset files next to them).

The user data is decoded from the launch template (``Fn::Base64`` of a string or an
``Fn::Join``), each deploy-time value shown by its token name: ``${LogicalId}`` for a ``Ref``,
``${LogicalId.Attribute}`` for an ``Fn::GetAtt``, ``${AWS::Region}`` for a pseudo parameter,
``Fn::Sub`` strings as they are. The files it writes come from its heredocs; the others from the
InstanceFiles asset its boot.env names (:mod:`gunicorn_alb.delivery`).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn_alb import delivery
from gunicorn_alb.rendering import BOOT_ENV_PATH

USER_DATA_PATH = "/var/lib/cloud/instance/user-data.txt"
"""Where cloud-init keeps the user data on an instance (the render writes it there too)."""

_HEREDOC = re.compile(r"^cat > (\S+) <<'(\w+)'\n(.*?)\n\2$", re.MULTILINE | re.DOTALL)


class RenderError(Exception):
    """The template or its assembly cannot be read as a gunicorn-alb stack's."""


@dataclass(frozen=True)
class ReceivedFile:
    path: str
    content: str
    source: str
    """``user data`` or ``InstanceFiles asset``."""


def token_name(value: Any) -> str:
    """A CloudFormation value as text: strings as they are, intrinsic functions by name."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return "${" + str(argument) + "}"
        if function == "Fn::GetAtt":
            parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
            return "${" + ".".join(str(p) for p in parts) + "}"
        if function == "Fn::Join":
            delimiter, parts = argument
            return str(delimiter).join(token_name(p) for p in parts)
        if function == "Fn::Sub":
            if isinstance(argument, str):
                return argument
            text, variables = argument
            for name, variable in variables.items():
                text = text.replace("${" + name + "}", token_name(variable))
            return str(text)
        if function == "Fn::Base64":
            return token_name(argument)
    return "${" + json.dumps(value, sort_keys=True) + "}"


def launch_templates(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's launch templates whose user data the construct wrote (its boot.env)."""
    found = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::EC2::LaunchTemplate":
            continue
        user_data = resource.get("Properties", {}).get("LaunchTemplateData", {}).get("UserData")
        if user_data is not None and BOOT_ENV_PATH in json.dumps(user_data):
            found[logical_id] = resource
    return found


def select(template: dict[str, Any], construct: str | None) -> tuple[str, dict[str, Any]]:
    """The one launch template of a gunicorn-alb construct, or the one ``construct`` names (its
    logical id, or the construct path of the service: ``Stack/Service``)."""
    found = launch_templates(template)
    if construct is not None:
        found = {
            logical_id: resource
            for logical_id, resource in found.items()
            if construct == logical_id
            or _cdk_path(resource).startswith(construct.rstrip("/") + "/")
        }
    if len(found) == 1:
        ((logical_id, resource),) = found.items()
        return logical_id, resource
    listing = ", ".join(
        f"{logical_id} ({_cdk_path(resource) or 'no construct path'})"
        for logical_id, resource in launch_templates(template).items()
    )
    if not found and construct is not None:
        raise RenderError(f"--construct {construct!r} names none of: {listing or 'none'}")
    if not found:
        raise RenderError("the template has no launch template written by gunicorn-alb")
    raise RenderError(
        f"the template has {len(found)} gunicorn-alb launch templates: choose one with "
        f"--construct LOGICAL_ID (or the service's construct path): {listing}"
    )


def _cdk_path(resource: dict[str, Any]) -> str:
    return str(resource.get("Metadata", {}).get("aws:cdk:path", ""))


def received_files(template_path: Path, construct: str | None = None) -> list[ReceivedFile]:
    """Every file an instance of the stack receives: the user data itself, the files it writes,
    and those of the InstanceFiles asset (from the cloud assembly next to the template)."""
    try:
        template = json.loads(template_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RenderError(f"cannot read the template {template_path}: {error}") from None
    _, resource = select(template, construct)
    user_data = token_name(resource["Properties"]["LaunchTemplateData"]["UserData"])
    files = [ReceivedFile(USER_DATA_PATH, user_data, "user data")]
    files += [
        ReceivedFile(m.group(1), m.group(3) + "\n", "user data")
        for m in _HEREDOC.finditer(user_data)
    ]
    boot_env = delivery.parse_env(delivery.written_file(user_data, BOOT_ENV_PATH) or "")
    url = boot_env.get("INSTANCE_FILES_URL", "")
    if url:
        archive = _asset_file(template_path, url.rsplit("/", 1)[-1]).read_bytes()
        files += [
            ReceivedFile(path, content, "InstanceFiles asset")
            for path, content in sorted(delivery.archive_files(archive).items())
        ]
    return files


def _asset_file(template_path: Path, key: str) -> Path:
    """The staged file of the asset uploaded under ``key`` (the assets manifest next to the
    template: ``Stack.assets.json`` for ``Stack.template.json``)."""
    assembly = template_path.parent
    stem = template_path.name.removesuffix(".template.json")
    manifests = [assembly / f"{stem}.assets.json"]
    if not manifests[0].is_file():
        manifests = sorted(assembly.glob("*.assets.json"))
    for manifest in manifests:
        for asset in json.loads(manifest.read_text(encoding="utf-8")).get("files", {}).values():
            keys = {d.get("objectKey") for d in asset.get("destinations", {}).values()}
            if key in keys:
                source: Path = assembly / str(asset["source"]["path"])
                if not source.is_file():
                    raise RenderError(f"the InstanceFiles asset {source} is missing")
                return source
    raise RenderError(
        f"no asset in {', '.join(str(m) for m in manifests) or assembly} has the key {key} "
        "(the InstanceFiles asset the user data names): synthesize the stack again"
    )


def write(files: list[ReceivedFile], out: Path) -> list[Path]:
    """The files at their instance paths under ``out``; the paths written."""
    written = []
    for file in files:
        target = out / file.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.content, encoding="utf-8")
        written.append(target)
    return written


def run(template: str, out: str | None, construct: str | None) -> int:
    """The command: write the files, print each with where it comes from; 2 on an error."""
    try:
        files = received_files(Path(template), construct)
    except RenderError as error:
        print(f"gunicorn-alb render: {error}", file=sys.stderr)
        return 2
    paths = write(files, Path(out or "instance-files"))
    for file, path in zip(files, paths, strict=True):
        print(f"{path}  ({file.source})")
    return 0
