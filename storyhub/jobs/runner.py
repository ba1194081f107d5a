"""The one job runner: enqueue, claim with a fenced lease, heartbeat, finish, fail, retry, reap.

Features register a handler for each kind of job (`register`) and never touch a job row
themselves. The broker only delivers a job id; whether a job runs, and who runs it, is decided
by an atomic update of its row. Every later write of the worker that claimed it carries the
claim's number (`claims`), so once the reaper has taken a job back from a silent worker, that
worker can no longer heartbeat, finish, fail or publish anything for it. Leases are measured by
the database's clock, so hosts whose clocks disagree cannot steal each other's live jobs.

A handler (handler.py's `JobHandler`, which says what each step is for) prepares in a short
transaction, works with none open, and publishes in the transaction that marks the job done.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blinker import Namespace
from flask import Flask, current_app
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from ..config import settings
from ..extensions import db
from .clock import clock
from .handler import AnyHandler, Report
from .models import ACTIVE, Job, JobStatus

logger = logging.getLogger(__name__)
_AFTER_COMMIT = "storyhub_publish_jobs"
#: The Celery task that runs a job (queue.py's `run`): the broker carries only its id.
TASK = "storyhub.job"

_signals = Namespace()
#: Sent after a job's new state is committed: sender is the job's kind; job_id, status.
job_changed = _signals.signal("job-changed")
#: Sent after a heartbeat renewed a lease and wrote progress: sender is the kind; job_id.
job_heartbeat = _signals.signal("job-heartbeat")


class JobGone(Exception):
    """This worker no longer holds the job (its lease ran out and it was taken back)."""


class JobRefused(Exception):
    """The job must not run (e.g. consent was withdrawn); fail it now, with this message."""


class NothingToDo(Exception):
    """The work is already done (e.g. a duplicate job): finish the job without running it."""


class WorkerStopping(Exception):
    """This worker is shutting down: hand the job back rather than finish it."""


_stopping = threading.Event()


def request_stop() -> None:
    """Make running work stop at its next progress report and hand its job back."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


class JobConflict(Exception):
    """A job with the same key is already queued or running."""

    def __init__(self, message: str, job: Job):
        super().__init__(message)
        self.job = job


_handlers: dict[str, AnyHandler] = {}


def register(handler: AnyHandler) -> None:
    """Run jobs of `handler.kind` with `handler` (features call this as they are imported)."""
    _handlers[handler.kind] = handler


_periodic: dict[str, Callable[[], str]] = {}


def register_periodic(kind: str, key_now: Callable[[], str]) -> None:
    """Queue a job of `kind` whenever `key_now()` gives a key no job has had (e.g. per day)."""
    _periodic[kind] = key_now


def schedule_periodic() -> int:
    """Queue the periodic jobs that are due (the reaper's loop calls this); return how many."""
    queued = 0
    for kind, key_now in _periodic.items():
        key = key_now()
        if db.session.scalar(select(Job.id).where(Job.key == key).limit(1)) is None:
            try:
                enqueue(kind, key=key)
                db.session.commit()
                queued += 1
            except (JobConflict, IntegrityError):  # another reaper queued it first
                db.session.rollback()
    return queued


def handler_for(kind: str) -> AnyHandler:
    return _handlers[kind]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_seconds() -> float:
    return settings().job_lease_seconds


def _after_commit(job: Job) -> None:
    db.session.info.setdefault(_AFTER_COMMIT, []).append((job.id, job.kind))


# --- the verbs features call, in their own transaction ------------------------------------


def active_job(key: str) -> Job | None:
    return db.session.scalar(select(Job).where(Job.key == key, Job.status.in_(ACTIVE)))


def latest_job(kind: str, story_id: int | None = None, target_id: int | None = None,
               ) -> Job | None:
    query = select(Job).where(Job.kind == kind)
    if story_id is not None:
        query = query.where(Job.story_id == story_id)
    if target_id is not None:
        query = query.where(Job.target_id == target_id)
    return db.session.scalar(query.order_by(Job.id.desc()).limit(1))


