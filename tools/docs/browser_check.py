"""Opens every page of the built docs site in headless Chromium and reports what a reader would
hit: console errors, uncaught exceptions, failed loads, and diagrams that did not render.

``python -m tools.docs.browser_check build/site`` (``make docs-check``; ``tests/docs/`` runs it
on the suite's build). The site is served on 127.0.0.1; Chromium (Debian's ``chromium``) runs
with a new empty profile and no network beyond loopback in use. It is driven over the DevTools
protocol (``websockets``).
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
_IMAGES = """JSON.stringify({
  images: [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete,
                                         width: i.naturalWidth})),
  title: document.title,
})"""


@dataclass
class PageReport:
    path: str
    title: str = ""
    errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def broken_images(self) -> list[str]:
        return [i["src"] for i in self.images if not i["complete"] or i["width"] == 0]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    return found


@contextmanager
def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Session:
    """One page target over the DevTools protocol."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.socket.recv(timeout=remaining)))

    def drain(self, quiet: float = 0.1) -> None:
        """Collects the events still arriving (late console messages)."""
        while True:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=quiet)))
            except TimeoutError:
                return


def _errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            errors.append("console: " + " ".join(str(a.get("value", a)) for a in args))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append("exception: " + str(details.get("exception", details)))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
    return errors


def _devtools_port(profile: Path, process: subprocess.Popen[bytes], timeout: float) -> int:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text().splitlines()[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


def check_site(site: Path, timeout: float = 60) -> list[PageReport]:
    """Every ``index.html``/``404.html`` page of ``site``, loaded in headless Chromium."""
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    reports = []
    # Chromium's helper processes may still write to the profile as the browser exits: a
    # clean-up that meets a directory not yet empty is no failure of the site.
    profile_dir = tempfile.TemporaryDirectory(prefix="docs-chromium-", ignore_cleanup_errors=True)
    with serve(site) as base, profile_dir as profile:
        process = subprocess.Popen(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _devtools_port(Path(profile), process, timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = json.load(answer)
            page_target = next(t for t in targets if t["type"] == "page")
            with connect(page_target["webSocketDebuggerUrl"], max_size=None) as socket:
                session = _Session(socket)
                for domain in ("Page", "Runtime", "Log"):
                    session.call(f"{domain}.enable")
                for path in pages:
                    session.events.clear()
                    session.call("Page.navigate", url=f"{base}/{path}")
                    session.wait_for("Page.loadEventFired", timeout)
                    session.drain()
                    found = session.call("Runtime.evaluate", expression=_IMAGES, returnByValue=True)
                    value = json.loads(found["result"]["value"])
                    report = PageReport(path, value["title"], _errors(session.events))
                    report.images = value["images"]
                    reports.append(report)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return reports


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "build/site")
    if not (site / "index.html").exists():
        print(f"{site}/index.html is missing: run make docs first", file=sys.stderr)
        return 2
    reports = check_site(site)
    failed = False
    for report in reports:
        problems = report.errors + [f"image not rendered: {src}" for src in report.broken_images]
        diagrams = sum(1 for i in report.images if str(i["src"]).endswith(".svg"))
        status = "FAIL" if problems else "ok"
        print(f"{status:4} {report.path}  ({len(report.images)} images, {diagrams} diagrams)")
        for problem in problems:
            print(f"     {problem}")
        failed = failed or bool(problems)
    print(f"{len(reports)} pages opened in headless Chromium" + (": problems" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    sys.exit(main(sys.argv[1:]))
