"""`storyhub backup`: a consistent, point-in-time copy of a running instance.

The database is copied first, as one snapshot: SQLite's online backup API (the site keeps
writing to its log meanwhile), or `pg_dump` inside a snapshot this process exports and reads
from too. Then the stored files that snapshot refers to are copied, still sealed, each hashed
and each opened with its owner's key (first chunk) to prove it is the file the snapshot's
key fits. A file the snapshot names that has gone, or been replaced, since (an erasure, a new
muted copy, a theme re-run) means storage moved on: the whole backup is taken again, up to
three times. The manifest, with every checksum, is written last: a backup interrupted before
it (even by kill -9) has none, and `storyhub restore` refuses it.

Nothing is ever written to the live instance, except that the erasure ledger is created (empty)
if it does not exist yet, so a restore can tell "no erasures" from "no ledger".
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Connection

from .. import keys, sealed
from ..extensions import db
from ..storage import private_folder
from ..themes.service import MODEL_KEY_CONTEXT
from . import ledger
from .contents import Owner, Snapshot, read_snapshot, stored_files
from .manifest import (
    CONFIG,
    INCOMPLETE,
    MIN_PASSPHRASE,
    SEALED_KEYS,
    STORAGE,
    BackupError,
    FileEntry,
    Manifest,
    fsync_folder,
    seal_master_keys,
    sha256_file,
)

logger = logging.getLogger(__name__)
ATTEMPTS = 3
_BLOCK = 1024 * 1024

Progress = Callable[[int], None]


class StorageMoved(Exception):
    """Storage changed after the database snapshot: the snapshot must be taken again."""


class _Throttle:
    """Keep copying under `max_rate` bytes a second (None: as fast as the disk goes), so a
    backup on a busy server leaves the site its share of the disk."""

    def __init__(self, max_rate: float | None):
        self.max_rate, self.start, self.done = max_rate, time.monotonic(), 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.max_rate:
            ahead = self.done / self.max_rate - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)


def check_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} is not an empty folder: give a new folder for the backup "
                          "(a backup never overwrites another).")


def _version() -> str:
    try:
        return metadata.version("storyhub")
    except metadata.PackageNotFoundError:
        return "unknown"


def _revision(conn: Connection) -> str | None:
    try:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.DBAPIError:
        return None


@contextlib.contextmanager
def _sqlite_snapshot(app: Flask, out: Path) -> Iterator[Connection]:
    """Copy the SQLite database into `out` with the online backup API; yield a connection to
    the copy (the snapshot)."""
    source_path = db.engine.url.database
    if not source_path or not Path(source_path).is_file():
        raise BackupError(f"The SQLite database {source_path} is not there.")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    copy = sqlite3.connect(out)
    try:
        os.chmod(out, 0o600)
        with copy:
            source.backup(copy)  # one step: one read transaction, a consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    finally:
        copy.close()
        source.close()
    engine = sa.create_engine(f"sqlite:///{out}")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def pg_environment(url: sa.URL) -> tuple[str, dict[str, str]]:
    """The libpq URI of `url` (without its password) and an environment holding the password."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


@contextlib.contextmanager
def _postgres_snapshot(app: Flask, out: Path) -> Iterator[Connection]:
    """Dump the database into `out` with pg_dump, in a snapshot this connection exports and
    keeps open; yield the connection (it reads the same point in time)."""
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed: install the PostgreSQL client "
                          "(apt-get install postgresql-client) of your server's version.")
    uri, env = pg_environment(db.engine.url)
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        done = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
             f"--snapshot={snapshot}", f"--file={out}", f"--dbname={uri}"],
            env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip() or done.returncode}")
        yield conn
        conn.rollback()


def owner_key(owner: Owner, snapshot: Snapshot) -> bytes:
    """The data key that opens `owner`'s files, unwrapped from `snapshot`'s token."""
    if owner.kind == "story":
        token, context = snapshot.story_keys.get(owner.id), keys.CONTEXT.format(owner.id)
    else:
        token, context = snapshot.run_keys.get(owner.id), MODEL_KEY_CONTEXT.format(owner.id)
    return sealed.unwrap_key(keys.masters(), token, context)


def _open_check(path: Path, key: str, owner: Owner, snapshot: Snapshot) -> None:
    """Raise StorageMoved unless `path` opens with its owner's key in `snapshot`."""
    if not sealed.is_sealed(path):
        return  # stored before encryption
    try:
        sealed.open_sealed(path, owner_key(owner, snapshot), key).close()
    except sealed.SealedFileError as exc:
        raise StorageMoved(f"{key} does not open with the snapshot's key: {exc}") from None


