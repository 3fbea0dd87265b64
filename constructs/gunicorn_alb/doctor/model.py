"""What the doctor reports: the fleet as read, findings, what it could not determine.

Plain data (no boto3): :mod:`.fleet` fills it from AWS, :mod:`.checks` adds findings,
:mod:`.report` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROG = "gunicorn-alb-doctor"
JSON_VERSION = 1


class DoctorError(Exception):
    """A usage or access problem: printed on stderr, exit code 2."""


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
    coupling_agent: bool | None = None
    """Whether the instances run the coupling agent, which keeps keep-alive above the live idle
    timeout (None: not made by the construct); ``keepalive`` is what they were built with."""


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
