"""Decoding a launch template's user data into token names, and choosing the launch template."""

from __future__ import annotations

from typing import Any

import pytest

from gunicorn_alb import render_template
from gunicorn_alb.__main__ import main


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"Ref": "IdleTimeoutSeconds"}, "${IdleTimeoutSeconds}"),
        ({"Ref": "AWS::Region"}, "${AWS::Region}"),
        ({"Fn::GetAtt": ["Vpc8378EB38", "CidrBlock"]}, "${Vpc8378EB38.CidrBlock}"),
        ({"Fn::Sub": "s3://assets-${AWS::AccountId}/k.tgz"}, "s3://assets-${AWS::AccountId}/k.tgz"),
        ({"Fn::Sub": ["a-${X}", {"X": {"Ref": "B"}}]}, "a-${B}"),
        ({"Fn::Join": ["-", ["a", {"Ref": "B"}]]}, "a-${B}"),
        ({"Fn::Select": [0, ["a"]]}, '${{"Fn::Select": [0, ["a"]]}}'),
    ],
)
def test_each_deploy_time_value_is_shown_by_its_token_name(value: Any, shown: str) -> None:
    assert render_template.token_name(value) == shown


def _launch_template(path: str) -> dict[str, Any]:
    user_data = {"Fn::Base64": "#!/bin/bash\ncat > /etc/gunicorn-alb/boot.env <<'E'\nA=1\nE"}
    return {
        "Type": "AWS::EC2::LaunchTemplate",
        "Properties": {"LaunchTemplateData": {"UserData": user_data}},
        "Metadata": {"aws:cdk:path": f"{path}/LaunchTemplate/Resource"},
    }


TEMPLATE = {
    "Resources": {
        "WebLaunchTemplate1": _launch_template("Stack/Web"),
        "AdminLaunchTemplate2": _launch_template("Stack/Admin"),
        "Other": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": {}}},
    }
}


def test_a_construct_is_chosen_by_logical_id_or_construct_path() -> None:
    assert render_template.select(TEMPLATE, "WebLaunchTemplate1")[0] == "WebLaunchTemplate1"
    assert render_template.select(TEMPLATE, "Stack/Admin")[0] == "AdminLaunchTemplate2"


def test_fails_when_several_services_and_no_construct_is_chosen() -> None:
    with pytest.raises(render_template.RenderError, match=r"has 2 gunicorn-alb launch templates"):
        render_template.select(TEMPLATE, None)
    with pytest.raises(render_template.RenderError, match=r"--construct 'Nope' names none of: "):
        render_template.select(TEMPLATE, "Nope")


def test_fails_when_the_template_is_missing(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "Missing.template.json"
    assert main(["render", "--template", str(missing)]) == 2
    assert "cannot read the template" in capsys.readouterr().err
