"""`gunicorn-alb boot-check` without a boot: which service of a cloud assembly it boots (assemblies
written here from the reference template's snapshot), and the one message that names every
missing prerequisite (the machine's probes replaced)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gunicorn_alb import __main__ as cli_main
from gunicorn_alb import delivery, rendering
from gunicorn_alb.bootcheck import assembly, prerequisites, stack
from gunicorn_alb.bootcheck.stack import BootCheckError

SNAPSHOT = Path(__file__).resolve().parents[1] / "template" / "reference.template.json"
LAUNCH_TEMPLATE = "ServiceLaunchTemplateFEA71093"


def _template(stack_id: str, services: tuple[str, ...] = ("Service",)) -> dict[str, Any]:
    """The reference template with one launch template per service, each with the path
    metadata `cdk synth` writes."""
    template: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    resources = template["Resources"]
    original = resources.pop(LAUNCH_TEMPLATE)
    for service in services:
        resource = copy.deepcopy(original)
        resource["Metadata"] = {"aws:cdk:path": f"{stack_id}/{service}/LaunchTemplate/Resource"}
        resources[f"{service}LaunchTemplateFEA71093"] = resource
    return template


def write_assembly(outdir: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    """A cloud assembly as `cdk synth` writes it: a manifest, each stack's template and its
    assets manifest."""
    outdir.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, Any] = {}
    for stack_id, template in stacks.items():
        (outdir / f"{stack_id}.template.json").write_text(json.dumps(template))
        (outdir / f"{stack_id}.assets.json").write_text(json.dumps({"files": {}}))
        artifacts[f"{stack_id}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{stack_id}.assets.json"},
        }
        artifacts[stack_id] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{stack_id}.template.json"},
            "dependencies": [f"{stack_id}.assets"],
            "displayName": stack_id,
        }
    (outdir / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return outdir


def test_chooses_the_one_service(tmp_path: Path) -> None:
    outdir = write_assembly(tmp_path / "cdk.out", {"Shop": _template("Shop")})
    service = assembly.select(outdir, assembly.services(outdir))
    assert (service.stack, service.construct_path) == ("Shop", "Shop/Service")
    synth = assembly.load(service)
    assert synth.launch_template == "ServiceLaunchTemplateFEA71093"
    user_data = stack.resolve_user_data(synth, {})
    assert delivery.written_file(user_data.text, rendering.BOOT_ENV_PATH)


def test_fails_when_several_stacks_and_none_is_chosen(tmp_path: Path) -> None:
    outdir = write_assembly(
        tmp_path / "cdk.out", {"Shop": _template("Shop"), "Blog": _template("Blog")}
    )
    found = assembly.services(outdir)
    with pytest.raises(BootCheckError) as error:
        assembly.select(outdir, found)
    message = str(error.value)
    assert "has 2 services; choose one with --stack NAME" in message
    assert "--stack Shop --construct Shop/Service" in message
    assert "--stack Blog --construct Blog/Service" in message
    assert assembly.select(outdir, found, stack="Blog").construct_path == "Blog/Service"


def test_fails_when_a_stack_has_several_services_and_none_is_chosen(tmp_path: Path) -> None:
    outdir = write_assembly(tmp_path / "cdk.out", {"Shop": _template("Shop", ("Web", "Api"))})
    found = assembly.services(outdir)
    with pytest.raises(BootCheckError, match="choose one with --construct PATH") as error:
        assembly.select(outdir, found, stack="Shop")
    assert "--stack Shop --construct Shop/Api   (launch template ApiLaunchTemplate" in str(
        error.value
    )
    chosen = assembly.select(outdir, found, construct="Api")
    assert assembly.select(outdir, found, construct="Shop/Api") == chosen
    synth = assembly.load(chosen)
    assert stack.resolve_user_data(synth, {}).launch_template_id == "ApiLaunchTemplateFEA71093"


def test_fails_when_nothing_matches_the_flags(tmp_path: Path) -> None:
    outdir = write_assembly(tmp_path / "cdk.out", {"Shop": _template("Shop")})
    with pytest.raises(BootCheckError, match=r"no service in .* matches --stack Blog"):
        assembly.select(outdir, assembly.services(outdir), stack="Blog")


def test_fails_when_the_assembly_has_no_service(tmp_path: Path) -> None:
    empty = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    outdir = write_assembly(tmp_path / "cdk.out", {"Other": empty})
    with pytest.raises(
        BootCheckError, match=r"has no ApplicationLoadBalancedGunicornService \(its stacks: Other\)"
    ):
        assembly.select(outdir, assembly.services(outdir))


def test_fails_when_there_is_no_cloud_assembly(tmp_path: Path) -> None:
    with pytest.raises(BootCheckError, match=r"is not a cloud assembly .* run `cdk synth`"):
        assembly.services(tmp_path)


def test_construct_path_from_the_assembly_metadata(tmp_path: Path) -> None:
    """`cdk synth --no-path-metadata`: the path comes from the manifest's logical-id entries."""
    template = _template("Shop")
    del template["Resources"]["ServiceLaunchTemplateFEA71093"]["Metadata"]
    outdir = write_assembly(tmp_path / "cdk.out", {"Shop": template})
    manifest = json.loads((outdir / "manifest.json").read_text())
    manifest["artifacts"]["Shop"]["metadata"] = {
        "/Shop/Web/LaunchTemplate/Resource": [
            {"type": "aws:cdk:logicalId", "data": "ServiceLaunchTemplateFEA71093"}
        ]
    }
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    assert [s.construct_path for s in assembly.services(outdir)] == ["Shop/Web"]


