"""Upgrades: an instance made at the first migration, with real data put in at the schema of
its day, goes through every migration and keeps its data (each data migration checked where
it runs, as SecureDrop tests each of its migrations); `storyhub upgrade --check` says what
would run and changes nothing; StoryHub (the site, and a Celery worker) will not start on a
database a newer StoryHub made.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from storyhub import create_app
from storyhub.accounts.service import hasher
from storyhub.cli import main
from storyhub.extensions import db
from tests.support.instances import create_database, drop_database

PASSWORD = "lantern orchard quietly"
# Revisions by the schema of their day, from storyhub/migrations/versions.
FIRST = "201abdc6ae49"  # 0001 accounts and audit
THEMES = "ca2210754727"  # 0005: stories, jobs, transcripts, theme runs as first made
JOB_RUNNER = "0006_one_job_runner"  # data: job kinds, keys, duplicates; statuses dropped
HARDENING = "0009_hardening"  # data: a storyteller belongs to the site of their first story
PASSAGE_STORY = "0013_theme_passage_story"  # data: theme_passages.story_id from passages
NOW = datetime(2025, 3, 1, 9, 30)


@pytest.fixture
def old_database(database_url, tmp_path):
    """An empty database of this test's own, on the engine the suite runs on."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'old.sqlite'}"
        return
    base = make_url(database_url)
    url = base.set(database=f"{base.database}_upgrade").render_as_string(hide_password=False)
    create_database(url)
    yield url
    drop_database(url)


@pytest.fixture
def old_app(old_database, tmp_path, monkeypatch):
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": old_database, "TESTING": True,
                      "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False,
                      "SESSION_COOKIE_SECURE": False, "BROKER_URL": ""})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _migrate(app, revision: str) -> None:
    with app.app_context():
        upgrade(revision=revision)
        db.session.remove()


def _sql(app, statement: str, **params):
    with app.app_context(), db.engine.begin() as conn:
        return conn.execute(sa.text(statement), params).all() if statement.lstrip().upper() \
            .startswith("SELECT") else conn.execute(sa.text(statement), params)


def _insert(app, table: str, **row) -> None:
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f":{name}" for name in row)
    _sql(app, f'INSERT INTO "{table}" ({columns}) VALUES ({values})', **row)  # noqa: S608


def _advance_sequences(app) -> None:
    """On PostgreSQL, move each id sequence past the ids given by hand (as a real instance's)."""
    with app.app_context(), db.engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            return
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            if "id" not in {c["name"] for c in inspector.get_columns(table)}:
                continue
            if conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"),
                            {"t": table}).scalar() is None:
                continue
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f'(SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"), false)'))


def _fill_first_schema(app) -> None:
    """An admin and an audit record, as the first schema held them."""
    _insert(app, "users", id=1, username="ada", display_name="Ada Admin", role="admin",
            password_hash=hasher.hash(PASSWORD), enabled=True, must_change_password=False,
            session_token="t" * 32, created_at=NOW)
    _insert(app, "audit_events", id=1, at=NOW, actor_id=1, action="user.create",
            target_type="user", target_id=1)


