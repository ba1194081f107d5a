"""Entry point for `celery -A storyhub.worker:celery worker`."""

from . import create_app

app = create_app()
celery = app.extensions["celery"]