# --- Prerequisites ------------------------------------------------------------------------------


@pytest.fixture
def bare_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with none of it: Linux without overlayfs, not root, no tools, no cached tree."""
    monkeypatch.setattr(prerequisites.platform, "system", lambda: "Linux")
    monkeypatch.setattr(prerequisites, "overlay_supported", lambda: False)
    monkeypatch.setattr(prerequisites.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(prerequisites.shutil, "which", lambda _: None)
    monkeypatch.setattr(prerequisites.rootfs, "cached", lambda: None)


def test_names_every_missing_prerequisite_at_once(bare_machine: None) -> None:
    problems, packages = prerequisites.missing()
    message = prerequisites.message(problems, packages)
    assert message.splitlines() == [
        "gunicorn-alb boot-check cannot run here; it needs:",
        "- overlayfs in the kernel: each boot runs on an overlay of the root filesystem",
        "- root: run it with sudo (it mounts an overlay and starts systemd-nspawn), e.g. "
        "`sudo .venv/bin/gunicorn-alb boot-check`",
        "- systemd-nspawn (package systemd-container): boots the container with systemd as PID 1",
        "- nsenter (package util-linux): runs the checks inside the container",
        "- mmdebstrap (package mmdebstrap): builds the Debian 12 root filesystem once per machine",
        "On Debian or Ubuntu: sudo apt-get install -y systemd-container util-linux mmdebstrap",
        prerequisites.CI_POINTER,
    ]


def test_names_what_is_missing_off_linux(
    bare_machine: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(prerequisites.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(prerequisites.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(prerequisites.rootfs, "cached", lambda: tmp_path)
    problems, packages = prerequisites.missing()
    assert problems[0].startswith("Linux: this is Darwin")
    assert packages == []
    assert "apt-get" not in prerequisites.message(problems, packages)


def test_nothing_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(prerequisites.platform, "system", lambda: "Linux")
    monkeypatch.setattr(prerequisites, "overlay_supported", lambda: True)
    monkeypatch.setattr(prerequisites.os, "geteuid", lambda: 0)
    monkeypatch.setattr(prerequisites.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(prerequisites.rootfs, "cached", lambda: tmp_path)
    assert prerequisites.missing() == ([], [])


def test_command_exits_2_with_the_message(
    bare_machine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main.main(["boot-check"]) == 2
    assert "gunicorn-alb boot-check cannot run here; it needs:" in capsys.readouterr().err


def test_command_exits_2_when_the_choice_is_ambiguous(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(prerequisites, "missing", lambda: ([], []))
    outdir = write_assembly(
        tmp_path / "cdk.out", {"Shop": _template("Shop"), "Blog": _template("Blog")}
    )
    assert cli_main.main(["boot-check", "--app", str(outdir)]) == 2
    assert "choose one with --stack NAME" in capsys.readouterr().err
