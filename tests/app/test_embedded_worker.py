"""The worker `storyhub run` starts: restarted when it dies, stopped promptly with the site.

Real processes throughout: `storyhub run` with its worker, the real Whisper model, kill -9.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from storyhub import create_app, dates
from storyhub.accounts import service as accounts
from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.transcripts.models import Transcript
from tests.support.browser import LiveServer
from tests.support.speech import long_speech
from tests.support.workers import wait_for

pytestmark = pytest.mark.slow
FAST = {"STORYHUB_JOB_LEASE_SECONDS": "3", "STORYHUB_JOB_HEARTBEAT_SECONDS": "0.5",
        "STORYHUB_JOB_REAP_SECONDS": "1"}


@pytest.fixture
def live(tmp_path, monkeypatch):
    server = LiveServer(tmp_path / "instance", worker=True, env=FAST)
    server.start()
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(server.instance))
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("STORYHUB_DATABASE_URL", raising=False)
    server.app = create_app({"BROKER_URL": ""})  # the server's own database and queue
    yield server
    server.stop()
    with server.app.app_context():
        db.engine.dispose()


def add_long_story(live, tmp_path, repeats: int = 2) -> int:
    """A reporter's story of about forty seconds a repeat, queued for the server's worker."""
    with live.app.app_context():
        reporter = accounts.create_user(f"rita{time.monotonic_ns()}", "Rita", Role.REPORTER,
                                        "amber kettle harbour 7")
        db.session.flush()
        story = stories.create_story(
            stories.NewStory("A long story", "person_on_probation", "monologue", dates.today()),
            stories.NewConsent({Scope.TRANSCRIBE_ANALYSE}, "spoken", dates.today(), 0.0),
            long_speech(tmp_path, repeats=repeats), reporter)
        db.session.commit()
        return story.id


def job_of(live, story_id: int) -> Job:
    with live.app.app_context():
        job = db.session.scalar(select(Job).where(Job.story_id == story_id))
        db.session.expunge(job)
        return job


def worker_pids(live) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(live.proc.pid), "-f", "celery"],
                           capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def ctrl_c(live) -> int:
    """Press Ctrl-C on the server; check that it and its worker stopped; return the worker's pid."""
    [worker] = worker_pids(live)
    started = time.monotonic()
    live.proc.send_signal(signal.SIGINT)
    live.proc.wait(timeout=30)
    print(f"storyhub run stopped in {time.monotonic() - started:.1f}s")
    assert live.proc.returncode == 0, live.log.read_text()
    assert not os.path.exists(f"/proc/{worker}"), "the worker stopped too"
    assert "Stopped." in live.log.read_text()
    return worker


def test_killed_worker_is_restarted_and_the_story_finishes_without_anyone(live, tmp_path):
    story_id = add_long_story(live, tmp_path)
    wait_for(lambda: job_of(live, story_id).progress > 5, 180,
             "the embedded worker to start transcribing", lambda: live.log.read_text())
    [doomed] = worker_pids(live)
    os.kill(doomed, signal.SIGKILL)
    wait_for(lambda: job_of(live, story_id).status is JobStatus.DONE, 240,
             "a new worker to finish the story", lambda: live.log.read_text())
    job = job_of(live, story_id)
    assert job.attempts == 2
    assert doomed not in worker_pids(live) and len(worker_pids(live)) == 1
    with live.app.app_context():
        assert db.session.scalar(select(Transcript).where(Transcript.story_id == story_id))
    assert "Worker     stopped unexpectedly" in live.log.read_text()


def test_stopping_the_site_stops_the_worker_at_once_and_hands_its_job_back(live, tmp_path):
    # Four minutes of speech: eighty seconds took tiny.en about two, and CI once saw the job
    # done before Ctrl-C reached the worker.
    story_id = add_long_story(live, tmp_path, repeats=6)
    wait_for(lambda: job_of(live, story_id).progress > 5, 180,
             "the embedded worker to start transcribing", lambda: live.log.read_text())
    ctrl_c(live)
    job = job_of(live, story_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 0, "handed back, untried"
    # The next start picks it up again.
    live.start()
    wait_for(lambda: job_of(live, story_id).status is JobStatus.DONE, 240,
             "the story to finish after a restart", lambda: live.log.read_text())
    assert job_of(live, story_id).attempts == 1


def test_an_idle_worker_stops_with_the_site_without_its_shutdown_wait(live):
    worker_log = live.instance / "logs" / "worker.log"
    wait_for(lambda: worker_log.exists() and " ready." in worker_log.read_text(), 60,
             "the embedded worker to start", lambda: live.log.read_text())
    ctrl_c(live)
    # It left at once, holding no job, instead of finishing a broker poll and a timer tick.
    assert "No job in hand: the worker stops now" in worker_log.read_text()
