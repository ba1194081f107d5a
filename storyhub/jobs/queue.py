"""The Celery application that delivers job ids to workers; the job row decides the rest.

Embedded default: kombu's filesystem transport in the instance folder, so no server is needed.
Scale-out: set STORYHUB_BROKER_URL (e.g. redis://host:6379/0) and start more workers.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from celery import Celery, Task, shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutting_down
from flask import Flask

from ..config import settings
from ..extensions import db
from ..storage import private_folder
from .runner import TASK, reap, request_stop, run_job, schedule_periodic, stopping

logger = logging.getLogger(__name__)
QUEUES = ("default", "transcribe", "analysis")


def broker_settings(app: Flask) -> dict:
    """Return Celery broker settings for this app's configuration."""
    url = settings(app).broker_url
    if url:
        return {"broker_url": url}
    folder = os.path.join(app.instance_path, "broker")
    for sub in ("", "queue", "processed", "control"):
        private_folder(os.path.join(folder, sub))
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
            # How often an idle worker looks in the folder: a new job starts within a fifth
            # of a second, and a stopping worker notices within one look.
            "polling_interval": 0.2,
        },
    }


@shared_task(name=TASK, acks_late=True, ignore_result=True)
def run(job_id: int) -> str:
    """Run job `job_id` with the handler registered for its kind."""
    return run_job(job_id)


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
        worker_hijack_root_logger=True,
    )
    celery.set_default()
    app.extensions["celery"] = celery

    @worker_process_init.connect(weak=False)
    def _own_connections(**_kwargs):
        # A pool process forked from the worker must not use its parent's pooled database
        # connections (the schema check's, the reaper's): two processes on one PostgreSQL
        # socket break each other's queries. Forget them without closing the parent's.
        with app.app_context():
            db.engine.dispose(close=False)

    @worker_ready.connect(weak=False)
    def _start_reaper(**_kwargs):
        start_reaper(app, threading.Event())

    @worker_shutting_down.connect(weak=False)
    def _stop_work(**_kwargs):
        # A warm shutdown would wait for the job in hand, maybe for many minutes: the job is
        # handed back at its next progress report instead, for the next worker to start again.
        request_stop()
        if settings(app).embedded_worker:
            _leave_now_if_idle()

    return celery


def _leave_now_if_idle() -> None:
    """Stop `storyhub run`'s own worker at once when it holds no job.

    Celery's warm shutdown of an idle worker still finishes its broker poll and its timer's
    tick, seconds in which Ctrl-C seems not to work. With no job in hand or reserved there is
    nothing to hand back (a job fetched in that instant stays queued in the database and is
    sent again). Only the embedded worker (solo pool, no child processes) does this; workers
    started with `celery worker` keep Celery's own shutdown.
    """
    from celery.worker import state

    if state.active_requests or state.reserved_requests:
        return
    logger.info("No job in hand: the worker stops now")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def start_reaper(app: Flask, stop: threading.Event) -> threading.Thread:
    """Run the reaper every JOB_REAP_SECONDS in a daemon thread until `stop` is set."""
    def loop() -> None:
        interval = settings(app).job_reap_seconds
        with app.app_context():
            reap_once(reap)
            while not stop.wait(interval) and not stopping():
                reap_once(reap)

    def reap_once(reap) -> None:
        try:
            reap()
            schedule_periodic()
        except Exception:  # keep reaping whatever one round hit
            db.session.rollback()
            logger.exception("Reaper round failed")
        finally:
            db.session.remove()

    thread = threading.Thread(target=loop, name="storyhub-reaper", daemon=True)
    thread.start()
    return thread
