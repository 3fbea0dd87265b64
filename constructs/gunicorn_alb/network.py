"""VPC endpoints for instances whose subnets have no route to the internet (no NAT gateway).

Everything an instance calls at boot and in operation is an AWS service: S3 (the app asset, the
wheelhouse, and Amazon Linux 2023's dnf repositories, which are served from S3) through a
gateway endpoint, and the rest through interface endpoints. ``INTERFACE_ENDPOINTS`` says who
calls what; pass ``services`` to keep only those your instances use.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

AL2023_REPOSITORY_BUCKET = "al2023-repos-{region}-de612dc2"
"""The S3 bucket of Amazon Linux 2023's package repositories in a region: an S3 endpoint policy
must let ``s3:GetObject`` reach its objects, or dnf fails with 403 (Amazon Linux 2023 user guide,
package repository access through an S3 gateway endpoint)."""

INTERFACE_ENDPOINTS: dict[str, tuple[ec2.InterfaceVpcEndpointAwsService, str]] = {
    "Ssm": (ec2.InterfaceVpcEndpointAwsService.SSM, "SSM agent, Session Manager, SSM parameters"),
    "SsmMessages": (ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES, "Session Manager sessions"),
    "Ec2Messages": (ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES, "SSM agent commands"),
    "CloudFormation": (
        ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION,
        "cfn-signal at the end of the boot",
    ),
    "Logs": (ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, "CloudWatch agent: logs"),
    "SecretsManager": (
        ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        "the app's secrets, read at boot",
    ),
    "ElasticLoadBalancing": (
        ec2.InterfaceVpcEndpointAwsService.ELASTIC_LOAD_BALANCING,
        "the live idle timeout (boot and coupling agent)",
    ),
}
"""Interface endpoints by child id: the service and who on the instance calls it. No CloudWatch
metrics endpoint (``monitoring``): the CloudWatch agent ships logs only
(:mod:`gunicorn_alb.instance_logs`), and the instance metrics the alarms use come from EC2."""

SSM_AGENT_BUCKETS = (
    "amazon-ssm-{region}",
    "amazon-ssm-packages-{region}",
    "aws-ssm-{region}",
    "{region}-birdwatcher-prod",
    "aws-ssm-distributor-file-{region}",
    "aws-ssm-document-attachments-{region}",
    "patch-baseline-snapshot-{region}",
)
"""The AWS-owned buckets the SSM agent reads in a region (agent updates, Run Command and
Distributor documents, patch baselines), which an S3 endpoint policy must admit (Systems Manager
user guide, "SSM Agent communications with AWS managed S3 buckets"). Left out: the page's
``aws-windows-downloads-{region}`` and ``aws-patchmanager-macos-{region}`` (Windows and macOS
only) and the per-region Patch Manager buckets of "Reference: Amazon S3 buckets for patching
operations", whose names differ per region (add a statement to ``s3`` for them if you patch
with Patch Manager)."""

TERMINATION_HOOK_ENDPOINTS: dict[str, tuple[ec2.InterfaceVpcEndpointAwsService, str]] = {
    "AutoScaling": (
        ec2.InterfaceVpcEndpointAwsService.AUTOSCALING,
        "the drain watcher's CompleteLifecycleAction (termination_hook_timeout)",
    ),
}
"""Interface endpoints the instances need only with the construct's termination hook."""


class PrivateEndpoints(Construct):
    """An S3 gateway endpoint and the interface endpoints the instances need without a NAT gateway.

    The S3 endpoint's policy allows the Amazon Linux 2023 repositories and the SSM agent's
    AWS-owned buckets (read) and this account's own buckets (the CDK assets, the app's data), and
    nothing else: a foreign bucket is out of reach from these subnets. Interface endpoints use
    private DNS and accept HTTPS from the VPC.

    Make the Auto Scaling group depend on this construct
    (``service.auto_scaling_group.node.add_dependency(endpoints)``): its instances call these
    endpoints from the first second of their boot.

    Cost: the S3 gateway endpoint is free; each interface endpoint is billed per hour in each
    Availability Zone of ``subnets`` (about USD 0.01 an hour per endpoint and zone in us-east-1,
    plus USD 0.01 per GB) where one NAT gateway is USD 0.045 an hour plus USD 0.045 per GB: the
    seven endpoints in two zones cost about 2.8 times one NAT gateway when idle (docs/instances.md
    has the figures). Choose isolated subnets for having no route to the internet, not for cost.

    :param scope: the parent construct.
    :param id: the construct id.
    :param vpc: the VPC.
    :param subnets: where the instances run (the S3 route goes into their route tables; the
        interface endpoints get a network interface in each of their Availability Zones).
    :param services: child ids of ``INTERFACE_ENDPOINTS`` to create.
        Default: - all of them
    :param termination_hook: the instances drain through the construct's termination hook
        (``termination_hook_timeout``): add ``TERMINATION_HOOK_ENDPOINTS`` (Auto Scaling).
        Default: - False
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        services: Sequence[str] | None = None,
        termination_hook: bool = False,
    ) -> None:
        super().__init__(scope, id)
        unknown = sorted(set(services or ()) - set(INTERFACE_ENDPOINTS))
        if unknown:
            raise ValueError(
                f"services must be among {', '.join(INTERFACE_ENDPOINTS)}, got {', '.join(unknown)}"
            )
        self.s3 = ec2.GatewayVpcEndpoint(
            self, "S3", vpc=vpc, service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[subnets]
        )
        """The S3 gateway endpoint (no hourly charge)."""
        repositories = AL2023_REPOSITORY_BUCKET.format(region=cdk.Aws.REGION)
        self.s3.add_to_policy(
            iam.PolicyStatement(
                sid="AmazonLinux2023Repositories",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[f"arn:{cdk.Aws.PARTITION}:s3:::{repositories}/*"],
            )
        )
        self.s3.add_to_policy(
            iam.PolicyStatement(
                sid="SsmAgentBuckets",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:s3:::{bucket.format(region=cdk.Aws.REGION)}/*"
                    for bucket in SSM_AGENT_BUCKETS
                ],
            )
        )
        self.s3.add_to_policy(
            iam.PolicyStatement(
                sid="ThisAccountsBuckets",
                principals=[iam.AnyPrincipal()],
                actions=["s3:*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:ResourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        """The interface endpoints by child id."""
        wanted = {
            name: spec
            for name, spec in INTERFACE_ENDPOINTS.items()
            if services is None or name in services
        }
        if termination_hook:
            wanted.update(TERMINATION_HOOK_ENDPOINTS)
        for name, (service, _caller) in wanted.items():
            self.interface_endpoints[name] = ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=vpc,
                service=service,
                subnets=subnets,
                private_dns_enabled=True,
                open=True,
            )
