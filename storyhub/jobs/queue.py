"""The Celery application: background jobs run inside a Flask app context.

Embedded default: kombu's filesystem transport in the instance folder, so no server is needed.
Scale-out: set STORYHUB_BROKER_URL (e.g. redis://host:6379/0) and start more workers.
"""

from __future__ import annotations

import os
import threading

from celery import Celery, Task
from celery.signals import worker_process_init, worker_ready
from flask import Flask

QUEUES = ("default", "transcribe", "analysis")


def broker_settings(app: Flask) -> dict:
    """Return Celery broker settings for this app's configuration."""
    url = app.config.get("BROKER_URL")
    if url:
        return {"broker_url": url}
    folder = os.path.join(app.instance_path, "broker")
    for sub in ("queue", "processed", "control"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    queue = os.path.join(folder, "queue")
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": queue,
            "data_folder_out": queue,
            "processed_folder": os.path.join(folder, "processed"),
            # Exchange bindings; kombu would otherwise write them under the current directory.
            "control_folder": os.path.join(folder, "control"),
            "store_processed": False,
        },
    }


def init_app(app: Flask) -> Celery:
    """Create the Celery app bound to `app` and store it in `app.extensions['celery']`."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_settings(app),
        task_ignore_result=True,
        # A job is acknowledged only when it finishes, so a crashed worker does not lose it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_create_missing_queues=True,
    )
    celery.set_default()
    app.extensions["celery"] = celery

    from . import service

    service.init_app(app)
    # Task modules register their tasks on this Celery app.
    from ..themes import tasks as _theme_tasks  # noqa: F401
    from ..transcripts import tasks as _transcribe_tasks  # noqa: F401

    @worker_ready.connect(weak=False)
    def _start_reaper(**_kwargs):
        service.start_reaper(app, threading.Event())

    @worker_process_init.connect(weak=False)
    def _warm_up_themes(**_kwargs):
        _theme_tasks.start_warm_up(app)

    return celery
