"""The job runner, with a clock the tests move by hand: claims, leases, fencing, reaping, retries.

A real handler (kind "test-echo") goes through the real runner on the real database; only the
clock is the tests' own.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from storyhub import audit
from storyhub.audit import AuditEvent
from storyhub.extensions import db
from storyhub.jobs import runner
from storyhub.jobs.clock import DatabaseClock, FakeClock
from storyhub.jobs.handler import JobHandler
from storyhub.jobs.models import Job, JobStatus

LEASE = 60


class Echo(JobHandler):
    """Publishes what its job's target says, as an audit event; or fails as told."""

    kind = "test-echo"
    queue = "default"
    failure_message = "Echo failed on the server."
    behaviour: dict[int, str] = {}
    worked: list[int] = []
    discarded: list[int] = []
    clock: FakeClock | None = None

    def prepare(self, job):
        what = self.behaviour.get(job.target_id, "ok")
        if what == "refuse":
            raise runner.JobRefused("Echo refused: consent does not cover this.")
        if what == "done-already":
            raise runner.NothingToDo()
        return job.target_id

    def work(self, target, report):
        self.worked.append(target)
        report(50)
        if self.behaviour.get(target) == "crash":
            raise RuntimeError("the edge of the world: a disk error")
        if self.behaviour.get(target) == "taken-over":
            # This worker stalls past its lease and another worker takes the job over.
            self.clock.advance(LEASE + 1)
            job_id = db.session.scalar(select(Job.id).where(Job.target_id == target))
            assert runner.claim(job_id, "host-b:2") is not None
        return f"echo {target}"

    def publish(self, job, target, result):
        audit.record("test.published", None, "job", job.id, result)

    def discard(self, target):
        self.discarded.append(target)


runner.register(Echo())


@pytest.fixture
def config_overrides():
    return {"JOB_LEASE_SECONDS": LEASE, "JOB_MAX_ATTEMPTS": 3, "JOB_HEARTBEAT_SECONDS": 0.05,
            # A broker nobody listens on: these tests run jobs themselves.
            "BROKER_URL": "memory://"}


@pytest.fixture
def clock(app):
    fake = FakeClock(datetime(2026, 12, 1, 9, 0, 0))
    app.extensions["job_clock"] = fake
    Echo.behaviour, Echo.worked, Echo.discarded, Echo.clock = {}, [], [], fake
    with app.app_context():
        yield fake


def new_job(target: int = 1, key: str | None = None) -> int:
    job = runner.enqueue(Echo.kind, key=key, target_id=target)
    db.session.commit()
    return job.id


def job(job_id: int) -> Job:
    found = db.session.get(Job, job_id, populate_existing=True)
    db.session.commit()
    return found


def published() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.detail).where(
        AuditEvent.action == "test.published")))


def test_a_claim_holds_the_job_until_its_lease_runs_out(clock):
    job_id = new_job()
    first = runner.claim(job_id, "host-a:1")
    assert first is not None and job(job_id).status is JobStatus.RUNNING
    assert runner.claim(job_id, "host-b:2") is None, "a live lease is not stolen"
    clock.advance(LEASE - 1)
    runner.heartbeat(first)  # renewed: another full lease from now
    clock.advance(LEASE - 1)
    assert runner.claim(job_id, "host-b:2") is None
    clock.advance(2)
    second = runner.claim(job_id, "host-b:2")
    assert second is not None and second.token > first.token
    assert job(job_id).attempts == 2 and job(job_id).worker == "host-b:2"


def test_a_worker_that_lost_its_lease_can_change_nothing(clock):
    job_id = new_job()
    stale = runner.claim(job_id, "host-a:1")
    clock.advance(LEASE + 1)
    fresh = runner.claim(job_id, "host-b:2")
    with pytest.raises(runner.JobGone):
        runner.heartbeat(stale, progress=80)
    with pytest.raises(runner.JobGone):
        runner.finish(stale)
    db.session.rollback()
    assert runner.fail(stale, "stale failure", retry=False) is None
    db.session.commit()
    assert job(job_id).status is JobStatus.RUNNING and job(job_id).progress == 0
    runner.finish(fresh)
    db.session.commit()
    assert job(job_id).status is JobStatus.DONE and job(job_id).progress == 100


def test_reaper_queues_a_silent_workers_job_again_and_fences_it(clock):
    job_id = new_job()
    lease = runner.claim(job_id, "host-a:1")
    clock.advance(LEASE - 1)
    runner.reap()
    assert job(job_id).status is JobStatus.RUNNING, "not yet expired"
    clock.advance(2)
    runner.reap()
    found = job(job_id)
    assert found.status is JobStatus.QUEUED and found.worker is None
    assert found.sent_at == clock.time, "and sent to the broker again at once"
    with pytest.raises(runner.JobGone):
        runner.heartbeat(lease)  # the reaper's re-queue is not extended by the old worker


def test_work_finished_after_a_re_queue_still_counts_if_nobody_took_it(clock):
    job_id = new_job()
    lease = runner.claim(job_id, "host-a:1")
    clock.advance(LEASE + 1)
    runner.reap()
    runner.finish(lease)
    db.session.commit()
    assert job(job_id).status is JobStatus.DONE
    assert runner.claim(job_id, "host-b:2") is None, "the re-sent message finds it done"


