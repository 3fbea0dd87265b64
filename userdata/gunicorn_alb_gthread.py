"""Gunicorn's gthread worker for an instance behind an ALB: a stopping worker (a reload,
``max_requests``, the instance's stop) never closes an idle kept-alive connection first.

Gunicorn 27.0.1 caps a stopping gthread worker's kept-alive connections at
``STOP_KEEPALIVE_LINGER`` (2 s), so it closes them while the ALB may be sending a request on one
(a 502). Here the cap is ``graceful_timeout`` (the keep-alive, rule graceful-outlasts-idle): the
connections last their keep-alive, longer than the ALB's idle timeout, so the ALB closes them
first. The rest is Gunicorn's own: the worker stops accepting, finishes its requests and answers
a request that arrives on a kept-alive connection meanwhile with ``Connection: close``.

Written against the version in ``EXPECTED`` (the one the instances install): any other fails the
import, naming both versions, so Gunicorn fails at boot. gunicorn.conf.py names this class.
"""

import gunicorn
from gunicorn.workers import gthread

EXPECTED = {"gunicorn": "27.0.1"}
if gunicorn.__version__ != EXPECTED["gunicorn"] or not hasattr(gthread, "STOP_KEEPALIVE_LINGER"):
    raise RuntimeError(
        f"gunicorn_alb_gthread.py was written for gunicorn {EXPECTED['gunicorn']}, but "
        f"gunicorn {gunicorn.__version__} is installed"
    )


class GthreadWorker(gthread.ThreadWorker):
    def init_process(self):
        # The worker process's own copy of the module (after the fork).
        gthread.STOP_KEEPALIVE_LINGER = float(self.cfg.graceful_timeout)
        super().init_process()
