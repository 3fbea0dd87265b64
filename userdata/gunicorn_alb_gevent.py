"""Gunicorn's gevent worker for an instance behind an ALB, pinned: Gunicorn 27.0.1's gevent
worker already waits, on a stop, for every connection greenlet (idle kept-alive ones included,
each until its keep-alive or the peer's close) up to ``graceful_timeout``, and answers with
``Connection: close`` once stopping. Only the version check is added: any other version than
``EXPECTED`` (what the instances install) fails the import, naming both versions."""

import gevent
import gunicorn
from gunicorn.workers import ggevent

EXPECTED = {"gunicorn": "27.0.1", "gevent": "26.9.0"}
for _module in (gunicorn, gevent):
    _name = _module.__name__
    if _module.__version__ != EXPECTED[_name]:
        raise RuntimeError(
            f"gunicorn_alb_gevent.py was written for {_name} {EXPECTED[_name]}, but "
            f"{_name} {_module.__version__} is installed"
        )


class GeventWorker(ggevent.GeventWorker):
    pass
