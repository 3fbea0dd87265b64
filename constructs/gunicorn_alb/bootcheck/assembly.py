"""The cloud assembly side of the boot check: which services a ``cdk synth`` output holds
(``ApplicationLoadBalancedGunicornService`` constructs), which one to boot, and that stack's
template and assets.

A service is found by its launch template: one whose user data writes the construct's boot.env.
Its construct path comes from the resource's ``aws:cdk:path`` metadata (``cdk synth`` writes it
unless ``--no-path-metadata``), else from the assembly's own metadata (``aws:cdk:logicalId``
entries), else it is the logical id. Stacks inside stages (nested assemblies) count too.

Reads files only: nothing here synthesizes. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gunicorn_alb import render_template
from gunicorn_alb.bootcheck.stack import BootCheckError, Synth

LAUNCH_TEMPLATE_CHILD = "/LaunchTemplate/Resource"
"""The launch template's path below the construct (``instances.py``: child id LaunchTemplate)."""


@dataclass(frozen=True)
class Service:
    """One service of the assembly: what ``--stack`` and ``--construct`` choose from."""

    stack: str
    """The stack's name in the assembly (its display name: ``Stage/Stack`` inside a stage)."""
    stack_name: str
    """The CloudFormation stack name."""
    construct_path: str
    launch_template: str
    """The launch template's logical id."""
    outdir: Path
    """The (nested) assembly folder holding the stack."""
    artifact_id: str
    artifact: dict[str, Any] = field(compare=False, repr=False)

    @property
    def flags(self) -> str:
        """The command-line flags that choose this service."""
        return f"--stack {self.stack} --construct {self.construct_path}"


def _manifest(outdir: Path) -> dict[str, Any]:
    path = outdir / "manifest.json"
    if not path.is_file():
        raise BootCheckError(
            f"{outdir} is not a cloud assembly (no manifest.json): run `cdk synth` in your CDK "
            "app first, or point --app at its output folder"
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def stacks(outdir: Path) -> list[tuple[Path, str, dict[str, Any]]]:
    """Every stack artifact of the assembly and of the assemblies nested in it (stages):
    (assembly folder, artifact id, artifact)."""
    found = []
    for artifact_id, artifact in _manifest(outdir).get("artifacts", {}).items():
        if artifact.get("type") == "aws:cloudformation:stack":
            found.append((outdir, artifact_id, artifact))
        elif artifact.get("type") == "cdk:cloud-assembly":
            found += stacks(outdir / artifact["properties"]["directoryName"])
    return found


def _template(outdir: Path, artifact: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(
        (outdir / artifact["properties"]["templateFile"]).read_text()
    )
    return template


def _paths_by_logical_id(outdir: Path, artifact: dict[str, Any]) -> dict[str, str]:
    """Construct paths by logical id, from the assembly's metadata (the manifest's or its
    additional metadata file)."""
    metadata = dict(artifact.get("metadata", {}))
    extra = artifact.get("additionalMetadataFile")
    if extra and (outdir / extra).is_file():
        metadata.update(json.loads((outdir / extra).read_text()))
    return {
        entry["data"]: path.lstrip("/")
        for path, entries in metadata.items()
        for entry in entries
        if entry.get("type") == "aws:cdk:logicalId" and isinstance(entry.get("data"), str)
    }


def services(outdir: Path) -> list[Service]:
    """Every service in the assembly at OUTDIR, in the manifest's order."""
    found = []
    for folder, artifact_id, artifact in stacks(outdir):
        template = _template(folder, artifact)
        paths: dict[str, str] | None = None
        for logical_id, resource in render_template.launch_templates(template).items():
            path = resource.get("Metadata", {}).get("aws:cdk:path")
            if not isinstance(path, str):
                paths = _paths_by_logical_id(folder, artifact) if paths is None else paths
                path = paths.get(logical_id, logical_id)
            found.append(
                Service(
                    stack=str(artifact.get("displayName", artifact_id)),
                    stack_name=str(artifact.get("properties", {}).get("stackName", artifact_id)),
                    construct_path=path.removesuffix(LAUNCH_TEMPLATE_CHILD),
                    launch_template=logical_id,
                    outdir=folder,
                    artifact_id=artifact_id,
                    artifact=artifact,
                )
            )
    return found


def _listing(found: Sequence[Service]) -> str:
    return "\n".join(f"  {s.flags}   (launch template {s.launch_template})" for s in found)


def select(
    outdir: Path, found: Sequence[Service], stack: str | None = None, construct: str | None = None
) -> Service:
    """The one service that ``--stack`` and ``--construct`` name (either may be left out when
    it leaves one). A construct path may be given whole or relative to its stack."""
    if not found:
        names = [str(a.get("displayName", i)) for _, i, a in stacks(outdir)]
        raise BootCheckError(
            f"the cloud assembly {outdir} has no ApplicationLoadBalancedGunicornService (its "
            f"stacks: {', '.join(names) or 'none'}); run `cdk synth` again after adding one"
        )
    chosen = [
        s
        for s in found
        if stack in (None, s.stack, s.stack_name, s.artifact_id)
        and (
            construct is None
            or s.construct_path == construct.strip("/")
            or s.construct_path.endswith("/" + construct.strip("/"))
        )
    ]
    if len(chosen) == 1:
        return chosen[0]
    given = " ".join(
        f"{flag} {value}"
        for flag, value in (("--stack", stack), ("--construct", construct))
        if value
    )
    if not chosen:
        raise BootCheckError(
            f"no service in {outdir} matches {given}; the assembly has:\n{_listing(found)}"
        )
    flag = "--construct PATH" if len({s.stack for s in chosen}) == 1 else "--stack NAME"
    raise BootCheckError(
        f"the cloud assembly {outdir} has {len(chosen)} services"
        + (f" matching {given}" if given else "")
        + f"; choose one with {flag}:\n{_listing(chosen)}"
    )


def load(service: Service) -> Synth:
    """The service's stack as the boot needs it: its template, its assets manifest, its launch
    template's logical id."""
    artifact = service.artifact
    manifests = [
        service.outdir / other["properties"]["file"]
        for dependency in artifact.get("dependencies", [])
        if (other := _manifest(service.outdir)["artifacts"].get(dependency, {})).get("type")
        == "cdk:asset-manifest"
    ] or [service.outdir / f"{service.artifact_id}.assets.json"]
    assets: dict[str, Any] = {"files": {}}
    for path in manifests:
        if path.is_file():
            assets["files"].update(json.loads(path.read_text()).get("files", {}))
    return Synth(
        service.outdir,
        service.stack_name,
        _template(service.outdir, artifact),
        assets,
        service.launch_template,
    )
