"""Load a gunicorn.conf.py through Gunicorn's own configuration object and print the settings.

Runs inside the boot check's sandbox with the instance's virtualenv (the Gunicorn the boot script
installed), after the boot:

    /opt/gunicorn-alb/venv/bin/python -I config_probe.py CONF_FILE ENV_FILE

The environment comes from ENV_FILE (the boot script's coupling.env), as the systemd unit's
EnvironmentFile= gives it to Gunicorn. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from gunicorn import __version__ as gunicorn_version  # type: ignore[import-untyped]
from gunicorn.app.base import Application  # type: ignore[import-untyped]


class _ConfigOnly(Application):  # type: ignore[misc]
    """A Gunicorn application that only loads its configuration file (no app, no server)."""

    def __init__(self, conf_file: str) -> None:
        self._conf_file = conf_file
        super().__init__(usage="config probe", prog="gunicorn")

    def init(self, parser: Any, opts: Any, args: Any) -> None:
        return None

    def load_config(self) -> None:
        # The same call `gunicorn --config FILE` makes, then Config.validate() in do_load_config.
        self.load_config_from_file(self._conf_file)

    def load(self) -> None:
        raise RuntimeError("the config probe loads no app")


def read_env_file(path: str) -> dict[str, str]:
    env = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = value
    return env


def main() -> None:
    conf_file, env_file = sys.argv[1:3]
    os.environ.update(read_env_file(env_file))
    cfg = _ConfigOnly(conf_file).cfg
    print(
        json.dumps(
            {
                "gunicorn_version": gunicorn_version,
                "keepalive": cfg.keepalive,
                "worker_class": cfg.worker_class_str,
                "threads": cfg.threads,
                "workers": cfg.workers,
                "graceful_timeout": cfg.graceful_timeout,
                "bind": cfg.bind,
            }
        )
    )


if __name__ == "__main__":
    main()
