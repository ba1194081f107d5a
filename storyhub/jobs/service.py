"""Job verbs: enqueue, claim with a lease, heartbeat, finish, fail, and reap lost jobs.

The broker only delivers a job id. Whether a job should run, and who runs it, is decided by an
atomic update of its row, so a message delivered twice, or re-sent by the reaper after a worker
died, runs the work once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import or_, select, update

from ..database import utcnow
from ..extensions import db
from .models import Job, JobKind, JobStatus

logger = logging.getLogger(__name__)
_AFTER_COMMIT = "storyhub_publish_jobs"
QUEUE_FOR = {JobKind.TRANSCRIBE: "transcribe", JobKind.ANALYSIS: "analysis"}
TASK_FOR = {JobKind.TRANSCRIBE: "storyhub.transcribe", JobKind.ANALYSIS: "storyhub.analyse"}


class JobGone(Exception):
    """This worker no longer holds the job (its lease ran out and another took it)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(kind: JobKind, story_id: int | None, target_id: int | None,
            max_attempts: int | None = None) -> Job:
    """Add a queued job; it is sent to the broker once the transaction commits."""
    job = Job(kind=kind, story_id=story_id, target_id=target_id, status=JobStatus.QUEUED,
              max_attempts=max_attempts or int(current_app.config["JOB_MAX_ATTEMPTS"]))
    db.session.add(job)
    db.session.flush()
    db.session.info.setdefault(_AFTER_COMMIT, []).append((job.id, kind))
    return job


def publish(job_id: int, kind: JobKind) -> bool:
    """Send the job id to the broker; return False (and leave it to the reaper) if it is down."""
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(TASK_FOR[kind], args=[job_id], queue=QUEUE_FOR[kind],
                         retry=False)
    except Exception as exc:  # noqa: BLE001  (any broker failure: the row keeps the job)
        logger.warning("Job %s not sent, broker unavailable (%s); it will be sent when the "
                       "broker is back", job_id, type(exc).__name__)
        return False
    # Its own short transaction: this may run just after the session's commit.
    with db.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(sent_at=utcnow()))
    return True


def _publish_after_commit(session) -> None:
    # Only now can a worker see the row, so only now is the job sent.
    for job_id, kind in session.info.pop(_AFTER_COMMIT, None) or ():
        publish(job_id, kind)


def _drop_after_rollback(session, *_args) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def claim(job_id: int, worker: str) -> bool:
    """Take the job if it is queued, or running on an expired lease; return whether we got it."""
    now = utcnow()
    lease = timedelta(seconds=float(current_app.config["JOB_LEASE_SECONDS"]))
    result = db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts < Job.max_attempts,
               or_(Job.status == JobStatus.QUEUED,
                   (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now)))
        .values(status=JobStatus.RUNNING, worker=worker, attempts=Job.attempts + 1,
                lease_expires_at=now + lease, started_at=now, error=None, progress=0.0)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def heartbeat(job_id: int, worker: str, progress: float | None = None) -> None:
    """Extend this worker's lease and record progress (which only ever goes up)."""
    lease = timedelta(seconds=float(current_app.config["JOB_LEASE_SECONDS"]))
    values: dict = {"lease_expires_at": utcnow() + lease}
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or job.status is not JobStatus.RUNNING or job.worker != worker:
        db.session.rollback()
        raise JobGone(job_id)
    if progress is not None:
        values["progress"] = max(job.progress, min(round(progress, 1), 99.9))
    db.session.execute(update(Job).where(Job.id == job_id, Job.worker == worker)
                       .values(**values))
    db.session.commit()


def mark_done(job_id: int, worker: str) -> None:
    """Mark the job done in the caller's transaction, only if this worker still holds it.

    Raises JobGone otherwise, so the caller rolls back and a job's results are written once.
    """
    held = db.session.execute(
        update(Job).where(Job.id == job_id, Job.worker == worker,
                          Job.status == JobStatus.RUNNING)
        .values(status=JobStatus.DONE, progress=100.0, finished_at=utcnow(),
                lease_expires_at=None, error=None)
        .execution_options(synchronize_session=False))
    if held.rowcount != 1:  # type: ignore[attr-defined]
        raise JobGone(job_id)


