"""Background jobs: a database row as the source of truth, Celery for delivery."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from . import queue, runner

    runner.init_app(app)
    queue.init_app(app)
