"""``python -m gunicorn_alb.doctor`` is ``gunicorn-alb-doctor``."""

import sys

from gunicorn_alb.doctor.cli import main

sys.exit(main())
