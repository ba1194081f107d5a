"""Background jobs: a Celery queue for delivery, a database row as the source of truth."""

from .queue import init_app

__all__ = ["init_app"]
