"""The probe's pure parts: its verdict against the idle timeout, its advice, its URL parsing."""

from __future__ import annotations

import pytest

from gunicorn_alb.doctor import probe_verdict, wire
from gunicorn_alb.doctor.probe_verdict import decide


def verdict(held: float | None, idle: int | None = 60, server: str | None = "gunicorn"):  # type: ignore[no-untyped-def]
    return decide(keeps_alive=True, idle_keepalive=held, bound=70, server=server, idle_timeout=idle)


def test_a_target_that_closes_first_is_exposed_by_the_difference() -> None:
    result = verdict(2.01)
    assert (result.id, result.exit_code) == ("exposed", 1)
    assert result.exposed_by == pytest.approx(57.99)
    assert "closes idle connections 57.99 s before the load balancer" in result.message
    assert "Set the target's keep-alive to 65 s" in result.message


def test_equal_to_the_idle_timeout_is_still_exposed() -> None:
    # Both sides' timers run a little late, so equal values still lose requests (FACTS.md).
    result = verdict(60.01)
    assert result.id == "exposed"
    assert result.exposed_by == pytest.approx(-0.01)
    assert "within the timer jitter" in result.message


def test_a_target_one_second_beyond_the_idle_timeout_is_healthy() -> None:
    assert verdict(61.0).id == "healthy"
    assert verdict(65.02).exit_code == 0


def test_a_target_still_open_at_the_bound_is_healthy() -> None:
    result = verdict(None)
    assert result.id == "healthy"
    assert "longer than 70 s" in result.message


def test_a_server_without_keepalive_is_not_exposed_but_said() -> None:
    result = decide(
        keeps_alive=False, idle_keepalive=0.0, bound=70, server="gunicorn", idle_timeout=60
    )
    assert (result.id, result.exit_code) == ("no-keepalive", 0)
    assert "keeps no connection alive" in result.message


def test_without_an_idle_timeout_the_figure_is_only_measured() -> None:
    result = verdict(2.0, idle=None)
    assert (result.id, result.exit_code) == ("measured", 0)


@pytest.mark.parametrize(
    ("server", "setting"),
    [
        ("gunicorn", "keepalive = 65"),
        ("uvicorn", "--timeout-keep-alive 65"),
        ("nginx/1.22.1", "keepalive_timeout 65s;"),
        ("Express", "server.keepAliveTimeout = 65000"),
        ("Puma 6.4", "persistent_timeout 65"),
    ],
)
def test_the_advice_names_the_servers_own_setting(server: str, setting: str) -> None:
    (advice,) = verdict(2.0, server=server).advice
    assert setting in advice


def test_an_unknown_server_gets_every_setting() -> None:
    assert len(verdict(2.0, server=None).advice) == len(probe_verdict.settings(None, 65))
    assert len(probe_verdict.settings("Caddy", 65)) == 5


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://10.0.1.23:8000/healthz", ("http", "10.0.1.23", 8000, "/healthz")),
        ("10.0.1.23:8000", ("http", "10.0.1.23", 8000, "/")),
        ("https://[::1]/x?y=1", ("https", "::1", 443, "/x?y=1")),
    ],
)
def test_targets_are_parsed(url: str, target: tuple[str, str, int, str]) -> None:
    parsed = wire.parse_target(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.path) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/", "URL must use http or https"),
        ("http:///path", "URL must name a host"),
        ("http://host:99999/", "URL has an invalid port"),
    ],
)
def test_fails_when_the_url_is_not_a_target(url: str, message: str) -> None:
    with pytest.raises(wire.ProbeError, match=message):
        wire.parse_target(url)
