"""gunicorn settings for `gunicorn -c gunicorn.conf.py supervise.wsgi:app` (the container's command).

The settings live in supervise/gunicorn_conf.py, which ships inside the package so that
`supervise serve` finds them too (`-c python:supervise.gunicorn_conf`); see that file for the
environment variables.
"""

from supervise.gunicorn_conf import *  # noqa: F403
