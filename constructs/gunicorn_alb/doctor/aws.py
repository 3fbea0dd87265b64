"""AWS access for the doctor: one boto3 session's clients, retries, and what AWS errors mean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

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

from gunicorn_alb.doctor.model import PROG, DoctorError

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
    "GetObject": "s3:GetObject",
}
"""The API calls the doctor makes, and the IAM action each needs (all read-only)."""

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


@dataclass(frozen=True)
class Aws:
    """One boto3 client per service, all from one session (region, profile, endpoint)."""

    region: str
    cloudformation: Any
    elbv2: Any
    autoscaling: Any
    ec2: Any
    cloudwatch: Any
    s3: Any


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
        s3=client("s3"),
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


T = TypeVar("T")


def aws_errors(call: Callable[[], T]) -> T:
    """``call()``, with AWS SDK errors turned into a DoctorError that says what to do."""
    try:
        return call()
    except (NoCredentialsError, PartialCredentialsError):
        raise DoctorError(
            "no usable AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, pass "
            "--profile, or log in (aws sso login / aws configure)"
        ) from None
    except ProfileNotFound as error:
        raise DoctorError(f"{error} (check --profile and AWS_PROFILE)") from None
    except NoRegionError:
        raise DoctorError("no AWS region: pass --region or set AWS_DEFAULT_REGION") from None
    except EndpointConnectionError as error:
        raise DoctorError(f"cannot reach AWS: {error}") from None
    except ClientError as error:
        raise DoctorError(describe_client_error(error)) from None
    except BotoCoreError as error:
        raise DoctorError(f"AWS SDK error: {error}") from None
