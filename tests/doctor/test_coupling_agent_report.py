"""The doctor and the coupling agent: it reports, per fleet, the keep-alive the instances were
built with and whether they run the agent, and its advice for a fleet behind a raised idle
timeout matches what the agent does (moto, in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gunicorn_alb import doctor
from tests.doctor.fleets import Account, construct_user_data


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = doctor.main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def asg_of(document: dict[str, Any]) -> dict[str, Any]:
    (lb,) = document["load_balancers"]
    (tg,) = lb["target_groups"]
    (asg,) = tg["auto_scaling_groups"]
    return dict(asg)


def test_a_fleet_with_the_agent_reports_it_and_its_built_keepalive(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60, coupling_agent=True)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 0
    asg = asg_of(document)
    assert (asg["keepalive"], asg["coupling_agent"]) == (65, True)


def test_a_raise_by_hand_on_a_fleet_with_the_agent_is_followed_not_a_finding(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = account.coupled_fleet(60, coupling_agent=True)
    account.set_idle_timeout(fleet.load_balancer_arn, 120)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 0
    assert document["findings"] == []
    (note,) = [n for n in document["notes"] if "coupling agent" in n]
    assert "re-couples them to 120 s within 30 s (keep-alive 125 s" in note
    assert "journalctl -u gunicorn-alb-coupling" in note


def test_a_raise_by_hand_on_a_fleet_without_the_agent_says_to_replace_the_instances(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.load_balancer("web", 60)
    fleet = account.fleet(arn, construct_user_data(60, coupling_agent=False))
    account.set_idle_timeout(arn, 120)
    code, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert code == 1
    assert asg_of(document)["coupling_agent"] is False
    (finding,) = document["findings"]
    assert finding["id"] == "keepalive-exceeds-idle"
    assert "built without the coupling agent" in finding["message"]
    assert "replace the instances" in finding["message"]


def test_a_fleet_not_made_by_the_construct_has_no_agent_value(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.load_balancer("web", 60)
    fleet = account.fleet(arn, "#!/bin/bash\necho hello\n")
    _, document = run(capsys, "--load-balancer", fleet.load_balancer_name)
    assert asg_of(document)["coupling_agent"] is None
