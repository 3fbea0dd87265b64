"""gunicorn-alb-doctor against fleets in an in-process moto account (no network, no AWS)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from gunicorn_alb import delivery, doctor, rendering
from tests.doctor.fleets import Account, construct_user_data, instance_files_of


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run the doctor with --json; its exit code and document."""
    code = doctor.main([*argv, "--json"])
    captured = capsys.readouterr()
    assert captured.err == "", captured.err
    return code, json.loads(captured.out)


def errors(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the doctor expecting a failure; its exit code and stderr."""
    code = doctor.main(list(argv))
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def only_asg(document: dict[str, Any]) -> dict[str, Any]:
    (lb,) = document["load_balancers"]
    (tg,) = lb["target_groups"]
    (asg,) = tg["auto_scaling_groups"]
    return dict(asg)


def ids(document: dict[str, Any]) -> list[str]:
    return [finding["id"] for finding in document["findings"]]


def deny(monkeypatch: pytest.MonkeyPatch, operation: str, code: str, message: str) -> None:
    """Make every boto3 call of ``operation`` fail as AWS would, with ``code``."""
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
        if operation_name == operation:
            raise ClientError({"Error": {"Code": code, "Message": message}}, operation_name)
        return original(self, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)


# --- Fleets --------------------------------------------------------------------------------


def test_a_coupled_fleet_is_healthy(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = account.coupled_fleet(60, deregistration_delay=60)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 0
    assert document["findings"] == []
    assert document["undetermined"] == []
    assert document["exit_code"] == 0
    (lb,) = document["load_balancers"]
    assert lb["arn"] == fleet.load_balancer_arn
    assert lb["dimension"] == fleet.dimension
    assert lb["idle_timeout"] == 60
    assert (lb["elb_502_count"], lb["elb_504_count"]) == (0, 0)
    assert lb["target_groups"][0]["deregistration_delay"] == 60
    asg = only_asg(document)
    assert asg["name"] == fleet.asg_name
    assert asg["made_by_construct"] is True
    assert asg["keepalive"] == 65
    assert (asg["boot_idle_timeout"], asg["keepalive_margin"]) == (60, 5)
    assert (asg["graceful_timeout"], asg["stop_timeout"]) == (65, 75)
    assert (asg["worker_class"], asg["threads"]) == ("gthread", 4)
    assert (asg["max_requests"], asg["max_requests_jitter"]) == (0, 0)
    assert asg["launch_template"]["version"] == "1"


def test_an_idle_timeout_raised_by_hand_above_the_keepalive_is_found(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60)
    account.set_idle_timeout(fleet.load_balancer_arn, 120)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_arn)
    assert code == 1
    assert ids(document) == ["keepalive-exceeds-idle"]
    (finding,) = document["findings"]
    assert "keep-alive 65 s" in finding["message"]
    assert "idle timeout 120 s" in finding["message"]
    assert finding["resource"] == fleet.asg_name
    assert only_asg(document)["keepalive"] == 65
    assert document["load_balancers"][0]["idle_timeout"] == 120


def test_an_idle_timeout_equal_to_the_keepalive_is_found(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60)
    account.set_idle_timeout(fleet.load_balancer_arn, 65)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert (code, ids(document)) == (1, ["keepalive-exceeds-idle"])


def test_an_idle_timeout_lowered_by_hand_is_a_note_not_a_finding(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60)
    account.set_idle_timeout(fleet.load_balancer_arn, 30)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert (code, document["findings"]) == (0, [])
    assert any("booted for an idle timeout of 60 s" in note for note in document["notes"])


def test_a_sync_worker_is_found(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = account.coupled_fleet(60, worker_class="sync", threads=1)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 1
    assert ids(document) == ["worker-ignores-keepalive"]
    assert "'sync'" in document["findings"][0]["message"]
    assert "ignores keepalive" in document["findings"][0]["message"]


def test_max_requests_without_jitter_is_found(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60, max_requests=1000, max_requests_jitter=0)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 1
    assert ids(document) == ["max-requests-needs-jitter"]
    assert "max_requests (1000)" in document["findings"][0]["message"]
    assert only_asg(document)["max_requests"] == 1000


def test_max_requests_with_jitter_passes(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60, max_requests=1000, max_requests_jitter=50)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert (code, document["findings"]) == (0, [])


def test_a_graceful_timeout_not_above_the_live_idle_timeout_is_found(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Built for 60 s with a 62 s graceful timeout; the idle timeout was then raised to 62 s
    # (still below the keep-alive, 65 s): a stopping worker would close pooled connections first.
    arn = account.load_balancer("web", 60)
    user_data = construct_user_data(60, graceful_timeout=62)
    built = account.fleet(arn, user_data)
    account.set_idle_timeout(arn, 62)
    code, document = run(capsys, "--load-balancer", arn)
    assert code == 1
    assert ids(document) == ["graceful-outlasts-idle"]
    message = document["findings"][0]["message"]
    assert "graceful_timeout (62 s)" in message and "idle_timeout (62 s)" in message
    assert built.asg_name in message
    assert only_asg(document)["graceful_timeout"] == 62


def test_a_zero_deregistration_delay_is_found(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60, deregistration_delay=0)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 1
    assert "drain-bounded-by-idle" in ids(document)


def test_unreadable_instance_files_leave_the_worker_settings_undetermined(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    """gunicorn.conf.py is in the InstanceFiles asset: without s3:GetObject on it the doctor still
    checks the keep-alive (boot.env is in the user data) and says what it could not read."""
    import boto3

    from tests.doctor.fleets import ASSET_BUCKET, REGION

    account.coupled_fleet(60, deregistration_delay=60)
    s3 = boto3.client("s3", region_name=REGION)
    for found in s3.list_objects_v2(Bucket=ASSET_BUCKET)["Contents"]:
        s3.delete_object(Bucket=ASSET_BUCKET, Key=found["Key"])
    code, document = run(capsys, "--load-balancer", "web")
    assert code == 0 and document["findings"] == []
    asg = only_asg(document)
    assert asg["keepalive"] == 65 and asg["worker_class"] is None
    (entry,) = document["undetermined"]
    assert "does not set worker_class, threads" in entry["message"]
    assert f"(s3:GetObject on its instance files, s3://{ASSET_BUCKET}/" in entry["message"]


def test_a_fleet_not_made_by_the_construct_is_undetermined_not_guessed(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.load_balancer("plain", 60)
    user_data = "#!/bin/bash\npip install gunicorn\ngunicorn -w 4 app:application\n"
    account.fleet(arn, user_data, name="plain")
    code, document = run(capsys, "--load-balancer", "plain")
    assert code == 0
    assert document["findings"] == []
    asg = only_asg(document)
    assert asg["made_by_construct"] is False
    assert asg["keepalive"] is None and asg["worker_class"] is None
    (entry,) = document["undetermined"]
    assert entry["resource"] == "plain-asg"
    assert "not written by the gunicorn-alb construct" in entry["message"]
    assert doctor.main(["--load-balancer", "plain", "--strict"]) == 1


def test_a_target_group_without_an_asg_is_undetermined(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.load_balancer("bare", 60)
    tg = account.elbv2.create_target_group(
        Name="bare-tg", Protocol="HTTP", Port=80, VpcId=account.vpc
    )["TargetGroups"][0]["TargetGroupArn"]
    account.elbv2.create_listener(
        LoadBalancerArn=arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    code, document = run(capsys, "--load-balancer", "bare")
    assert code == 0
    assert [u["resource"] for u in document["undetermined"]] == ["bare-tg"]


def test_a_launch_configuration_fleet_is_read_too(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.load_balancer("legacy", 90)
    account.fleet(arn, construct_user_data(60), name="legacy", launch_configuration=True)
    code, document = run(capsys, "--load-balancer", "legacy")
    assert (code, ids(document)) == (1, ["keepalive-exceeds-idle"])
    asg = only_asg(document)
    assert (asg["launch_template"], asg["keepalive"]) == (None, 65)


def test_a_boot_env_the_boot_script_would_refuse_is_found() -> None:
    user_data = construct_user_data(60).replace(
        "GRACEFUL_TIMEOUT_SECONDS=\n", "GRACEFUL_TIMEOUT_SECONDS=30\n"
    )
    report = doctor.Report(region="us-east-1", window="1h", window_seconds=3600)
    asg = doctor.AsgReport(name="web-asg")
    doctor.read_instance_settings(report, "web", asg, user_data)
    assert [f.id for f in report.findings] == ["boot-env-invalid"]
    assert "graceful_timeout (30 s) must be greater than" in report.findings[0].message
    assert asg.keepalive is None


# --- CloudWatch ----------------------------------------------------------------------------


def put_elb_errors(account: Account, dimension: str, metric: str, minutes_ago: int, n: int) -> None:
    account.cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "LoadBalancer", "Value": dimension}],
                "Timestamp": datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
                "Value": n,
                "Unit": "Count",
            }
        ],
    )


def test_elb_502s_are_counted_and_found(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60)
    put_elb_errors(account, fleet.dimension, "HTTPCode_ELB_502_Count", 10, 3)
    put_elb_errors(account, fleet.dimension, "HTTPCode_ELB_502_Count", 40, 4)
    put_elb_errors(account, fleet.dimension, "HTTPCode_ELB_502_Count", 150, 100)  # outside 1h
    put_elb_errors(account, "app/other/0123456789abcdef", "HTTPCode_ELB_502_Count", 5, 9)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 1
    assert ids(document) == ["elb-502-count"]
    assert document["load_balancers"][0]["elb_502_count"] == 7
    assert "HTTPCode_ELB_502_Count = 7 over the last 1h" in document["findings"][0]["message"]

    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name, "--window", "3h")
    assert document["window_seconds"] == 3 * 3600
    assert document["load_balancers"][0]["elb_502_count"] == 107


def test_elb_504s_are_found(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = account.coupled_fleet(60)
    put_elb_errors(account, fleet.dimension, "HTTPCode_ELB_504_Count", 5, 2)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name, "--window", "30m")
    assert (code, ids(document)) == (1, ["elb-504-count"])
    assert document["load_balancers"][0]["elb_504_count"] == 2


# --- Finding the load balancer -------------------------------------------------------------


def test_a_stack_is_searched_for_its_load_balancers(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    template = {
        "Resources": {
            "LoadBalancer": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Name": "stacked", "Subnets": account.subnets},
            }
        }
    }
    account.cloudformation.create_stack(StackName="Web", TemplateBody=json.dumps(template))
    (resource,) = account.cloudformation.describe_stack_resources(StackName="Web")["StackResources"]
    arn = resource["PhysicalResourceId"]
    # moto's CloudFormation ignores LoadBalancerAttributes: set them as a deploy would.
    account.set_idle_timeout(arn, 120)
    account.fleet(arn, construct_user_data(120), deregistration_delay=120)
    code, document = run(capsys, "--stack", "Web")
    assert code == 0, document["findings"]
    assert [lb["arn"] for lb in document["load_balancers"]] == [arn]
    assert only_asg(document)["keepalive"] == 125


def test_a_stack_without_a_load_balancer_is_a_usage_error(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    account.cloudformation.create_stack(StackName="NoAlb", TemplateBody=json.dumps(template))
    code, err = errors(capsys, "--stack", "NoAlb")
    assert code == 2
    assert "stack 'NoAlb' has no Application Load Balancer in us-east-1" in err


def test_an_unknown_stack_is_a_usage_error(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = errors(capsys, "--stack", "Nope")
    assert code == 2
    assert "stack 'Nope' does not exist in us-east-1" in err


@pytest.mark.parametrize(
    "name",
    ["nope", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/nope/0123"],
)
def test_an_unknown_load_balancer_is_a_usage_error(
    aws: None, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, err = errors(capsys, "--load-balancer", name)
    assert code == 2
    assert f"load balancer {name} not found in us-east-1" in err


def test_usage_errors_exit_2(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main([]) == 2
    assert doctor.main(["--stack", "A", "--load-balancer", "B"]) == 2
    assert doctor.main(["--stack", "A", "--window", "3x"]) == 2
    assert "window must be a number and a unit" in capsys.readouterr().err
    assert doctor.main(["--stack", "A", "--window", "16d"]) == 2
    assert doctor.main(["--help"]) == 0


# --- Access errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("DescribeLoadBalancers", "AccessDenied"),
        ("DescribeLaunchTemplateVersions", "UnauthorizedOperation"),
        ("GetMetricData", "AccessDeniedException"),
    ],
)
def test_missing_permissions_are_named(
    account: Account,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
    code: str,
) -> None:
    fleet = account.coupled_fleet(60)
    action = doctor.PERMISSIONS[operation]
    user = "arn:aws:iam::123456789012:user/ci"
    deny(monkeypatch, operation, code, f"User: {user} is not authorized to perform: {action}")
    exit_code, err = errors(capsys, "--load-balancer", fleet.load_balancer_name)
    assert exit_code == 2
    assert f"access denied: these credentials may not call {action}" in err
    assert "needs read-only access" in err and "autoscaling:DescribeAutoScalingGroups" in err


def test_persistent_throttling_says_retries_were_made(
    account: Account, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = account.coupled_fleet(60)
    deny(monkeypatch, "DescribeAutoScalingGroups", "Throttling", "Rate exceeded")
    code, err = errors(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 2
    assert "kept throttling autoscaling:DescribeAutoScalingGroups" in err
    assert f"after {doctor.MAX_ATTEMPTS} attempts" in err and "adaptive retries" in err


def test_the_clients_retry_throttling() -> None:
    retries = doctor.AWS_CONFIG.retries
    assert retries == {"mode": "adaptive", "total_max_attempts": doctor.MAX_ATTEMPTS}


def test_missing_credentials_exit_2(
    aws_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    # Nothing may leave the machine even if credentials turned up from somewhere.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    code, err = errors(capsys, "--load-balancer", "web")
    assert code == 2
    assert "no usable AWS credentials" in err


def test_a_missing_profile_exits_2(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = errors(capsys, "--load-balancer", "web", "--profile", "nope")
    assert code == 2
    assert "nope" in err and "--profile" in err


def test_aws_endpoint_url_is_honoured(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    aws = doctor.connect(None, None)
    assert aws.region == "us-east-1"
    for client in (aws.cloudformation, aws.elbv2, aws.autoscaling, aws.ec2, aws.cloudwatch):
        assert client.meta.endpoint_url == "http://localhost:4566"


# --- Output and parsing --------------------------------------------------------------------


def test_the_human_report_is_a_table_with_a_verdict(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60)
    account.set_idle_timeout(fleet.load_balancer_arn, 120)
    assert doctor.main(["--load-balancer", fleet.load_balancer_name]) == 1
    out = capsys.readouterr().out
    assert f"Load balancer web ({fleet.dimension})" in out
    assert "idle timeout 120 s" in out
    header = next(line for line in out.splitlines() if "TARGET GROUP" in line)
    columns = "TARGET GROUP, DRAIN, AUTO SCALING GROUP, WORKER, KEEP-ALIVE (BUILT), AGENT"
    assert re.split(r"\s{2,}", header.strip()) == [
        *columns.split(", "),
        "GRACEFUL",
        "MAX_REQUESTS/JITTER",
    ]
    row = next(line for line in out.splitlines() if "web-asg" in line)
    assert row.split() == [
        *("web-tg", "60", "s", "web-asg", "gthread", "65", "s", "no", "65", "s", "0/0")
    ]
    assert "Findings (1)" in out and "[keepalive-exceeds-idle]" in out
    assert out.rstrip().endswith("Result: findings (exit 1)")


def test_the_user_data_is_read_back_as_rendered() -> None:
    user_data = construct_user_data(120, 7, max_requests=10, max_requests_jitter=3)
    boot_env = delivery.written_file(user_data, rendering.BOOT_ENV_PATH)
    assert delivery.written_file(user_data, rendering.GUNICORN_CONF_PATH) is None
    archive = instance_files_of(user_data)
    conf = delivery.written_file(user_data, rendering.GUNICORN_CONF_PATH, archive)
    assert boot_env is not None and conf is not None
    assert delivery.parse_env(boot_env)["IDLE_TIMEOUT_SECONDS"] == "120"
    assert delivery.parse_env(boot_env)["KEEPALIVE_MARGIN_SECONDS"] == "7"
    assert doctor.parse_gunicorn_conf(conf) == {
        "worker_class": "gthread",
        "threads": 4,
        "max_requests": 10,
        "max_requests_jitter": 3,
    }


def test_an_unresolved_idle_timeout_is_undetermined() -> None:
    user_data = construct_user_data(60).replace(
        "IDLE_TIMEOUT_SECONDS=60", "IDLE_TIMEOUT_SECONDS=${Token[TOKEN.42]}"
    )
    report = doctor.Report(region="us-east-1", window="1h", window_seconds=3600)
    asg = doctor.AsgReport(name="web-asg")
    archive = instance_files_of(user_data)
    doctor.read_instance_settings(report, "web", asg, user_data, archive=archive)
    assert asg.made_by_construct and asg.keepalive is None
    assert report.findings == []
    (entry,) = report.undetermined
    assert "keep-alive not determined" in entry.message


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h", 3600), ("3h", 10800), ("2d", 172800)]
)
def test_windows(text: str, seconds: int) -> None:
    assert doctor.parse_window(text) == (text, seconds)
