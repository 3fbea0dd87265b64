"""The boot check's stand-in for the EC2 instance metadata service (IMDSv2), for the termination
drain's watcher (``userdata/drain.sh``): a session token, then the instance id, the target
lifecycle state and the instance's tags (EC2 Auto Scaling user guide, "Retrieve the target
lifecycle state through instance metadata"; EC2 user guide, "Use IMDSv2" and "View tags for
your EC2 instances using instance metadata").

In the container it runs as its own unit (``python3 -I /bootcheck/src/imds.py``), recording each
request in the calls log as the other stand-ins do (``shims.py``); the runtime tests serve the
same answers on 127.0.0.1 (:func:`serve_imds`). Standard library only.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from gunicorn_alb.bootcheck import shims
except ImportError:  # in the container (python3 -I leaves the script's folder off the path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import shims  # type: ignore[no-redef,import-not-found]

IMDS_ADDRESS = "169.254.169.254"
"""Where the instance metadata service answers (EC2 user guide, "Access instance metadata")."""
IMDS_TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
IMDS_TOKEN_HEADER = "X-aws-ec2-metadata-token"


def imds_answer(
    method: str, path: str, headers: Any, tokens: set[str], items: dict[str, str]
) -> tuple[int, str]:
    """IMDSv2 as the drain watcher uses it: ``PUT /latest/api/token`` with a TTL of 1-21600 s
    gives a session token; ``GET /latest/meta-data/ITEM`` needs a valid one (401 without), and
    answers the item or 404 (an instance tag the metadata does not show, a state not generated
    yet). ``items`` maps item paths (``instance-id``, ``autoscaling/target-lifecycle-state``,
    ``tags/instance/KEY``) to values."""
    if path == "/latest/api/token":
        if method != "PUT":
            return 405, ""
        ttl = str(headers.get(IMDS_TOKEN_TTL_HEADER) or "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return 400, ""
        token = hashlib.sha256(f"{time.time()}-{len(tokens)}".encode()).hexdigest()
        tokens.add(token)
        return 200, token
    if method != "GET":
        return 405, ""
    if headers.get(IMDS_TOKEN_HEADER) not in tokens:
        return 401, ""
    prefix = "/latest/meta-data/"
    item = path[len(prefix) :] if path.startswith(prefix) else None
    if item is None or item not in items:
        return 404, ""
    return 200, items[item]


def serve_imds(
    host: str,
    port: int,
    items: Callable[[], dict[str, str]],
    log: Callable[[str, str, int], None] | None = None,
) -> ThreadingHTTPServer:
    """An IMDSv2 stand-in on HOST:PORT (:func:`imds_answer`; ``items`` is read at each request,
    ``log`` gets each request's method, path and status). Call ``serve_forever`` on it."""
    tokens: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = imds_answer(self.command, self.path, self.headers, tokens, items())
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if log is not None:
                log(self.command, self.path, status)

        do_GET = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main() -> int:
    """the instance metadata service on 0.0.0.0:80 in the container, run by its own
    unit; the boot check puts 169.254.169.254 on the container's loopback, so the drain watcher
    calls the address it calls on EC2. Answers from the config's ``imds`` (the instance id, and
    the tags when the launch template allows tags in the metadata); the target lifecycle state
    is read from ``state_file`` at each request (the boot check writes ``Terminated`` there),
    ``InService`` while there is none. Each request is recorded."""
    settings = shims.config()["imds"]
    state_file = Path(settings["state_file"])

    def items() -> dict[str, str]:
        state = state_file.read_text().strip() if state_file.is_file() else "InService"
        found = {
            "instance-id": settings["instance_id"],
            "autoscaling/target-lifecycle-state": state,
        }
        for key, value in (settings.get("tags") or {}).items():
            found[f"tags/instance/{key}"] = value
        return found

    server = serve_imds(
        "0.0.0.0",
        80,
        items,
        lambda method, path, status: shims.record("imds", [method, path], status),
    )
    shims.say("imds", f"answering on port 80 ({IMDS_ADDRESS} on the loopback)")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
