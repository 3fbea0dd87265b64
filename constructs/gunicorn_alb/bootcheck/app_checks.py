"""The boot check's checks of the app's own configuration (issue 10): its secrets as the boot read
them, the running Gunicorn's environment, the root-only environment files, the release step and
what it did, the app's own page through Gunicorn, and that no secret value shows in anything the
boot writes or logs.

Each secret gets a fresh made-up value per boot (:func:`fresh_secrets`); the ``aws`` stand-in
answers the boot's reads with them (:func:`stand_in_answers`, ``secret_answers`` in its config).
A check that does not apply (no secrets, no release step, the sample app) is not made.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any

from gunicorn_alb import delivery, rendering
from gunicorn_alb.bootcheck import running
from gunicorn_alb.bootcheck.checks import Outcome
from gunicorn_alb.bootcheck.instance import USER_DATA_PATH, USER_DATA_UNIT, Instance
from gunicorn_alb.bootcheck.shims import SECRET_READS

PRE_START_UNIT = Path(rendering.PRE_START_UNIT_PATH).name
OPERATIONS = {service: [service, operation] for service, operation in SECRET_READS}
"""The AWS CLI command that reads a secret, by its source in secrets.list."""
UNIT_SUCCESS = "7ad2d189f7e94e70a38c781354912448"
"""systemd's MESSAGE_ID of "UNIT: Deactivated successfully" (SD_MESSAGE_UNIT_SUCCESS)."""


@dataclass(frozen=True)
class AppExpectations:
    """What a variant's own app shows once booted, beyond the health path (the sample app shows
    nothing more). In Django's terms: the release step is ``collectstatic``."""

    host: str
    """The Host header of the requests: the load balancer's name, which the app accepts."""
    page: str = "/"
    page_shows: str = ""
    """The name of the secret whose value the page shows."""
    page_contains: str = ""
    """Text the page shows (from the app's plain environment, say)."""
    static_file: str = ""
    """A file the release step collects: from ``static_dirs`` of the app asset into
    ``static_root``; the app serves it at ``static_url``."""
    static_dirs: str = "static"
    static_root: str = ""
    static_url: str = "/static/"


@dataclass(frozen=True)
class SecretValue(rendering.SecretRef):
    """One line of secrets.list (``NAME SOURCE ARN [FIELD]``) and the value AWS holds for it."""

    value: str = ""


def fresh_secrets(user_data: str) -> list[SecretValue]:
    """The secrets the user data lists, each with a new random value; none without a list."""
    listing = delivery.written_file(user_data, rendering.SECRETS_LIST_PATH) or ""
    found = []
    for line in listing.splitlines():
        if line.strip() and not line.startswith("#"):
            name, source, arn, field = [*line.split(), ""][:4]
            value = f"bootcheck-{name}-{token_hex(12)}"
            found.append(SecretValue(name, source, arn, field, value=value))
    return found


def stand_in_answers(secrets: list[SecretValue]) -> dict[str, dict[str, Any]]:
    """What the AWS CLI prints for each read (by service, by ARN), as the real one prints
    GetParameter's and GetSecretValue's answers."""
    answers: dict[str, dict[str, Any]] = {service: {} for service in OPERATIONS}
    for secret in secrets:
        if secret.source == "ssm":
            path = secret.arn.split(":parameter/", 1)[-1]
            answers["ssm"][secret.arn] = {
                "Parameter": {
                    "Name": f"/{path}" if "/" in path else path,
                    "Type": "SecureString",
                    "Value": secret.value,
                    "Version": 1,
                    "ARN": secret.arn,
                    "DataType": "text",
                }
            }
        else:
            answers["secretsmanager"][secret.arn] = {
                "ARN": secret.arn,
                "Name": secret.arn.split(":secret:", 1)[-1].rsplit("-", 1)[0],
                "VersionId": "6f1e0a56-0000-4000-8000-b00tcbec4000",
                "SecretString": (
                    json.dumps({secret.field: secret.value}) if secret.field else secret.value
                ),
                "VersionStages": ["AWSCURRENT"],
            }
    return answers


# --- While Gunicorn runs (before the restart and stop checks) -----------------------------------


def check_app(
    outcome: Outcome,
    instance: Instance,
    main_pid: str,
    port: str,
    secrets: list[SecretValue],
    expected: AppExpectations | None,
    app_source: Path,
) -> None:
    user_data = instance.container.read(USER_DATA_PATH)
    environment = delivery.parse_env(delivery.written_file(user_data, rendering.APP_ENV_PATH) or "")
    check_secret_reads(outcome, instance, secrets)
    check_environment(outcome, instance, main_pid, secrets, environment)
    check_environment_files(outcome, instance)
    check_release_step(outcome, instance, expected, app_source)
    if expected is not None:
        check_page(outcome, instance, port, expected, secrets, app_source)


