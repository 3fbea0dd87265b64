"""Gunicorn's asgi worker for an instance behind an ALB: a stopping worker (a reload,
``max_requests``, the instance's stop) never closes an idle kept-alive connection first.

Gunicorn 27.0.1's asgi worker closes a connection as soon as a response ends once the worker is
stopping, though that response announced keep-alive, while the ALB may be sending a request on
it (a 502). Here a stop (SIGTERM, ``max_requests``) first closes the listeners and marks every
later response ``Connection: close``, and the worker stays alive until no connection is left or
``graceful_timeout`` passes; then Gunicorn's own shutdown runs.

Written against the version in ``EXPECTED`` (the one the instances install): any other fails the
import, naming both versions, so Gunicorn fails at boot. gunicorn.conf.py names this class.
"""

import asyncio

import gunicorn
from gunicorn.asgi import protocol
from gunicorn.workers import gasgi

EXPECTED = {"gunicorn": "27.0.1"}
if gunicorn.__version__ != EXPECTED["gunicorn"]:
    raise RuntimeError(
        f"gunicorn_alb_asgi.py was written for gunicorn {EXPECTED['gunicorn']}, but "
        f"gunicorn {gunicorn.__version__} is installed"
    )


class LingeringProtocol(protocol.ASGIProtocol):
    def _will_close(self, request, response_requires_close):
        return self.worker.stopping or super()._will_close(request, response_requires_close)


class AsgiWorker(gasgi.ASGIWorker):
    stopping = False

    @property
    def alive(self):
        return self.__dict__.get("_alive", True)

    @alive.setter
    def alive(self, value):
        # SIGTERM and max_requests set alive = False: begin the linger instead. A quick
        # shutdown (SIGQUIT, SIGINT) and the end of the linger set it for real.
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
        # The worker process's own copy of the module (after the fork).
        gasgi.ASGIProtocol = LingeringProtocol
        super().init_process()
