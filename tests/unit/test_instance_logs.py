"""The instance's logs: the agent configuration, rotation, and the access-log parser."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gunicorn_alb import delivery, instance_logs, rendering, timeouts
from gunicorn_alb.__main__ import main

CONFIG = rendering.InstanceConfig(
    timeouts=timeouts.derive_timeouts(60),
    idle_timeout="60",
    app_port=8000,
    health_check_path="/healthz",
    wsgi_app="app:application",
    app_asset_url="s3://bucket/key.zip",
    app_requirements="",
    worker_class="gthread",
    threads=4,
    workers_per_cpu=2,
    forwarded_allow_ips="10.0.0.0/16",
)


def test_the_agent_ships_gunicorn_logs_and_the_boot_log_to_one_stream_per_instance() -> None:
    config = replace(CONFIG, log_group_name="/gunicorn-alb/web")
    files = rendering.render_files(config)
    carried = files[instance_logs.AGENT_CONFIG_PATH]
    # The user data carries it compressed, without the group's name; the boot puts in boot.env's
    # CLOUDWATCH_LOG_GROUP (sed) before it hands the file to the agent.
    assert "/gunicorn-alb/web" not in carried
    boot_env = delivery.parse_env(files[rendering.BOOT_ENV_PATH])
    assert boot_env["CLOUDWATCH_LOG_GROUP"] == "/gunicorn-alb/web"
    agent = json.loads(
        carried.replace(instance_logs.LOG_GROUP_PLACEHOLDER, boot_env["CLOUDWATCH_LOG_GROUP"])
    )
    collected = agent["logs"]["logs_collected"]["files"]["collect_list"]
    assert [entry["file_path"] for entry in collected] == [
        instance_logs.ACCESS_LOG,
        instance_logs.ERROR_LOG,
        instance_logs.BOOT_LOG,
    ]
    assert {entry["log_group_name"] for entry in collected} == {"/gunicorn-alb/web"}
    # One stream per instance: the default stream of every entry (none names its own).
    assert agent["logs"]["log_stream_name"] == "{instance_id}"
    assert all("log_stream_name" not in entry for entry in collected)
    assert collected[1]["multi_line_start_pattern"] == instance_logs.ERROR_LOG_START
    # No metrics section (no cloudwatch:PutMetricData needed) and no retention (set by the stack).
    assert set(agent) == {"logs"}
    assert all("retention_in_days" not in entry for entry in collected)
    user_data = delivery.render_user_data(config)
    _, shipped = delivery.split_files(config)
    assert shipped[instance_logs.AGENT_CONFIG_PATH] == carried  # in the InstanceFiles asset
    assert delivery.written_file(user_data, instance_logs.AGENT_CONFIG_PATH) is None


def test_without_a_log_group_no_agent_is_configured_but_logs_still_rotate() -> None:
    files = rendering.render_files(CONFIG)
    assert instance_logs.AGENT_CONFIG_PATH not in files
    assert delivery.parse_env(files[rendering.BOOT_ENV_PATH])["CLOUDWATCH_LOG_GROUP"] == ""
    rotation = files[instance_logs.LOGROTATE_PATH]
    assert f"{instance_logs.LOG_DIRECTORY}/*.log {{" in rotation
    for directive in ("su gunicorn-app gunicorn-app", "daily", "rotate 7", "copytruncate"):
        assert f"\n    {directive}\n" in rotation


def test_the_unit_gives_gunicorn_the_log_directory_it_writes() -> None:
    unit = rendering.render_unit(CONFIG)
    assert "\nLogsDirectory=gunicorn-app\n" in unit
    assert instance_logs.LOG_DIRECTORY == "/var/log/gunicorn-app"
    conf = rendering.render_gunicorn_conf(CONFIG)
    assert f"access_log_format = {instance_logs.ACCESS_LOG_FORMAT!r}" in conf


def test_render_command_writes_the_agent_config_for_a_log_group(tmp_path: Path) -> None:
    assert main(["render", "--out", str(tmp_path), "--log-group", "my-group"]) == 0
    agent = json.loads((tmp_path / "cloudwatch-agent.json").read_text())
    assert agent["logs"]["logs_collected"]["files"]["collect_list"][0]["log_group_name"] == (
        instance_logs.LOG_GROUP_PLACEHOLDER
    )
    boot_env = delivery.parse_env((tmp_path / "boot.env").read_text())
    assert boot_env["CLOUDWATCH_LOG_GROUP"] == "my-group"


LINE = (
    '[30/Nov/2026:05:01:02 +0000] "GET /orders?id=7 HTTP/1.1" 200 1534 0.012345 '
    '"Root=1-67891233-abcdef012345678912345678" "203.0.113.7, 10.0.0.5" 10.0.1.23 '
    '"Mozilla/5.0 \\"x\\""'
)


def test_parse_access_line_reads_every_field() -> None:
    parsed = instance_logs.parse_access_line(LINE)
    assert parsed.time.isoformat() == "2026-11-30T05:01:02+00:00"
    assert parsed.request == "GET /orders?id=7 HTTP/1.1"
    assert (parsed.status, parsed.bytes, parsed.duration) == (200, 1534, 0.012345)
    assert parsed.trace_id == "Root=1-67891233-abcdef012345678912345678"
    assert parsed.forwarded_for == "203.0.113.7, 10.0.0.5"
    assert parsed.remote == "10.0.1.23"
    assert parsed.user_agent == 'Mozilla/5.0 "x"'


def test_fails_when_the_line_is_not_an_access_line() -> None:
    with pytest.raises(ValueError, match="not a gunicorn-alb access-log line"):
        instance_logs.parse_access_line("[2026-11-30 05:00:00 +0000] [12] [INFO] Booting worker")


@pytest.mark.parametrize(
    ("header", "root"),
    [
        ("Root=1-67891233-abcdef012345678912345678", "1-67891233-abcdef012345678912345678"),
        ("Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abc", "1-67891233-abc"),
        ("Self=1-67891234-12456789abcdef012345678", None),
    ],
)
def test_trace_root_is_the_part_both_logs_share(header: str, root: str | None) -> None:
    assert instance_logs.trace_root(header) == root


def test_user_data_with_the_agent_stays_within_ec2s_16_kb() -> None:
    """EC2 limits user data to 16 KB before base64; the log group's name (a token in a stack) is
    in boot.env only, counted as delivery.TOKEN_SIZE_ESTIMATE bytes like every token."""
    token = "${Token[TOKEN.1]}"
    config = replace(
        CONFIG, log_group_name=token, app_asset_url=token, target_group_arn=token, cfn_stack=token
    )
    size = delivery.user_data_size_estimate(delivery.render_user_data(config))
    assert size <= delivery.USER_DATA_LIMIT - 1024, size


def test_uvicorns_worker_gets_a_warning_that_its_access_log_has_no_trace_id() -> None:
    (warning,) = instance_logs.access_log_advisories("uvicorn_worker.UvicornWorker", True)
    assert warning[0] == "access-log-format" and "X-Amzn-Trace-Id" in warning[1]
    assert instance_logs.access_log_advisories("uvicorn_worker.UvicornWorker", False) == []
    for worker in ("gthread", "gevent", "asgi"):
        assert instance_logs.access_log_advisories(worker, True) == []


def test_a_uvicorn_access_line_parses_back() -> None:
    line = '127.0.0.1:41030 - "GET /healthz?x=1 HTTP/1.1" 200'
    assert instance_logs.parse_uvicorn_line(line) == ("/healthz?x=1", 200)
    with pytest.raises(ValueError, match="not a uvicorn access-log line"):
        instance_logs.parse_uvicorn_line('[30/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200')
