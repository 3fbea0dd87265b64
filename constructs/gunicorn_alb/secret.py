"""``Secret``: a value the instances fetch at boot, from SSM Parameter Store or Secrets Manager.

The vocabulary of ``aws_ecs.Secret``. The template and the user data hold only the parameter's or
secret's ARN; each instance reads the value when it boots, with its own role, into a file only
root can read, which systemd hands to the app's environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm

from gunicorn_alb import app_config, rendering

SSM = "ssm"
SECRETS_MANAGER = "secretsmanager"


class Secret:
    """A secret environment variable of the app. Create one with :meth:`from_ssm_parameter` or
    :meth:`from_secrets_manager`; pass it in ``secrets={"NAME": secret}``."""

    def __init__(
        self,
        *,
        source: str,
        arn: str,
        field: str | None,
        grant: ssm.IParameter | secretsmanager.ISecret,
    ) -> None:
        self.source = source
        """``ssm`` or ``secretsmanager``: which API the instance calls."""
        self.arn = arn
        """The parameter's or secret's ARN (usually a token)."""
        self.field = field
        """The JSON key read from a Secrets Manager secret, or None for the whole value."""
        self._resource = grant

    @classmethod
    def from_ssm_parameter(cls, parameter: ssm.IParameter) -> Secret:
        """A String or SecureString parameter of SSM Parameter Store, read with
        ``ssm:GetParameter`` and decryption.

        :param parameter: the parameter. A SecureString encrypted with a customer-managed key
            must carry that key (``StringParameter.from_secure_string_parameter_attributes(...,
            encryption_key=key)``) so the instance role may decrypt with it; the AWS managed key
            ``aws/ssm`` needs no grant.
        """
        return cls(source=SSM, arn=parameter.parameter_arn, field=None, grant=parameter)

    @classmethod
    def from_secrets_manager(
        cls, secret: secretsmanager.ISecret, field: str | None = None
    ) -> Secret:
        """A Secrets Manager secret (its string value), read with ``GetSecretValue``.

        :param secret: the secret; its KMS key, when CDK knows it, is granted too.
        :param field: a key of the secret's JSON value to read. Default: - the whole value
        """
        return cls(source=SECRETS_MANAGER, arn=secret.secret_arn, field=field, grant=secret)

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read this parameter or secret (and decrypt it with its key)."""
        return self._resource.grant_read(grantee)


_ARN = re.compile(r"^arn:[a-z-]+:(ssm|secretsmanager):[a-z0-9-]+:\d{12}:\S+$")


def check_secrets(
    secrets: Mapping[str, Secret] | None, environment: Mapping[str, str] | None
) -> list[str]:
    """``secrets``: valid names (see :func:`gunicorn_alb.app_config.check_names`), none also in
    ``environment``, each value a :class:`Secret` with a plain JSON field and a full ARN."""
    if secrets is None:
        return []
    if not isinstance(secrets, Mapping):
        return [f"secrets must be a mapping of names to gunicorn_alb.Secret, got {secrets!r}"]
    problems = app_config.check_secret_names(secrets, environment)
    for name, secret in secrets.items():
        if not isinstance(secret, Secret):
            problems.append(
                f"secrets[{name!r}] must be a gunicorn_alb.Secret (Secret.from_ssm_parameter or "
                f"Secret.from_secrets_manager), got {secret!r}"
            )
            continue
        problems += app_config.check_secret_field(name, secret.field)
        if not cdk.Token.is_unresolved(secret.arn) and not _ARN.match(secret.arn):
            problems.append(
                f"secrets[{name!r}] must name its parameter or secret by a full ARN with a "
                f"region and account, got {secret.arn!r}"
            )
    return problems


def secret_refs(secrets: Mapping[str, Secret] | None) -> tuple[rendering.SecretRef, ...]:
    """What the instance needs to read each secret: names and ARNs, never a value."""
    return tuple(
        rendering.SecretRef(name, secret.source, secret.arn, secret.field or "")
        for name, secret in (secrets or {}).items()
    )
