"""Helpers for template tests: build stacks with the cdk.json context, read user data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3_assets as s3_assets

from gunicorn_alb import delivery, rendering
from tests.conftest import cdk_json_context


def new_app(**context: object) -> cdk.App:
    return cdk.App(context={**cdk_json_context(), **context})


def new_stack(app: cdk.App | None = None, name: str = "Test") -> tuple[cdk.Stack, ec2.Vpc]:
    """An env-agnostic stack with a VPC shaped like the reference stack's."""
    stack = cdk.Stack(app or new_app(), name)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    return stack, vpc


def user_data_text(template: assertions.Template, launch_template_id: str | None = None) -> str:
    """The user data of a launch template, with each CloudFormation token shown as {json}."""
    templates = template.find_resources("AWS::EC2::LaunchTemplate")
    if launch_template_id is None:
        (launch_template,) = templates.values()
    else:
        launch_template = templates[launch_template_id]
    user_data: Any = launch_template["Properties"]["LaunchTemplateData"]["UserData"]
    content = user_data["Fn::Base64"]
    if isinstance(content, str):
        return content
    delimiter, parts = content["Fn::Join"]
    assert delimiter == ""
    return "".join(part if isinstance(part, str) else _show(part) for part in parts)


def _show(token: Any) -> str:
    import json

    return "{" + json.dumps(token, sort_keys=True) + "}"


def env_value(user_data: str, key: str) -> str:
    """The value of KEY=... in the boot.env the user data writes."""
    boot_env = delivery.written_file(user_data, rendering.BOOT_ENV_PATH)
    assert boot_env is not None, "the user data writes no boot.env"
    return delivery.parse_env(boot_env)[key]


SECRET_READS = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "secretsmanager:GetSecretValue",
)
"""The actions that read a parameter's or a secret's value."""


def secret_reads_on_every_resource(template: assertions.Template) -> list[dict[str, Any]]:
    """The statements of the template's IAM policies and roles that allow reading any parameter
    or secret: an action (or a wildcard such as ``ssm:Get*``) of ``SECRET_READS`` on ``*``, or
    any ``NotAction``/``NotResource`` allow. Managed policies are not in the template: see
    ``instance_role_managed_policies``."""
    from fnmatch import fnmatchcase

    found = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
        for resource in template.find_resources(kind).values():
            properties = resource["Properties"]
            documents = [properties.get("PolicyDocument")]
            documents += [p["PolicyDocument"] for p in properties.get("Policies", [])]
            for document in filter(None, documents):
                for statement in document["Statement"]:
                    if statement.get("Effect") != "Allow":
                        continue
                    if "NotAction" in statement or "NotResource" in statement:
                        found.append(statement)
                        continue
                    actions = statement["Action"]
                    resources = statement["Resource"]
                    patterns = [actions] if isinstance(actions, str) else actions
                    everything = resources == "*" or (
                        isinstance(resources, list) and "*" in resources
                    )
                    reads = any(
                        fnmatchcase(action.lower(), pattern.lower())
                        for pattern in patterns
                        for action in SECRET_READS
                    )
                    if reads and everything:
                        found.append(statement)
    return found


def instance_role_managed_policies(template: assertions.Template) -> list[Any]:
    """Every managed policy attached to an instance role (a role EC2 assumes) of the template:
    their grants are not in the template."""
    import json

    return [
        arn
        for role in template.find_resources("AWS::IAM::Role").values()
        if "ec2.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    ]


def instance_file(stack: cdk.Stack, user_data: str, path: str) -> str | None:
    """What an instance of ``stack`` receives at ``path`` (without the final newline): the user
    data's own file, else the file in the InstanceFiles asset the user data names
    (``INSTANCE_FILES_URL``), read from the asset CDK staged in the cloud assembly."""
    written = delivery.written_file(user_data, path)
    if written is not None:
        return written
    return delivery.written_file(user_data, path, instance_files_archive(stack, user_data))


def instance_files_archive(stack: cdk.Stack, user_data: str) -> bytes:
    """The staged InstanceFiles asset whose S3 key the user data's boot.env names."""
    found = re.search(r"[0-9a-f]{64}\.tgz", env_value(user_data, "INSTANCE_FILES_URL"))
    assert found is not None, "boot.env names no InstanceFiles asset"
    key = found.group(0)
    # Services with the same files share the key (the content's hash): any of them will do.
    asset, *_ = [
        child
        for child in stack.node.find_all()
        if isinstance(child, s3_assets.Asset)
        and child.node.id == delivery.INSTANCE_FILES_ID
        and child.s3_object_key == key
    ]
    staging = asset.node.find_child("Stage")
    assert isinstance(staging, cdk.AssetStaging)
    return Path(staging.absolute_staged_path).read_bytes()
