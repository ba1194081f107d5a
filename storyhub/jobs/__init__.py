"""Background jobs: a database row as the source of truth, Celery for delivery."""

from __future__ import annotations

from flask import Flask

from . import queue, runner


def init_app(app: Flask) -> None:
    runner.init_app(app)
    queue.init_app(app)
