"""Which schema migrations a database needs, and a refusal to run on a newer one.

A database is "newer than the code" when its Alembic revision is one this StoryHub's
migrations do not know: a newer StoryHub upgraded it. Running older code on it would read
and write tables it does not understand, so the site, the worker's start and every command
that upgrades the schema stop first, saying what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import click
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


class SchemaTooNew(click.ClickException):
    """The database was upgraded by a newer StoryHub than this one (a command stops with the
    message, not a traceback)."""


@dataclass(frozen=True)
class Migration:
    revision: str
    title: str  # the first line of its docstring


def scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config)


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None: no StoryHub schema yet)."""
    return MigrationContext.configure(conn).get_current_revision()


def check_not_newer(conn: Connection) -> None:
    """Raise SchemaTooNew, saying what to do, when the database is newer than this code."""
    revision = current_revision(conn)
    if revision is None:
        return
    directory = scripts()
    try:
        directory.get_revision(revision)
    except CommandError:
        head = directory.get_current_head()
        raise SchemaTooNew(
            f"This database was upgraded by a newer StoryHub (its schema is at {revision!r}, "
            f"which this StoryHub does not know; this one goes up to {head!r}). StoryHub "
            "will not start on it: run the newer StoryHub it was upgraded by, or restore a "
            "backup taken before that upgrade.") from None


def pending(conn: Connection) -> list[Migration]:
    """The migrations an upgrade would run on the database, oldest first."""
    check_not_newer(conn)
    directory = scripts()
    revision = current_revision(conn)
    steps = list(directory.iterate_revisions(directory.get_current_head(), revision))
    return [Migration(script.revision, (script.doc or "").strip().splitlines()[0]
                      if script.doc else "") for script in reversed(steps)]
