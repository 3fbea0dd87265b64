"""Integration test of the reference stack on AWS (``make integ``; needs AWS credentials).

Run by ``@aws-cdk/integ-runner`` (package.json): it deploys the reference stack, then the
assertion stack, whose custom resources (``aws_cdk.integ_tests_alpha``) run in order:

1. the health path answers 200 through the load balancer (retried until the targets are healthy);
2. ``IdleTimeoutSeconds`` is updated from 60 to 120 with CloudFormation ``UpdateStack`` (the
   previous template, the other parameters' previous values), which rolls the instances;
3. the update completes (``UPDATE_COMPLETE``) and the ALB's idle timeout attribute is 120;
4. the health path still answers 200;

then destroys both stacks. The snapshot beside this file (``integ_reference.py.snapshot/``) is the
synthesized assembly; ``make test`` compares it with a fresh synth offline, so a template change
nobody reviewed fails CI (``make integ-snapshot`` rewrites it after review).

The update is made with the stack's own CloudFormation service role (the CDK bootstrap's
``cfn-exec-role``), which ``cdk deploy`` associated with the stack; the assertion provider may
pass that role and nothing else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402
from aws_cdk import cloud_assembly_schema as schema  # noqa: E402
from aws_cdk import integ_tests_alpha as integ  # noqa: E402

from stacks.gunicorn_service_stack import GunicornServiceStack  # noqa: E402

STACK_ID = "Reference"
"""The construct id of the tests' reference stack (``tests/conftest.py``): the stack under test is
that stack, template for template, so its snapshot is the reference template's."""
STACK_NAME = "GunicornAlbInteg"
UPDATED_IDLE_TIMEOUT = "120"
HEALTH_PATH = "/healthz"


def context() -> dict[str, object]:
    """The feature flags of the repository's cdk.json, so the test synthesizes what deploys."""
    flags: dict[str, object] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return flags


def build(app: cdk.App) -> integ.IntegTest:
    """The stack under test, the assertions in order, and the runner's options."""
    stack = GunicornServiceStack(app, STACK_ID, stack_name=STACK_NAME)
    test = integ.IntegTest(
        app,
        "ReferenceStack",
        test_cases=[stack],
        cdk_command_options=schema.CdkCommands(
            deploy=schema.DeployCommand(
                args=schema.DeployOptions(require_approval=schema.RequireApproval.NEVER)
            ),
            destroy=schema.DestroyCommand(args=schema.DestroyOptions(force=True)),
        ),
        diff_assets=False,
        stack_update_workflow=False,
    )
    load_balancer = stack.service.load_balancer
    url = f"http://{load_balancer.load_balancer_dns_name}{HEALTH_PATH}"
    answers = integ.ExpectedResult.object_like({"status": 200})

    healthy = test.assertions.http_api_call(url)
    healthy.expect(answers)
    healthy.wait_for_assertions(
        interval=cdk.Duration.seconds(15), total_timeout=cdk.Duration.minutes(10)
    )

    update = test.assertions.aws_api_call(
        "CloudFormation",
        "updateStack",
        {
            "StackName": stack.stack_name,
            "UsePreviousTemplate": True,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            "Parameters": [
                {"ParameterKey": "IdleTimeoutSeconds", "ParameterValue": UPDATED_IDLE_TIMEOUT},
                *[
                    {"ParameterKey": name, "UsePreviousValue": True}
                    for name in _other_parameters(stack)
                ],
            ],
        },
    )
    update.provider.add_to_role_policy(
        {
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [
                f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/cdk-*-cfn-exec-role-*"
            ],
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        }
    )

    updated = test.assertions.aws_api_call(
        "CloudFormation",
        "describeStacks",
        {"StackName": stack.stack_name},
        ["Stacks.0.StackStatus"],
    )
    updated.expect(integ.ExpectedResult.object_like({"Stacks.0.StackStatus": "UPDATE_COMPLETE"}))
    # The rolling update replaces instances one at a time, each waiting for its signal.
    updated.wait_for_assertions(
        interval=cdk.Duration.minutes(1), total_timeout=cdk.Duration.minutes(60)
    )

    attribute = test.assertions.aws_api_call(
        "ElasticLoadBalancingV2",
        "describeLoadBalancerAttributes",
        {"LoadBalancerArn": load_balancer.load_balancer_arn},
    )
    attribute.expect(
        integ.ExpectedResult.object_like(
            {
                "Attributes": integ.Match.array_with(
                    [{"Key": "idle_timeout.timeout_seconds", "Value": UPDATED_IDLE_TIMEOUT}]
                )
            }
        )
    )

    still_healthy = test.assertions.http_api_call(url)
    still_healthy.expect(answers)
    still_healthy.wait_for_assertions(
        interval=cdk.Duration.seconds(15), total_timeout=cdk.Duration.minutes(10)
    )

    healthy.next(update).next(updated).next(attribute).next(still_healthy)
    return test


def _other_parameters(stack: cdk.Stack) -> list[str]:
    """Every template parameter but the idle timeout (the AMI's SSM parameter, ...)."""
    return sorted(
        stack.get_logical_id(child)
        for child in stack.node.find_all()
        if isinstance(child, cdk.CfnParameter)
        and child is not stack.node.try_find_child("IdleTimeoutSeconds")
    )


if __name__ == "__main__":
    app = cdk.App(context=context())
    build(app)
    app.synth()