def _fill_theme_schema(app) -> None:
    """Two stories of one storyteller (at two sites), consent, recordings, transcripts, jobs
    (one transcription queued twice), a theme run with a passage in a theme."""
    _insert(app, "sites", id=1, name="North")
    _insert(app, "sites", id=2, name="South")
    _insert(app, "users", id=2, username="rey", display_name="Rey Reporter", role="reporter",
            password_hash=hasher.hash(PASSWORD), enabled=True, must_change_password=False,
            session_token="r" * 32, created_at=NOW, site_id=1, all_sites=False)
    _insert(app, "storytellers", id=1, code="ST-0001", role="person_on_probation",
            created_at=NOW)
    for story_id, site_id, title in ((1, 1, "A key on the first night"),
                                     (2, 2, "The cupboard in the office")):
        _insert(app, "stories", id=story_id, title=title, storyteller_id=1,
                story_type="snapshot", site_id=site_id, language="en",
                recorded_on=date(2025, 2, story_id), tags="housing", reporter_id=2,
                status="reviewed", created_at=NOW)
        _insert(app, "consents", id=story_id, story_id=story_id, transcribe_analyse=True,
                quote_in_packs=True, play_in_workshops=False, staff_library=True,
                publish_external=False, store_real_name=False, method="spoken",
                spoken_at_seconds=2.0, given_on=date(2025, 2, 1), created_at=NOW)
        _insert(app, "recordings", id=story_id, story_id=story_id, sha256=f"{story_id}" * 64,
                original_key=f"audio/{story_id}/original.wav", original_format="wav",
                normalised_key=f"audio/{story_id}/normalised.wav",
                playback_key=f"audio/{story_id}/playback.m4a", duration_seconds=30.0,
                channels=1, sample_rate=16000, size_bytes=960_000, created_at=NOW)
        _insert(app, "transcripts", id=story_id, recording_id=story_id, story_id=story_id,
                engine="faster-whisper", model_name="tiny.en", language="en",
                speakers='{"S1": "Speaker 1"}', created_at=NOW, reviewed_at=NOW,
                reviewed_by_id=2)
        _insert(app, "transcript_segments", id=story_id, transcript_id=story_id, position=0,
                start=0.0, end=3.0, speaker="S1", text="They gave me a key.", edited=False)
        for position, word in enumerate(("They", "gave", "me", "a", "key.")):
            _insert(app, "transcript_words", segment_id=story_id, position=position,
                    start=position * 0.5, end=position * 0.5 + 0.4, text=word,
                    probability=0.9, edited=False)
    job = {"progress": 100.0, "max_attempts": 3, "created_at": NOW}
    _insert(app, "jobs", id=1, kind="transcribe", story_id=1, target_id=1, status="done",
            attempts=1, **job)
    _insert(app, "jobs", id=2, kind="transcribe", story_id=2, target_id=2, status="queued",
            attempts=2, **job)
    _insert(app, "jobs", id=3, kind="transcribe", story_id=2, target_id=2, status="queued",
            attempts=0, **job)  # the same recording queued again: a duplicate
    _insert(app, "jobs", id=4, kind="analysis", status="done", attempts=1, **job)
    _insert(app, "passages", id=1, story_id=1, digest="d" * 64, position=0, speaker="S1",
            start=0.0, end=3.0, text="They gave me a key.", word_count=5, created_at=NOW)
    _insert(app, "theme_runs", id=1, number=1, status="done", created_by_id=1, job_id=4,
            seeds="[]", parameters="{}", inputs="{}", results="{}", created_at=NOW,
            finished_at=NOW)
    _insert(app, "themes", id=1, run_id=1, number=0, position=0, label="Housing",
            auto_label="key, night, flat", description="", keywords='["key"]', hidden=False,
            edited=True, merged_from="[]")
    _insert(app, "theme_passages", run_id=1, passage_id=1, theme_id=1, x=0.0, y=0.0,
            pinned=True, moved=False)


