"""What people see of jobs: a given-up job says so with a Retry, on the page that started it,
and two people doing the same thing at the same moment get a clear answer, never an error page.
"""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select

from storyhub import dates
from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.jobs import runner
from storyhub.jobs.clock import FakeClock
from storyhub.jobs.models import Job, JobStatus
from storyhub.stories.models import Recording, Story
from storyhub.themes.models import ThemeRun
from tests.support.factories import PASSWORD
from tests.support.http import multipart
from tests.support.speech import jfk


@pytest.fixture
def config_overrides():
    return {"JOB_LEASE_SECONDS": 60, "JOB_MAX_ATTEMPTS": 3, "BROKER_URL": "memory://"}


@pytest.fixture
def clock(app):
    fake = FakeClock(datetime(2026, 12, 1, 9, 0, 0))
    app.extensions["job_clock"] = fake
    return fake


def lose_every_attempt(app, clock: FakeClock, job_id: int) -> None:
    """A worker takes the job and dies, as many times as it may try; the reaper gives up."""
    with app.app_context():
        while (lease := runner.claim(job_id, "doomed:1")) is not None:
            clock.advance(61)
            runner.reap()
        assert lease is None
        assert db.session.get(Job, job_id).status is JobStatus.FAILED


def story_form(title: str, audio: bytes) -> dict:
    return {"title": title, "story_type": "snapshot", "storyteller_role": "person_on_probation",
            "language": "en", "recorded_on": dates.today().isoformat(), "site": "0",
            "consent_transcribe_analyse": "y", "consent_method": "spoken", "spoken_at": "0:00",
            "consent_given_on": dates.today().isoformat(), "audio": (audio, "story.flac")}


def test_given_up_transcription_shows_failed_and_retry_on_the_story(app, client, auth, clock,
                                                                   tmp_path):
    auth.login_as(Role.REPORTER)
    body, content_type = multipart(story_form("Lost worker", jfk(tmp_path).read_bytes()))
    assert client.post("/stories/new", data=body, content_type=content_type).status_code == 302
    with app.app_context():
        story_id = db.session.scalar(select(Story.id))
        job_id = db.session.scalar(select(Job.id).where(Job.story_id == story_id))
    assert client.get(f"/stories/{story_id}/status").json["status"] == "queued"
    lose_every_attempt(app, clock, job_id)

    status = client.get(f"/stories/{story_id}/status").json
    assert status["status"] == "failed" and status["can_retry"] is True
    assert "The worker stopped" in status["error"]
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "The worker stopped while working on this" in page and ">Retry</button>" in page
    listing = client.get("/stories/").get_data(as_text=True)
    assert "status-failed" in listing
    response = client.post(f"/stories/{story_id}/transcribe", follow_redirects=True)
    assert "Transcription queued" in response.get_data(as_text=True)
    assert client.get(f"/stories/{story_id}/status").json["status"] == "queued"


@pytest.mark.slow  # builds the prepared corpus instance (twelve stories through intake)
class TestThemeRuns:
    @pytest.fixture
    def prepared(self, corpus_instance):
        return corpus_instance

    def test_given_up_run_shows_failed_with_retry_and_the_next_run_can_start(
            self, app, client, auth, clock):
        auth.login_as(Role.FACILITATOR)
        assert client.post("/themes/runs").status_code == 302
        page = client.post("/themes/runs", follow_redirects=True)
        assert "Run 1 is still working" in page.get_data(as_text=True)
        with app.app_context():
            job_id = db.session.scalar(select(ThemeRun.job_id))
        lose_every_attempt(app, clock, job_id)

        page = client.get("/themes/").get_data(as_text=True)
        assert "Failed: The worker stopped while working on this" in page
        assert "Retry run 1" in page
        assert client.post("/themes/runs").status_code == 302, "a given-up run blocks nothing"
        page = client.get("/themes/").get_data(as_text=True)
        assert "Run 2: waiting for a worker" in page
        assert "Retry run 1" not in page, "no retry while another run is queued"

    def test_two_facilitators_starting_runs_at_once_get_one_run_and_a_409(
            self, app, make_user, clock):
        clients = []
        for _ in range(2):
            client = app.test_client()
            username = f"fac{len(clients)}"
            make_user(Role.FACILITATOR, username=username)
            assert client.post("/login", data={"username": username,
                                               "password": PASSWORD}).status_code == 302
            clients.append(client)
        statuses = race([lambda c=c: c.post("/themes/runs") for c in clients])
        assert sorted(r.status_code for r in statuses) == [302, 409]
        conflict = next(r for r in statuses if r.status_code == 409).get_data(as_text=True)
        assert "still working" in conflict or "has just been started" in conflict
        with app.app_context():
            assert db.session.scalar(select(func.count(ThemeRun.id))) == 1
            assert db.session.scalar(select(func.count(Job.id)).where(
                Job.status == JobStatus.QUEUED)) == 1


def race(requests) -> list:
    """Send the requests from threads released at the same moment; return the responses."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def send(index: int) -> None:
        barrier.wait()
        responses[index] = requests[index]()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


def test_the_same_recording_uploaded_twice_at_once_is_stored_once(app, auth, make_user,
                                                                   tmp_path, clock):
    audio = jfk(tmp_path).read_bytes()
    clients = []
    for i in range(2):
        client = app.test_client()
        make_user(Role.REPORTER, username=f"rep{i}")
        assert client.post("/login", data={"username": f"rep{i}",
                                           "password": PASSWORD}).status_code == 302
        clients.append(client)
    bodies = [multipart(story_form(f"Twice {i}", audio)) for i in range(2)]
    responses = race([lambda c=c, b=b: c.post("/stories/new", data=b[0], content_type=b[1])
                      for c, b in zip(clients, bodies, strict=True)])
    assert sorted(r.status_code for r in responses) == [302, 409]
    refused = next(r for r in responses if r.status_code == 409).get_data(as_text=True)
    assert "already been uploaded" in refused
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 1
        assert db.session.scalar(select(func.count(Recording.id))) == 1
        assert db.session.scalar(select(func.count(Job.id))) == 1