def check_secret_reads(outcome: Outcome, instance: Instance, secrets: list[SecretValue]) -> None:
    """The boot read each secret exactly once, through the AWS CLI, successfully."""
    if not secrets:
        return
    reads = [
        c for c in instance.calls() if c["tool"] == "aws" and tuple(c["argv"][:2]) in SECRET_READS
    ]
    calls = {
        secret.name: [
            (c["exit"], c["unit"])
            for c in reads
            if c["argv"][:2] == OPERATIONS[secret.source] and c.get("arn") == secret.arn
        ]
        for secret in secrets
    }
    outcome.check(
        len(reads) == len(secrets)
        and all(each == [(0, USER_DATA_UNIT)] for each in calls.values()),
        f"the boot read each secret once through the AWS CLI ({len(reads)} read(s) in all): "
        + "; ".join(
            f"{s.name}: aws {' '.join(OPERATIONS[s.source])} {s.arn} (exit, unit: {calls[s.name]})"
            for s in secrets
        ),
    )


def environ(instance: Instance, pid: str) -> dict[str, str]:
    """The environment a process started with (/proc/PID/environ, read as root)."""
    raw = instance.container.run(["cat", f"/proc/{pid}/environ"]).stdout
    return dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)


def check_environment(
    outcome: Outcome,
    instance: Instance,
    main_pid: str,
    secrets: list[SecretValue],
    environment: dict[str, str],
) -> None:
    """The Gunicorn master (and so every worker it forks) holds each secret's value and the
    plain environment, as systemd handed them over from the EnvironmentFile= files."""
    if not (secrets or environment):
        return
    held = environ(instance, main_pid)
    if secrets:
        missing = [s.name for s in secrets if held.get(s.name) != s.value]
        outcome.check(
            not missing,
            f"the running Gunicorn master (pid {main_pid}) holds each secret's value in its "
            f"environment: {', '.join(s.name for s in secrets)}"
            + (f" (missing or another value: {missing})" if missing else ""),
        )
    if environment:
        outcome.equal(
            f"the running Gunicorn master's environment (pid {main_pid}): the plain "
            "`environment` values",
            {name: held.get(name) for name in environment},
            environment,
        )


def check_environment_files(outcome: Outcome, instance: Instance) -> None:
    """app.env and secrets.env are files only root can read (systemd reads them for the app)."""
    for path in (rendering.APP_ENV_PATH, rendering.SECRETS_ENV_PATH):
        target = instance.container.path(path)
        info = target.lstat() if target.exists() or target.is_symlink() else None
        found = (
            "missing"
            if info is None
            else f"uid {info.st_uid}, gid {info.st_gid}, mode {stat.filemode(info.st_mode)}"
        )
        outcome.check(
            info is not None
            and stat.S_ISREG(info.st_mode)
            and (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o600),
            f"{path} is a root-owned file of mode 0600: {found}",
        )


