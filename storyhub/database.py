"""Database engine settings and schema upgrades."""

from __future__ import annotations

import enum
import functools
import logging
import os
import time
from datetime import UTC, datetime

from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import Enum, event, text
from sqlalchemy.engine import Engine

from .extensions import db
from .storage import private_file
from .upgrades import check_not_newer

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Return the current time in UTC (naive, as stored in the database)."""
    return datetime.now(UTC).replace(tzinfo=None)


def value_enum(cls: type[enum.Enum], name: str) -> Enum:
    """Return a column type storing `cls` by its values ("reporter"), not its names."""
    return Enum(cls, name=name, values_callable=lambda members: [m.value for m in members])


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web server read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten, so an erased story's words do not linger in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _private_sqlite_file(path: str) -> None:
    """Create the SQLite file readable by its owner only, and tighten one that exists.

    SQLite gives its -wal and -shm files the database file's own mode.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    if not os.path.exists(path) and os.path.isdir(os.path.dirname(path) or "."):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is a database
    for suffix in ("", "-wal", "-shm", "-journal"):
        private_file(path + suffix)


def init_app(app: Flask) -> None:
    """Set SQLite connection pragmas for every engine this app creates; keep its file private."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            engine: Engine = db.engine
            _private_sqlite_file(engine.url.database or "")
            event.listen(engine, "connect", _sqlite_pragmas)


def check_schema_not_newer(app: Flask) -> None:
    """Raise SchemaTooNew when a newer StoryHub upgraded the database: never run older code
    on a newer schema."""
    with app.app_context(), db.engine.connect() as conn:
        check_not_newer(conn)


def upgrade_schema(app: Flask) -> None:
    """Bring the database schema up to the newest migration."""
    from flask_migrate import upgrade

    check_schema_not_newer(app)
    with app.app_context():
        upgrade()
        refresh_statistics()
        db.session.commit()
    logger.info("Database schema is up to date")


def refresh_statistics() -> None:
    """Give SQLite's query planner fresh statistics (`ANALYZE`; 0.3 s for 500,000 passages).

    Without them SQLite guesses, and at library scale guessed plans walked every passage of a
    theme run for a page of twenty cards (500 ms instead of 7). Run at start-up and when a
    theme run is stored; PostgreSQL's autovacuum keeps its own statistics.
    """
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("ANALYZE"))


def with_schema(command):
    """Run a CLI `command` in an app context on an up-to-date schema (created if missing)."""

    @functools.wraps(command)
    @with_appcontext
    def wrapper(*args, **kwargs):
        upgrade_schema(current_app._get_current_object())  # type: ignore[attr-defined]
        return command(*args, **kwargs)

    return wrapper


# Tables that hold a story's words, vacuumed on PostgreSQL after an erasure.
WORDY_TABLES = ("transcripts", "transcript_segments", "transcript_words", "passages",
                "theme_passages", "themes", "theme_edits", "theme_runs", "storyteller_identities",
                "stories", "library_entries", "library_search")

# Of those, the tables rewritten whole on PostgreSQL (VACUUM FULL): a plain VACUUM frees a dead
# row's space but leaves its bytes in the table's pages, and a GIN index keeps a word's entry
# after its last row has gone, so the full-text index would still hold an erased story's words.
# `library_search` has one row per library story (0.7 s at 10,000 stories, while searches
# wait); the big tables would lock the site for minutes.
REWRITTEN_TABLES = ("library_search",)

# Tables the database engine keeps beside the models (full-text indexes, made in SQL by their
# migration): comparing the models with the schema leaves them, and their FTS5 shadow tables, out.
ENGINE_TABLES = ("library_search",)


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's `include_name`: False for the engine's own tables."""
    return not (type_ == "table" and name is not None and any(
        name == table or name.startswith(table + "_") for table in ENGINE_TABLES))


def scrub() -> None:
    """Make deleted rows unrecoverable from the database files, as far as the engine allows.

    SQLite already overwrites deleted content (`secure_delete`; the full-text index is merged
    by the erasure itself, see library/search.py); the write-ahead log still holds the old
    pages until a checkpoint, so truncate it. PostgreSQL keeps dead rows until VACUUM: run it
    on the tables that hold story text, and rewrite the full-text index's table with its
    index (best effort, outside a transaction). PostgreSQL's own write-ahead log, and its
    archive where one is kept, still hold the words until recycled: that is the server's.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    engine = db.engine
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    if engine.dialect.name == "postgresql":
        present = set(inspect(engine).get_table_names())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            _wait_for_older_transactions(conn)
            for table in WORDY_TABLES:
                if table not in present:
                    continue
                if table in REWRITTEN_TABLES:
                    # It waits for every reader to finish: give up rather than hold the site
                    # up behind a long transaction (the next erasure's scrub rewrites it).
                    conn.execute(text("SET lock_timeout = '10s'"))
                    try:
                        conn.execute(text(f'VACUUM FULL "{table}"'))
                        continue
                    except DBAPIError:
                        conn.rollback()
                        logger.warning("Could not rewrite %s after an erasure (busy); "
                                       "vacuumed it instead", table)
                    finally:
                        conn.execute(text("RESET lock_timeout"))
                conn.execute(text(f'VACUUM "{table}"'))


#: How long an erasure's scrub waits for transactions older than it (PostgreSQL).
OLDER_TRANSACTIONS_WAIT = 10.0


def _wait_for_older_transactions(conn, timeout: float = OLDER_TRANSACTIONS_WAIT) -> None:
    """Wait until no other session of this database holds a transaction or snapshot that
    began before now (for up to `timeout` seconds).

    A row deleted while such a transaction runs is "recently dead": it might still be visible
    to that transaction, so VACUUM FULL copies it into the rewritten table, words and all. An
    automatic ANALYZE of a busy table holds such a snapshot for a moment; a session left idle
    in a transaction holds one until it ends, and then only the next erasure's scrub removes
    the words: say so in the log.
    """
    ours = conn.execute(text("SELECT txid_current()::text::xid")).scalar()
    older = text(
        "SELECT pid, backend_type, state FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND greatest(age(backend_xmin), age(backend_xid)) > age(CAST(:ours AS xid))")
    deadline = time.monotonic() + timeout
    while True:
        waiting = conn.execute(older, {"ours": str(ours)}).all()
        if not waiting:
            return
        if time.monotonic() >= deadline:
            logger.warning("Erasure scrub: %d older transaction(s) still open (%s); the "
                           "rewritten tables may keep the erased rows until the next erasure",
                           len(waiting), ", ".join(f"{row.backend_type} {row.pid} {row.state}"
                                                   for row in waiting))
            return
        time.sleep(0.1)