def _copy(source: Path, target: Path, throttle: _Throttle, progress: Progress) -> FileEntry:
    """Copy `source` to `target` (0600), hashing it; return its entry (path set later)."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
        while block := src.read(_BLOCK):
            dst.write(block)
            digest.update(block)
            size += len(block)
            throttle(len(block))
            progress(len(block))
    return FileEntry("", size, digest.hexdigest())


def _copy_storage(storage_root: Path, dest: Path, snapshot: Snapshot, throttle: _Throttle,
                  progress: Progress, total: Callable[[int], None]) -> list[FileEntry]:
    wanted = list(stored_files(storage_root, snapshot))
    total(sum((storage_root / key).stat().st_size for key, _o, _r in wanted
              if (storage_root / key).is_file()))
    entries = []
    for key, owner, required in wanted:
        source = storage_root / key
        try:
            entry = _copy(source, dest / STORAGE / key, throttle, progress)
        except FileNotFoundError:
            if required:
                raise StorageMoved(f"{key} was deleted after the snapshot") from None
            continue  # a quote clip, cut again when needed
        try:
            _open_check(dest / STORAGE / key, key, owner, snapshot)
        except StorageMoved:
            if required:
                raise
            (dest / STORAGE / key).unlink()
            continue
        entry.path, entry.owner = f"{STORAGE}/{key}", str(owner)
        entries.append(entry)
    return entries


def _copy_config(instance: Path, dest: Path, progress: Progress,
                 echo: Callable[[str], None]) -> list[FileEntry]:
    """The instance's settings file and workshop templates (never its keys)."""
    entries = []
    throttle = _Throttle(None)
    sources = []
    cfg = instance / "storyhub.cfg"
    if cfg.is_file():
        text = cfg.read_text(errors="replace")
        if "MASTER_KEYS" in text or "SECRET_KEY" in text:
            echo("  storyhub.cfg is left out: it holds keys (MASTER_KEYS or SECRET_KEY), which "
                 "no backup keeps in the clear. Copy it to the restored instance yourself.")
        else:
            sources.append(cfg)
    templates = instance / "workshops"
    if templates.is_dir():
        sources += sorted(p for p in templates.rglob("*") if p.is_file())
    for source in sources:
        relative = source.relative_to(instance).as_posix()
        entry = _copy(source, dest / CONFIG / relative, throttle, progress)
        entry.path = f"{CONFIG}/{relative}"
        entries.append(entry)
    return entries


def make_backup(app: Flask, dest: Path, *, passphrase: str | None = None,
                max_rate: float | None = None, progress: Progress = lambda n: None,
                total: Callable[[int], None] = lambda n: None,
                echo: Callable[[str], None] = lambda s: None) -> Manifest:
    """Back up `app`'s instance into the new folder `dest`; return the manifest written.

    `passphrase`: also keep the master keys, sealed with it. `max_rate`: bytes a second.
    """
    check_destination(dest)
    if passphrase is not None:  # before anything is written, not at the end
        _check_passphrase(passphrase)
    private_folder(dest)
    marker = dest / INCOMPLETE
    marker.write_text("This backup was interrupted before it finished: it cannot be restored.\n")
    fsync_folder(dest)
    ledger_file = ledger.ledger_path(app)
    if not ledger_file.exists():
        ledger_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(ledger_file, os.O_WRONLY | os.O_CREAT, 0o600))
    storage_root = Path(app.extensions["storage"].root)
    engine = db.engine.dialect.name
    database_name = "database.sqlite" if engine == "sqlite" else "database.pgdump"
    snapshot_taker = _sqlite_snapshot if engine == "sqlite" else _postgres_snapshot
    if engine not in ("sqlite", "postgresql"):
        raise BackupError(f"StoryHub backs up SQLite and PostgreSQL, not {engine}.")
    last_reason = ""
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            echo(f"  Storage changed while backing up ({last_reason}): starting again.")
            for child in dest.iterdir():
                if child != marker:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        throttle = _Throttle(max_rate)
        database = dest / database_name
        try:
            with snapshot_taker(app, database) as conn:
                revision = _revision(conn)
                snapshot = read_snapshot(conn)
            files = _copy_storage(storage_root, dest, snapshot, throttle, progress, total)
        except StorageMoved as exc:
            last_reason = str(exc)
            continue
        break
    else:
        raise BackupError(f"Storage kept changing while backing up ({last_reason}). Try again "
                          "when the site is quieter.")
    files += _copy_config(Path(app.instance_path), dest, progress, echo)
    database_entry = FileEntry(database_name, database.stat().st_size, sha256_file(database))
    included = passphrase is not None
    if included:
        seal_master_keys(keys.master_keys_text(app), str(passphrase), dest / SEALED_KEYS)
    manifest = Manifest(
        created_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        storyhub_version=_version(), schema_revision=revision, engine=engine,
        database=database_entry, files=files, master_key_ids=snapshot.master_key_ids(),
        master_keys_included=included,
        counts={"stories": len(snapshot.story_keys), "theme_runs": len(snapshot.run_keys),
                "files": len(files), "bytes": sum(f.size for f in files) + database_entry.size})
    # Everything on disk before the manifest says the backup is whole (one sync for all the
    # files: an fsync each made backups of many small files several times slower).
    os.sync()
    manifest.write(dest)
    marker.unlink()
    fsync_folder(dest)
    logger.info("Backup of %d stories (%d files) written to %s", len(snapshot.story_keys),
                len(files), dest)
    return manifest


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"The passphrase must be at least {MIN_PASSPHRASE} characters: "
                          "a few ordinary words make a good one. Nothing was backed up.")

