"""Worker classes for an instance behind an ALB: a stopping worker never closes an idle
kept-alive connection first.

Gunicorn stops a worker on a reload (HUP), at ``max_requests``, and when the instance stops. The
worker stops accepting and finishes its requests; then each class closes its idle kept-alive
connections its own way, some at once (uvicorn) or after 2 s (gthread), while the ALB may be
sending a request on one: a 502. These subclasses keep them open until the peer closes them (the
ALB does, at its idle timeout, since keepalive > idle timeout) or ``graceful_timeout`` passes,
and answer a request that arrives on one meanwhile with ``Connection: close``.

Each was written against the exact versions in ``EXPECTED`` (the ones the instances install) and
refuses any other: the import raises, naming both versions, so Gunicorn fails at boot.
gunicorn.conf.py picks the class with ``worker_for``.
"""

import asyncio
import importlib

import gunicorn  # noqa: F401  (imported first: a missing Gunicorn fails here)

EXPECTED = {
    "gunicorn": "27.0.1",
    "gevent": "26.9.0",
    "uvicorn": "0.54.0",
    "uvicorn_worker": "0.4.0",
    "h11": "0.16.0",
}
CLASSES = {
    "gthread": "GthreadWorker",
    "gevent": "GeventWorker",
    "asgi": "AsgiWorker",
    "uvicorn_worker.UvicornWorker": "UvicornWorker",
}
NEEDS = {
    "gthread": ("gunicorn",),
    "gevent": ("gunicorn", "gevent"),
    "asgi": ("gunicorn",),
    "uvicorn_worker.UvicornWorker": ("gunicorn", "uvicorn", "uvicorn_worker", "h11"),
}
CLOSE = (b"connection", b"close")


def check_versions(names):
    """Raise unless every module in ``names`` runs the version these classes were written for."""
    for name in names:
        found = getattr(importlib.import_module(name), "__version__", None)
        if found != EXPECTED[name]:
            raise RuntimeError(
                f"gunicorn_alb_workers was written for {name} {EXPECTED[name]}, but {name} "
                f"{found} is installed: its stop may close kept-alive connections first (502s). "
                "Install the pinned version, or update gunicorn_alb_workers.py for this one."
            )


def worker_for(worker_class):
    """The dotted name of this module's class for ``worker_class``, after the version check."""
    check_versions(NEEDS[worker_class])
    return f"{__name__}.{CLASSES[worker_class]}"


check_versions(NEEDS["gthread"])
from gunicorn.workers import gthread  # noqa: E402

if not isinstance(getattr(gthread, "STOP_KEEPALIVE_LINGER", None), float):
    raise RuntimeError("gunicorn.workers.gthread.STOP_KEEPALIVE_LINGER is gone: see EXPECTED")


class GthreadWorker(gthread.ThreadWorker):
    """gthread caps a stopping worker's kept-alive connections at ``STOP_KEEPALIVE_LINGER``
    (2 s); here the cap is ``graceful_timeout``, so they last their keep-alive (> the ALB's idle
    timeout) and the ALB closes them first. The rest (stop accepting, finish requests,
    ``Connection: close`` on a request that arrives while stopping) is Gunicorn's own."""

    def init_process(self):
        # The worker process's own copy of the module (after the fork).
        gthread.STOP_KEEPALIVE_LINGER = float(self.cfg.graceful_timeout)
        super().init_process()


def _gevent_worker():
    """Gunicorn's gevent worker already waits, on a stop, for every connection greenlet (idle
    kept-alive ones included, each until its keep-alive or the peer's close) up to
    ``graceful_timeout``, and answers with ``Connection: close`` once stopping: only the
    version check is added."""
    check_versions(NEEDS["gevent"])
    from gunicorn.workers import ggevent

    return type("GeventWorker", (ggevent.GeventWorker,), {"__module__": __name__})


def _asgi_worker():
    from gunicorn.asgi import protocol
    from gunicorn.workers import gasgi

    class LingeringProtocol(protocol.ASGIProtocol):
        def _will_close(self, request, response_requires_close):
            return self.worker.stopping or super()._will_close(request, response_requires_close)

    class AsgiWorker(gasgi.ASGIWorker):
        """Gunicorn's asgi worker closes a connection as soon as a response ends once the worker
        stops, though that response announced keep-alive. Here a stop (SIGTERM, max_requests)
        first closes the listeners and marks every later response ``Connection: close``, and the
        worker stays alive until no connection is left or ``graceful_timeout`` passes; then
        Gunicorn's own shutdown runs."""

        stopping = False

        @property
        def alive(self):
            return self.__dict__.get("_alive", True)

        @alive.setter
        def alive(self, value):
            if value or self.stopping or self._quick_shutdown or self.loop is None:
                self.__dict__["_alive"] = value
                return
            self.stopping = True
            for server in self.servers:
                server.close()
            self.loop.create_task(self._linger())

        async def _linger(self):
            deadline = self.loop.time() + self.cfg.graceful_timeout
            while self.nr_conns > 0 and self.loop.time() < deadline and not self._quick_shutdown:
                await asyncio.sleep(0.1)
            self.__dict__["_alive"] = False

        def init_process(self):
            gasgi.ASGIProtocol = LingeringProtocol
            super().init_process()

    AsgiWorker.__module__ = __name__
    return AsgiWorker


def _uvicorn_worker():
    check_versions(NEEDS["uvicorn_worker.UvicornWorker"])
    import uvicorn_worker
    from uvicorn.server import Server

    class LingeringServer(Server):
        """uvicorn's shutdown closes idle connections at once. Here every response whose
        headers are not yet written says ``Connection: close`` (h11 then closes after it), and
        the connections left are waited for until the peer closes them or ``graceful_timeout``
        passes; then uvicorn's own shutdown runs."""

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

    UvicornWorker.__module__ = __name__
    return UvicornWorker


_BUILDERS = {
    "GeventWorker": _gevent_worker,
    "AsgiWorker": _asgi_worker,
    "UvicornWorker": _uvicorn_worker,
}


def __getattr__(name):
    """The gevent, asgi and uvicorn classes are built on first use: their packages are only on
    the instances that run them."""
    if name not in _BUILDERS:
        raise AttributeError(name)
    cls = _BUILDERS[name]()
    globals()[name] = cls
    return cls
