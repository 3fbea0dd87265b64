"""The doctor's checks and report on plain data: no AWS, no moto, no boto3 (tests/doctor/ drives
the whole command against moto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gunicorn_alb.doctor import checks, report
from gunicorn_alb.doctor.model import (
    AsgReport,
    LoadBalancerReport,
    Report,
    TargetGroupReport,
)


def fleet(
    idle: int = 60, drain: int = 60, **asg: object
) -> tuple[Report, LoadBalancerReport, TargetGroupReport, AsgReport]:
    """A report with one load balancer, target group and ASG booted for ``idle`` + 5 s."""
    group = AsgReport(
        name="web-asg",
        made_by_construct=True,
        boot_idle_timeout=60,
        keepalive_margin=5,
        keepalive=65,
        graceful_timeout=65,
        stop_timeout=75,
        worker_class="gthread",
        threads=4,
        max_requests=0,
        max_requests_jitter=0,
    )
    for key, value in asg.items():
        setattr(group, key, value)
    tg = TargetGroupReport(name="web-tg", arn="arn:tg", deregistration_delay=drain)
    tg.auto_scaling_groups.append(group)
    lb = LoadBalancerReport(name="web", arn="arn:lb", dimension="app/web/1", idle_timeout=idle)
    lb.target_groups.append(tg)
    found = Report(region="us-east-1", window="1h", window_seconds=3600)
    found.load_balancers.append(lb)
    return found, lb, tg, group


def test_the_checks_and_the_report_import_without_boto3(root: Path) -> None:
    code = (
        "import sys, gunicorn_alb.doctor.checks, gunicorn_alb.doctor.report; "
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_a_coupled_fleet_has_no_findings() -> None:
    found, lb, tg, asg = fleet()
    checks.check_fleet(found, lb, tg, asg)
    assert (found.findings, found.undetermined, found.notes) == ([], [], [])
    assert found.exit_code(strict=True) == 0


def test_an_idle_timeout_at_the_keepalive_is_a_finding() -> None:
    found, lb, tg, asg = fleet(idle=65)
    checks.check_fleet(found, lb, tg, asg)
    assert [f.id for f in found.findings] == ["keepalive-exceeds-idle"]
    assert "keep-alive 65 s is not greater than the idle timeout 65 s" in found.findings[0].message


def test_a_lowered_idle_timeout_is_a_note() -> None:
    found, lb, tg, asg = fleet(idle=30)
    checks.check_fleet(found, lb, tg, asg)
    assert found.findings == []
    assert "booted for an idle timeout of 60 s" in found.notes[0]


def test_a_sync_worker_and_a_graceful_timeout_within_the_idle_timeout_are_findings() -> None:
    found, lb, tg, asg = fleet(graceful_timeout=60, stop_timeout=70, worker_class="sync", threads=1)
    checks.check_fleet(found, lb, tg, asg)
    assert {f.id for f in found.findings} == {"worker-ignores-keepalive", "graceful-outlasts-idle"}


def test_a_drain_shorter_than_the_graceful_timeout_is_no_finding() -> None:
    """At scale-in the ALB drains the target before the instance stops (graceful-outlasts-idle)."""
    found, lb, tg, asg = fleet(drain=30)
    checks.check_fleet(found, lb, tg, asg)
    assert found.findings == []


def test_elb_error_counts_become_findings() -> None:
    found, lb, _, _ = fleet()
    checks.check_elb_errors(found, lb, {"elb-502-count": 3, "elb-504-count": 0})
    assert (lb.elb_502_count, lb.elb_504_count) == (3, 0)
    (finding,) = found.findings
    assert finding.id == "elb-502-count"
    assert "HTTPCode_ELB_502_Count = 3 over the last 1h" in finding.message


def test_the_report_renders_findings_and_the_verdict() -> None:
    found, lb, tg, asg = fleet(idle=120)
    checks.check_fleet(found, lb, tg, asg)
    text = report.to_text(found, strict=False)
    assert "Load balancer web (app/web/1)" in text
    assert "[keepalive-exceeds-idle]" in text
    assert text.endswith("Result: findings (exit 1)")
    document = report.to_json(found, strict=False)
    assert (document["version"], document["exit_code"]) == (1, 1)
    (tg_document,) = document["load_balancers"][0]["target_groups"]
    assert tg_document["auto_scaling_groups"][0]["keepalive"] == 65


def test_undetermined_fails_only_when_strict() -> None:
    found, *_ = fleet()
    found.cannot("web", "web-tg", "no Auto Scaling group is attached")
    assert report.to_text(found, strict=False).endswith(
        "Result: no findings, but not everything could be checked (exit 0)"
    )
    assert report.to_json(found, strict=True)["exit_code"] == 1