def enqueue(kind: str, *, key: str | None = None, story_id: int | None = None,
            target_id: int | None = None, max_attempts: int | None = None,
            params: dict | None = None) -> Job:
    """Add a queued job; it is sent to the broker once the transaction commits.

    Raises JobConflict if a job with the same key is queued or running. (Two requests racing
    past this check collide on the database's unique index, as an IntegrityError at flush.)
    """
    if kind not in _handlers:
        raise ValueError(f"no handler registered for jobs of kind {kind!r}")
    if key is not None and (existing := active_job(key)) is not None:
        raise JobConflict("This is already queued or running.", existing)
    job = Job(kind=kind, key=key, story_id=story_id, target_id=target_id,
              params=params or {}, status=JobStatus.QUEUED,
              max_attempts=max_attempts or settings().job_max_attempts)
    db.session.add(job)
    db.session.flush()
    _after_commit(job)
    return job


def retry(job: Job) -> None:
    """Give a failed job a fresh set of attempts."""
    if job.status is not JobStatus.FAILED:
        return
    if job.key is not None and (active := active_job(job.key)) is not None:
        raise JobConflict("Another one is already queued or running.", active)
    job.status = JobStatus.QUEUED
    job.attempts = 0
    job.error = None
    job.progress = 0.0
    job.finished_at = None
    job.sent_at = None
    _after_commit(job)


def cancel(story_id: int, reason: str) -> int:
    """Stop every queued or running job about a story; return how many were stopped.

    A worker busy with one finds out at its next heartbeat and drops its work.
    """
    now = clock().now()
    result = db.session.execute(
        update(Job).where(Job.story_id == story_id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.FAILED, error=reason, lease_expires_at=None,
                finished_at=now)
        .execution_options(synchronize_session="fetch"))
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- what a worker does with a job -----------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """This worker's hold on a job: every write it makes is fenced by `token`."""

    job_id: int
    kind: str
    token: int
    worker: str


def _held(lease: Lease, *statuses: JobStatus):
    return ((Job.id == lease.job_id) & (Job.claims == lease.token)
            & Job.status.in_(statuses or (JobStatus.RUNNING,)))


def claim(job_id: int, worker: str) -> Lease | None:
    """Take the job if it is queued, or running on an expired lease; None if we did not."""
    now = clock()
    result = db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts < Job.max_attempts,
               (Job.status == JobStatus.QUEUED)
               | ((Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now.now())))
        .values(status=JobStatus.RUNNING, worker=worker, attempts=Job.attempts + 1,
                claims=Job.claims + 1, lease_expires_at=now.now(_lease_seconds()),
                started_at=now.now(), error=None, progress=0.0)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.commit()
        return None
    row = db.session.execute(select(Job.kind, Job.claims).where(Job.id == job_id)).one()
    db.session.commit()
    _changed(row.kind, job_id, JobStatus.RUNNING)
    return Lease(job_id, row.kind, row.claims, worker)


