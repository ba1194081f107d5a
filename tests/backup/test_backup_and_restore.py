"""Backup and restore, end to end on real parts: a prepared instance with twelve stories (real
intake, sealed audio), SQLite or PostgreSQL, the real `storyhub` commands, kill -9.

What a user needs: a restored instance where people sign in and play a story; a story erased
after the backup stays erased (its words nowhere: database, full-text index, storage); a
backup that was interrupted is refused, and making it harmed nothing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import make_url

from storyhub import dates
from storyhub.accounts.models import User
from storyhub.cli import main
from storyhub.extensions import db
from storyhub.stories.models import Story
from storyhub.transcripts.models import Transcript
from storyhub.transcripts.timed_text import apply_segment_text
from tests.support.instances import create_database, drop_database, instance_app

# Made-up words: no story says them, and a stemmer leaves them as they are.
ERASED_PHRASE = "zorblat quennix"
KEPT_PHRASE = "vellomir trusk"
NARROWED_WORD = "quillerto"
REPORTER_PASSWORD = "quiet lantern orchard 42"  # tests/support/theme_corpus.py


@pytest.fixture
def prepared(corpus_instance):
    return corpus_instance


@pytest.fixture
def data(corpus_instance) -> dict:
    return corpus_instance.data


def _say(app, story_id: int, phrase: str) -> None:
    """Put `phrase` in a story's title, transcript and the library's full-text index."""
    from storyhub.library import search

    with app.app_context():
        story = db.session.get(Story, story_id)
        story.title = f"About {phrase}"
        transcript = db.session.scalar(select(Transcript).where(Transcript.story_id == story_id))
        segment = transcript.segments[0]
        apply_segment_text(segment, f"{segment.text} {phrase}")
        search.index_story(story_id, story.title, "", " ".join(s.text for s in
                                                               transcript.segments))
        db.session.commit()


def _withdraw_and_erase(app, story_id: int, reporter_id: int) -> None:
    from storyhub.jobs.models import Job
    from storyhub.jobs.runner import run_job
    from storyhub.stories import service

    with app.app_context():
        service.withdraw_consent(db.session.get(Story, story_id), db.session.get(User,
                                                                                  reporter_id))
        db.session.commit()
        job_id = db.session.scalar(select(Job.id).where(Job.kind == "erase",
                                                        Job.target_id == story_id))
        assert run_job(job_id) == "done"


def _narrow_to_no_analysis(app, story_id: int, reporter_id: int) -> None:
    """The storyteller takes back transcription and analysis only: the transcript goes."""
    from storyhub.jobs.models import Job
    from storyhub.jobs.runner import run_job
    from storyhub.stories import service
    from storyhub.stories.consent import Scope

    with app.app_context():
        keep = {s for s in Scope if s is not Scope.TRANSCRIBE_ANALYSE}
        service.change_consent(db.session.get(Story, story_id),
                               service.ConsentChange(keep, dates.today()),
                               db.session.get(User, reporter_id))
        db.session.commit()
        job_id = db.session.scalar(select(Job.id).where(Job.kind == "erase",
                                                        Job.target_id == story_id))
        assert run_job(job_id) == "done"


def _everywhere_in_database(url: str, phrase: str) -> list[str]:
    """Every table (the full-text index's own included) whose rows hold `phrase`."""
    engine = sa.create_engine(url)
    found = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"'))  # noqa: S608
                if any(phrase in repr(tuple(row)).lower() for row in rows):
                    found.append(table)
    finally:
        engine.dispose()
    return found


def _full_text_matches(url: str, word: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = "SELECT count(*) FROM library_search WHERE library_search MATCH :w"
            else:
                query = ("SELECT count(*) FROM library_search "
                         "WHERE document @@ plainto_tsquery('english', :w)")
            return conn.execute(sa.text(query), {"w": word}).scalar_one()
    finally:
        engine.dispose()


def _files_holding(folder: Path, phrase: str) -> list[Path]:
    needle = phrase.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes().lower()]


@pytest.fixture
def restore_target(tmp_path, app):
    """(instance folder, database URL or None) for a restore: an empty folder, and on
    PostgreSQL an empty database of its own, dropped after."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    folder = tmp_path / "restored"
    if url.startswith("sqlite"):
        yield folder, None
        return
    base = make_url(url)
    restored = base.set(database=f"{base.database}_restored").render_as_string(
        hide_password=False)
    create_database(restored)
    yield folder, restored
    drop_database(restored)


def _restore(source: Path, target: tuple[Path, str | None], *args: str, **env: str):
    folder, url = target
    environment = {"STORYHUB_INSTANCE_PATH": str(folder), **env}
    if url:
        environment["STORYHUB_DATABASE_URL"] = url
    return CliRunner().invoke(main, ["restore", str(source), *args], env=environment)


def _restored_url(target: tuple[Path, str | None]) -> str:
    folder, url = target
    return url or f"sqlite:///{folder / 'storyhub.sqlite'}"


def test_restored_instance_works_and_a_story_erased_after_the_backup_stays_erased(
        app, runner, data, tmp_path, restore_target, monkeypatch):
    erased, kept, narrowed = (data["ids"][key] for key in ("work-1", "housing-1", "drugs-1"))
    _say(app, erased, ERASED_PHRASE)
    _say(app, kept, KEPT_PHRASE)
    with app.app_context():
        segment = db.session.scalar(select(Transcript).where(
            Transcript.story_id == narrowed)).segments[0]
        apply_segment_text(segment, f"{segment.text} {NARROWED_WORD}")
        db.session.commit()
    backup = tmp_path / "backup"
    made = runner.invoke(args=["backup", str(backup)])
    assert made.exit_code == 0, made.output
    assert "Backed up 12 stories" in made.output
    assert "are not in it" in made.output  # the master keys: never in a backup unasked
    instance = Path(app.instance_path)
    master_keys = (instance / "master.keys").read_text().strip()
    assert not _files_holding(backup, master_keys.partition(":")[2].lower())

    _withdraw_and_erase(app, erased, data["reporter"])  # after the backup was taken
    _narrow_to_no_analysis(app, narrowed, data["reporter"])

    refused = _restore(backup, restore_target, STORYHUB_MASTER_KEYS=master_keys)
    assert refused.exit_code != 0 and "erasure ledger" in refused.output
    assert not restore_target[0].exists() or not any(restore_target[0].iterdir())
    done = _restore(backup, restore_target, "--ledger", str(instance / "erasures.ledger"),
                    STORYHUB_MASTER_KEYS=master_keys)
    assert done.exit_code == 0, done.output
    assert "2 stories erased since the backup were erased again" in done.output

    url = _restored_url(restore_target)
    assert _everywhere_in_database(url, ERASED_PHRASE) == []
    assert "zorblat" not in repr(_everywhere_in_database(url, "zorblat"))
    assert _full_text_matches(url, "zorblat") == 0
    assert _files_holding(restore_target[0], "zorblat") == []
    # The search can find what is there: the kept story's words came back.
    assert "transcript_segments" in _everywhere_in_database(url, KEPT_PHRASE)
    assert _full_text_matches(url, "vellomir") == 1
    assert _everywhere_in_database(url, NARROWED_WORD) == []  # its transcript went again

    monkeypatch.setenv("STORYHUB_MASTER_KEYS", master_keys)
    monkeypatch.setenv("STORYHUB_WTF_CSRF_ENABLED", "false")
    monkeypatch.setenv("STORYHUB_SESSION_COOKIE_SECURE", "false")
    with instance_app(url, restore_target[0]) as restored:
        with restored.app_context():
            assert db.session.get(Story, erased) is None
            assert db.session.scalar(select(sa.func.count()).select_from(Story)) == 11
            consent = db.session.get(Story, narrowed).consent  # the narrowed story stays,
            assert not consent.transcribe_analyse and consent.quote_in_packs  # as narrowed
        client = restored.test_client()
        signed_in = client.post("/login", data={"username": "corpus-reporter",
                                                "password": REPORTER_PASSWORD})
        assert signed_in.status_code == 302
        audio = client.get(f"/stories/{kept}/audio")
        assert audio.status_code == 200 and audio.mimetype.startswith("audio/")
        assert len(audio.get_data()) > 10_000
        assert client.get(f"/stories/{erased}").status_code == 404


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _storyhub() -> str:
    return str(Path(sys.executable).with_name("storyhub"))


def test_a_backup_killed_midway_is_refused_and_the_live_instance_is_untouched(
        app, tmp_path, restore_target, data):
    instance = Path(app.instance_path)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    storage_before = _tree_digest(instance / "storage")
    with app.app_context():
        stories_before = db.session.scalar(select(sa.func.count()).select_from(Story))
    size = sum((instance / "storage" / name).stat().st_size for name in storage_before)
    backup = tmp_path / "backup"
    env = {**os.environ, "STORYHUB_INSTANCE_PATH": str(instance)}
    if not url.startswith("sqlite"):
        env["STORYHUB_DATABASE_URL"] = url
    # Throttled to take about 20 s whole, so it is surely killed part of the way through.
    rate = max(size / 20 / 1e6, 0.01)
    process = subprocess.Popen([_storyhub(), "backup", str(backup), "--max-rate", f"{rate:.3f}"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    try:
        while not (backup / "storage").is_dir() or not any((backup / "storage").rglob("*.*")):
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore
            assert time.monotonic() < deadline, "the backup never started copying files"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()  # type: ignore[union-attr]
    assert process.returncode == -signal.SIGKILL
    assert not (backup / "manifest.json").exists()

    refused = _restore(backup, restore_target, "--no-ledger",
                       STORYHUB_MASTER_KEYS=(instance / "master.keys").read_text())
    assert refused.exit_code != 0
    assert "incomplete" in refused.output and "nothing was restored" in refused.output
    assert not restore_target[0].exists() or not any(restore_target[0].iterdir())

    # The live instance: the same files, byte for byte, and a database that still serves.
    assert _tree_digest(instance / "storage") == storage_before
    if url.startswith("sqlite"):
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()
    with app.app_context():
        assert db.session.scalar(select(sa.func.count()).select_from(Story)) == stories_before
    client = app.test_client()
    assert client.post("/login", data={"username": "corpus-reporter",
                                       "password": REPORTER_PASSWORD}).status_code == 302
    story = data["ids"]["housing-1"]
    assert client.get(f"/stories/{story}/audio").status_code == 200


@pytest.mark.one_database  # keys and checksums: the same whatever the engine
def test_master_keys_kept_only_sealed_with_a_passphrase_and_a_damaged_backup_is_refused(
        app, runner, tmp_path, restore_target, data):
    backup = tmp_path / "backup"
    passphrase = "orchard lantern quietly hums"
    made = runner.invoke(args=["backup", str(backup), "--include-master-keys"],
                         env={"STORYHUB_BACKUP_PASSPHRASE": passphrase})
    assert made.exit_code == 0, made.output
    master_keys = (Path(app.instance_path) / "master.keys").read_text().strip()
    assert not _files_holding(backup, master_keys.partition(":")[2].lower())

    wrong = _restore(backup, restore_target, "--no-ledger",
                     STORYHUB_BACKUP_PASSPHRASE="not the passphrase at all")
    assert wrong.exit_code != 0 and "passphrase does not open" in wrong.output

    stored = sorted((backup / "storage").rglob("playback.m4a"))[0]
    good = stored.read_bytes()
    stored.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    damaged = _restore(backup, restore_target, "--no-ledger",
                       STORYHUB_BACKUP_PASSPHRASE=passphrase)
    assert damaged.exit_code != 0 and "does not match its checksum" in damaged.output
    assert not restore_target[0].exists() or not any(restore_target[0].iterdir())

    stored.write_bytes(good)
    done = _restore(backup, restore_target, "--no-ledger", STORYHUB_BACKUP_PASSPHRASE=passphrase)
    assert done.exit_code == 0, done.output
    assert "Opened" in done.output and "authenticates" in done.output
    assert (restore_target[0] / "master.keys").read_text().strip() == master_keys
    assert oct((restore_target[0] / "master.keys").stat().st_mode & 0o777) == "0o600"


def test_a_cut_short_last_ledger_line_is_skipped_and_a_damaged_one_refused(tmp_path):
    from storyhub.backup import ledger

    path = tmp_path / "erasures.ledger"
    entry = ledger.Entry(7, "ab" * 16, None, dates.today().isoformat())
    ledger.append(path, [entry])
    with open(path, "a") as fh:
        fh.write('{"story": 8, "ke')  # the machine stopped mid-line
    assert ledger.read(path) == [entry]
    with open(path, "a") as fh:
        fh.write("\n" + entry.to_line())
    with pytest.raises(ValueError, match="line 2"):
        ledger.read(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
