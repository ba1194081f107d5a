"""`storyhub rebuild-search`: make the library's search index again from the approved stories."""

from __future__ import annotations

import click

from ..database import with_schema
from ..extensions import db
from . import search
from .service import rebuild_search


@click.command("rebuild-search")
@with_schema
def rebuild_search_command() -> None:
    """Rebuild the staff library's full-text index (after a restore, or if in doubt)."""
    count = rebuild_search()
    # The old rows' words would otherwise stay in the index's files as deleted entries.
    search.compact()
    db.session.commit()
    click.echo(f"Search index rebuilt: {count} {'story' if count == 1 else 'stories'} in the "
               "staff library.")
