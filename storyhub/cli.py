"""The `storyhub` command: run the site, manage users, upgrade the database."""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from sqlalchemy import select
from waitress import serve

from . import keys, logs
from .accounts import service, setup
from .accounts.models import Role
from .backup.commands import backup_command, restore_command, upgrade_command
from .config import SettingsError
from .database import upgrade_schema, with_schema
from .demo.command import demo_command
from .evaluation.commands import export_themes_command
from .extensions import db
from .library.commands import rebuild_search_command
from .library.finding import warm_up as library_warm_up
from .sealed import generate_master_key, rewrap_key
from .stories.importer import import_command
from .stories.models import Story
from .supervisor import EmbeddedWorker
from .themes.models import ThemeRun
from .themes.service import MODEL_KEY_CONTEXT

logger = logging.getLogger(__name__)
def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server itself binds: connections of a previous run closing down do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _describe_database(app: Flask) -> str:
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        return f"SQLite at {url.database}"
    return f"{url.get_backend_name()} at {url.render_as_string(hide_password=True)}"


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web processes sharing the port (one per core for a busy library).")
@click.option("--no-worker", is_flag=True, help="Do not start a background worker here.")
@with_appcontext
def run_command(host: str, port: int, threads: int, processes: int, no_worker: bool) -> None:
    """Run StoryHub: upgrade the database, start a worker, and serve the site."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if processes > 1 and not hasattr(os, "fork"):
        raise click.ClickException("--processes needs a system with fork (Linux or macOS).")
    if not _port_free(host, port):
        raise click.ClickException(
            f"Port {port} on {host} is already in use: is StoryHub already running? "
            "Stop it, or choose another port with --port.")
    # Stories are personal data: what StoryHub writes from here on is for its own user only.
    os.umask(0o077)
    log_path = logs.configure(app.instance_path)
    click.echo("StoryHub is starting.")
    upgrade_schema(app)
    click.echo(f"  Database   {_describe_database(app)} (schema up to date)")
    # Stop the worker too when this process is asked to stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    worker = None
    if no_worker:
        click.echo("  Worker     none here (--no-worker): start workers with celery")
    else:
        worker = EmbeddedWorker(app.instance_path, log_path.parent / "worker.log",
                                announce=click.echo)
        worker.start()
        click.echo(f"  Worker     running; restarted if it stops (log: {worker.log_path})")
    url = f"http://{host}:{port}"
    click.echo(f"  Data       {app.instance_path} (log: {log_path})")
    click.echo(f"  Site       {url}" + (f" ({processes} web processes)" if processes > 1
                                            else ""))
    if service.count_users() == 0:
        token = setup.issue_token(app.instance_path)
        click.echo(f"\nNo accounts yet. Create the first admin account here:\n"
                   f"  {url}/setup?token={token}\n"
                   "(or run: .venv/bin/storyhub create-user --role admin YOUR-NAME)")
    click.echo("\nPress Ctrl-C to stop.")
    db.session.remove()
    options = {"threads": threads, "_quiet": True,
               "max_request_body_size": app.config["MAX_CONTENT_LENGTH"] + 1024 * 1024}
    children: list[int] = []
    try:
        if processes == 1:
            library_warm_up(app)
            serve(app, host=host, port=port, **options)
        else:
            # One listening socket, accepted from by every process (the kernel shares the
            # connections out): Python serves one request at a time per process, whatever
            # its threads, so a 2-core machine answers twice the library traffic with two.
            listener = socket.create_server((host, port), backlog=1024)
            db.engine.dispose()  # no database connection is shared across a fork
            children = [_serve_forked(app, listener, options) for _ in range(processes - 1)]
            library_warm_up(app)
            serve(app, sockets=[listener], **options)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("Stopping StoryHub…")
        _stop_children(children)
        if worker is not None:
            worker.stop()
        click.echo("Stopped.")


def _serve_forked(app: Flask, listener: socket.socket, options: dict) -> int:
    """Fork a web process serving `listener`; return its pid (the child never returns)."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # Ctrl-C: the parent says "Stopping"
        library_warm_up(app)
        serve(app, sockets=[listener], **options)
    except SystemExit:
        pass
    except BaseException:  # noqa: BLE001 - reported, then this process ends
        logger.exception("A web process failed")
        code = 1
    finally:
        os._exit(code)


def _stop_children(children: list[int]) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            continue


@click.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", "display_name", default="", help="Name shown in StoryHub.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_schema
def create_user_command(username: str, role: str, display_name: str,
                        password_stdin: bool) -> None:
    """Create an account (for example the first admin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Type it again: ") != password:
            raise click.ClickException("The passwords differ. Nothing was created.")
    try:
        user = service.create_user(username, display_name or username, role, password)
    except service.AccountError as exc:
        raise click.ClickException(f"{exc} Nothing was created.") from exc
    db.session.commit()
    click.echo(f"Created {user.role.label.lower()} “{user.username}”.")


@click.command("new-master-key")
def new_master_key_command() -> None:
    """Print a new master key entry for STORYHUB_MASTER_KEYS (nothing is stored)."""
    click.echo(generate_master_key())
    click.echo("Put it first in STORYHUB_MASTER_KEYS (keep the old ones after it), restart, "
               "then run `storyhub rewrap-keys`.", err=True)


@click.command("rewrap-keys")
@with_schema
def rewrap_keys_command() -> None:
    """Wrap every story's key with the current master key (after adding a new one)."""
    count = 0
    for story in db.session.scalars(select(Story).where(Story.wrapped_key.is_not(None))):
        story.wrapped_key = rewrap_key(keys.masters(), story.wrapped_key,
                                       keys.CONTEXT.format(story.id))
        count += 1
    models = 0
    for run in db.session.scalars(select(ThemeRun).where(ThemeRun.model_wrapped_key.is_not(None))):
        run.model_wrapped_key = rewrap_key(keys.masters(), run.model_wrapped_key,
                                           MODEL_KEY_CONTEXT.format(run.id))
        models += 1
    db.session.commit()
    click.echo(f"{count} story keys and {models} theme model keys now wrapped with master key "
               f"{keys.masters().current_id}. Older master keys can be removed once every "
               "worker has restarted.")


def init_app(app: Flask) -> None:
    """Register StoryHub's commands on `app.cli`."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(import_command)
    app.cli.add_command(rebuild_search_command)
    app.cli.add_command(new_master_key_command)
    app.cli.add_command(rewrap_keys_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(upgrade_command)
    app.cli.add_command(export_themes_command)


def _create_app():
    from . import create_app  # cycle: storyhub/__init__.py imports this module to add its commands

    return create_app()


class StoryHubGroup(FlaskGroup):
    def __init__(self, **kwargs):
        super().__init__(create_app=_create_app, add_default_commands=False,
                         add_version_option=False, load_dotenv=False, **kwargs)
        self.add_command(run_command)
        # Restore makes its instance itself: loading the app first would fill the empty folder.
        self.add_command(restore_command)

    def list_commands(self, ctx):
        try:  # a bad setting is said by main() in one line (Flask would print a traceback)
            ctx.ensure_object(ScriptInfo).load_app()
        except SettingsError:
            raise
        except Exception:  # noqa: BLE001, S110  (Flask's list_commands reports it)
            pass
        return super().list_commands(ctx)

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except SettingsError as exc:  # a sentence to fix the setting by, not a traceback
            click.echo(f"StoryHub will not start: {exc}", err=True)
            sys.exit(1)


@click.group(cls=StoryHubGroup)
def main() -> None:
    """StoryHub: Community Reporting for probation services."""
