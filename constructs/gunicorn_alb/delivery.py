"""The user data, and the instance files shipped next to it. No CDK import.

EC2 limits user data to 16 KB, so the user data carries only what depends on the deployment: the
files with CloudFormation values (``boot.env``, the app's ``app.env``, ``secrets.list``, the
release step's ``pre-start.env``) and a short static fetch-and-run (``userdata/fetch-and-run.sh``).
Every other file an instance receives (the boot script, the units, ``gunicorn.conf.py``, the
coupling agent, logrotate's and the CloudWatch agent's files) travels in one gzip-compressed tar,
the ``InstanceFiles`` asset (:func:`instance_files_archive`), whose S3 URL (its key is the
content hash) is boot.env's ``INSTANCE_FILES_URL``: a change to any shipped file changes the user
data, so the rolling update replaces the instances.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from importlib import resources

from gunicorn_alb import app_config, rendering
from gunicorn_alb.rendering import (
    APP_ENV_PATH,
    BOOT_ENV_PATH,
    BOOT_SCRIPT_PATH,
    PRE_START_ENV_PATH,
    SECRETS_LIST_PATH,
    InstanceConfig,
)

USER_DATA_SHEBANG = "#!/bin/bash"
USER_DATA_LIMIT = 16 * 1024
"""EC2: "User data is limited to 16 KB, in raw form, before it is base64-encoded" (EC2 user
guide, "Work with instance user data")."""

USER_DATA_PATHS = (BOOT_ENV_PATH, APP_ENV_PATH, SECRETS_LIST_PATH, PRE_START_ENV_PATH)
"""The files the user data writes itself: the deploy-time values. Any other file holding a
CloudFormation token (none does today) is written by the user data too; the rest is shipped in
the InstanceFiles asset."""

INSTANCE_FILES_ID = "InstanceFiles"
"""The child id of the asset of the shipped files (public API: changing it replaces nothing, but
tools find the asset by it)."""
INSTANCE_FILES_NAME = "instance-files.tgz"

ENVIRONMENT_BUDGET = 10 * 1024
"""Bytes of the user data ``environment`` may always take (its ``app.env`` lines, each token
counted as :data:`TOKEN_SIZE_ESTIMATE`): what is left of EC2's 16 KB by the largest user data of
every other feature (live coupling, the log group, a ``pre_start_command`` of its maximum length,
:data:`BUDGET_SECRETS` secrets). A test holds this against :func:`render_user_data`."""
BUDGET_SECRETS = 5
"""How many secrets the environment budget leaves room for."""

_HEREDOC_END = app_config.HEREDOC_END
_TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}")
TOKEN_SIZE_ESTIMATE = 128
"""Bytes a deploy-time value is assumed to take (an ARN, a stack name: at most 128)."""


def user_data_size_estimate(user_data: str) -> int:
    """The user data's size in bytes once CloudFormation fills in its tokens, each counted as
    ``TOKEN_SIZE_ESTIMATE`` bytes."""
    return len(_TOKEN.sub("x" * TOKEN_SIZE_ESTIMATE, user_data).encode())


def without_comment_lines(text: str) -> str:
    """``text`` without its comment-only lines: for the ``KEY=VALUE`` and listing files the user
    data writes (no line of theirs but a comment starts with ``#``), so the user data keeps its
    room for the app's environment. The commented templates ship in the package."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines) + "\n"


_HEREDOC_START = re.compile(r"<<-?\s*'?(\w+)'?\s*$")


def strip_comments(script: str) -> str:
    """A bash script without its comment lines (the shebang and heredoc bodies kept as they
    are): what runs is unchanged. For the fetch-and-run the user data inlines."""
    lines, heredoc = [], None
    for number, line in enumerate(script.splitlines()):
        if heredoc is not None:
            lines.append(line)
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if number > 0 and line.lstrip().startswith("#"):
            continue
        lines.append(line)
        match = _HEREDOC_START.search(line)
        heredoc = match.group(1) if match else None
    return "\n".join(lines) + "\n"


def fetch_and_run() -> str:
    """The static end of the user data (``userdata/fetch-and-run.sh``), as shipped."""
    return (
        resources.files("gunicorn_alb.userdata")
        .joinpath("fetch-and-run.sh")
        .read_text(encoding="utf-8")
    )


def split_files(config: InstanceConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Every file an instance receives, as it receives it, by absolute path: those the user data
    writes (comment lines dropped), and those shipped in the InstanceFiles asset."""
    written, shipped = {}, {}
    for path, content in rendering.render_files(config).items():
        if path in USER_DATA_PATHS or "${Token[" in content:
            written[path] = without_comment_lines(content)
        else:
            shipped[path] = content
    return written, shipped


def instance_files(config: InstanceConfig) -> dict[str, str]:
    """Every file an instance receives, as it receives it (:func:`split_files`, merged)."""
    written, shipped = split_files(config)
    return {**written, **shipped}


def instance_files_archive(files: dict[str, str]) -> bytes:
    """The InstanceFiles asset: a gzip-compressed tar of ``files`` (deterministic: sorted, no
    timestamps, root-owned; scripts under /usr/local/sbin executable), unpacked over ``/``."""
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for path in sorted(files):
            data = files[path].encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o755 if path.startswith("/usr/local/sbin/") else 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def archive_files(archive: bytes) -> dict[str, str]:
    """The files of an InstanceFiles archive, by absolute path (the inverse of
    :func:`instance_files_archive`)."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            if extracted is not None:
                files["/" + member.name] = extracted.read().decode()
    return files


def render_user_data_body(config: InstanceConfig) -> str:
    """The user data after its shebang: writes the deploy-time files with quoted heredocs, then
    the fetch-and-run (:func:`fetch_and_run`: the InstanceFiles asset from boot.env's
    ``INSTANCE_FILES_URL``, unpacked over /, then the boot script). CDK's
    ``UserData.for_linux(shebang=USER_DATA_SHEBANG)`` adds the first line."""
    written, _ = split_files(config)
    lines = [
        "# User data written by the gunicorn-alb construct: the deploy-time files, then the",
        f"# instance files (INSTANCE_FILES_URL) and {BOOT_SCRIPT_PATH}.",
        "set -euo pipefail",
        "umask 022",
    ]
    for path, content in written.items():
        if _HEREDOC_END in content:
            raise ValueError(f"{path} contains the heredoc delimiter {_HEREDOC_END}")
        lines += [
            f"mkdir -p {path.rsplit('/', 1)[0]}",
            f"cat > {path} <<'{_HEREDOC_END}'",
            content.rstrip("\n"),
            _HEREDOC_END,
        ]
    lines.append(strip_comments(fetch_and_run()).split("\n", 1)[1].rstrip("\n"))
    return "\n".join(lines)


def render_user_data(config: InstanceConfig) -> str:
    """The whole user data, exactly as the launch template carries it."""
    return f"{USER_DATA_SHEBANG}\n{render_user_data_body(config)}"


def written_file(user_data: str, path: str, archive: bytes | None = None) -> str | None:
    """What an instance receives at ``path`` (without the final newline): the heredoc of the user
    data (the inverse of :func:`render_user_data_body`), else the file in ``archive`` (the
    InstanceFiles asset, when given); None when neither has it."""
    match = re.search(
        rf"^cat > {re.escape(path)} <<'(\w+)'\n(.*?)\n\1$", user_data, re.MULTILINE | re.DOTALL
    )
    if match:
        return match.group(2)
    if archive is None:
        return None
    content = archive_files(archive).get(path)
    return None if content is None else content.rstrip("\n")


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of boot.env or coupling.env; comments skipped, quotes dropped."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
            env[key] = value[1:-1] if quoted else value
    return env


def environment_size(config: InstanceConfig) -> int:
    """The bytes ``environment`` takes in the user data (its app.env lines, tokens estimated)."""
    lines = [app_config.env_assignment(name, value) for name, value in config.environment]
    return user_data_size_estimate("".join(line + "\n" for line in lines))


def check_size(config: InstanceConfig, user_data: str) -> list[str]:
    """The problem when ``user_data`` (with tokens estimated) is over EC2's limit, naming what
    takes the room and the environment's budget; empty when it fits."""
    size = user_data_size_estimate(user_data)
    if size <= USER_DATA_LIMIT:
        return []
    return [
        f"the user data would be about {size} bytes, over EC2's limit of {USER_DATA_LIMIT}: "
        f"environment takes about {environment_size(config)} bytes of it (its budget is "
        f"{ENVIRONMENT_BUDGET} bytes, with every other feature), secrets "
        f"{len(config.secrets)} line(s), pre_start_command {len(config.pre_start_command)} "
        "characters: shorten environment or pre_start_command, or read large values at boot "
        "(secrets, or a file in the app)"
    ]
