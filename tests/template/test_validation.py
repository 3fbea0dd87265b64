"""Bad input fails at synth time, naming the argument, the value and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from gunicorn_alb import AlarmThresholds, ApplicationLoadBalancedGunicornService
from tests.helpers import new_stack


def build(**props: Any) -> ApplicationLoadBalancedGunicornService:
    stack, vpc = new_stack()
    return ApplicationLoadBalancedGunicornService(stack, "Service", vpc=vpc, **props)


def fails(match: str, **props: Any) -> None:
    with pytest.raises(ValueError, match=match):
        build(**props)


def test_fails_when_idle_timeout_is_above_4000_seconds() -> None:
    fails(
        r"idle_timeout must be between 1 and 4000 seconds, got 5000",
        idle_timeout=cdk.Duration.seconds(5000),
    )


def test_fails_when_idle_timeout_is_not_whole_seconds() -> None:
    fails(
        r"idle_timeout must be a whole number of seconds between 1 and 4000, got 1\.5",
        idle_timeout=cdk.Duration.millis(1500),
    )


def test_fails_when_keepalive_margin_is_below_one_second() -> None:
    fails(
        r"keepalive_margin must be a whole number of seconds at least 1, got 0\.5",
        keepalive_margin=cdk.Duration.millis(500),
    )


def test_fails_when_worker_class_ignores_keepalive() -> None:
    fails(
        r"worker_class must be one that honours keep-alive "
        r"\(asgi, gevent, gthread, uvicorn_worker.UvicornWorker\), got 'sync'",
        worker_class="sync",
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"min_capacity": 3, "max_capacity": 2},
            "min_capacity <= max_capacity, got min_capacity=3, max_capacity=2",
        ),
        (
            {"min_capacity": 2, "desired_capacity": 5, "max_capacity": 4},
            "min_capacity <= desired_capacity <= max_capacity, got min_capacity=2, "
            "desired_capacity=5, max_capacity=4",
        ),
        (
            {"min_capacity": 1, "max_capacity": 1},
            "max_capacity must be a whole number of at least 2, got 1",
        ),
    ],
)
def test_fails_when_capacities_are_out_of_order(props: dict[str, int], message: str) -> None:
    fails(re.escape(message), **props)


def test_capacities_may_be_tokens() -> None:
    stack, vpc = new_stack()
    size = cdk.CfnParameter(stack, "Size", type="Number", default=2)
    ApplicationLoadBalancedGunicornService(
        stack,
        "Service",
        vpc=vpc,
        min_capacity=size.value_as_number,  # type: ignore[arg-type]
    )


def test_fails_when_app_directory_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    fails(
        rf"app_directory must be an existing directory, got '{re.escape(str(missing))}'",
        app_directory=str(missing),
    )


def test_fails_when_app_directory_lacks_the_wsgi_module(tmp_path: Path) -> None:
    (tmp_path / "other.py").write_text("")
    fails(
        r"wsgi_app 'mysite.wsgi:application' names module 'mysite.wsgi', but app_directory "
        r".* has no mysite/wsgi.py",
        app_directory=str(tmp_path),
        wsgi_app="mysite.wsgi:application",
    )


@pytest.mark.parametrize("target", ["app:", "app:application:x", "my-app:application"])
def test_fails_when_wsgi_app_is_not_module_callable(target: str) -> None:
    fails(rf"wsgi_app must be a Gunicorn app target: .*got '{target}'", wsgi_app=target)


def test_fails_when_app_requirements_is_not_in_the_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    fails(
        r"app_requirements 'reqs.txt' is not a file in app_directory",
        app_directory=str(tmp_path),
        app_requirements="reqs.txt",
    )


def test_fails_when_health_check_path_is_not_a_path() -> None:
    fails(r"health_check_path must start with / .*got 'healthz'", health_check_path="healthz")


def test_fails_when_a_port_is_out_of_range() -> None:
    fails(r"app_port must be a port between 1 and 65535, got 70000", app_port=70000)


def test_fails_when_a_duration_other_than_idle_timeout_is_a_token() -> None:
    stack, vpc = new_stack()
    margin = cdk.CfnParameter(stack, "Margin", type="Number", default=5)
    with pytest.raises(ValueError, match="keepalive_margin must be known at synth time"):
        ApplicationLoadBalancedGunicornService(
            stack, "Service", vpc=vpc, keepalive_margin=cdk.Duration.seconds(margin.value_as_number)
        )


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ValueError) as caught:
        build(idle_timeout=cdk.Duration.seconds(0), worker_class="sync", app_port=0)
    message = str(caught.value)
    assert message.count("\n- ") == 3
    for name in ("idle_timeout", "worker_class", "app_port"):
        assert name in message


def test_a_users_app_directory_is_uploaded_with_its_requirements(tmp_path: Path) -> None:
    package = tmp_path / "mysite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "wsgi.py").write_text("def application(environ, start_response): ...\n")
    (tmp_path / "requirements.txt").write_text("flask==3.1.2\n")
    service = build(app_directory=str(tmp_path), wsgi_app="mysite.wsgi:application")
    assert service.instance_config.app_requirements == "requirements.txt"
    assert service.instance_config.wsgi_app == "mysite.wsgi:application"


# Bad values a user might try (issue 21): each fails at synth, naming the argument, the value
# and what is allowed. One parametrized case per check; each fails before any resource exists.
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    (
        {"app_port": 80},
        "app_port must be between 1024 and 65535, got 80: Gunicorn runs as an unprivileged "
        "user without CAP_NET_BIND_SERVICE",
    ),
    ({"listener_port": 0}, "listener_port must be a port between 1 and 65535, got 0"),
    (
        {"build_from_source": "numpy"},
        "build_from_source must be a list of distribution names such as ['psycopg2'], got the "
        "string 'numpy' (a string is read as one-letter items)",
    ),
    (
        {"ingress_cidrs": "10.0.0.0/8"},
        "ingress_cidrs must be a list of IPv4 CIDRs such as ['203.0.113.0/24'], got the string "
        "'10.0.0.0/8'",
    ),
    (
        {"ingress_cidrs": [167772160]},
        "ingress_cidrs must hold strings such as '203.0.113.0/24', got 167772160",
    ),
    (
        {"instance_types": "t3.small"},
        "instance_types must be a list of instance types such as [ec2.InstanceType('t3.small'), "
        "ec2.InstanceType('t3a.small')], got the string 't3.small'",
    ),
    (
        {"instance_type": "t3.small"},
        "instance_type must be an ec2.InstanceType such as ec2.InstanceType('t3.small'), "
        "got 't3.small'",
    ),
    ({"app_directory": 5}, "app_directory must be a path (a string), got 5"),
    (
        {"app_requirements": 5},
        "app_requirements must be a path inside app_directory (a string), got 5",
    ),
    ({"health_check_path": None}, "health_check_path must be a string, got None"),
    ({"access_logs_prefix": None}, "access_logs_prefix must be a string, got None"),
    (
        {"vpc_subnets": {"subnet_type": "PRIVATE"}},
        "vpc_subnets must be an ec2.SubnetSelection such as ec2.SubnetSelection(subnet_type=",
    ),
    ({"internal": "false"}, "internal must be True or False, got 'false'"),
    ({"deletion_protection": 1}, "deletion_protection must be True or False, got 1"),
    ({"access_logs": None}, "access_logs must be True or False, got None"),
    ({"monitoring": "no"}, "monitoring must be True or False, got 'no'"),
    ({"instance_logs": 0}, "instance_logs must be True or False, got 0"),
    (
        {"idle_timeout": 60},
        "idle_timeout must be a cdk.Duration such as Duration.seconds(60), got 60",
    ),
    (
        {"log_retention": 30},
        "log_retention must be a cdk.Duration such as Duration.seconds(60), got 30",
    ),
    ({"worker_class": ["gthread"]}, "worker_class must be a string, got ['gthread']"),
    ({"workers_per_cpu": True}, "workers_per_cpu must be a whole number of at least 1, got True"),
    (
        {"listener_protocol": "HTTPS"},
        "listener_protocol must be elbv2.ApplicationProtocol.HTTPS or "
        "elbv2.ApplicationProtocol.HTTP, got 'HTTPS'",
    ),
    (
        {"ssl_policy": "TLS13_RES"},
        "ssl_policy must be an elbv2.SslPolicy such as elbv2.SslPolicy.TLS13_RES, got 'TLS13_RES'",
    ),
    (
        {"certificate": "arn:aws:acm:eu-west-1:111111111111:certificate/x"},
        "certificate must be a CDK object such as acm.Certificate.from_certificate_arn(self, "
        "'Certificate', arn), got 'arn:aws:acm:eu-west-1:111111111111:certificate/x'",
    ),
    (
        {"alarm_thresholds": {"elb_502": 3}},
        "alarm_thresholds must be a gunicorn_alb.AlarmThresholds such as "
        "AlarmThresholds(elb_502=3), got {'elb_502': 3}",
    ),
    (
        {"alarm_thresholds": AlarmThresholds(elb_502=-1)},
        "alarm_thresholds.elb_502 must be greater than 0 (the alarm fires at or above it, so -1 "
        "keeps it in alarm), got -1",
    ),
    (
        {"alarm_thresholds": AlarmThresholds(response_time_p99=0)},
        "alarm_thresholds.response_time_p99 must be greater than 0",
    ),
    (
        {"alarm_thresholds": AlarmThresholds(target_5xx="10")},  # type: ignore[arg-type]
        "alarm_thresholds.target_5xx must be a number greater than 0, got '10'",
    ),
    (
        {"alarm_thresholds": AlarmThresholds(), "monitoring": False},
        "alarm_thresholds applies to the alarms, but monitoring=False",
    ),
    (
        {"instance_logs": False, "log_retention": cdk.Duration.days(30)},
        "log_retention applies to the instances' log group, but instance_logs=False",
    ),
    (
        {"access_logs": False, "access_logs_prefix": "web"},
        "access_logs_prefix applies to the ALB's access logs, but access_logs=False",
    ),
    (
        {"access_logs": False, "access_logs_retention": cdk.Duration.days(30)},
        "access_logs_retention applies to the ALB's access logs, but access_logs=False",
    ),
    (
        {"ssl_policy": elbv2.SslPolicy.TLS13_RES},
        "ssl_policy applies to an HTTPS listener, but the listener is HTTP",
    ),
    (
        {"worker_class": "gevent", "threads": 8},
        "threads applies to the gthread worker; the gevent worker ignores it, got threads=8",
    ),
    (
        {
            "instance_types": [ec2.InstanceType("t3.small"), ec2.InstanceType("t3a.small")],
            "on_demand_base_capacity": 1,
        },
        "on_demand_base_capacity applies with spot_percentage above 0",
    ),
    (
        {"max_requests_jitter": 50},
        "max_requests_jitter applies only with max_requests above 0 (Gunicorn ignores it "
        "otherwise), got max_requests_jitter=50 with max_requests=0",
    ),
]


@pytest.mark.parametrize(
    ("props", "message"), BAD_VALUES, ids=[" ".join(map(str, p)) for p, _ in BAD_VALUES]
)
def test_fails_when_a_value_cannot_work(props: dict[str, Any], message: str) -> None:
    fails(re.escape(message), **props)


def test_fails_when_vpc_is_an_id() -> None:
    stack, _ = new_stack()
    with pytest.raises(ValueError, match=re.escape("vpc must be a CDK object such as ec2.Vpc.")):
        ApplicationLoadBalancedGunicornService(stack, "Service", vpc="vpc-123")  # type: ignore[arg-type]


def test_fails_when_log_encryption_key_is_given_without_instance_logs() -> None:
    stack, vpc = new_stack()
    with pytest.raises(
        ValueError,
        match=re.escape(
            "log_encryption_key applies to the instances' log group, but instance_logs=False"
        ),
    ):
        ApplicationLoadBalancedGunicornService(
            stack,
            "Service",
            vpc=vpc,
            instance_logs=False,
            log_encryption_key=kms.Key(stack, "LogKey"),
        )


def test_fails_when_access_logs_retention_is_given_with_an_access_logs_bucket() -> None:
    stack, vpc = new_stack()
    with pytest.raises(ValueError, match="access_logs_retention applies to the log bucket the"):
        ApplicationLoadBalancedGunicornService(
            stack,
            "Service",
            vpc=vpc,
            access_logs_bucket=s3.Bucket(stack, "Logs"),
            access_logs_retention=cdk.Duration.days(30),
        )


def test_fails_when_access_logs_bucket_is_given_without_access_logs() -> None:
    stack, vpc = new_stack()
    with pytest.raises(ValueError, match="access_logs_bucket applies to the ALB's access logs"):
        ApplicationLoadBalancedGunicornService(
            stack, "Service", vpc=vpc, access_logs=False, access_logs_bucket=s3.Bucket(stack, "L")
        )


def test_a_wrongly_kinded_value_is_reported_once_with_the_other_problems() -> None:
    with pytest.raises(ValueError) as caught:
        build(build_from_source="numpy", idle_timeout=60, app_port=80)
    problems = [line for line in str(caught.value).splitlines() if line.startswith("- ")]
    assert len(problems) == 3, problems
