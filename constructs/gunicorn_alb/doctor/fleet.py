"""Reading the live fleet with boto3 (read-only calls): the load balancers of a stack or by name,
their idle timeout, target groups and drain, the Auto Scaling groups behind them and their user
data, and the ELB-generated error counts; :mod:`.checks` judges what is read."""

from __future__ import annotations

import argparse
import base64
import binascii
import gzip
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from gunicorn_alb import delivery, timeouts
from gunicorn_alb.doctor.aws import Aws, _error_code, _error_text, _pages
from gunicorn_alb.doctor.checks import (
    ELB_METRICS,
    check_elb_errors,
    check_fleet,
    manual_check,
    read_instance_settings,
)
from gunicorn_alb.doctor.model import (
    AsgReport,
    DoctorError,
    LaunchTemplateRef,
    LoadBalancerReport,
    Report,
    TargetGroupReport,
)
from gunicorn_alb.rendering import BOOT_ENV_PATH

IDLE_TIMEOUT_KEY = "idle_timeout.timeout_seconds"
DEREGISTRATION_DELAY_KEY = "deregistration_delay.timeout_seconds"
DEREGISTRATION_DELAY_AWS_DEFAULT = 300

# --- Finding the load balancers --------------------------------------------------------------


def _stack_resources(aws: Aws, stack: str) -> Iterator[dict[str, Any]]:
    try:
        yield from _pages(
            aws.cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack
        )
    except ClientError as error:
        if _error_code(error) == "ValidationError" and "does not exist" in _error_text(error):
            raise DoctorError(
                f"stack {stack!r} does not exist in {aws.region} (check --stack, --region and "
                "--profile)"
            ) from None
        raise


def stack_load_balancer_arns(aws: Aws, stack: str) -> list[str]:
    """The load balancers among a stack's resources, nested stacks included."""
    arns: list[str] = []
    for resource in _stack_resources(aws, stack):
        physical = resource.get("PhysicalResourceId")
        if not physical:
            continue
        kind = resource.get("ResourceType")
        if kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
            arns.append(str(physical))
        elif kind == "AWS::CloudFormation::Stack":
            arns.extend(stack_load_balancer_arns(aws, str(physical)))
    return arns


def _describe_load_balancers(aws: Aws, **query: Any) -> list[dict[str, Any]]:
    try:
        return list(_pages(aws.elbv2, "describe_load_balancers", "LoadBalancers", **query))
    except ClientError as error:
        if _error_code(error) in ("LoadBalancerNotFound", "ValidationError"):
            wanted = query.get("Names") or query.get("LoadBalancerArns")
            raise DoctorError(
                f"load balancer {', '.join(wanted or [])} not found in {aws.region} "
                f"({_error_text(error)}; check --load-balancer, --region and --profile)"
            ) from None
        raise


def find_load_balancers(
    aws: Aws, stack: str | None, load_balancer: str | None
) -> list[dict[str, Any]]:
    """The Application Load Balancers to check, from ``--stack`` or ``--load-balancer``."""
    if stack is not None:
        arns = stack_load_balancer_arns(aws, stack)
        found = [
            lb
            for start in range(0, len(arns), 20)
            for lb in _describe_load_balancers(aws, LoadBalancerArns=arns[start : start + 20])
        ]
        where = f"stack {stack!r}"
    else:
        assert load_balancer is not None
        key = "LoadBalancerArns" if load_balancer.startswith("arn:") else "Names"
        found = _describe_load_balancers(aws, **{key: [load_balancer]})
        where = f"load balancer {load_balancer!r}"
    albs = [lb for lb in found if lb.get("Type") == "application"]
    if not albs:
        kinds = ", ".join(sorted({str(lb.get("Type")) for lb in found})) or "none"
        raise DoctorError(
            f"{where} has no Application Load Balancer in {aws.region} (load balancers: {kinds})"
        )
    return albs


# --- Reading the fleet -----------------------------------------------------------------------


def _attributes(response: dict[str, Any]) -> dict[str, str]:
    return {str(a["Key"]): str(a["Value"]) for a in response.get("Attributes", [])}


