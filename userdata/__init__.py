"""Files an instance receives: the static boot script and the templated config files.

Shipped inside the distribution as ``gunicorn_alb.userdata`` and read with ``importlib.resources``.
"""
