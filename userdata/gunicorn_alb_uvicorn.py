"""uvicorn-worker's UvicornWorker for an instance behind an ALB: a stopping worker (a reload,
``max_requests``, the instance's stop) never closes an idle kept-alive connection first.

uvicorn 0.54.0's shutdown closes idle connections at once, while the ALB may be sending a request
on one (a 502), and ends a busy one right after its response without saying so. Here every
response whose headers are not yet written says ``Connection: close`` (h11 then closes after
it), and the connections left are waited for until the peer closes them or ``graceful_timeout``
passes (the arbiter notified meanwhile); then uvicorn's own shutdown runs.

Written against the versions in ``EXPECTED`` (the ones the instances install): any other fails
the import, naming both versions, so Gunicorn fails at boot. gunicorn.conf.py names this class.
"""

import asyncio

import gunicorn
import h11
import uvicorn
import uvicorn_worker
from uvicorn.server import Server

EXPECTED = {"gunicorn": "27.0.1", "uvicorn": "0.54.0", "uvicorn_worker": "0.4.0", "h11": "0.16.0"}
for _module in (gunicorn, uvicorn, uvicorn_worker, h11):
    _name = _module.__name__
    if _module.__version__ != EXPECTED[_name]:
        raise RuntimeError(
            f"gunicorn_alb_uvicorn.py was written for {_name} {EXPECTED[_name]}, but "
            f"{_name} {_module.__version__} is installed"
        )
CLOSE = (b"connection", b"close")


class LingeringServer(Server):
    graceful_timeout = 30.0

    async def shutdown(self, sockets=None):
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        state.default_headers = [*state.default_headers, CLOSE]
        for connection in list(state.connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_started:
                cycle.default_headers = [*cycle.default_headers, CLOSE]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.graceful_timeout
        beat = 0.0
        while state.connections and loop.time() < deadline and not self.force_exit:
            if loop.time() >= beat:
                beat = loop.time() + 1.0
                await self.config.callback_notify()
            await asyncio.sleep(0.1)
        await super().shutdown()


class UvicornWorker(uvicorn_worker.UvicornWorker):
    async def _serve(self):
        self.config.app = self.wsgi
        server = LingeringServer(config=self.config)
        server.graceful_timeout = float(self.cfg.graceful_timeout)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            raise SystemExit(3)  # Arbiter.WORKER_BOOT_ERROR