def test_an_instance_from_the_first_migration_upgrades_through_every_one_with_its_data(
        old_app, old_database, tmp_path):
    _migrate(old_app, FIRST)
    _fill_first_schema(old_app)
    _migrate(old_app, THEMES)
    _fill_theme_schema(old_app)
    _advance_sequences(old_app)

    env = {"STORYHUB_INSTANCE_PATH": str(tmp_path / "instance"),
           "STORYHUB_DATABASE_URL": old_database}
    check = CliRunner().invoke(main, ["upgrade", "--check"], env=env)
    assert check.exit_code == 0, check.output
    assert f"the database is at {THEMES}" in check.output
    for revision in (JOB_RUNNER, HARDENING, PASSAGE_STORY):
        assert revision in check.output
    assert "Nothing was changed" in check.output
    assert _sql(old_app, "SELECT version_num FROM alembic_version") == [(THEMES,)]

    _migrate(old_app, JOB_RUNNER)
    jobs = {row[0]: row[1:] for row in _sql(
        old_app, "SELECT id, kind, key, claims, status, error FROM jobs ORDER BY id")}
    assert jobs[1] == ("transcribe", "transcribe:recording:1", 1, "done", None)
    assert jobs[2] == ("transcribe", "transcribe:recording:2", 2, "queued", None)
    assert jobs[3] == ("transcribe", "transcribe:recording:2", 0, "failed",
                       "A duplicate of another job.")
    assert jobs[4] == ("themes", "themes:run", 1, "done", None)

    _migrate(old_app, HARDENING)
    assert _sql(old_app, "SELECT id, site_id FROM storytellers") == [(1, 1)]  # its first story's

    _migrate(old_app, PASSAGE_STORY)
    assert _sql(old_app, "SELECT passage_id, story_id FROM theme_passages") == [(1, 1)]

    _migrate(old_app, "head")
    done = CliRunner().invoke(main, ["upgrade", "--check"], env=env)
    assert "The database is up to date" in done.output, done.output

    # The data as today's StoryHub reads it.
    from storyhub.stories.models import Story
    from storyhub.themes.models import RunStatus, ThemeRun
    from storyhub.transcripts.models import Transcript

    with old_app.app_context():
        story = db.session.get(Story, 1)
        assert story.title == "A key on the first night" and story.consent.quote_in_packs
        assert story.recording.redacted_playback_key is None and story.wrapped_key is None
        transcript = db.session.get(Transcript, 1)
        assert [w.text for w in transcript.segments[0].words] == ["They", "gave", "me", "a",
                                                                   "key."]
        assert not transcript.needs_checking and not transcript.segments[0].words[0].checked
        run = db.session.get(ThemeRun, 1)
        assert run.status is RunStatus.DONE and run.themes[0].label == "Housing"
    client = old_app.test_client()
    assert client.post("/login", data={"username": "ada", "password": PASSWORD}
                       ).status_code == 302
    assert client.get("/admin/audit").status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.one_database  # Alembic's revision table reads the same on either engine
def test_storyhub_will_not_start_on_a_database_a_newer_storyhub_upgraded(tmp_path, database_url):
    url = f"sqlite:///{tmp_path / 'newer.sqlite'}"
    instance = tmp_path / "instance"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": "x"})
    _migrate(app, "head")
    _sql(app, "UPDATE alembic_version SET version_num = '0099_from_a_newer_storyhub'")
    with app.app_context():
        db.engine.dispose()

    env = {"STORYHUB_INSTANCE_PATH": str(instance), "STORYHUB_DATABASE_URL": url,
           "PATH": str(Path(sys.executable).parent)}
    started = subprocess.run(
        [str(Path(sys.executable).with_name("storyhub")), "run", "--no-worker",
         "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 1, started.stdout + started.stderr
    assert "upgraded by a newer StoryHub" in started.stderr
    assert "0099_from_a_newer_storyhub" in started.stderr
    assert "Traceback" not in started.stderr
    check = CliRunner().invoke(main, ["upgrade", "--check"], env=env)
    assert check.exit_code == 1 and "newer StoryHub" in check.output

    # A Celery worker, as deployments start one, refuses too, before taking any job.
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "storyhub.worker:celery", "worker",
         "--pool=solo", "--without-gossip", "--without-mingle"],
        env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 1, worker.stdout + worker.stderr
    assert "The StoryHub worker will not start" in worker.stderr
    assert "upgraded by a newer StoryHub" in worker.stderr
    assert "Traceback" not in worker.stderr
    assert "celery@" not in worker.stdout + worker.stderr  # Celery's banner: it never started
