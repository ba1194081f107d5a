"""`storyhub export-themes`: a theme run for evaluators, from the command line (audited)."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from ..accounts.service import get_user_by_username
from ..database import with_schema
from ..extensions import db
from ..policy import AccessDenied
from ..themes.models import ThemeRun
from . import service


@click.command("export-themes")
@click.argument("run_number", type=int)
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as", "username", required=True, help="The facilitator or admin exporting.")
@with_schema
def export_themes_command(run_number: int, out: Path, username: str) -> None:
    """Export theme run RUN_NUMBER for evaluators to OUT (.qdpx: REFI-QDA project; .csv)."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in service.FORMATS:
        raise click.ClickException("Name the file .qdpx (a REFI-QDA project) or .csv.")
    actor = get_user_by_username(username)
    if actor is None or not actor.enabled:
        raise click.ClickException(f"There is no account “{username}” that can sign in.")
    run = db.session.scalar(select(ThemeRun).where(ThemeRun.number == run_number))
    if run is None:
        raise click.ClickException(f"There is no theme run {run_number}.")
    try:
        data, found = service.export(run, actor, fmt)
    except (AccessDenied, service.ExportError) as exc:
        raise click.ClickException(str(exc)) from None
    out.write_bytes(data)
    db.session.commit()
    click.echo(f"Wrote {out}: {len(found.sources)} stories, {len(found.themes)} themes, "
               f"{len(found.segments)} coded passages (redacted; only stories whose consent "
               "covers analysis).")
