"""What a first deploy of the reference stack meets: the group waits for its network, and a failed
first create leaves nothing behind (issue 21). The variant without NAT is in test_platform."""

from __future__ import annotations

from aws_cdk import assertions

DATA_HOLDERS = {"AWS::KMS::Key": 3, "AWS::Logs::LogGroup": 2}
"""The keys (instance logs, alarm topic, flow logs) and the log groups (instance logs, flow logs)
of the reference stack."""


def test_the_group_waits_for_the_nat_routes_of_its_subnets(
    reference_template: assertions.Template,
) -> None:
    """An instance installs over the network from its first second: without a DependsOn,
    CloudFormation may create the group (and boot instances, which exhaust their install retries)
    before the private subnets' default routes to the NAT gateway exist (CloudFormation user
    guide, "DependsOn attribute": "When a DependsOn attribute is required"). The load balancer
    already waits for the public routes."""
    routes = reference_template.find_resources("AWS::EC2::Route")
    nat_routes = {rid for rid, route in routes.items() if "NatGatewayId" in route["Properties"]}
    assert len(nat_routes) == 2  # one private subnet per Availability Zone
    (group,) = reference_template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    assert nat_routes <= set(group.get("DependsOn", []))


def test_a_failed_first_create_deletes_the_keys_and_log_groups(
    reference_template: assertions.Template,
) -> None:
    """``RetainExceptOnCreate``: kept on stack deletion and replacement, deleted when the
    operation that created them rolls back (CloudFormation user guide, "DeletionPolicy
    attribute"; aws-cdk-lib ``RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE``). With ``Retain`` each
    failed first deploy left three KMS keys (billed monthly) and two log groups behind."""
    for kind, count in DATA_HOLDERS.items():
        found = reference_template.find_resources(kind)
        assert len(found) == count, kind
        for logical_id, resource in found.items():
            assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", logical_id
            assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_only_the_access_log_bucket_is_retained_even_after_a_failed_create(
    reference_template: assertions.Template,
) -> None:
    """The ALB writes a test object into its access-log bucket when logging is enabled
    (``AWSLogs/<account>/ELBAccessLogTestFile``; Elastic Load Balancing user guide, "Enable
    access logs"), and CloudFormation cannot delete a bucket that holds objects: deleting it in
    a failed first create's rollback would end the stack in ``ROLLBACK_FAILED``. So the bucket,
    and nothing else, stays ``Retain``."""
    resources = reference_template.to_json()["Resources"]
    retained = {r["Type"] for r in resources.values() if r.get("DeletionPolicy") == "Retain"}
    assert retained == {"AWS::S3::Bucket"}