def load_balancer_dimension(arn: str) -> str:
    """The CloudWatch ``LoadBalancer`` dimension: ``app/name/id`` from the ARN."""
    return arn.split(":loadbalancer/", 1)[-1]


def live_idle_timeout(aws: Aws, lb: dict[str, Any]) -> int | None:
    """The ALB's idle timeout attribute, or None when AWS does not return it."""
    arn = str(lb["LoadBalancerArn"])
    response = aws.elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)
    value = _attributes(response).get(IDLE_TIMEOUT_KEY)
    return None if value is None else int(value)


def _idle_timeout(aws: Aws, report: Report, lb: dict[str, Any]) -> int:
    value = live_idle_timeout(aws, lb)
    if value is None:
        report.note(
            f"{lb['LoadBalancerName']}: {IDLE_TIMEOUT_KEY} was not returned; assumed the AWS "
            f"default {timeouts.IDLE_TIMEOUT_DEFAULT} s"
        )
        return timeouts.IDLE_TIMEOUT_DEFAULT
    return value


def _deregistration_delay(aws: Aws, arn: str) -> int:
    response = aws.elbv2.describe_target_group_attributes(TargetGroupArn=arn)
    value = _attributes(response).get(DEREGISTRATION_DELAY_KEY)
    return DEREGISTRATION_DELAY_AWS_DEFAULT if value is None else int(value)


class AsgIndex:
    """Every Auto Scaling group in the region, read once, by target group ARN."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self._groups: list[dict[str, Any]] | None = None

    def behind(self, target_group_arn: str) -> list[dict[str, Any]]:
        if self._groups is None:
            self._groups = list(
                _pages(self._aws.autoscaling, "describe_auto_scaling_groups", "AutoScalingGroups")
            )
        return [g for g in self._groups if target_group_arn in g.get("TargetGroupARNs", [])]


def _launch_template_ref(group: dict[str, Any]) -> LaunchTemplateRef | None:
    spec = group.get("LaunchTemplate") or (
        group.get("MixedInstancesPolicy", {})
        .get("LaunchTemplate", {})
        .get("LaunchTemplateSpecification")
    )
    if not spec:
        return None
    return LaunchTemplateRef(
        id=spec.get("LaunchTemplateId"),
        name=spec.get("LaunchTemplateName"),
        version=str(spec.get("Version") or "$Default"),
    )


def _decode_user_data(encoded: str | None) -> str | None:
    if not encoded:
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _launch_template_user_data(aws: Aws, ref: LaunchTemplateRef) -> str | None:
    query: dict[str, Any] = {"Versions": [ref.version]}
    if ref.id:
        query["LaunchTemplateId"] = ref.id
    else:
        query["LaunchTemplateName"] = ref.name
    try:
        versions = aws.ec2.describe_launch_template_versions(**query)["LaunchTemplateVersions"]
    except ClientError as error:
        if _error_code(error).startswith("InvalidLaunchTemplate"):
            return None
        raise
    data = versions[0].get("LaunchTemplateData", {}) if versions else {}
    return _decode_user_data(data.get("UserData"))


def _launch_configuration_user_data(aws: Aws, name: str) -> str | None:
    configs = aws.autoscaling.describe_launch_configurations(LaunchConfigurationNames=[name])
    found = configs.get("LaunchConfigurations", [])
    return _decode_user_data(found[0].get("UserData")) if found else None


def _user_data(aws: Aws, group: dict[str, Any], asg: AsgReport) -> tuple[str | None, str]:
    """The group's user data (None if unreadable), and where it came from, for messages."""
    if asg.launch_template is not None:
        ref = asg.launch_template
        source = f"launch template {ref.id or ref.name} version {ref.version}"
        return _launch_template_user_data(aws, ref), source
    if group.get("LaunchConfigurationName"):
        name = str(group["LaunchConfigurationName"])
        return _launch_configuration_user_data(aws, name), f"launch configuration {name}"
    return None, "no launch template or launch configuration"


def _instance_files(aws: Aws, user_data: str) -> tuple[bytes | None, str]:
    """The InstanceFiles asset the construct's user data fetches (boot.env's
    ``INSTANCE_FILES_URL``), and its URL; None when it names none or S3 refuses it."""
    boot_env = delivery.parse_env(delivery.written_file(user_data, BOOT_ENV_PATH) or "")
    url = boot_env.get("INSTANCE_FILES_URL", "")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not key:
        return None, url
    try:
        return aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), url
    except ClientError:
        return None, url


