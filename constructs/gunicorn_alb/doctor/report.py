"""The doctor's output: the human report (tables, findings, verdict) and the ``--json`` document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from gunicorn_alb.doctor.model import JSON_VERSION, PROG, AsgReport, LoadBalancerReport, Report


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
    header = ["TARGET GROUP", "DRAIN", "AUTO SCALING GROUP", "WORKER", "KEEP-ALIVE (BUILT)"]
    rows = [[*header, "AGENT", "GRACEFUL", "MAX_REQUESTS/JITTER"]]
    for tg in lb.target_groups:
        fleets: list[AsgReport | None] = [*tg.auto_scaling_groups] or [None]
        for asg in fleets:
            fleet = ["-"] * 6
            if asg is not None:
                agent = {True: "yes", False: "no", None: "?"}[asg.coupling_agent]
                fleet = [
                    asg.name,
                    _show(asg.worker_class),
                    _show(asg.keepalive, " s"),
                    agent,
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
