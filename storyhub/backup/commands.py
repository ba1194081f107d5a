"""The `storyhub backup`, `storyhub restore` and `storyhub upgrade` commands."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ..config import instance_path, load, settings
from ..database import upgrade_schema
from ..extensions import db
from ..upgrades import current_revision, pending
from .ledger import ledger_path
from .making import make_backup
from .manifest import BackupError
from .restoring import Target, restore

PASSPHRASE_ENV = "STORYHUB_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@contextmanager
def _bar(label: str):
    """A progress bar by bytes; yields (advance, set_total)."""
    state: dict = {"bar": None, "pending": 0}

    def set_total(n: int) -> None:
        if state["bar"] is not None:
            state["bar"].render_finish()
        state["bar"] = click.progressbar(length=max(n, 1), label=label, show_eta=True,
                                         width=30)
        state["bar"].__enter__()

    def advance(n: int) -> None:
        if state["bar"] is not None:
            state["bar"].update(n)

    try:
        yield advance, set_total
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


def _passphrase(file: Path | None, confirm: bool) -> str:
    if file is not None:
        return file.read_text().strip("\n")
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    return click.prompt("Passphrase for the master keys", hide_input=True,
                        confirmation_prompt=confirm)


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--include-master-keys", is_flag=True,
              help="Also keep the master keys, sealed with a passphrase (asked for, or from "
                   f"--passphrase-file or {PASSPHRASE_ENV}).")
@click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Read the passphrase from this file.")
@click.option("--max-rate", type=click.FloatRange(min=0.01), default=None,
              help="Copy at most this many MB a second, to leave a busy site its disk.")
@with_appcontext
def backup_command(dest: Path, include_master_keys: bool, passphrase_file: Path | None,
                   max_rate: float | None) -> None:
    """Back up this instance into the new folder DEST, while it runs."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    os.umask(0o077)
    passphrase = _passphrase(passphrase_file, True) if include_master_keys else None
    started = time.monotonic()
    try:
        with _bar("Backing up") as (advance, set_total):
            manifest = make_backup(app, dest, passphrase=passphrase,
                                   max_rate=max_rate * 1e6 if max_rate else None,
                                   progress=advance, total=set_total, echo=click.echo)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    counts = manifest.counts
    click.echo(f"Backed up {counts['stories']} stories, {counts['files']} files "
               f"({_megabytes(counts['bytes'])}) into {dest} in "
               f"{time.monotonic() - started:.1f} s.")
    if not manifest.master_keys_included:
        click.echo(f"The master keys ({', '.join(manifest.master_key_ids) or 'none in use'}) "
                   "are not in it: keep them in your secret store, apart from it. Without "
                   "them this backup cannot be read.")
        if not (settings(app).master_keys or settings(app).master_keys_file):
            click.echo(f"They are only in {Path(app.instance_path) / 'master.keys'}: if that "
                       "folder is lost, so is every backup. Copy them to your secret store, "
                       "or back up with --include-master-keys.")
    ledger = ledger_path(app)
    if Path(app.instance_path) in ledger.parents:
        click.echo(f"The erasure ledger is {ledger}, in the instance folder: if that disk is "
                   "lost, so is the list of stories erased since this backup. Set "
                   "STORYHUB_ERASURE_LEDGER to a file on another disk (docs/deploy.md).")


def _default_instance() -> Path:
    """Where create_app would put the instance folder (without making anything)."""
    return Path(instance_path() or Flask("storyhub").instance_path)


@click.command("restore")
@click.argument("src", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--ledger", "ledgers", multiple=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="An erasure ledger to apply (the STORYHUB_ERASURE_LEDGER of the instance "
                   "backed up; erasures.ledger in its instance folder by default). Repeatable.")
@click.option("--no-ledger", is_flag=True,
              help="Restore without an erasure ledger: only when no story was erased after "
                   "this backup was taken.")
@click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The passphrase of master keys kept in the backup.")
def restore_command(src: Path, ledgers: tuple[Path, ...], no_ledger: bool,
                    passphrase_file: Path | None) -> None:
    """Restore the backup in SRC into a new, empty instance (STORYHUB_INSTANCE_PATH)."""
    os.umask(0o077)
    instance = _default_instance()
    given, _flask = load(str(instance))  # checked as at start; no app, so nothing is made
    target = Target(instance=instance, database_url=given.database_url,
                    storage_dir=given.storage_dir,
                    master_keys=given.master_keys or (
                        given.master_keys_file.read_text().strip()
                        if given.master_keys_file else None),
                    ledger=given.erasure_ledger)
    paths = list(ledgers)
    if target.ledger is not None and target.ledger.is_file() and target.ledger not in paths:
        paths.append(target.ledger)
    if not paths and not no_ledger:
        raise click.ClickException(
            "Give the erasure ledger of the instance this backup came from (--ledger FILE: "
            "its STORYHUB_ERASURE_LEDGER, or erasures.ledger in its instance folder), so "
            "stories erased after the backup was taken stay erased. If that ledger is lost "
            "and you know no story was erased since the backup, restore with --no-ledger. "
            "Nothing was restored.")
    started = time.monotonic()
    click.echo(f"Restoring {src} into {target.instance}")
    try:
        with _bar("Restoring") as (advance, set_total):
            result = restore(src, target, ledgers=paths,
                             passphrase=lambda: _passphrase(passphrase_file, False),
                             progress=advance, total=set_total, echo=click.echo)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    count = len(result.erased)
    erased = (f" {count} {'story' if count == 1 else 'stories'} erased since the backup "
              f"{'was' if count == 1 else 'were'} erased again."
              if count else " No story in it was erased since.")
    click.echo(f"Restored {result.stories} stories and {result.files} files "
               f"({_megabytes(result.bytes)}) in {time.monotonic() - started:.1f} s.{erased} "
               "Everyone signs in again (sessions are not kept in backups).")


@click.command("upgrade")
@click.option("--check", is_flag=True, help="Only say which migrations would run.")
@with_appcontext
def upgrade_command(check: bool) -> None:
    """Bring the database schema up to date (with --check, only say what that would do)."""
    with db.engine.connect() as conn:
        steps = pending(conn)
        revision = current_revision(conn)
    if not steps:
        click.echo(f"The database is up to date (schema {revision}).")
        return
    click.echo(f"{len(steps)} migrations to run (the database is at {revision or 'nothing'}):")
    for step in steps:
        click.echo(f"  {step.revision}  {step.title}")
    if check:
        click.echo("Nothing was changed (--check). Back up first: storyhub backup DEST.")
        return
    upgrade_schema(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo("The database is up to date.")
