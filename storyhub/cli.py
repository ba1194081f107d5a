"""The `storyhub` command: run the site, manage users, upgrade the database."""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .accounts import service, setup
from .accounts.models import Role
from .extensions import db

logger = logging.getLogger(__name__)
REQUIRED_PROGRAMS = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg"}


def missing_programs() -> list[str]:
    """Return the Debian packages whose programs StoryHub needs but cannot find."""
    return sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items() if shutil.which(prog) is None})


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not start a background worker here.")
@with_appcontext
def run_command(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Run StoryHub: upgrade the database, start a worker, and serve the site."""
    from waitress import serve

    from .database import upgrade_schema

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    missing = missing_programs()
    if missing:
        raise click.ClickException(
            "StoryHub needs these system packages: " + " ".join(missing)
            + f"\nInstall them with: sudo apt-get install {' '.join(missing)}")
    if not _port_free(host, port):
        raise click.ClickException(
            f"Port {port} on {host} is already in use: is StoryHub already running? "
            "Stop it, or choose another port with --port.")
    upgrade_schema(app)
    # Stop the worker too when this process is asked to stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    worker = None
    if not no_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "storyhub.worker:celery", "worker",
             "--loglevel=INFO", "--concurrency=1", "-Q", "default,transcribe,analysis",
             "--hostname", f"embedded@{os.uname().nodename}"],
            env={**os.environ, "STORYHUB_INSTANCE_PATH": app.instance_path})
    url = f"http://{host}:{port}"
    click.echo(f"StoryHub is running at {url}  (data in {app.instance_path})")
    if service.count_users() == 0:
        token = setup.issue_token(app.instance_path)
        click.echo("No accounts yet. Create the first admin by opening:\n"
                   f"  {url}/setup?token={token}\n"
                   "or run: .venv/bin/storyhub create-user --role admin USERNAME")
    try:
        serve(app, host=host, port=port, threads=threads,
              max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 1024 * 1024)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


@click.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", "display_name", default="", help="Name shown in StoryHub.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
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


def init_app(app: Flask) -> None:
    """Register StoryHub's commands on `app.cli`."""
    from .stories.importer import import_command

    app.cli.add_command(create_user_command)
    app.cli.add_command(import_command)


def _create_app():
    from . import create_app

    return create_app()


class StoryHubGroup(FlaskGroup):
    def __init__(self, **kwargs):
        super().__init__(create_app=_create_app, add_default_commands=False,
                         add_version_option=False, load_dotenv=False, **kwargs)
        self.add_command(run_command)


@click.group(cls=StoryHubGroup)
def main() -> None:
    """StoryHub: Community Reporting for probation services."""
