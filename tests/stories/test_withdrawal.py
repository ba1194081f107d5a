"""Withdrawal erases everywhere; changed consent takes back exactly what it covered.

Each test starts from the prepared corpus instance (twelve real stories, reviewed transcripts)
and goes through the site as its users would, then looks for the storyteller's words where a
leak would sit: every row of every table, every file in the instance folder (the SQLite file
and its log, recordings, clips, saved theme models) and the log records. The staff library's
full-text index is searched apart, as its engine keeps it: SQLite's FTS5 shadow tables read raw,
PostgreSQL's table and GIN index (and their files, where the server's files can be read).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import MetaData, select

from storyhub import dates
from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.jobs.runner import run_job
from storyhub.library import search
from storyhub.library import service as library
from storyhub.redaction import service as redaction
from storyhub.sealed import KeyDestroyed, is_sealed
from storyhub.storage import StoredFile
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story
from storyhub.themes import modeling
from storyhub.themes.models import Passage, Theme, ThemePassage, ThemeRun
from storyhub.transcripts import service as transcripts
from storyhub.transcripts.models import Segment, Transcript
from tests.support.factories import (
    PHRASE,
    REAL_NAME,
    erase_job,
    files_holding,
    run_now,
    tell_story,
)
from tests.support.workers import FAST_JOBS

pytestmark = pytest.mark.slow

# PHRASE is said only in the withdrawn story (typed in by its reporter, `tell_story`), and
# REAL_NAME is the storyteller's name.
NEEDLES = ("wexquayle", "quillfeather")
# What the full-text index keeps of the phrase: its stem ("wexquayl"), and FTS5 writes a term
# without the letters it shares with the term before it ("we…" words abound), so look for
# the part no other word has.
INDEX_NEEDLE = "xquayl"


@pytest.fixture
def prepared(corpus_instance):
    return corpus_instance


@pytest.fixture
def config_overrides():
    return dict(FAST_JOBS)


def rows_holding(needle: str) -> list[str]:
    """Return "table.column" for every value in the database that holds `needle`."""
    found = []
    tables = MetaData()
    tables.reflect(db.engine)
    for table in tables.sorted_tables:
        for row in db.session.execute(select(table)).mappings():
            for column, value in row.items():
                if value is not None and needle in str(value).lower():
                    found.append(f"{table.name}.{column}")
    return found


def leaks(app, caplog) -> dict[str, list[str]]:
    folder = Path(app.instance_path)
    found = {}
    for needle in NEEDLES:
        where = rows_holding(needle) + files_holding(folder, needle)
        if needle in caplog.text.lower():
            where.append("log")
        if where:
            found[needle] = where
    return found


def approve_for_library(app, story_id: int, reporter_id: int, curator_id: int,
                        told: bool = True) -> None:
    """The reporter says the suggested names are not personal; a facilitator approves it.

    `told`: the story holds the phrase (see `tell_story`), and the search finds it there.
    """
    with app.app_context():
        story = db.session.get(Story, story_id)
        reporter = db.session.get(User, reporter_id)
        redaction.reject(story, reporter, [o.value for o in redaction.offers(story, reporter)])
        curator = db.session.get(User, curator_id)
        library.save_curation(story, curator, "Leaving prison with nowhere to live.")
        library.approve(story, curator)
        db.session.commit()
        if told:
            assert [h.story_id for h in search.full_text(PHRASE, select(Story.id))] == [
                story_id]


def index_holding(needle: str) -> list[str]:
    """Return where the library's full-text index still holds `needle`, as its engine keeps it.

    SQLite: every FTS5 shadow table (`library_search_data`, `_idx`, `_content`, `_docsize`,
    `_config`), every value read raw. PostgreSQL: the rows, and the GIN index asked with
    sequential scans off.
    """
    found = []
    if db.engine.dialect.name == "sqlite":
        shadows = db.session.scalars(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'library_search_%'"))
        for table in shadows:
            for row in db.session.execute(sa.text(f'SELECT * FROM "{table}"')):  # noqa: S608
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    if needle.encode() in raw.lower():
                        found.append(table)
        return found
    rows = db.session.execute(sa.text(
        "SELECT story_id FROM library_search WHERE lower(title || summary || body) LIKE :like "
        "OR document::text LIKE :like"), {"like": f"%{needle}%"}).all()
    found += [f"library_search row {row.story_id}" for row in rows]
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    hits = db.session.execute(sa.text(
        "SELECT story_id FROM library_search WHERE document @@ to_tsquery('english', :word)"),
        {"word": PHRASE.split()[-1]}).all()
    found += [f"ix_library_search_document: story {row.story_id}" for row in hits]
    db.session.rollback()
    return found


def postgres_relations() -> dict[str, str]:
    """Return the files (relative to the server's data folder) of the library's full-text
    table, its TOAST table and its GIN index."""
    return dict(db.session.execute(sa.text(
        "SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c "
        "WHERE c.oid IN ('library_search'::regclass, 'ix_library_search_document'::regclass, "
        "(SELECT reltoastrelid FROM pg_class WHERE relname = 'library_search'))")).all())


def postgres_files_holding(needle: str) -> list[str] | None:
    """Return which of those files hold `needle`, or None when this process cannot read the
    server's files (a server elsewhere). In CI the server runs here, as the tests' user."""
    folder = Path(db.session.scalar(sa.text("SHOW data_directory")))
    files = {name: folder / path for name, path in postgres_relations().items()}
    if not all(os.access(path, os.R_OK) for path in files.values()):
        return None
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("CHECKPOINT"))  # the pages written out to the files
    return [name for name, path in files.items() if needle.encode() in path.read_bytes()]


def assert_index_forgot(app, relations_before: dict[str, str] | None) -> None:
    """After an erasure: no trace of the phrase in the full-text index or its files."""
    folder = Path(app.instance_path)
    with app.app_context():
        assert index_holding(INDEX_NEEDLE) == []
        if db.engine.dialect.name == "sqlite":
            # The SQLite file and its write-ahead log, byte for byte.
            assert files_holding(folder, INDEX_NEEDLE) == []
            return
        # PostgreSQL: a plain VACUUM leaves the dead row's bytes in its page and the word's
        # GIN entry in place; the table and its index were rewritten after the erasure.
        assert postgres_files_holding(INDEX_NEEDLE) in ([], None)
        after = postgres_relations()
        assert relations_before is not None
        assert not set(after.values()) & set(relations_before.values()), (relations_before,
                                                                         after)


def index_before_erasure(app) -> dict[str, str] | None:
    """Check the index holds the phrase now (so the checks after can find it); return the
    PostgreSQL files, to tell that they were rewritten."""
    with app.app_context():
        assert index_holding(INDEX_NEEDLE), "the approved story's words are in the index"
        if db.engine.dialect.name != "postgresql":
            assert files_holding(Path(app.instance_path), INDEX_NEEDLE)
            return None
        held = postgres_files_holding(INDEX_NEEDLE)
        assert held is None or held, "the index's files hold the phrase before erasure"
        return postgres_relations()


def passage_of(app, run_id: int, story_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(ThemePassage.passage_id).join(Passage).where(
            ThemePassage.run_id == run_id, Passage.story_id == story_id).limit(1))


def test_withdrawal_erases_the_story_everywhere(app, client, auth, corpus_instance, caplog,
                                                tmp_path):
    caplog.set_level(logging.DEBUG, logger="storyhub")
    ids = corpus_instance.data["ids"]
    story_id, reporter_id = ids["housing-1"], corpus_instance.data["reporter"]
    tell_story(app, story_id, reporter_id)
    facilitator = auth.login_as(Role.FACILITATOR)
    approve_for_library(app, story_id, reporter_id, facilitator)
    run_id = run_now(app, facilitator)
    clip = f"/themes/runs/{run_id}/passages/{passage_of(app, run_id, story_id)}/clip.m4a"
    assert client.get(clip, buffered=True).status_code == 200  # a clip is cut and kept
    assert client.get(f"/stories/{story_id}/transcript.txt").status_code == 200
    with app.app_context():
        # As a run finds a name said often in one story: a keyword of its theme, in its name.
        theme = db.session.scalars(select(Theme).join(ThemePassage).where(
            ThemePassage.run_id == run_id, ThemePassage.story_id == story_id)).first()
        said_elsewhere = list(theme.keywords)
        theme.keywords = ["marigold wexquayle", *said_elsewhere]
        theme.label = theme.auto_label = modeling.readable_label(theme.keywords)
        named, theme_id = theme.label, theme.id
        model_key = db.session.get(ThemeRun, run_id).model_key
        db.session.commit()
        model = get_storage_path(model_key)
        assert model.is_dir() and all(is_sealed(f) for f in model.iterdir())
        before = leaks(app, caplog)
        # A backup taken now: the sealed playback copy, and the story's wrapped key.
        story = db.session.get(Story, story_id)
        token, backup_key = story.wrapped_key, story.recording.playback_key
        backup = tmp_path / "backup.m4a"
        backup.write_bytes(get_storage_path(backup_key).read_bytes())
    relations = index_before_erasure(app)
    # The search can find them: the name and the phrase are in the database (and in the
    # SQLite file), and no file made from the story holds them in the clear: the recordings,
    # the clip and the saved theme model are sealed.
    assert "quillfeather" in before and "wexquayle" in before, before
    assert "themes.keywords" in before["wexquayle"], before
    assert not [where for where in before["wexquayle"] if where.startswith("file:")
                and not where.startswith("file:storyhub.sqlite")], before

    response = client.post(f"/stories/{story_id}/consent/withdraw")
    assert response.status_code == 302
    # No worker runs here: the erasure waits, queued. The theme run has let go of the story
    # already: its keywords and name, and the saved model (whose vocabulary holds its words).
    with app.app_context():
        assert db.session.get(Job, erase_job(app, story_id)).status is JobStatus.QUEUED
        theme = db.session.get(Theme, theme_id)
        assert "wexquayle" not in (theme.label + " ".join(theme.keywords)).lower()
        assert set(theme.keywords) <= set(said_elsewhere)
        # The name loses only the words no longer said ("Marigold, wexquayle and landlord"
        # becomes "Landlord"); it is not made again from the keywords left.
        assert theme.label in (named.rsplit(" and ", 1)[-1].capitalize(), "Theme")
        run = db.session.get(ThemeRun, run_id)
        assert run.stale_reason and run.model_key is None and run.model_wrapped_key is None
        assert not model.exists()
        assert not [where for where in rows_holding("wexquayle")
                    if where.startswith(("themes.", "theme_runs."))]
    # At once, before the erasure has run, nothing reads or plays the story.
    for url in (f"/stories/{story_id}/transcript", f"/stories/{story_id}/transcript.txt",
                f"/stories/{story_id}/transcript.json", f"/stories/{story_id}/audio", clip):
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert "withdrew their consent" in refused.get_data(as_text=True), url
    assert "wexquayle" not in client.get(f"/themes/runs/{run_id}/map.json").get_data(
        as_text=True).lower()
    assert "wexquayle" not in client.get(f"/themes/runs/{run_id}/board").get_data(
        as_text=True).lower()

    with app.app_context():
        assert run_job(erase_job(app, story_id)) == "done"
    assert client.get(f"/stories/{story_id}").status_code == 404
    assert_index_forgot(app, relations)
    with app.app_context():
        assert leaks(app, caplog) == {}
        assert db.session.get(Story, story_id) is None
        # The story's key is gone from the database, so even the backup cannot be read.
        assert token and rows_holding(token.lower()[-24:]) == []
        assert is_sealed(backup)
        with pytest.raises(KeyDestroyed):
            StoredFile(backup, backup_key, None).open()
        run = db.session.get(ThemeRun, run_id)
        assert run.stale_reason, "the run says a story left it"
        words = " ".join(t.label + " " + " ".join(t.keywords) for t in run.themes).lower()
        assert "wexquayle" not in words
        # The other stories are untouched.
        assert db.session.scalar(select(Transcript).where(
            Transcript.story_id == ids["housing-2"])) is not None
    page = client.get(f"/themes/runs/{run_id}").get_data(as_text=True)
    assert "wexquayle" not in page.lower()


def test_admin_erasure_leaves_no_word_in_the_search_index(app, client, auth, corpus_instance):
    ids = corpus_instance.data["ids"]
    story_id, reporter_id = ids["housing-2"], corpus_instance.data["reporter"]
    tell_story(app, story_id, reporter_id)
    facilitator = auth.login_as(Role.FACILITATOR)
    approve_for_library(app, story_id, reporter_id, facilitator)
    approve_for_library(app, ids["housing-3"], reporter_id, facilitator, told=False)
    relations = index_before_erasure(app)
    with app.app_context():
        # Retired first: its row leaves the index then, but not its words (deleted entries).
        library.retire(db.session.get(Story, story_id), db.session.get(User, facilitator))
        db.session.commit()
        assert search.full_text(PHRASE, select(Story.id)) == []
    auth.logout()
    auth.login_as(Role.ADMIN)
    assert client.post(f"/stories/{story_id}/erase").status_code == 302
    with app.app_context():
        assert run_job(erase_job(app, story_id)) == "done"
        assert db.session.get(Story, story_id) is None
    assert_index_forgot(app, relations)
    with app.app_context():  # the index, merged, still finds the other stories
        assert [h.story_id for h in search.full_text("hostel", select(Story.id))] == [
            ids["housing-3"]]


def test_narrowed_consent_takes_back_only_what_it_covered(app, client, auth, corpus_instance):
    ids = corpus_instance.data["ids"]
    story_id = ids["work-1"]
    facilitator = auth.login_as(Role.FACILITATOR)
    run_id = run_now(app, facilitator)
    clip = f"/themes/runs/{run_id}/passages/{passage_of(app, run_id, story_id)}/clip.m4a"
    assert client.get(clip, buffered=True).status_code == 200
    clips = Path(app.instance_path).rglob(f"story-{story_id}/*")
    assert list(clips), "the clip is kept for the next play"

    form = client.get(f"/stories/{story_id}/consent").get_data(as_text=True)
    assert 'name="consent_play_in_workshops"' in form and "checked" in form
    agreed = {f"consent_{scope.value}": "y" for scope in Scope
              if scope is not Scope.PLAY_IN_WORKSHOPS}
    response = client.post(f"/stories/{story_id}/consent", data={
        **agreed, "how": "phone", "confirmed_on": "2026-01-05"})
    assert response.status_code == 302, response.get_data(as_text=True)
    refused = client.get(clip)
    assert refused.status_code == 403
    assert "played in workshops" in refused.get_json()["error"]
    with app.app_context():
        assert run_job(erase_job(app, story_id)) == "done"
        story = db.session.get(Story, story_id)
        assert story is not None and story.recording is not None
        assert transcripts.get_transcript(story) is not None  # still agreed: kept
        assert passage_of(app, run_id, story_id) is not None
    assert not list(Path(app.instance_path).rglob(f"story-{story_id}/*"))
    assert client.get(f"/stories/{story_id}/transcript").status_code == 200

    # Taking back transcription and analysis erases the transcript and its place in themes,
    # and the story stays (the recording with it, for the reporter to play back).
    response = client.post(f"/stories/{story_id}/consent", data={
        "consent_quote_in_packs": "y", "how": "in_person", "confirmed_on": "2026-01-06"})
    assert response.status_code == 302
    with app.app_context():
        assert run_job(erase_job(app, story_id)) == "done"
        story = db.session.get(Story, story_id)
        assert transcripts.get_transcript(story) is None
        assert passage_of(app, run_id, story_id) is None
        assert story.recording.playback_key
    denied = client.get(f"/stories/{story_id}/transcript")
    assert denied.status_code == 403
    assert "transcribed or analysed" in denied.get_data(as_text=True)


def test_consent_changes_that_cannot_be_done_say_why(app, client, auth, corpus_instance):
    story_id = corpus_instance.data["ids"]["drugs-1"]
    auth.login_as(Role.FACILITATOR)
    every = {f"consent_{scope.value}": "y" for scope in Scope}
    cases = [({"how": "phone", "confirmed_on": "2026-01-05"}, "use “Withdraw consent”"),
             ({**every, "how": "phone", "confirmed_on": "2026-01-05"}, "Nothing has changed"),
             ({**every, "how": "phone", "confirmed_on": "2026-01-05",
               "review_on": "2020-01-01"}, "The new review date must be in the future."),
             ({**every, "how": "phone", "confirmed_on": "2999-01-01"}, "cannot be in the future")]
    for data, message in cases:
        response = client.post(f"/stories/{story_id}/consent", data=data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), data
    with app.app_context():
        assert db.session.scalar(select(Job).where(Job.kind == "erase")) is None
    # Another site's reporter cannot reach the page at all.
    auth.logout()
    auth.login_as(Role.REPORTER)
    assert client.get(f"/stories/{story_id}/consent").status_code in (403, 404)


def test_retention_with_a_moved_clock(app, client, auth, corpus_instance, monkeypatch):
    from datetime import timedelta

    from storyhub.audit import AuditEvent
    from storyhub.config import override
    from storyhub.jobs.runner import schedule_periodic
    from storyhub.stories import retention

    ids = corpus_instance.data["ids"]
    lapsing = ids["drugs-2"]
    real = dates.today()
    override(app, {"RETENTION_ORIGINAL_DAYS": 30, "RETENTION_EXPIRED_DAYS": 90})
    with app.app_context():
        db.session.get(Story, lapsing).consent.review_on = real + timedelta(days=10)
        originals = {s.id: get_storage_path(s.recording.original_key)
                     for s in db.session.scalars(select(Story))}
        db.session.commit()
    assert all(path.is_file() for path in originals.values())

    def move_to(days: int) -> None:
        monkeypatch.setattr(retention, "today", lambda: real + timedelta(days=days))

    def audited(action: str) -> list[int]:
        with app.app_context():
            return list(db.session.scalars(select(AuditEvent.target_id).where(
                AuditEvent.action == action, AuditEvent.actor_id.is_(None))))

    def run_todays_sweep() -> None:
        with app.app_context():
            assert schedule_periodic() == 1
            assert schedule_periodic() == 0  # once a day
            job_id = db.session.scalar(select(Job.id).where(Job.key == retention.daily_key()))
            assert run_job(job_id) == "done"

    move_to(20)  # consent lapsed 10 days ago: kept, but the reporter is told
    run_todays_sweep()
    assert audited("retention.original_deleted") == [] and audited("retention.erase") == []
    auth.login("corpus-reporter", "quiet lantern orchard 42")
    listing = client.get("/stories/").get_data(as_text=True)
    assert 'id="consent-due"' in listing and f"/stories/{lapsing}/consent" in listing

    move_to(40)  # reviewed more than 30 days ago: originals go, the playback copies stay
    run_todays_sweep()
    assert sorted(audited("retention.original_deleted")) == sorted(originals)
    assert not any(path.exists() for path in originals.values())
    assert client.get(f"/stories/{ids['housing-2']}/audio", buffered=True).status_code == 200

    move_to(101)  # 91 days past the review date, not renewed: erased
    run_todays_sweep()
    assert audited("retention.erase") == [lapsing]
    with app.app_context():
        assert run_job(erase_job(app, lapsing)) == "done"
        assert db.session.get(Story, lapsing) is None
        assert db.session.get(Story, ids["housing-2"]) is not None
    assert audited("story.erase") == [lapsing]


def get_storage_path(key: str) -> Path:
    from storyhub.storage import get_storage

    return get_storage().path(key)


def test_subject_access_zip_holds_everything_about_the_storyteller(app, client, auth,
                                                                   corpus_instance):
    import io
    import json
    import zipfile

    story_id = corpus_instance.data["ids"]["officer-1"]
    tell_story(app, story_id, corpus_instance.data["reporter"])
    auth.login_as(Role.FACILITATOR)
    assert client.get(f"/stories/{story_id}").status_code == 200  # shows in the access log
    refused = client.get(f"/stories/{story_id}/subject-access.zip")
    assert refused.status_code == 403
    auth.logout()
    auth.login_as(Role.ADMIN)
    response = client.get(f"/stories/{story_id}/subject-access.zip", buffered=True)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    folder = f"story-{story_id}/"
    assert {"README.txt", folder + "story.json", folder + "transcript.txt",
            folder + "transcript.json", folder + "playback.m4a", folder + "themes.json",
            folder + "access-log.csv"} <= names
    assert any(name.startswith(folder + "original.") for name in names)
    assert REAL_NAME in archive.read("README.txt").decode()
    assert PHRASE in archive.read(folder + "transcript.txt").decode()  # their own words, whole
    record = json.loads(archive.read(folder + "story.json"))
    assert record["consent"]["transcribe_analyse"] is True
    log = archive.read(folder + "access-log.csv").decode()
    assert "story.view" in log and "transcript.edit" in log
    with app.app_context():
        from storyhub.audit import AuditEvent

        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "subject_access.export",
            AuditEvent.target_id == story_id)) is not None
        from storyhub.storage import get_storage

        tmp = get_storage().tmp
        assert tmp.is_dir() and not list(tmp.glob("*.zip"))


@pytest.mark.parametrize("state", ["withdrawn", "overdue"])
def test_every_transcript_route_refuses_a_withdrawn_or_overdue_story(app, client, auth,
                                                                     corpus_instance, state):
    from datetime import datetime, timedelta

    story_id = corpus_instance.data["ids"]["drugs-3"]
    with app.app_context():
        story = db.session.get(Story, story_id)
        segment_id = transcripts.get_transcript(story).segments[0].id
        if state == "withdrawn":
            story.consent.withdrawn_at = datetime(2026, 1, 2, 10, 0)
        else:
            story.consent.review_on = dates.today() - timedelta(days=1)
        db.session.commit()
    expected = "withdrew their consent" if state == "withdrawn" else "due for review"
    auth.login("corpus-reporter", "quiet lantern orchard 42")  # the reporter who gathered it
    base = f"/stories/{story_id}"
    reads = [f"{base}/transcript"] + [f"{base}/transcript.{fmt}"
                                      for fmt in ("txt", "vtt", "srt", "json")]
    writes = [(f"{base}/transcript/segments/{segment_id}", {"text": "changed"}),
              (f"{base}/transcript/speakers", {"speaker-S1": "Someone"}),
              (f"{base}/transcript/review", {}),
              (f"{base}/transcript/redactions/phrase", {"phrase": "the", "label": "[NAME]"})]
    for url in reads:
        response = client.get(url)
        assert response.status_code == 403, url
        assert expected in response.get_data(as_text=True), url
    for url, data in writes:
        response = client.post(url, data=data)
        assert response.status_code == 403, url
        assert expected in response.get_data(as_text=True), url
    with app.app_context():
        segment = db.session.get(Segment, segment_id)
        assert segment.text != "changed"


def test_scrub_waits_for_a_transaction_older_than_the_erasure(app, caplog):
    """A transaction open when the erasure ends would keep the erased rows in VACUUM FULL's
    rewrite: the scrub waits for it (bounded), and says so in the log when it cannot."""
    import threading
    import time

    from storyhub import database

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no concurrent transactions to wait for")
        older = db.engine.connect()
        older.execute(sa.text("SELECT txid_current()"))  # a transaction with an id, left open
        timer = threading.Timer(1.0, older.rollback)
        timer.start()
        started = time.monotonic()
        database.scrub()
        waited = time.monotonic() - started
        timer.join()
        assert waited >= 1.0
        assert "older transaction" not in caplog.text

        older.execute(sa.text("SELECT txid_current()"))
        try:
            with (caplog.at_level(logging.WARNING, logger="storyhub.database"),
                  db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn):
                database._wait_for_older_transactions(conn, timeout=0.3)
        finally:
            older.rollback()
            older.close()
        assert "1 older transaction(s) still open" in caplog.text
