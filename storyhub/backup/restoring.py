"""`storyhub restore`: rebuild an instance from a backup, into an empty folder.

Refused before anything is written: an incomplete backup (no manifest: it was interrupted), a
folder or database that is not empty, master keys that do not cover the backup's keys, and a
missing erasure ledger (unless the restorer says there is none to apply).

Then every file is copied and checked against its checksum as it goes, the database is put
back (a copy of the SQLite file, or `pg_restore` into an empty PostgreSQL database) and brought
up to this StoryHub's schema, and the erasure ledger is applied: every story erased since the
backup was taken (matched by id and key id) is erased again, by the same code as the first
time, before the restore finishes. Last, every stored file the restored database refers to is
opened with its key, every chunk authenticated. Any failure removes what the restore wrote.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .. import keys, sealed, signals
from ..config import database_uri
from ..database import scrub, upgrade_schema
from ..extensions import db
from ..jobs import runner as jobs
from ..storage import private_folder
from ..stories.erasure import erase_now
from ..stories.models import Story
from ..upgrades import check_not_newer, current_revision, pending
from . import ledger
from .contents import Owner, read_snapshot, stored_files
from .making import owner_key, pg_environment
from .manifest import SEALED_KEYS, BackupError, FileEntry, Manifest, open_master_keys, sha256_file

logger = logging.getLogger(__name__)
_BLOCK = 1024 * 1024
REASON = "erased after this backup was taken (erasure ledger)"


@dataclass
class Target:
    """Where to restore: an instance folder, and the database and storage it uses."""

    instance: Path
    database_url: str | None = None  # None: SQLite in the instance folder
    storage_dir: Path | None = None  # None: `storage` in the instance folder
    master_keys: str | None = None  # from the environment (the secret store), if set there
    ledger: Path | None = None  # the restored instance's own ledger (default: in it)

    @property
    def sqlite(self) -> bool:
        return self.database_url is None or self.database_url.startswith("sqlite")

    @property
    def storage(self) -> Path:
        return self.storage_dir or self.instance / "storage"

    @property
    def uri(self) -> str:
        return database_uri(self.database_url, str(self.instance))


@dataclass
class Result:
    stories: int = 0
    files: int = 0
    bytes: int = 0
    erased: list[int] = field(default_factory=list)
    upgraded_from: str | None = None


Progress = Callable[[int], None]


def _empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _pg_tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sa.inspect(conn).get_table_names()
    except sa.exc.OperationalError as exc:
        raise BackupError(f"Cannot reach the database to restore into ({exc.orig}). Create "
                          "it empty first (createdb), then restore.") from None
    finally:
        engine.dispose()


def check_target(manifest: Manifest, target: Target) -> None:
    """Refuse a target that is not empty, or of the other database engine."""
    if not _empty(target.instance):
        raise BackupError(f"{target.instance} is not empty: restore into a new, empty folder "
                          "(a restore never overwrites an instance).")
    if not _empty(target.storage):
        raise BackupError(f"The storage folder {target.storage} is not empty: give an empty one.")
    if manifest.engine == "sqlite" and not target.sqlite:
        raise BackupError("This backup is of a SQLite database, and STORYHUB_DATABASE_URL names "
                          "another engine: unset it to restore into the instance folder.")
    if manifest.engine == "postgresql":
        if target.sqlite:
            raise BackupError("This backup is of a PostgreSQL database: set "
                              "STORYHUB_DATABASE_URL to an empty database to restore it into.")
        tables = _pg_tables(target.uri)
        if tables:
            raise BackupError(f"The database {make_url(target.uri).database} is not empty "
                              f"({len(tables)} tables): restore into a new, empty database.")


def choose_master_keys(manifest: Manifest, source: Path, target: Target,
                       passphrase: Callable[[], str]) -> tuple[str, bool]:
    """Return the master keys to restore with, and whether they came from the backup."""
    text, from_backup = target.master_keys, False
    if not text and manifest.master_keys_included:
        text, from_backup = open_master_keys(source / SEALED_KEYS, passphrase()), True
    if not text:
        raise BackupError(
            "This backup does not hold the master keys its stories are sealed with (ids "
            f"{', '.join(manifest.master_key_ids) or 'none'}), as it should not. Set "
            "STORYHUB_MASTER_KEYS from your secret store and restore again. Nothing was "
            "restored.")
    masters = sealed.load_master_keys(text)
    missing = [key_id for key_id in manifest.master_key_ids if masters.get(key_id) is None]
    if missing:
        raise BackupError(f"The master keys given do not include {', '.join(missing)}, which "
                          "wrap this backup's story keys. Nothing was restored.")
    return text, from_backup


def read_ledgers(paths: list[Path]) -> list[ledger.Entry]:
    entries: list[ledger.Entry] = []
    for path in paths:
        if not path.is_file():
            raise BackupError(f"There is no erasure ledger at {path}. Nothing was restored.")
        try:
            entries += ledger.read(path)
        except ValueError as exc:
            raise BackupError(f"{exc}. Nothing was restored.") from None
    return entries


def _copy_checked(source: Path, entry: FileEntry, out: Path, progress: Progress) -> None:
    digest, size = hashlib.sha256(), 0
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while block := src.read(_BLOCK):
                dst.write(block)
                digest.update(block)
                size += len(block)
                progress(len(block))
    except FileNotFoundError:
        raise BackupError(f"The backup is missing {entry.path}, which its manifest lists: it "
                          "was damaged after it was made. Nothing was restored.") from None
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise BackupError(f"{entry.path} in the backup does not match its checksum: the backup "
                          "was damaged after it was made. Nothing was restored.")


def _restore_database(manifest: Manifest, source: Path, target: Target,
                      progress: Progress) -> None:
    entry = manifest.database
    if manifest.engine == "sqlite":
        _copy_checked(source / entry.path, entry, target.instance / "storyhub.sqlite", progress)
        return
    if sha256_file(source / entry.path) != entry.sha256:
        raise BackupError(f"{entry.path} in the backup does not match its checksum: the backup "
                          "was damaged after it was made. Nothing was restored.")
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not installed: install the PostgreSQL client.")
    uri, env = pg_environment(make_url(target.uri))
    done = subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
         "--single-transaction", f"--dbname={uri}", str(source / entry.path)],
        env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip() or done.returncode}")
    progress(entry.size)


def _clean(target: Target, wrote_database: bool) -> None:
    """Remove what a failed restore wrote (the target was empty when it began)."""
    for folder in (target.instance, target.storage):
        if folder.is_dir():
            for child in folder.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() \
                    else child.unlink()
    if wrote_database and not target.sqlite:
        engine = sa.create_engine(target.uri, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()


def apply_ledger(entries: list[ledger.Entry]) -> list[int]:
    """Erase again, in the restored instance (app context), every story of `entries` it
    holds; return their ids. Whole erasures win over scopes."""
    from datetime import UTC, datetime

    wanted: dict[int, list[ledger.Entry]] = {}
    for entry in entries:
        wanted.setdefault(entry.story_id, []).append(entry)
    erased = []
    for story_id, found in sorted(wanted.items()):
        story = db.session.get(Story, story_id)
        if story is None:
            continue
        try:
            data_key = keys.story_key(story)
        except sealed.SealedFileError:
            data_key = None
        key_id = ledger.key_id(data_key) if data_key else None
        mine = [e for e in found if e.key_id == key_id]
        if not mine:
            continue  # the id was used again, by a story the ledger does not name
        if any(e.scopes is None for e in mine):
            scopes = None
            if story.consent is not None and story.consent.withdrawn_at is None:
                story.consent.withdrawn_at = datetime.now(UTC).replace(tzinfo=None)
            jobs.cancel(story.id, "This story was erased after the backup was taken.")
        else:
            scopes = sorted({s for e in mine for s in e.scopes or ()})
            if story.consent is not None:
                for scope in scopes:
                    setattr(story.consent, scope, False)
            if "transcribe_analyse" in scopes:
                jobs.cancel(story.id, "The storyteller no longer agrees to their story being "
                                      "transcribed.")
        signals.story_erasure_requested.send(story.id, scopes=scopes)
        erase_now(story, scopes, None, REASON)
        erased.append(story_id)
    db.session.commit()
    return erased


def verify_files(storage_root: Path) -> tuple[int, int]:
    """Open every stored file the restored database refers to, authenticating every chunk,
    and remove files it no longer refers to (left by stories the ledger erased).

    Returns (files checked, files removed); BackupError names the first that fails.
    """
    with db.engine.connect() as conn:
        snapshot = read_snapshot(conn)
    checked, kept = 0, set()
    keys_of: dict[Owner, bytes] = {}
    for key, owner, required in stored_files(storage_root, snapshot):
        path = storage_root / key
        kept.add(key)
        if not path.is_file():
            if required:
                raise BackupError(f"{key}, which the restored database refers to, is not in "
                                  "the backup.")
            continue
        if sealed.is_sealed(path):
            if owner not in keys_of:
                keys_of[owner] = owner_key(owner, snapshot)
            try:
                with sealed.open_sealed(path, keys_of[owner], key) as reader:
                    buffer = bytearray(sealed.CHUNK_SIZE)
                    while reader.readinto(buffer):
                        pass
            except sealed.SealedFileError as exc:
                raise BackupError(f"{key} does not open with its key ({exc}).") from None
        checked += 1
    removed = 0
    for path in sorted(storage_root.rglob("*")):
        relative = path.relative_to(storage_root).as_posix()
        if path.is_file() and relative not in kept and not relative.startswith("tmp/"):
            path.unlink()
            removed += 1
    for folder in sorted(storage_root.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()) and folder.name != "tmp":
            folder.rmdir()
    return checked, removed


def restore(source: Path, target: Target, *, ledgers: list[Path], passphrase:
            Callable[[], str] = lambda: "", progress: Progress = lambda n: None,
            total: Callable[[int], None] = lambda n: None,
            echo: Callable[[str], None] = lambda s: None) -> Result:
    """Restore the backup in `source` into `target`, applying the erasure `ledgers`."""
    manifest = Manifest.read(source)
    check_target(manifest, target)
    entries = read_ledgers(ledgers)
    keys_text, keys_from_backup = choose_master_keys(manifest, source, target, passphrase)
    total(manifest.database.size + sum(f.size for f in manifest.files))
    wrote_database = False
    private_folder(target.instance)
    try:
        private_folder(target.storage)
        for entry in manifest.files:
            relative = Path(entry.path)
            if relative.is_absolute() or ".." in relative.parts:
                raise BackupError(f"The manifest names {entry.path}, outside the backup.")
            top, rest = relative.parts[0], Path(*relative.parts[1:])
            out = target.storage / rest if top == "storage" else target.instance / rest
            _copy_checked(source / relative, entry, out, progress)
        wrote_database = True
        _restore_database(manifest, source, target, progress)
        if keys_from_backup:
            fd = os.open(target.instance / "master.keys", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(keys_text.strip() + "\n")
        result = _finish(manifest, target, keys_text, entries, echo)
    except BaseException:
        _clean(target, wrote_database)
        raise
    os.sync()  # the restored instance on disk before saying it is done
    result.files, result.bytes = len(manifest.files), manifest.counts.get("bytes", 0)
    return result


def _finish(manifest: Manifest, target: Target, keys_text: str, entries: list[ledger.Entry],
            echo: Callable[[str], None]) -> Result:
    """Upgrade, apply the ledger and check every file, in an app on the restored instance."""
    from .. import create_app  # cycle: storyhub imports cli, whose restore command imports this

    previous = os.environ.get("STORYHUB_INSTANCE_PATH")
    os.environ["STORYHUB_INSTANCE_PATH"] = str(target.instance)
    try:
        config: dict = {"SQLALCHEMY_DATABASE_URI": target.uri, "MASTER_KEYS": keys_text}
        if target.storage_dir is not None:
            config["STORAGE_DIR"] = str(target.storage_dir)
        if target.ledger is not None:
            config["ERASURE_LEDGER"] = str(target.ledger)
        app = create_app(config)
        result = Result(stories=manifest.counts.get("stories", 0))
        with app.app_context():
            try:
                with db.engine.connect() as conn:
                    check_not_newer(conn)
                    revision = current_revision(conn)
                with db.engine.connect() as conn:
                    steps = pending(conn)
                if steps:
                    echo(f"  Upgrading the database from {revision} ({len(steps)} "
                         "migrations)")
                    result.upgraded_from = revision
                upgrade_schema(app)
                result.erased = apply_ledger(entries)
                if result.erased:
                    scrub()
                checked, removed = verify_files(Path(app.extensions["storage"].root))
                echo(f"  Opened {checked} sealed files: every one authenticates with its key"
                     + (f"; {removed} files of erased stories removed" if removed else ""))
                _keep_ledger(ledger.ledger_path(app), entries)
            finally:
                db.session.remove()
                db.engine.dispose()
        return result
    finally:
        if previous is None:
            os.environ.pop("STORYHUB_INSTANCE_PATH", None)
        else:
            os.environ["STORYHUB_INSTANCE_PATH"] = previous


def _keep_ledger(path: Path, entries: list[ledger.Entry]) -> None:
    """Give the restored instance the erasures applied, so a later restore applies them too."""
    have = {(e.story_id, e.key_id, e.scopes) for e in ledger.read(path)}
    ledger.append(path, [e for e in entries if (e.story_id, e.key_id, e.scopes) not in have])
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))

