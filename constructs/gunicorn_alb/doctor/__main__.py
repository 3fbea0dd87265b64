"""``python -m gunicorn_alb.doctor`` is ``gunicorn-alb-doctor``."""

import sys

from gunicorn_alb.doctor import main  # says how to install boto3 when it is missing

sys.exit(main())
