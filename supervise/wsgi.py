"""gunicorn entry point: `gunicorn supervise.wsgi:app`."""

import gc

from supervise.app import create_app

app = create_app()
# What the app holds at start-up lives as long as the process: keep it out of the collector's
# full passes, which otherwise cost ~100 ms a request every few hundred (bench/README.md).
gc.collect()
gc.freeze()
