"""What a reload costs in memory now that stopping workers linger: the workers' memory while
Gunicorn reloads (SIGHUP) with idle kept-alive connections open on every old worker.

Usage (from the repository root)::

    .venv/bin/python tools/proof/reload_memory.py

Gunicorn runs the rendered gunicorn.conf.py (workers = 2 x CPUs + 1, gthread, the
gunicorn_alb_gthread subclass) with the sample app (gunicorn_alb/sample_app), idle timeout 10 s and
keep-alive 15 s. Connections are opened and left idle after one request each (what the ALB's
pool does), then the master gets SIGHUP: new workers start at once, and the old ones keep the
idle connections until the peer closes them or the graceful timeout (15 s) passes. The memory
of the master and its workers is sampled every 100 ms: the sum of their PSS (proportional set
size: shared pages split between the processes sharing them, so the sum is what the machine
holds) and of their RSS.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tools import instance_files  # noqa: E402
from tools.proof import proof  # noqa: E402

IDLE, MARGIN = 10, 5
CONNECTIONS = 40


def kib(pid: int, path: str, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def workers(master: int) -> set[int]:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
        return {int(pid) for pid in text.split()}
    return set()


def memory(master: int) -> tuple[int, int, int]:
    """(workers, PSS sum KiB, RSS sum KiB) of the master and its workers."""
    pids = workers(master) | {master}
    pss = sum(kib(pid, "smaps_rollup", "Pss:") for pid in pids)
    rss = sum(kib(pid, "status", "VmRSS:") for pid in pids)
    return len(pids), pss, rss


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="reload-memory-") as tmp:
        rendered = Path(tmp) / "rendered"
        instance_files.render(rendered, IDLE, MARGIN)
        coupling = instance_files.boot_environment(rendered, Path(tmp) / "root")
        port = proof.free_port()
        env = {**os.environ, **coupling, "HEALTH_CHECK_PATH": proof.HEALTH_PATH}
        log = Path(tmp) / "gunicorn.log"
        with log.open("wb") as out:
            master = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", str(rendered / "gunicorn.conf.py"),
                 "--chdir", str(proof.SAMPLE_APP), "--bind", f"{proof.LOOPBACK}:{port}",
                 proof.WSGI_APP],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        conns: list[http.client.HTTPConnection] = []
        try:
            proof.wait_ready(master, port, proof.HEALTH_PATH, log, "Gunicorn")
            time.sleep(2.0)  # every worker booted
            for _ in range(CONNECTIONS):
                conn = http.client.HTTPConnection(proof.LOOPBACK, port, timeout=10)
                conn.request("GET", "/")
                conn.getresponse().read()
                conns.append(conn)
            before = memory(master.pid)
            old = workers(master.pid)
            master.send_signal(signal.SIGHUP)
            hup = time.monotonic()
            peak = before
            lingered = 0.0
            while time.monotonic() - hup < IDLE + MARGIN + 5:
                now = memory(master.pid)
                if now[1] > peak[1]:
                    peak = now
                if workers(master.pid) & old:
                    lingered = time.monotonic() - hup
                time.sleep(0.1)
            after = memory(master.pid)
        finally:
            for conn in conns:
                conn.close()
            proof.stop_all([master])
    print(
        f"reload with {CONNECTIONS} idle kept-alive connections, idle timeout {IDLE} s, "
        f"keep-alive and graceful timeout {IDLE + MARGIN} s:\n"
        f"  before: {before[0] - 1} workers, PSS {before[1] / 1024:.1f} MiB, "
        f"RSS {before[2] / 1024:.1f} MiB\n"
        f"  peak:   {peak[0] - 1} workers, PSS {peak[1] / 1024:.1f} MiB, "
        f"RSS {peak[2] / 1024:.1f} MiB (x{peak[1] / before[1]:.2f} PSS)\n"
        f"  after:  {after[0] - 1} workers, PSS {after[1] / 1024:.1f} MiB; old workers lingered "
        f"{lingered:.1f} s"
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
