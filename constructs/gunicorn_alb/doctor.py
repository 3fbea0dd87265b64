"""``gunicorn-alb-doctor``: check a deployed ALB + Gunicorn fleet against the timeout model.

Reads, with boto3 and read-only calls, what is live: the ALB idle timeout, each target group's
deregistration delay, the Auto Scaling groups behind them and their launch templates' user data,
in which the gunicorn-alb construct writes ``/etc/gunicorn-alb/boot.env`` and
``/etc/gunicorn-alb/gunicorn.conf.py``. The keep-alive the instances run is derived from that
user data by :func:`gunicorn_alb.timeouts.derive_timeouts`, the same model the construct and the
boot script follow, then checked against the live values, together with the ELB-generated
502/504 counts from CloudWatch::

    gunicorn-alb-doctor --stack GunicornAlbReference
    gunicorn-alb-doctor --load-balancer my-alb --window 3h --json

Exit codes: 0 healthy (``--strict``: and nothing undetermined), 1 findings, 2 usage or AWS access
errors (message on stderr). Region and credentials come from ``--region`` / ``--profile``, else
the environment, as for any AWS tool; ``AWS_ENDPOINT_URL`` is honoured (boto3 reads it).

Findings (ids are stable):

``keepalive-exceeds-idle``
    Gunicorn's keep-alive is not greater than the ALB's live idle timeout (e.g. the idle timeout
    was raised by hand): the ALB answers 502 when Gunicorn closes a pooled connection first.
``worker-ignores-keepalive`` / ``worker-threads``
    The worker class is not one that honours keep-alive (``sync``), or gthread has < 2 threads.
``max-requests-needs-jitter``
    ``max_requests`` without ``max_requests_jitter``.
``graceful-within-drain`` / ``drain-bounded-by-idle`` / ``stop-after-graceful``
    Gunicorn's graceful timeout exceeds the live deregistration delay (or the delay is 0).
``boot-env-invalid``
    The user data's ``boot.env`` breaks the model (the boot script refuses to start with it).
``elb-502-count`` / ``elb-504-count``
    ``HTTPCode_ELB_502_Count`` / ``HTTPCode_ELB_504_Count`` above zero over ``--window``.

``--json`` prints one object (stable; new keys may be added)::

    {"version": 1, "region": str, "window": "1h", "window_seconds": int,
     "load_balancers": [{"name", "arn", "dimension", "idle_timeout": int,
                         "elb_502_count": int, "elb_504_count": int,
                         "target_groups": [{"name", "arn", "deregistration_delay": int,
                                            "auto_scaling_groups": [ASG, ...]}]}],
     "findings": [{"id", "message", "load_balancer", "resource"}],
     "undetermined": [{"message", "load_balancer", "resource"}],
     "notes": [str], "exit_code": int}

    ASG = {"name", "launch_template": {"id", "name", "version"} | null,
           "made_by_construct": bool, "boot_idle_timeout", "keepalive_margin", "keepalive",
           "graceful_timeout", "stop_timeout", "worker_class", "threads", "max_requests",
           "max_requests_jitter"}          (each null when it could not be determined)

IAM permissions needed: see :data:`PERMISSIONS`.
"""

from __future__ import annotations

import argparse
import ast
import base64
import binascii
import gzip
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from gunicorn_alb import rendering, timeouts

PROG = "gunicorn-alb-doctor"
JSON_VERSION = 1
MAX_ATTEMPTS = 6
RETRY_MODE = "adaptive"
AWS_CONFIG = Config(
    retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    user_agent_extra=PROG,
)
"""Every client retries throttled calls (adaptive mode also slows the request rate)."""

PERMISSIONS: dict[str, str] = {
    "ListStackResources": "cloudformation:ListStackResources",
    "DescribeLoadBalancers": "elasticloadbalancing:DescribeLoadBalancers",
    "DescribeLoadBalancerAttributes": "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "DescribeTargetGroups": "elasticloadbalancing:DescribeTargetGroups",
    "DescribeTargetGroupAttributes": "elasticloadbalancing:DescribeTargetGroupAttributes",
    "DescribeAutoScalingGroups": "autoscaling:DescribeAutoScalingGroups",
    "DescribeLaunchConfigurations": "autoscaling:DescribeLaunchConfigurations",
    "DescribeLaunchTemplateVersions": "ec2:DescribeLaunchTemplateVersions",
    "GetMetricData": "cloudwatch:GetMetricData",
}
"""The API calls the doctor makes, and the IAM action each needs (all read-only)."""

