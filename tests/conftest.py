"""Shared test set-up.

Synthesizing is the slow part of the suite: templates are built once per module (or once per
session for the reference app) and shared by every assertion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import aws_cdk as cdk

ROOT = Path(__file__).resolve().parents[1]

# jsii starts Node.js for aws-cdk-lib: use the pinned Node 22 (package.json), not the machine's.
_NODE = ROOT / "node_modules" / ".bin" / "node"
if "JSII_NODE" not in os.environ and _NODE.exists():
    os.environ["JSII_NODE"] = str(_NODE)


def cdk_json_context() -> dict[str, object]:
    """The context `cdk synth` gives the app: the feature flags in cdk.json."""
    context: dict[str, object] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234"


def validated_app() -> cdk.App:
    """An App with the cdk.json context, as `cdk synth` builds it, and the AWS Control Tower
    proactive controls registered (cdklabs-cdk-validator-cfnguard). Its synth writes the controls'
    report into the assembly (``validation-report.json``) for the compliance tests; a finding
    does not fail the synth itself, so template tests on the same stack still run."""
    import aws_cdk as cdk
    from cdklabs.cdk_validator_cfnguard import CfnGuardValidator

    app = cdk.App(
        context={**cdk_json_context(), "@aws-cdk/core:failSynthOnValidationErrors": False}
    )
    # The plugin's jsii types name the Beta1 interfaces aws-cdk-lib still accepts.
    cdk.Validations.of(app).add_plugins(CfnGuardValidator())  # type: ignore[arg-type]
    return app


@pytest.fixture(scope="session")
def reference_stack():  # type: ignore[no-untyped-def]
    """The reference stack (HTTP), built as `cdk synth` builds it (shared)."""
    from stacks.gunicorn_service_stack import GunicornServiceStack

    return GunicornServiceStack(validated_app(), "Reference")


@pytest.fixture(scope="session")
def reference_https_stack():  # type: ignore[no-untyped-def]
    """The reference stack with a certificate (HTTPS, port 80 redirecting) and deletion
    protection on, as ``-c certificateArn=... -c deletionProtection=true`` builds it (shared)."""
    from stacks.gunicorn_service_stack import GunicornServiceStack

    return GunicornServiceStack(
        validated_app(), "Reference", certificate_arn=CERTIFICATE_ARN, deletion_protection=True
    )


DRAIN_CLEANUP = 'echo "drained $(date -u +%FT%TZ)" >"$STATE_DIRECTORY/drained"'
DRAIN_HOOK_SECONDS = 4300


@pytest.fixture(scope="session")
def isolated_drain_stack():  # type: ignore[no-untyped-def]
    """The reference stack as ``-c privateIsolated=true -c terminationHookSeconds=4300 -c
    terminationCommand=...`` builds it: isolated subnets with their endpoints, and the termination
    drain (shared by the platform, drain and compliance tests)."""
    from stacks.gunicorn_service_stack import GunicornServiceStack

    return GunicornServiceStack(
        validated_app(),
        "Reference",
        private_isolated=True,
        termination_hook_seconds=DRAIN_HOOK_SECONDS,
        termination_command=DRAIN_CLEANUP,
    )


@pytest.fixture(scope="session")
def isolated_drain_template(isolated_drain_stack):  # type: ignore[no-untyped-def]
    from aws_cdk import assertions

    return assertions.Template.from_stack(isolated_drain_stack)


@pytest.fixture(scope="session")
def reference_template(reference_stack):  # type: ignore[no-untyped-def]
    from aws_cdk import assertions

    return assertions.Template.from_stack(reference_stack)


@pytest.fixture(scope="session")
def reference_https_template(reference_https_stack):  # type: ignore[no-untyped-def]
    from aws_cdk import assertions

    return assertions.Template.from_stack(reference_https_stack)


@pytest.fixture(scope="session")
def cli_synths(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`cdk synth` of the reference app with the pinned CLI, once per distinct context the boot
    check needs (the default, -c idleTimeoutSeconds=120 and -c example=django), in parallel,
    shared by the CLI test and the boot check. Keyed by ``ReferenceVariant.synth_key``."""
    from gunicorn_alb.bootcheck import stack
    from tools.bootcheck import reference

    try:
        return reference.synthesize(reference.VARIANTS, tmp_path_factory.mktemp("cdk-synth"))
    except stack.BootCheckError as error:
        pytest.fail(str(error))
