"""gunicorn entry point: `gunicorn supervise.wsgi:app`."""

from supervise.app import create_app

app = create_app()