def test_reaper_gives_up_after_the_last_attempt(clock):
    job_id = new_job()
    for _attempt in range(3):
        assert runner.claim(job_id, "host-a:1") is not None
        clock.advance(LEASE + 1)
        runner.reap()
    found = job(job_id)
    assert found.status is JobStatus.FAILED and found.attempts == 3
    assert "Press Retry" in found.error
    runner.retry(found)
    db.session.commit()
    assert job(job_id).status is JobStatus.QUEUED and job(job_id).attempts == 0


def test_progress_only_rises_and_tops_out_below_100_until_done(clock):
    job_id = new_job()
    lease = runner.claim(job_id, "host-a:1")
    seen = []
    for value in (10, 40, 30, 100, 55):
        runner.heartbeat(lease, value)
        seen.append(job(job_id).progress)
    assert seen == [10, 40, 40, 99.9, 99.9]
    runner.finish(lease)
    db.session.commit()
    assert job(job_id).progress == 100


def test_release_hands_a_job_back_untried(clock):
    job_id = new_job()
    lease = runner.claim(job_id, "host-a:1")
    runner.release(lease)
    db.session.commit()
    found = job(job_id)
    assert found.status is JobStatus.QUEUED and found.attempts == 0
    with pytest.raises(runner.JobGone):
        runner.heartbeat(lease)


def test_cancelled_job_cannot_be_finished_by_its_worker(clock):
    from datetime import date

    from storyhub.stories.models import Story, Storyteller

    story = Story(title="A story", story_type="snapshot", recorded_on=date(2026, 11, 30),
                  storyteller=Storyteller(code="ST-TEST01", role="person_on_probation"))
    db.session.add(story)
    db.session.flush()
    queued = runner.enqueue(Echo.kind, story_id=story.id, target_id=1)
    running = runner.enqueue(Echo.kind, story_id=story.id, target_id=2)
    db.session.commit()
    lease = runner.claim(running.id, "host-a:1")
    assert runner.cancel(story.id, "The storyteller withdrew their consent.") == 2
    db.session.commit()
    with pytest.raises(runner.JobGone):
        runner.heartbeat(lease)
    with pytest.raises(runner.JobGone):
        runner.finish(lease)
    db.session.rollback()
    for job_id in (queued.id, running.id):
        assert job(job_id).status is JobStatus.FAILED and "withdrew" in job(job_id).error
    assert runner.claim(queued.id, "host-b:2") is None


def test_one_active_job_per_key_even_when_requests_race(clock):
    new_job(key="echo:one")
    with pytest.raises(runner.JobConflict):
        runner.enqueue(Echo.kind, key="echo:one", target_id=2)
    db.session.rollback()
    # Two requests that both passed the check collide on the database's unique index.
    with pytest.raises(IntegrityError) as raised:
        db.session.execute(insert(Job).values(kind=Echo.kind, key="echo:one",
                                              status=JobStatus.QUEUED, progress=0, attempts=0,
                                              max_attempts=3, claims=0,
                                              created_at=datetime(2026, 12, 1)))
        db.session.flush()
    assert runner.is_conflict(raised.value)
    db.session.rollback()
    # Once the first is done, the key is free again.
    first = db.session.scalar(select(Job).where(Job.key == "echo:one"))
    lease = runner.claim(first.id, "host-a:1")
    runner.finish(lease)
    db.session.commit()
    new_job(key="echo:one")
    assert db.session.scalar(select(func.count(Job.id)).where(Job.key == "echo:one")) == 2


def test_run_job_publishes_once(clock):
    job_id = new_job(target=5)
    assert runner.run_job(job_id) == "done"
    assert runner.run_job(job_id) == "skipped", "a duplicate delivery does nothing"
    assert published() == ["echo 5"]
    assert job(job_id).status is JobStatus.DONE and job(job_id).progress == 100


def test_run_job_retries_a_crash_then_gives_up_with_the_handlers_message(clock):
    Echo.behaviour = {6: "crash"}
    job_id = new_job(target=6)
    outcomes = [runner.run_job(job_id) for _ in range(4)]
    assert outcomes == ["failed", "failed", "failed", "skipped"]
    found = job(job_id)
    assert found.status is JobStatus.FAILED and found.error == Echo.failure_message
    assert published() == []


def test_run_job_refused_fails_at_once_and_nothing_to_do_finishes(clock):
    Echo.behaviour = {8: "refuse", 9: "done-already"}
    refused, duplicate = new_job(target=8), new_job(target=9)
    assert runner.run_job(refused) == "refused"
    assert job(refused).status is JobStatus.FAILED and "consent" in job(refused).error
    assert job(refused).attempts == 1
    assert runner.run_job(duplicate) == "done"
    assert job(duplicate).status is JobStatus.DONE
    assert Echo.worked == [] and published() == []


def test_leases_follow_the_database_clock(app):
    """Not the web or worker host's clock: every host compares against the same time."""
    from storyhub.database import utcnow

    with app.app_context():
        db_now = db.session.scalar(select(DatabaseClock().now()))
        later = db.session.scalar(select(DatabaseClock().now(60)))
        db.session.commit()
    assert abs((db_now - utcnow()).total_seconds()) < 5  # the same machine here
    assert abs((later - db_now).total_seconds() - 60) < 1


def test_a_stale_worker_does_not_publish_and_discards_its_work(clock):
    Echo.behaviour = {11: "taken-over"}
    job_id = new_job(target=11)
    assert runner.run_job(job_id) == "lost"
    assert published() == [] and Echo.discarded == [11]
    found = job(job_id)
    assert found.status is JobStatus.RUNNING and found.worker == "host-b:2"