def fail(job_id: int, worker: str, message: str, retry: bool) -> Job | None:
    """Record a failed attempt: queue it again while attempts remain, else fail it for good."""
    db.session.rollback()
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or job.worker != worker or job.status is not JobStatus.RUNNING:
        return job
    job.error = message
    job.lease_expires_at = None
    if retry and job.attempts < job.max_attempts:
        job.status = JobStatus.QUEUED
        db.session.info.setdefault(_AFTER_COMMIT, []).append((job.id, job.kind))
    else:
        job.status = JobStatus.FAILED
        job.finished_at = utcnow()
    return job


def retry(job: Job) -> None:
    """Give a failed job a fresh set of attempts."""
    job.status = JobStatus.QUEUED
    job.attempts = 0
    job.error = None
    job.progress = 0.0
    job.finished_at = None
    db.session.info.setdefault(_AFTER_COMMIT, []).append((job.id, job.kind))


def reap() -> int:
    """Re-send jobs whose worker died (lease expired) or whose message never reached the broker.

    Returns how many jobs were sent again.
    """
    now = utcnow()
    resend_after = timedelta(seconds=float(current_app.config["JOB_RESEND_SECONDS"]))
    expired = db.session.scalars(select(Job).where(
        Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)).all()
    for job in expired:
        # Conditional: the worker may finish the job between our read and this write.
        still_lost = (Job.id == job.id) & (Job.status == JobStatus.RUNNING) & (
            Job.lease_expires_at < now) & (Job.worker == job.worker)
        if job.attempts >= job.max_attempts:
            values = {"status": JobStatus.FAILED, "finished_at": now,
                      "error": "The worker stopped while working on this story, too many "
                               "times. Press Retry to try again."}
        else:
            values = {"status": JobStatus.QUEUED, "sent_at": None}
        changed = db.session.execute(update(Job).where(still_lost).values(**values)
                                     .execution_options(synchronize_session=False))
        if changed.rowcount:  # type: ignore[attr-defined]
            logger.warning("Job %s lost its worker %s; %s", job.id, job.worker,
                           "queueing it again" if values["status"] is JobStatus.QUEUED
                           else "giving up")
    db.session.commit()
    unsent = db.session.execute(select(Job.id, Job.kind).where(
        Job.status == JobStatus.QUEUED,
        or_(Job.sent_at.is_(None), Job.sent_at < now - resend_after))).all()
    db.session.commit()
    return sum(publish(job_id, kind) for job_id, kind in unsent)


def start_reaper(app: Flask, stop: threading.Event) -> threading.Thread:
    """Run `reap` every JOB_REAP_SECONDS in a daemon thread until `stop` is set."""

    def loop() -> None:
        interval = float(app.config["JOB_REAP_SECONDS"])
        while not stop.wait(interval):
            try:
                with app.app_context():
                    reap()
            except Exception:  # keep reaping whatever one round hit
                logger.exception("Reaper round failed")

    thread = threading.Thread(target=loop, name="storyhub-reaper", daemon=True)
    thread.start()
    return thread


def run_with_heartbeat(app: Flask, job_id: int, worker: str,
                       work: Callable[[Callable[[float], None]], None]) -> None:
    """Run `work(report_progress)` while a thread keeps this worker's lease alive."""
    latest: dict[str, float | None] = {"progress": None}
    stop = threading.Event()
    lost = threading.Event()

    def beat() -> None:
        interval = float(app.config["JOB_HEARTBEAT_SECONDS"])
        with app.app_context():
            while not stop.wait(interval):
                try:
                    heartbeat(job_id, worker, latest["progress"])
                except JobGone:
                    lost.set()
                    return
                except Exception:
                    logger.exception("Heartbeat for job %s failed", job_id)
            db.session.remove()

    def report(progress: float) -> None:
        if lost.is_set():
            raise JobGone(job_id)
        latest["progress"] = progress

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        work(report)
    finally:
        stop.set()
        thread.join(timeout=10)


def init_app(app: Flask) -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "after_commit", _publish_after_commit):
        event.listen(Session, "after_commit", _publish_after_commit)
        event.listen(Session, "after_soft_rollback", _drop_after_rollback)
