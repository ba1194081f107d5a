"""Transcription on the real job queue, with the real Whisper model."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from storyhub import dates
from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.jobs import runner as jobs
from storyhub.jobs.models import Job, JobStatus
from storyhub.storage import get_storage
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story, StoryStatus
from storyhub.stories.state import state_of
from storyhub.transcripts import service
from storyhub.transcripts.models import Segment, Transcript, Word
from tests.support.speech import (
    JFK_REFERENCE,
    LEFT_REFERENCE,
    RIGHT_REFERENCE,
    jfk,
    long_speech,
    stereo_dialogue,
    wer,
)
from tests.support.workers import FAST_JOBS, Worker, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def config_overrides():
    return dict(FAST_JOBS)


def add_story(app, user_id: int, audio: Path, story_type: str = "snapshot",
              scopes=(Scope.TRANSCRIBE_ANALYSE,)) -> int:
    """Store a story through the real intake service; return its id."""
    with app.app_context():
        actor = db.session.get(User, user_id)
        story = stories.create_story(
            stories.NewStory("A story", "person_on_probation", story_type, dates.today()),
            stories.NewConsent(set(scopes), "spoken", dates.today(), 0.0), audio, actor)
        db.session.commit()
        return story.id


def job_of(app, story_id: int) -> Job:
    with app.app_context():
        job = db.session.scalar(select(Job).where(Job.story_id == story_id))
        db.session.expunge(job)
        return job


def transcript_text(app, story_id: int) -> str:
    with app.app_context():
        story = db.session.get(Story, story_id)
        transcript = service.get_transcript(story)
        return " ".join(seg.text for seg in transcript.segments)


@pytest.mark.one_database  # its queries are covered on PostgreSQL by lighter tests
def test_jfk_through_the_real_worker(app, make_user, tmp_path):
    reporter = make_user(Role.REPORTER)
    story_id = add_story(app, reporter, jfk(tmp_path))
    assert job_of(app, story_id).status is JobStatus.QUEUED
    worker = Worker(app, "w1", tmp_path)
    try:
        wait_for(lambda: job_of(app, story_id).status is JobStatus.DONE, 120,
                 "the worker to transcribe jfk.flac", worker.log)
    finally:
        worker.stop()
    assert wer(JFK_REFERENCE, transcript_text(app, story_id)) <= 0.05
    job = job_of(app, story_id)
    assert job.attempts == 1 and job.progress == 100.0
    with app.app_context():
        assert state_of(db.session.get(Story, story_id)).status is StoryStatus.TRANSCRIBED
        words = db.session.scalars(select(Word).join(Segment).order_by(Word.start)).all()
        assert [w.text.strip(",.").lower() for w in words][:3] == ["and", "so", "my"]
        assert all(w.end >= w.start for w in words)
        assert all(0 <= w.probability <= 1 for w in words)


def test_worker_killed_mid_job_finishes_exactly_once(app, make_user, tmp_path):
    reporter = make_user(Role.REPORTER)
    story_id = add_story(app, reporter, long_speech(tmp_path, repeats=2))
    first = Worker(app, "doomed", tmp_path)
    try:
        wait_for(lambda: job_of(app, story_id).progress > 5, 120,
                 "the first worker to start transcribing", first.log)
    finally:
        first.kill()
    killed_at = job_of(app, story_id)
    assert killed_at.status is JobStatus.RUNNING and killed_at.progress < 100
    second = Worker(app, "rescuer", tmp_path)
    try:
        wait_for(lambda: job_of(app, story_id).status is JobStatus.DONE, 240,
                 "the second worker to finish the job", second.log)
    finally:
        second.stop()
    job = job_of(app, story_id)
    assert job.attempts == 2
    assert job.worker != killed_at.worker
    with app.app_context():
        assert db.session.scalar(select(func.count(Transcript.id))) == 1
        assert state_of(db.session.get(Story, story_id)).status is StoryStatus.TRANSCRIBED
    assert "nowhere to live" in transcript_text(app, story_id).lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestBrokerDown:
    @pytest.fixture
    def port(self):
        return _free_port()

    @pytest.fixture
    def config_overrides(self, port):
        return {**FAST_JOBS, "BROKER_URL": f"redis://127.0.0.1:{port}/0"}

    def test_upload_keeps_story_and_job_runs_when_broker_returns(self, app, client, auth,
                                                                  port, tmp_path):
        import shutil

        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        auth.login_as(Role.REPORTER)
        with jfk(tmp_path).open("rb") as fh:
            response = client.post("/stories/new", data={
                "title": "Broker down", "story_type": "snapshot",
                "storyteller_role": "person_on_probation", "language": "en",
                "recorded_on": dates.today().isoformat(), "site": "0",
                "consent_transcribe_analyse": "y", "consent_method": "spoken",
                "spoken_at": "0:00", "consent_given_on": dates.today().isoformat(),
                "audio": (fh, "jfk.flac")}, content_type="multipart/form-data",
                follow_redirects=True)
        assert response.status_code == 200
        assert "Story saved" in response.get_data(as_text=True)
        assert "Waiting for a worker" in response.get_data(as_text=True)
        with app.app_context():
            story_id = db.session.scalar(select(Story.id))
        job = job_of(app, story_id)
        assert job.status is JobStatus.QUEUED and job.sent_at is None

        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL)
        worker = None
        try:
            with app.app_context():
                wait_for(lambda: jobs.reap() == 1, 20, "the reaper to send the job")
            assert job_of(app, story_id).sent_at is not None
            worker = Worker(app, "after-outage", tmp_path,
                            STORYHUB_JOB_REAP_SECONDS="600")  # only the message we sent
            wait_for(lambda: job_of(app, story_id).status is JobStatus.DONE, 120,
                     "the job to run once the broker is back", worker.log)
        finally:
            if worker:
                worker.stop()
            redis.terminate()
            redis.wait()
        assert wer(JFK_REFERENCE, transcript_text(app, story_id)) <= 0.05


def test_failure_is_retried_then_reported_and_retry_button_works(app, client, auth, tmp_path):
    reporter = auth.login_as(Role.REPORTER)
    story_id = add_story(app, reporter, jfk(tmp_path))
    with app.app_context():
        story = db.session.get(Story, story_id)
        wav = get_storage().path(story.recording.normalised_key)
    kept = wav.read_bytes()
    wav.write_bytes(b"")  # the edge of the world: the file was lost from the disk
    job_id = job_of(app, story_id).id
    outcomes = []
    with app.app_context():
        for _ in range(3):
            outcomes.append(jobs.run_job(job_id))
        assert jobs.run_job(job_id) == "skipped"
    assert outcomes == ["failed", "failed", "failed"]
    job = job_of(app, story_id)
    assert job.status is JobStatus.FAILED and job.attempts == 3
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Transcription failed on the server" in page and "Retry" in page
    assert client.get(f"/stories/{story_id}/status").get_json()["can_retry"] is True

    wav.write_bytes(kept)
    response = client.post(f"/stories/{story_id}/transcribe", follow_redirects=True)
    assert "Transcription queued" in response.get_data(as_text=True)
    with app.app_context():
        assert jobs.run_job(job_id) == "done"
    assert wer(JFK_REFERENCE, transcript_text(app, story_id)) <= 0.05


@pytest.mark.one_database  # its queries are covered on PostgreSQL by lighter tests
class TestProgress:
    @pytest.fixture
    def config_overrides(self):
        return {**FAST_JOBS, "JOB_HEARTBEAT_SECONDS": 0.05}

    def test_progress_is_monotonic_and_reaches_100(self, app, make_user, tmp_path):
        reporter = make_user(Role.REPORTER)
        # About two minutes of speech: many heartbeats even on a fast machine.
        story_id = add_story(app, reporter, long_speech(tmp_path, repeats=3))
        job_id = job_of(app, story_id).id
        seen: list[float] = []
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

        def stored(_kind, job_id):  # every heartbeat the runner wrote, as a reader sees it
            with engine.connect() as conn:
                seen.append(conn.execute(sa.text("SELECT progress FROM jobs WHERE id = :i"),
                                         {"i": job_id}).scalar_one())

        jobs.job_heartbeat.connect(stored)
        try:
            with app.app_context():
                assert jobs.run_job(job_id) == "done"
        finally:
            jobs.job_heartbeat.disconnect(stored)
            engine.dispose()
        assert seen, "the heartbeat wrote progress"
        assert seen == sorted(seen), "progress went backwards"
        steps = {p for p in seen if 0 < p < 100}
        assert len(steps) >= 3, f"progress should move in steps, saw {sorted(set(seen))}"
        assert job_of(app, story_id).progress == 100.0


def test_stereo_voices_become_two_speakers(app, make_user, tmp_path):
    reporter = make_user(Role.REPORTER)
    story_id = add_story(app, reporter, stereo_dialogue(tmp_path), "dialogue")
    with app.app_context():
        assert jobs.run_job(job_of(app, story_id).id) == "done"
        transcript = service.get_transcript(db.session.get(Story, story_id))
        by_speaker = {}
        for seg in transcript.segments:
            by_speaker.setdefault(seg.speaker, []).append(seg.text)
    assert set(by_speaker) == {"S1", "S2"}
    assert wer(LEFT_REFERENCE, " ".join(by_speaker["S1"])) <= 0.25
    assert wer(RIGHT_REFERENCE, " ".join(by_speaker["S2"])) <= 0.25


def test_editor_edits_keep_timestamps_and_review(app, client, auth, tmp_path):
    reporter = auth.login_as(Role.REPORTER)
    story_id = add_story(app, reporter, jfk(tmp_path))
    with app.app_context():
        assert jobs.run_job(job_of(app, story_id).id) == "done"
        transcript = service.get_transcript(db.session.get(Story, story_id))
        segment = transcript.segments[0]
        before = [(w.text, w.start, w.end) for w in segment.words]
        seg_id = segment.id
    page = client.get(f"/stories/{story_id}/transcript").get_data(as_text=True)
    assert 'class="word' in page and "data-start=" in page

    old_words = [text for text, _s, _e in before]
    changed = list(old_words)
    target = next(i for i, w in enumerate(changed) if w.strip(",.").lower() == "country")
    changed[target] = "nation"
    changed.insert(2, "truly")
    response = client.post(f"/stories/{story_id}/transcript/segments/{seg_id}",
                           json={"text": " ".join(changed)})
    assert response.status_code == 200, response.get_data(as_text=True)
    after = response.get_json()["words"]
    assert [w["text"] for w in after] == changed
    kept = {(w["text"], w["start"], w["end"]) for w in after if w["text"] in old_words}
    assert kept == {b for b in before if b[0] in changed}
    nation = after[target + 1]
    assert (nation["start"], nation["end"]) == (before[target][1], before[target][2])
    assert nation["edited"] is True
    truly = after[2]
    assert before[1][2] <= truly["start"] <= truly["end"] <= before[2][1] + 1e-6

    client.post(f"/stories/{story_id}/transcript/speakers", data={"speaker-S1": "Storyteller"})
    response = client.post(f"/stories/{story_id}/transcript/review", follow_redirects=True)
    assert "marked as reviewed" in response.get_data(as_text=True)
    with app.app_context():
        assert state_of(db.session.get(Story, story_id)).status is StoryStatus.REVIEWED

    vtt = client.get(f"/stories/{story_id}/transcript.vtt").get_data(as_text=True)
    assert vtt.startswith("WEBVTT") and "nation" in vtt and "<v Storyteller>" in vtt
    srt = client.get(f"/stories/{story_id}/transcript.srt").get_data(as_text=True)
    assert srt.startswith("1\n00:00:00,000 --> ")
    exported = json.loads(client.get(f"/stories/{story_id}/transcript.json").data)
    assert exported["reviewed"] is True and exported["segments"][0]["words"]
    assert "nation" in client.get(f"/stories/{story_id}/transcript.txt").get_data(as_text=True)


def test_no_transcription_without_consent(app, client, auth, tmp_path):
    reporter = auth.login_as(Role.REPORTER)
    story_id = add_story(app, reporter, jfk(tmp_path),
                         scopes=(Scope.PLAY_IN_WORKSHOPS,))
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0
    response = client.post(f"/stories/{story_id}/transcribe", follow_redirects=True)
    assert "did not agree to their story being transcribed" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0


def test_withdrawn_consent_stops_a_queued_job(app, make_user, tmp_path):
    from storyhub.database import utcnow

    reporter = make_user(Role.REPORTER)
    story_id = add_story(app, reporter, jfk(tmp_path))
    with app.app_context():
        db.session.get(Story, story_id).consent.withdrawn_at = utcnow()
        db.session.commit()
        assert jobs.run_job(job_of(app, story_id).id) == "refused"
        assert db.session.scalar(select(func.count(Transcript.id))) == 0
    job = job_of(app, story_id)
    assert job.status is JobStatus.FAILED and "withdrew their consent" in job.error


def test_two_workers_share_the_queue(app, make_user, tmp_path):
    """Scale-out: two worker processes on one queue (Redis in CI's PostgreSQL run)."""
    reporter = make_user(Role.REPORTER)
    folder = tmp_path / "speech"
    folder.mkdir()
    from tests.support.speech import PARAGRAPHS, espeak

    workers = [Worker(app, f"w{i}", tmp_path) for i in (1, 2)]
    try:
        for worker in workers:
            wait_for(lambda w=worker: "ready." in w.log(), 60, "a worker to start", worker.log)
        story_ids = [add_story(app, reporter, espeak(folder / f"s{i}.wav", text))
                     for i, text in enumerate(PARAGRAPHS)]
        wait_for(lambda: all(job_of(app, s).status is JobStatus.DONE for s in story_ids), 180,
                 "both workers to finish the queue", lambda: workers[0].log() + workers[1].log())
    finally:
        for worker in workers:
            worker.stop()
    assert all(job_of(app, s).attempts == 1 for s in story_ids)
    with app.app_context():
        assert db.session.scalar(select(func.count(Transcript.id))) == len(story_ids)
    for story_id, text in zip(story_ids, PARAGRAPHS, strict=True):
        assert wer(text, transcript_text(app, story_id)) <= 0.25


@pytest.mark.engine
class TestOpenAIWhisperEngine:
    """The optional engine, on tiny.en weights rebuilt offline from the bundled model."""

    @pytest.fixture
    def config_overrides(self):
        return {**FAST_JOBS, "WHISPER_ENGINE": "openai-whisper"}

    @pytest.mark.filterwarnings("ignore:unclosed file .*gpt2\\.tiktoken:ResourceWarning")
    def test_jfk_with_openai_whisper(self, app, make_user, tmp_path):
        reporter = make_user(Role.REPORTER)
        story_id = add_story(app, reporter, jfk(tmp_path))
        with app.app_context():
            assert jobs.run_job(job_of(app, story_id).id) == "done"
            transcript = service.get_transcript(db.session.get(Story, story_id))
            assert transcript.engine == "openai-whisper"
            words = [w for seg in transcript.segments for w in seg.words]
        assert wer(JFK_REFERENCE, transcript_text(app, story_id)) <= 0.05
        assert words and all(b.start >= a.start for a, b in zip(words, words[1:], strict=False))


def test_withdrawing_consent_stops_the_queued_job_and_playback(app, client, auth, tmp_path):
    reporter = auth.login_as(Role.REPORTER)
    story_id = add_story(app, reporter, jfk(tmp_path))
    assert job_of(app, story_id).status is JobStatus.QUEUED
    response = client.post(f"/stories/{story_id}/consent/withdraw", follow_redirects=True)
    assert "Consent withdrawn" in response.get_data(as_text=True)
    job = job_of(app, story_id)
    assert job.status is JobStatus.FAILED and "withdrew" in job.error
    with app.app_context():
        assert jobs.run_job(job.id) == "skipped"
        state = state_of(db.session.get(Story, story_id))
        assert state.status is StoryStatus.FAILED and "withdrew" in state.error
        assert not state.can_retry, "no Retry: consent no longer covers transcription"
    assert client.get(f"/stories/{story_id}/audio").status_code == 403
    again = client.post(f"/stories/{story_id}/consent/withdraw", follow_redirects=True)
    assert "already been withdrawn" in again.get_data(as_text=True)