# --- CloudWatch ------------------------------------------------------------------------------


def elb_error_counts(aws: Aws, dimension: str, window_seconds: int) -> dict[str, int]:
    """Sum of each ELB-generated error metric over the window, by finding id."""
    end = datetime.now(timezone.utc)
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "LoadBalancer", "Value": dimension}],
                },
                "Period": window_seconds,
                "Stat": "Sum",
            },
        }
        for index, metric in enumerate(ELB_METRICS.values())
    ]
    sums = dict.fromkeys(ELB_METRICS, 0.0)
    ids = {f"m{index}": key for index, key in enumerate(ELB_METRICS)}
    results = _pages(
        aws.cloudwatch,
        "get_metric_data",
        "MetricDataResults",
        MetricDataQueries=queries,
        StartTime=end - timedelta(seconds=window_seconds),
        EndTime=end,
    )
    for result in results:
        sums[ids[result["Id"]]] += sum(float(value) for value in result.get("Values", []))
    return {key: round(total) for key, total in sums.items()}


# --- Putting it together ---------------------------------------------------------------------


def inspect_asg(
    aws: Aws, report: Report, lb: LoadBalancerReport, tg: TargetGroupReport, group: dict[str, Any]
) -> AsgReport:
    asg = AsgReport(name=str(group["AutoScalingGroupName"]))
    asg.launch_template = _launch_template_ref(group)
    user_data, source = _user_data(aws, group, asg)
    hint = manual_check(lb, tg)
    if user_data is None:
        report.cannot(lb.name, asg.name, f"no readable user data ({source}){hint}")
    else:
        archive, url = _instance_files(aws, user_data)
        if url and archive is None:
            hint = f" (s3:GetObject on its instance files, {url}, was refused){hint}"
        read_instance_settings(report, lb.name, asg, user_data, hint, archive)
    return asg


def inspect_target_group(
    aws: Aws, report: Report, lb: LoadBalancerReport, raw: dict[str, Any], asgs: AsgIndex
) -> TargetGroupReport:
    arn = str(raw["TargetGroupArn"])
    tg = TargetGroupReport(
        name=str(raw["TargetGroupName"]),
        arn=arn,
        deregistration_delay=_deregistration_delay(aws, arn),
    )
    groups = asgs.behind(arn)
    if not groups:
        report.cannot(
            lb.name,
            tg.name,
            "no Auto Scaling group is attached to this target group: what its targets run "
            "was not checked",
        )
    for group in groups:
        asg = inspect_asg(aws, report, lb, tg, group)
        tg.auto_scaling_groups.append(asg)
        check_fleet(report, lb, tg, asg)
    return tg


def inspect_load_balancer(
    aws: Aws, report: Report, raw: dict[str, Any], asgs: AsgIndex
) -> LoadBalancerReport:
    arn = str(raw["LoadBalancerArn"])
    lb = LoadBalancerReport(
        name=str(raw["LoadBalancerName"]),
        arn=arn,
        dimension=load_balancer_dimension(arn),
        idle_timeout=_idle_timeout(aws, report, raw),
    )
    target_groups = _pages(aws.elbv2, "describe_target_groups", "TargetGroups", LoadBalancerArn=arn)
    for raw_tg in target_groups:
        lb.target_groups.append(inspect_target_group(aws, report, lb, raw_tg, asgs))
    if not lb.target_groups:
        report.cannot(lb.name, lb.name, "no target group forwards from this load balancer")
    check_elb_errors(report, lb, elb_error_counts(aws, lb.dimension, report.window_seconds))
    return lb


def diagnose(aws: Aws, args: argparse.Namespace) -> Report:
    """Read the fleet(s) and check them; raises DoctorError or botocore errors."""
    window, seconds = args.window
    report = Report(region=aws.region, window=window, window_seconds=seconds)
    asgs = AsgIndex(aws)
    for raw in find_load_balancers(aws, args.stack, args.load_balancer):
        report.load_balancers.append(inspect_load_balancer(aws, report, raw, asgs))
    return report