IDLE_TIMEOUT_KEY = "idle_timeout.timeout_seconds"
DEREGISTRATION_DELAY_KEY = "deregistration_delay.timeout_seconds"
DEREGISTRATION_DELAY_AWS_DEFAULT = 300
ELB_METRICS = {"elb-502-count": "HTTPCode_ELB_502_Count", "elb-504-count": "HTTPCode_ELB_504_Count"}
WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400}
WINDOW_MAX_SECONDS = 15 * 86400
"""CloudWatch keeps one-minute data for 15 days; one period covers the whole window."""

_ACCESS_CODES = {"UnauthorizedOperation", "AuthorizationError", "Forbidden"}
_CREDENTIAL_CODES = {
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "RequestExpired",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
_THROTTLING_CODES = {
    "EC2ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
}
_RULE_SUFFIX = re.compile(r"\(rule ([a-z-]+)\)$")
_ARGUMENT_RULES = {
    "deregistration_delay": "drain-bounded-by-idle",
    "graceful_timeout": "graceful-within-drain",
    "stop_timeout": "stop-after-graceful",
    "max_requests": "max-requests-needs-jitter",
}
_CONF_KEYS = ("worker_class", "threads", "max_requests", "max_requests_jitter")


class DoctorError(Exception):
    """A usage or access problem: printed on stderr, exit code 2."""


# --- The report ------------------------------------------------------------------------------


@dataclass
class LaunchTemplateRef:
    id: str | None
    name: str | None
    version: str


@dataclass
class AsgReport:
    """An Auto Scaling group, and what its user data says the instances run."""

    name: str
    launch_template: LaunchTemplateRef | None = None
    made_by_construct: bool = False
    boot_idle_timeout: int | None = None
    keepalive_margin: int | None = None
    keepalive: int | None = None
    graceful_timeout: int | None = None
    stop_timeout: int | None = None
    worker_class: str | None = None
    threads: int | None = None
    max_requests: int | None = None
    max_requests_jitter: int | None = None


@dataclass
class TargetGroupReport:
    name: str
    arn: str
    deregistration_delay: int
    auto_scaling_groups: list[AsgReport] = field(default_factory=list)


@dataclass
class LoadBalancerReport:
    name: str
    arn: str
    dimension: str
    idle_timeout: int
    elb_502_count: int = 0
    elb_504_count: int = 0
    target_groups: list[TargetGroupReport] = field(default_factory=list)


@dataclass
class Finding:
    id: str
    message: str
    load_balancer: str
    resource: str


@dataclass
class Undetermined:
    message: str
    load_balancer: str
    resource: str


@dataclass
class Report:
    region: str
    window: str
    window_seconds: int
    load_balancers: list[LoadBalancerReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    undetermined: list[Undetermined] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def find(self, finding: Finding) -> None:
        if finding not in self.findings:
            self.findings.append(finding)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def cannot(self, load_balancer: str, resource: str, message: str) -> None:
        entry = Undetermined(message=message, load_balancer=load_balancer, resource=resource)
        if entry not in self.undetermined:
            self.undetermined.append(entry)

    def exit_code(self, strict: bool) -> int:
        return 1 if self.findings or (strict and self.undetermined) else 0


# --- AWS access ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aws:
    """One boto3 client per service, all from one session (region, profile, endpoint)."""

    region: str
    cloudformation: Any
    elbv2: Any
    autoscaling: Any
    ec2: Any
    cloudwatch: Any


def connect(region: str | None, profile: str | None) -> Aws:
    """Clients for the region and profile given, else the environment's."""
    session = boto3.Session(profile_name=profile, region_name=region)
    if not session.region_name:
        raise DoctorError(
            "no AWS region: pass --region, set AWS_DEFAULT_REGION, or set a region in the profile"
        )

    def client(name: str) -> Any:
        return session.client(name, config=AWS_CONFIG)

    return Aws(
        region=str(session.region_name),
        cloudformation=client("cloudformation"),
        elbv2=client("elbv2"),
        autoscaling=client("autoscaling"),
        ec2=client("ec2"),
        cloudwatch=client("cloudwatch"),
    )


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_text(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or str(error)


def describe_client_error(error: ClientError) -> str:
    """A message for an AWS error that stops the doctor: access, credentials, throttling."""
    code, operation = _error_code(error), str(error.operation_name)
    action = PERMISSIONS.get(operation, operation)
    if code.startswith("AccessDenied") or code in _ACCESS_CODES:
        needed = ", ".join(sorted(set(PERMISSIONS.values())))
        return (
            f"access denied: these credentials may not call {action} ({code}: "
            f"{_error_text(error)}). The doctor needs read-only access: {needed}"
        )
    if code in _CREDENTIAL_CODES:
        return (
            f"AWS rejected the credentials calling {action} ({code}: {_error_text(error)}); "
            "refresh them (e.g. aws sso login) or pick another --profile"
        )
    if code in _THROTTLING_CODES:
        return (
            f"AWS kept throttling {action} ({code}) after {MAX_ATTEMPTS} attempts with "
            f"botocore's {RETRY_MODE} retries; wait a minute and run the doctor again, or run it "
            "when fewer tools call the same APIs"
        )
    return f"{action} failed: {code}: {_error_text(error)}"


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


def _idle_timeout(aws: Aws, report: Report, lb: dict[str, Any]) -> int:
    arn = str(lb["LoadBalancerArn"])
    response = aws.elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)
    value = _attributes(response).get(IDLE_TIMEOUT_KEY)
    if value is None:
        report.note(
            f"{lb['LoadBalancerName']}: {IDLE_TIMEOUT_KEY} was not returned; assumed the AWS "
            f"default {timeouts.IDLE_TIMEOUT_DEFAULT} s"
        )
        return timeouts.IDLE_TIMEOUT_DEFAULT
    return int(value)


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


# --- What the construct wrote ----------------------------------------------------------------


def parse_gunicorn_conf(text: str) -> dict[str, object]:
    """The literal top-level settings the construct templates in ``gunicorn.conf.py``."""
    settings: dict[str, object] = {}
    for key in _CONF_KEYS:
        match = re.search(rf"^{key}\s*=\s*(.+?)\s*$", text, re.MULTILINE)
        if match is None:
            continue
        try:
            settings[key] = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            continue
    return settings


def _seconds(env: dict[str, str], key: str) -> int | None:
    value = env.get(key, "")
    return int(value) if value.isdigit() else None


def _read_boot_env(report: Report, lb: str, asg: AsgReport, env: dict[str, str]) -> None:
    """Fill the ASG's timeouts as the boot script derives them, through the model."""
    idle = _seconds(env, "IDLE_TIMEOUT_SECONDS")
    margin = _seconds(env, "KEEPALIVE_MARGIN_SECONDS")
    delay = _seconds(env, "DEREGISTRATION_DELAY_SECONDS")
    if idle is None or margin is None or delay is None:
        report.cannot(
            lb,
            asg.name,
            "boot.env has no numeric IDLE_TIMEOUT_SECONDS, KEEPALIVE_MARGIN_SECONDS or "
            f"DEREGISTRATION_DELAY_SECONDS (got {env.get('IDLE_TIMEOUT_SECONDS')!r}, "
            f"{env.get('KEEPALIVE_MARGIN_SECONDS')!r}, "
            f"{env.get('DEREGISTRATION_DELAY_SECONDS')!r}): keep-alive not determined",
        )
        return
    try:
        booted = timeouts.derive_timeouts(
            idle,
            keepalive_margin=margin,
            deregistration_delay=delay,
            graceful_timeout=_seconds(env, "GRACEFUL_TIMEOUT_SECONDS"),
            stop_timeout=_seconds(env, "STOP_TIMEOUT_SECONDS"),
        )
    except timeouts.TimeoutRuleError as error:
        problems = "; ".join(error.problems)
        report.find(
            Finding(
                "boot-env-invalid",
                f"{asg.name}: the user data's boot.env breaks the timeout model, so the boot "
                f"script refuses to start Gunicorn: {problems}",
                lb,
                asg.name,
            )
        )
        return
    asg.boot_idle_timeout = booted.idle_timeout
    asg.keepalive_margin = booted.keepalive_margin
    asg.keepalive = booted.keepalive
    asg.graceful_timeout = booted.graceful_timeout
    asg.stop_timeout = booted.stop_timeout


def _read_gunicorn_conf(report: Report, lb: str, asg: AsgReport, conf: str | None) -> None:
    settings = parse_gunicorn_conf(conf or "")
    worker, threads = settings.get("worker_class"), settings.get("threads")
    recycle, jitter = settings.get("max_requests"), settings.get("max_requests_jitter")
    asg.worker_class = worker if isinstance(worker, str) else None
    asg.threads = threads if isinstance(threads, int) else None
    asg.max_requests = recycle if isinstance(recycle, int) else None
    asg.max_requests_jitter = jitter if isinstance(jitter, int) else None
    missing = [key for key in _CONF_KEYS if getattr(asg, key) is None]
    if missing:
        report.cannot(
            lb,
            asg.name,
            f"{rendering.GUNICORN_CONF_PATH} in the user data does not set "
            f"{', '.join(missing)} literally: not checked",
        )


def read_instance_settings(
    report: Report, lb: str, asg: AsgReport, user_data: str, hint: str = ""
) -> None:
    """What the construct's user data says the instances run; undetermined without it
    (``hint``: what to check by hand then)."""
    boot_env = rendering.written_file(user_data, rendering.BOOT_ENV_PATH)
    if boot_env is None:
        report.cannot(
            lb,
            asg.name,
            f"the user data was not written by the gunicorn-alb construct (it writes no "
            f"{rendering.BOOT_ENV_PATH}): Gunicorn's keep-alive, worker class and graceful "
            f"timeout are unknown, so they were not checked{hint}",
        )
        return
    asg.made_by_construct = True
    _read_boot_env(report, lb, asg, rendering.parse_env(boot_env))
    _read_gunicorn_conf(
        report, lb, asg, rendering.written_file(user_data, rendering.GUNICORN_CONF_PATH)
    )


# --- Checks ----------------------------------------------------------------------------------


def rule_id(problem: str) -> str:
    """The model rule a :class:`~gunicorn_alb.timeouts.TimeoutRuleError` problem breaks."""
    match = _RULE_SUFFIX.search(problem)
    if match:
        return match.group(1)
    argument = problem.split(" ", 1)[0]
    return _ARGUMENT_RULES.get(argument, "timeout-model")


def check_keepalive(report: Report, lb: LoadBalancerReport, asg: AsgReport) -> None:
    """keepalive-exceeds-idle against the ALB's live idle timeout."""
    if asg.keepalive is None:
        return
    idle = lb.idle_timeout
    if asg.keepalive - idle >= timeouts.KEEPALIVE_MARGIN_MIN:
        if asg.boot_idle_timeout != idle:
            report.note(
                f"{asg.name}: instances booted for an idle timeout of {asg.boot_idle_timeout} s; "
                f"load balancer {lb.name} is now at {idle} s (still below the keep-alive "
                f"{asg.keepalive} s; a deploy realigns them)"
            )
        return
    message = (
        f"{asg.name}: Gunicorn keep-alive {asg.keepalive} s is not greater than the idle "
        f"timeout {idle} s of load balancer {lb.name} (the instances booted for "
        f"{asg.boot_idle_timeout} s + margin {asg.keepalive_margin} s): Gunicorn closes pooled "
        f"connections the ALB still uses, and the ALB answers 502. Deploy with the idle "
        f"timeout {idle} s so the instances roll, or set the ALB back to "
        f"{asg.boot_idle_timeout} s (rule keepalive-exceeds-idle)"
    )
    report.find(Finding("keepalive-exceeds-idle", message, lb.name, asg.name))


def check_worker(report: Report, lb: LoadBalancerReport, asg: AsgReport) -> None:
    """The worker class honours keep-alive (the model's check_worker)."""
    if asg.worker_class is None or asg.threads is None:
        return
    for problem in timeouts.check_worker(asg.worker_class, asg.threads):
        worker = problem.startswith("worker_class")
        kind = "worker-ignores-keepalive" if worker else "worker-threads"
        report.find(Finding(kind, f"{asg.name}: {problem}", lb.name, asg.name))


def check_drain(
    report: Report, lb: LoadBalancerReport, tg: TargetGroupReport, asg: AsgReport
) -> None:
    """The instance's graceful/stop timeouts and max_requests against the live drain, through
    the model's rules (graceful-within-drain, max-requests-needs-jitter, ...)."""
    if asg.keepalive_margin is None or asg.graceful_timeout is None:
        return
    try:
        timeouts.derive_timeouts(
            lb.idle_timeout,
            keepalive_margin=asg.keepalive_margin,
            deregistration_delay=tg.deregistration_delay,
            graceful_timeout=asg.graceful_timeout,
            stop_timeout=asg.stop_timeout,
            max_requests=asg.max_requests or 0,
            max_requests_jitter=asg.max_requests_jitter or 0,
        )
    except timeouts.TimeoutRuleError as error:
        for problem in error.problems:
            message = f"{asg.name} behind target group {tg.name}: {problem}"
            report.find(Finding(rule_id(problem), message, lb.name, asg.name))


def check_fleet(
    report: Report, lb: LoadBalancerReport, tg: TargetGroupReport, asg: AsgReport
) -> None:
    check_keepalive(report, lb, asg)
    check_worker(report, lb, asg)
    check_drain(report, lb, tg, asg)


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


def check_elb_errors(aws: Aws, report: Report, lb: LoadBalancerReport) -> None:
    counts = elb_error_counts(aws, lb.dimension, report.window_seconds)
    lb.elb_502_count, lb.elb_504_count = counts["elb-502-count"], counts["elb-504-count"]
    why = {
        "elb-502-count": "502s with no matching HTTPCode_Target_5XX_Count are the keep-alive "
        "race (a target closed a pooled connection) or targets refusing connections",
        "elb-504-count": "the target did not answer within the idle timeout, or a connection "
        "to it took over 10 s",
    }
    for key, count in counts.items():
        if count > 0:
            message = (
                f"{lb.name}: {ELB_METRICS[key]} = {count} over the last {report.window}: {why[key]}"
            )
            report.find(Finding(key, message, lb.name, lb.name))


# --- Putting it together ---------------------------------------------------------------------


def _manual_check(lb: LoadBalancerReport, tg: TargetGroupReport) -> str:
    return (
        f". Check by hand: Gunicorn's keepalive must exceed {lb.idle_timeout} s, its worker "
        "class must honour keep-alive (not sync), and its graceful_timeout must be at most "
        f"{tg.deregistration_delay} s"
    )


def inspect_asg(
    aws: Aws, report: Report, lb: LoadBalancerReport, tg: TargetGroupReport, group: dict[str, Any]
) -> AsgReport:
    asg = AsgReport(name=str(group["AutoScalingGroupName"]))
    asg.launch_template = _launch_template_ref(group)
    user_data, source = _user_data(aws, group, asg)
    hint = _manual_check(lb, tg)
    if user_data is None:
        report.cannot(lb.name, asg.name, f"no readable user data ({source}){hint}")
    else:
        read_instance_settings(report, lb.name, asg, user_data, hint)
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
    check_elb_errors(aws, report, lb)
    return lb


def diagnose(aws: Aws, args: argparse.Namespace) -> Report:
    """Read the fleet(s) and check them; raises DoctorError or botocore errors."""
    window, seconds = args.window
    report = Report(region=aws.region, window=window, window_seconds=seconds)
    asgs = AsgIndex(aws)
    for raw in find_load_balancers(aws, args.stack, args.load_balancer):
        report.load_balancers.append(inspect_load_balancer(aws, report, raw, asgs))
    return report


# --- Output ----------------------------------------------------------------------------------


def to_json(report: Report, strict: bool) -> dict[str, Any]:
    """The ``--json`` document (shape in the module docstring)."""
    document: dict[str, Any] = {"version": JSON_VERSION, **asdict(report)}
    document["exit_code"] = report.exit_code(strict)
    return document


def _show(value: object, unit: str = "") -> str:
    return "?" if value is None else f"{value}{unit}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _fleet_rows(lb: LoadBalancerReport) -> list[list[str]]:
    header = ["TARGET GROUP", "DRAIN", "AUTO SCALING GROUP", "WORKER", "KEEP-ALIVE", "GRACEFUL"]
    rows = [[*header, "MAX_REQUESTS/JITTER"]]
    for tg in lb.target_groups:
        fleets: list[AsgReport | None] = [*tg.auto_scaling_groups] or [None]
        for asg in fleets:
            fleet = ["-"] * 5
            if asg is not None:
                fleet = [
                    asg.name,
                    _show(asg.worker_class),
                    _show(asg.keepalive, " s"),
                    _show(asg.graceful_timeout, " s"),
                    f"{_show(asg.max_requests)}/{_show(asg.max_requests_jitter)}",
                ]
            rows.append([tg.name, f"{tg.deregistration_delay} s", *fleet])
    return rows


def to_text(report: Report, strict: bool) -> str:
    """The human report."""
    lines = [f"{PROG}: {report.region}, ELB-generated errors over the last {report.window}"]
    for lb in report.load_balancers:
        lines += [
            "",
            f"Load balancer {lb.name} ({lb.dimension})",
            f"  idle timeout {lb.idle_timeout} s; HTTPCode_ELB_502_Count {lb.elb_502_count}, "
            f"HTTPCode_ELB_504_Count {lb.elb_504_count}",
        ]
        if lb.target_groups:
            lines += ["", *("  " + row for row in _table(_fleet_rows(lb)))]
    sections = [
        ("Findings", [f"[{f.id}] {f.message}" for f in report.findings]),
        ("Could not determine", [f"{u.resource}: {u.message}" for u in report.undetermined]),
        ("Notes", report.notes),
    ]
    for title, entries in sections:
        if entries:
            lines += ["", f"{title} ({len(entries)})", *(f"  - {entry}" for entry in entries)]
    code = report.exit_code(strict)
    verdict = {0: "healthy", 1: "findings"}[code]
    if code == 0 and report.undetermined:
        verdict = "no findings, but not everything could be checked"
    lines += ["", f"Result: {verdict} (exit {code})"]
    return "\n".join(lines)


# --- Command line ----------------------------------------------------------------------------


def parse_window(text: str) -> tuple[str, int]:
    """``30m``, ``3h``, ``1d`` -> (text, seconds); 1 minute to 15 days."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"window must be a number and a unit m, h or d (e.g. 30m, 3h), got {text!r}"
        )
    seconds = int(match.group(1)) * WINDOW_UNITS[match.group(2)]
    if not 60 <= seconds <= WINDOW_MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"window must be between 1m and 15d, got {text!r}")
    return text.strip(), seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a deployed ALB + Gunicorn fleet: keep-alive above the live idle "
        "timeout, worker class, max_requests jitter, drain order, ELB 502/504 counts.",
        epilog="Exit codes: 0 healthy, 1 findings, 2 usage or AWS access errors.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="CloudFormation stack name: checks each ALB in it")
    target.add_argument("--load-balancer", help="the ALB's ARN or name")
    parser.add_argument("--region", help="AWS region (default: the environment's / profile's)")
    parser.add_argument("--profile", help="AWS profile (default: the environment's)")
    parser.add_argument(
        "--window",
        type=parse_window,
        default=parse_window("1h"),
        help="how far back to count ELB 502/504s: 30m, 3h, 1d... (default: 1h)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when anything could not be determined"
    )
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        report = diagnose(connect(args.region, args.profile), args)
    except DoctorError as error:
        return _fail(str(error))
    except (NoCredentialsError, PartialCredentialsError):
        return _fail(
            "no usable AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, pass "
            "--profile, or log in (aws sso login / aws configure)"
        )
    except ProfileNotFound as error:
        return _fail(f"{error} (check --profile and AWS_PROFILE)")
    except NoRegionError:
        return _fail("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    except EndpointConnectionError as error:
        return _fail(f"cannot reach AWS: {error}")
    except ClientError as error:
        return _fail(describe_client_error(error))
    except BotoCoreError as error:
        return _fail(f"AWS SDK error: {error}")
    if args.json:
        print(json.dumps(to_json(report, args.strict), indent=2))
    else:
        print(to_text(report, args.strict))
    return report.exit_code(args.strict)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gunicorn-alb-doctor`` and ``python -m gunicorn_alb doctor``."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