def check_release_step(
    outcome: Outcome, instance: Instance, expected: AppExpectations | None, app_source: Path
) -> None:
    """The release step's oneshot unit ran once, succeeded, as the app user, before systemd
    started Gunicorn; and did its work (the collected static file, owned by the app user).

    From the journal: systemd unloads a oneshot unit that finished successfully when nothing
    refers to it, after which ``systemctl show`` reports a fresh unit's defaults (Result=success,
    ExecMainStatus=0, no timestamps) whatever happened. Its journal keeps systemd's own record."""
    box = instance.container
    if not box.path(rendering.PRE_START_UNIT_PATH).is_file():
        return
    journal = box.run(
        ["journalctl", "--unit", PRE_START_UNIT, "--unit", running.UNIT, "--output=json",
         "--no-pager"]
    )  # fmt: skip
    entries = [json.loads(line) for line in journal.stdout.splitlines() if line.startswith("{")]
    by_systemd = [e for e in entries if e.get("_PID") == "1" and e.get("UNIT") == PRE_START_UNIT]
    invocations = {e.get("INVOCATION_ID") for e in by_systemd}
    finished = [e.get("JOB_RESULT") for e in by_systemd if "JOB_RESULT" in e]
    succeeded = [e for e in by_systemd if e.get("MESSAGE_ID") == UNIT_SUCCESS]
    failures = [e.get("MESSAGE") for e in by_systemd if "UNIT_RESULT" in e or "EXIT_STATUS" in e]
    outcome.check(
        len(invocations) == 1 and finished == ["done"] and len(succeeded) == 1 and not failures,
        f"{PRE_START_UNIT} (the release step) ran once and succeeded, per systemd's journal: "
        f"{len(invocations)} invocation(s), start job result(s) {finished}, 'Deactivated "
        f"successfully' {len(succeeded)} time(s), failures {failures}",
    )
    output = [e for e in entries if e.get("_SYSTEMD_UNIT") == PRE_START_UNIT]
    uids = sorted({e.get("_UID") for e in output})
    account = running.user_account(instance, running.APP_USER)
    outcome.check(
        account is not None and uids == [account[2]],
        f"the release step ran as {running.APP_USER} (uid {account[2] if account else '?'}): "
        f"its output in the journal comes from uid(s) {uids}: "
        + "; ".join(str(e.get("MESSAGE")) for e in output[:3]),
    )
    order = [
        (e.get("UNIT"), e.get("JOB_RESULT"))
        for e in entries
        if e.get("_PID") == "1" and e.get("JOB_TYPE") == "start"
    ]
    done = order.index((PRE_START_UNIT, "done")) if (PRE_START_UNIT, "done") in order else None
    gunicorn = order.index((running.UNIT, None)) if (running.UNIT, None) in order else None
    outcome.check(
        done is not None and gunicorn is not None and done < gunicorn,
        f"the release step finished before systemd started {running.UNIT} (journal order of "
        f"their start jobs: {order})",
    )
    if expected is None or not expected.static_file:
        return
    collected = f"{expected.static_root}/{expected.static_file}"
    target = box.path(collected)
    source = app_source / expected.static_dirs / expected.static_file
    owner = target.stat().st_uid if target.is_file() else None
    outcome.check(
        account is not None
        and owner == int(account[2])
        and target.read_bytes() == source.read_bytes(),
        f"the release step collected {expected.static_dirs}/{expected.static_file} of the app "
        f"into {collected}, as {running.APP_USER} (the file's owner: uid {owner})",
    )


def check_page(
    outcome: Outcome,
    instance: Instance,
    port: str,
    expected: AppExpectations,
    secrets: list[SecretValue],
    app_source: Path,
) -> None:
    """The app's own page through Gunicorn, with the load balancer's Host header: 200, showing
    the secret it shows; and the collected static file as the app serves it."""
    headers = {"Host": expected.host}
    url = f"http://127.0.0.1:{port}{expected.page}"
    status, body = running.http_get(instance, url, headers)
    shown = [s for s in secrets if s.name == expected.page_shows]
    outcome.check(
        status == "200"
        and expected.page_contains in body
        and len(shown) == bool(expected.page_shows)
        and all(s.value in body for s in shown),
        f"GET {url} with Host: {expected.host} through Gunicorn: {status}"
        + (
            f", the page {'shows' if expected.page_contains in body else 'does NOT show'} "
            f"{expected.page_contains!r}"
            if expected.page_contains
            else ""
        )
        + "".join(
            f", the page {'shows' if s.value in body else 'does NOT show'} {s.name}'s value "
            f"(from {s.source})"
            for s in shown
        )
        + ("" if status == "200" else f": {body[:300]!r}"),
    )
    if not expected.static_file:
        return
    url = f"http://127.0.0.1:{port}{expected.static_url}{expected.static_file}"
    status, body = running.http_get(instance, url, headers)
    source = (app_source / expected.static_dirs / expected.static_file).read_text()
    outcome.check(
        status == "200" and body == source,
        f"GET {url} (the collected file, as the app serves it): {status}, "
        + ("the file's content" if body == source else f"not the file's content: {body[:200]!r}"),
    )


# --- At the end (after every other check) -------------------------------------------------------


def check_no_leaks(outcome: Outcome, instance: Instance, secrets: list[SecretValue]) -> None:
    """No secret value anywhere the boot writes or logs: the user data, boot.env, the boot log,
    the journal (every unit, every field), the container's console and the stand-ins' calls."""
    if not secrets:
        return
    box = instance.container
    journal = box.run(["journalctl", "--no-pager", "--output=export"], errors="replace").stdout
    calls = instance.log / "calls.jsonl"
    places = {
        f"the user data ({USER_DATA_PATH})": box.read(USER_DATA_PATH),
        f"boot.env ({rendering.BOOT_ENV_PATH})": box.read(rendering.BOOT_ENV_PATH),
        "the boot log (/var/log/cloud-init-output.log)": instance.output(),
        "the journal (every unit, every field: journalctl --output=export)": journal,
        "the container's console log": box.console_log.read_text(errors="replace"),
        "the stand-ins' calls log": calls.read_text() if calls.is_file() else "",
    }
    for place, text in places.items():
        leaked = [s.name for s in secrets if s.value in text]
        outcome.check(
            bool(text) and not leaked,
            f"no secret value in {place}, {len(text)} characters"
            + (f": it holds the value of {', '.join(leaked)}" if leaked else ""),
        )