def heartbeat(lease: Lease, progress: float | None = None) -> None:
    """Extend this worker's lease and record progress (which only ever goes up).

    Raises JobGone if the job was taken back, cancelled or re-queued meanwhile.
    """
    values: dict[str, Any] = {"lease_expires_at": clock().now(_lease_seconds())}
    if progress is not None:
        value = min(round(progress, 1), 99.9)
        values["progress"] = case((Job.progress < value, value), else_=Job.progress)
    result = db.session.execute(update(Job).where(_held(lease)).values(**values)
                                .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise JobGone(lease.job_id)
    job_heartbeat.send(lease.kind, job_id=lease.job_id)


def finish(lease: Lease) -> None:
    """Mark the job done in the caller's transaction, only while this worker holds it.

    A job the reaper re-queued but nobody has claimed again is still this worker's to finish.
    Raises JobGone otherwise, so the caller rolls back and results are written exactly once.
    """
    result = db.session.execute(
        update(Job).where(_held(lease, JobStatus.RUNNING, JobStatus.QUEUED))
        .values(status=JobStatus.DONE, progress=100.0, finished_at=clock().now(),
                lease_expires_at=None, error=None)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise JobGone(lease.job_id)


def fail(lease: Lease, message: str, retry: bool) -> JobStatus | None:
    """Record a failed attempt: queue it again while attempts remain, else fail it for good.

    Returns the job's new status, or None if this worker no longer held it.
    """
    job = db.session.get(Job, lease.job_id, populate_existing=True)
    if job is None or job.claims != lease.token or job.status is not JobStatus.RUNNING:
        return None
    job.error = message
    job.lease_expires_at = None
    if retry and job.attempts < job.max_attempts:
        job.status, job.sent_at = JobStatus.QUEUED, None
        _after_commit(job)
    else:
        job.status = JobStatus.FAILED
        job.finished_at = db.session.scalar(select(clock().now()))
    return job.status


def release(lease: Lease) -> None:
    """Hand the job back untried (this worker is shutting down): the attempt does not count."""
    db.session.execute(
        update(Job).where(_held(lease))
        .values(status=JobStatus.QUEUED, attempts=Job.attempts - 1, worker=None,
                lease_expires_at=None, sent_at=None, claims=Job.claims + 1)
        .execution_options(synchronize_session=False))


GIVE_UP = ("The worker stopped while working on this, too many times. Press Retry to try "
           "again; if it stops again, tell your StoryHub admin.")


def reap() -> int:
    """Take back jobs whose worker went silent, and send jobs whose message never arrived.

    A job out of attempts is failed with a message. Returns how many jobs were sent.
    """
    now = clock()
    expired = (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now.now())
    given_up = db.session.execute(
        update(Job).where(expired, Job.attempts >= Job.max_attempts)
        .values(status=JobStatus.FAILED, finished_at=now.now(), error=GIVE_UP,
                lease_expires_at=None)
        .execution_options(synchronize_session=False))
    requeued = db.session.execute(
        update(Job).where(expired, Job.attempts < Job.max_attempts)
        .values(status=JobStatus.QUEUED, sent_at=None, worker=None, lease_expires_at=None)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if given_up.rowcount or requeued.rowcount:  # type: ignore[attr-defined]
        logger.warning("Reaper: %s job(s) lost their worker and were queued again, %s given up",
                       requeued.rowcount, given_up.rowcount)  # type: ignore[attr-defined]
    resend_before = now.now(-settings().job_resend_seconds)
    unsent = db.session.execute(select(Job.id, Job.kind).where(
        Job.status == JobStatus.QUEUED,
        Job.sent_at.is_(None) | (Job.sent_at < resend_before))).all()
    db.session.commit()
    return sum(send(job_id, kind) for job_id, kind in unsent)


def run_with_heartbeat(app: Flask, lease: Lease, work: Callable[[Report], Any]) -> Any:
    """Return `work(report)`, while a thread renews the lease and writes the progress reported.

    `report` raises JobGone once the lease is lost, so the work stops at its next report.
    """
    latest: dict[str, float | None] = {"progress": None}
    stop = threading.Event()
    lost = threading.Event()

    def beat() -> None:
        interval = settings(app).job_heartbeat_seconds
        with app.app_context():
            while not stop.wait(interval):
                try:
                    heartbeat(lease, latest["progress"])
                except JobGone:
                    lost.set()
                    break
                except Exception:
                    db.session.rollback()
                    logger.exception("Heartbeat for job %s failed", lease.job_id)
            db.session.remove()

    def report(progress: float) -> None:
        if lost.is_set():
            raise JobGone(lease.job_id)
        if _stopping.is_set():
            raise WorkerStopping(lease.job_id)
        latest["progress"] = progress

    thread = threading.Thread(target=beat, name=f"heartbeat-{lease.job_id}", daemon=True)
    thread.start()
    try:
        result = work(report)
    finally:
        stop.set()
        thread.join(timeout=30)
    if lost.is_set():
        raise JobGone(lease.job_id)
    return result


def _handler_after_commit(handler: AnyHandler, prepared: Any) -> None:
    """Run the handler's `after_commit` (best effort: the job is done whatever it does)."""
    try:
        handler.after_commit(prepared)
    except Exception:
        logger.exception("After-commit step of a %s job failed", handler.kind)


def run_job(job_id: int) -> str:
    """Do one job with its kind's handler, from claim to a final state; return the outcome."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if _stopping.is_set():
        # Delivered as this worker stops: leave it queued, marked unsent for the next reaper.
        db.session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                           .values(sent_at=None))
        db.session.commit()
        return "skipped"
    lease = claim(job_id, worker_name())
    if lease is None:
        logger.info("Job %s not claimed (done, running elsewhere or out of attempts)", job_id)
        return "skipped"
    handler = handler_for(lease.kind)
    prepared: Any = None
    published = False
    try:
        job = db.session.get(Job, job_id)
        try:
            prepared = handler.prepare(job)  # type: ignore[arg-type]
        except NothingToDo:
            finish(lease)
            db.session.commit()
            return _settled(lease, JobStatus.DONE, "done")
        db.session.commit()
        db.session.close()  # no transaction stays open through the long part
        result = run_with_heartbeat(app, lease, lambda report: handler.work(prepared, report))
        finish(lease)  # first, so nothing is written or moved unless this worker holds the job
        handler.publish(db.session.get(Job, job_id), prepared, result)  # type: ignore[arg-type]
        db.session.commit()
        published = True
        _handler_after_commit(handler, prepared)
        return _settled(lease, JobStatus.DONE, "done")
    except JobGone:
        db.session.rollback()
        logger.warning("Job %s was taken back from this worker; its work is dropped", job_id)
        return "lost"
    except WorkerStopping:
        db.session.rollback()
        release(lease)
        db.session.commit()
        logger.warning("Job %s handed back: this worker is stopping", job_id)
        return "released"
    except JobRefused as exc:
        db.session.rollback()
        status = fail(lease, str(exc), retry=False)
        db.session.commit()
        return _settled(lease, status, "refused")
    except Exception:
        logger.exception("Job %s (%s) failed", job_id, lease.kind)
        db.session.rollback()
        status = fail(lease, handler.failure_message, retry=True)
        db.session.commit()
        return _settled(lease, status, "failed")
    except BaseException:
        # The worker is being stopped harder (Ctrl-C, a cold shutdown): give the job back.
        db.session.rollback()
        release(lease)
        db.session.commit()
        logger.warning("Job %s handed back: this worker is stopping", job_id)
        raise
    finally:
        if prepared is not None and not published:
            handler.discard(prepared)


def _settled(lease: Lease, status: JobStatus | None, outcome: str) -> str:
    if status is not None:
        _changed(lease.kind, lease.job_id, status)
    return outcome


def _changed(kind: str, job_id: int, status: JobStatus) -> None:
    job_changed.send(kind, job_id=job_id, status=status)


# --- delivery -----------------------------------------------------------------------------


def deliver(job_id: int, queue: str) -> bool:
    """Send a job id to `queue`; return False if the broker cannot be reached."""
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(TASK, args=[job_id], queue=queue, retry=False)
    except Exception as exc:  # noqa: BLE001  (any broker failure: the row keeps the job)
        logger.warning("Job %s not sent, broker unavailable (%s); it will be sent when the "
                       "broker is back", job_id, type(exc).__name__)
        return False
    return True


def send(job_id: int, kind: str) -> bool:
    """Send the job id to the broker; return False (the reaper sends it later) if it is down."""
    if not deliver(job_id, handler_for(kind).queue):
        return False
    # Its own short transaction: this runs just after the session's commit.
    with db.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                     .values(sent_at=clock().now()))
    return True


def _send_after_commit(session) -> None:
    # Only now can a worker see the row, so only now is the job sent. What was committed
    # stands whatever happens here: a job not sent now is sent by the reaper.
    for job_id, kind in session.info.pop(_AFTER_COMMIT, None) or ():
        try:
            send(job_id, kind)
        except Exception:
            logger.exception("Job %s could not be sent now; the reaper will send it", job_id)


def _drop_after_rollback(session, *_args) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def is_conflict(exc: IntegrityError) -> bool:
    """Return True if `exc` is two jobs colliding on one key (two requests racing)."""
    return "uq_jobs_active_key" in str(exc.orig) or "jobs.key" in str(exc.orig)


def init_app(app: Flask) -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "after_commit", _send_after_commit):
        event.listen(Session, "after_commit", _send_after_commit)
        event.listen(Session, "after_soft_rollback", _drop_after_rollback)
