"""The examples' stacks, synthesized once (one app for both, plus a stack with an imported,
KMS-encrypted SecureString), as `cdk synth -c example=...` builds them: the templates show the
environment names and the secrets' ARNs, never a value; the instance role may read exactly
those secrets."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Match

from examples.django.stack import DjangoExampleStack
from examples.fastapi.stack import FastApiExampleStack
from gunicorn_alb import ApplicationLoadBalancedGunicornService, Secret, delivery, rendering
from tests.helpers import (
    instance_file,
    instance_role_managed_policies,
    new_app,
    new_stack,
    secret_reads_on_every_resource,
    user_data_text,
)


@pytest.fixture(scope="module")
def example_stacks() -> dict[str, cdk.Stack]:
    app = new_app()
    django = DjangoExampleStack(app, "Django")
    fastapi = FastApiExampleStack(app, "FastApi")
    keyed, vpc = new_stack(app, "Keyed")
    key = kms.Key(keyed, "Key")
    parameter = ssm.StringParameter.from_secure_string_parameter_attributes(
        keyed, "Token", parameter_name="/app/token", encryption_key=key
    )
    ApplicationLoadBalancedGunicornService(
        keyed, "Service", vpc=vpc, secrets={"API_TOKEN": Secret.from_ssm_parameter(parameter)}
    )
    return {"django": django, "fastapi": fastapi, "keyed": keyed}


@pytest.fixture(scope="module")
def templates(example_stacks: dict[str, cdk.Stack]) -> dict[str, assertions.Template]:
    (app,) = {stack.node.root for stack in example_stacks.values()}
    assert isinstance(app, cdk.App)
    assembly = app.synth()  # one synth for the three stacks
    return {
        name: assertions.Template.from_json(assembly.get_stack_artifact(stack.artifact_id).template)
        for name, stack in example_stacks.items()
    }


def _written(template: assertions.Template, path: str) -> str:
    text = delivery.written_file(user_data_text(template), path)
    assert text is not None, f"the user data does not write {path}"
    return text


def _secret_logical_id(template: assertions.Template) -> str:
    (logical_id,) = template.find_resources("AWS::SecretsManager::Secret")
    return logical_id


def _policy_statements(template: assertions.Template) -> list[dict[str, Any]]:
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_django_template_shows_environment_names_and_values(templates) -> None:  # type: ignore[no-untyped-def]
    app_env = _written(templates["django"], rendering.APP_ENV_PATH)
    assert "DJANGO_SETTINGS_MODULE='mysite.settings'" in app_env.splitlines()
    # A token renders through Fn::Join: the value is the stack's URL suffix at deploy time.
    assert """DJANGO_ALLOWED_HOSTS='.elb.{{"Ref": "AWS::URLSuffix"}}'""" in app_env.splitlines()


def test_django_template_holds_secret_arns_and_no_value(templates) -> None:  # type: ignore[no-untyped-def]
    template = templates["django"]
    secret_id = _secret_logical_id(template)
    listed = _written(template, rendering.SECRETS_LIST_PATH).splitlines()
    assert listed[0] == f'DJANGO_SECRET_KEY secretsmanager {{{{"Ref": "{secret_id}"}}}} key'
    name, source, arn = listed[1].split(" ", 2)
    assert (name, source) == ("GREETING", "ssm")
    assert arn.startswith('arn:{{"Ref": "AWS::Partition"}}:ssm:{{"Ref": "AWS::Region"}}:')
    # CloudFormation generates the secret key: the template has a generator, never a value.
    secret = template.find_resources("AWS::SecretsManager::Secret")[secret_id]["Properties"]
    assert "GenerateSecretString" in secret and "SecretString" not in secret
    user_data = user_data_text(template)
    assert "Hello" not in user_data  # the SSM parameter's value stays in SSM
    assert secret["GenerateSecretString"]["SecretStringTemplate"] == "{}"


def test_django_instance_role_reads_exactly_its_secrets(templates) -> None:  # type: ignore[no-untyped-def]
    template = templates["django"]
    statements = _policy_statements(template)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in reads] == [{"Ref": _secret_logical_id(template)}]
    ssm_reads = [s for s in statements if "ssm:GetParameter" in s["Action"]]
    assert len(ssm_reads) == 1
    assert "*" not in json.dumps(ssm_reads[0]["Resource"])


@pytest.mark.parametrize("name", ["django", "fastapi", "keyed"])
def test_no_role_reads_every_parameter_or_secret(templates, name: str) -> None:  # type: ignore[no-untyped-def]
    """The instances read exactly the app's secrets: no statement allows ``ssm:GetParameter*`` or
    ``secretsmanager:GetSecretValue`` on ``*``, and no managed policy (whose grants the template
    cannot show) is attached; ``AmazonSSMManagedInstanceCore`` allowed ``ssm:GetParameter`` and
    ``ssm:GetParameters`` on ``*`` (AWS Managed Policy Reference)."""
    template = templates[name]
    assert instance_role_managed_policies(template) == []
    assert secret_reads_on_every_resource(template) == []


def test_django_release_step_runs_collectstatic(templates, example_stacks) -> None:  # type: ignore[no-untyped-def]
    template = templates["django"]
    release = delivery.parse_env(_written(template, rendering.PRE_START_ENV_PATH))
    assert release == {"GUNICORN_ALB_PRE_START": "python manage.py collectstatic --noinput"}
    unit = instance_file(
        example_stacks["django"], user_data_text(template), rendering.PRE_START_UNIT_PATH
    )
    assert unit is not None and "Type=oneshot" in unit


def test_fastapi_template_installs_the_uvicorn_worker(templates, example_stacks) -> None:  # type: ignore[no-untyped-def]
    template = templates["fastapi"]
    boot_env = delivery.parse_env(_written(template, rendering.BOOT_ENV_PATH))
    assert boot_env["WSGI_APP"] == "main:create_app()"
    assert "uvicorn-worker==0.4.0" in boot_env["EXTRA_PIP_PACKAGES"].split()
    conf = instance_file(
        example_stacks["fastapi"], user_data_text(template), rendering.GUNICORN_CONF_PATH
    )
    assert conf is not None
    assert 'worker_class = "gunicorn_alb_uvicorn.UvicornWorker"' in conf
    assert "threads = 1" in conf
    assert "APP_STAGE='example'" in _written(template, rendering.APP_ENV_PATH)
    assert delivery.written_file(user_data_text(template), rendering.SECRETS_LIST_PATH) is None


def test_a_securestring_with_its_key_grants_decrypt_on_that_key(templates) -> None:  # type: ignore[no-untyped-def]
    template = templates["keyed"]
    (key_id,) = [k for k in template.find_resources("AWS::KMS::Key") if k.startswith("Key")]
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "kms:Decrypt",
                                "Resource": {"Fn::GetAtt": [key_id, "Arn"]},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_every_example_user_data_fits_ec2s_limit(templates) -> None:  # type: ignore[no-untyped-def]
    for template in templates.values():
        assert len(user_data_text(template).encode()) < delivery.USER_DATA_LIMIT
