"""`storyhub demo`: load the demo project into a fresh instance and say where to look."""

from __future__ import annotations

import click
from flask import current_app, url_for
from werkzeug.routing import BuildError

from ..database import with_schema
from . import content, service


def _url(endpoint: str, **values) -> str | None:
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _where_to_look(result: service.DemoResult, site_url: str) -> list[tuple[str, str]]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with app.test_request_context(base_url=site_url):
        places = [
            ("Sign in", _url("accounts.login", _external=True)),
            ("Stories and transcripts", _url("stories.index", _external=True)),
            ("Themes", _url("themes.run", run_id=result.run_id, _external=True)),
            ("Theme board", _url("themes.theme_board", run_id=result.run_id, _external=True)),
            ("Staff library", _url("library.index", _external=True)),
        ]
        if result.workshop_id is not None:
            places.append(("Workshop and its pack",
                           _url("packs.show", workshop_id=result.workshop_id, _external=True)))
        if result.pack_version is not None:
            places.append(("Pack PDF", _url("packs.download", workshop_id=result.workshop_id,
                                            version=result.pack_version, fmt="pdf",
                                            _external=True)))
    return [(what, url) for what, url in places if url]


@click.command("demo")
@click.option("--stories", "limit", type=click.IntRange(3, len(content.stories())),
              default=len(content.stories()), show_default=True,
              help="How many of the demo stories to load.")
@click.option("--site-url", default="http://127.0.0.1:5000", show_default=True,
              help="Where the site is served, for the links printed at the end.")
@with_schema
def demo_command(limit: int, site_url: str) -> None:
    """Load a demo project (made-up stories, accounts for each role) through the real pipeline.

    Refuses to run on an instance that holds stories of its own.
    """
    click.echo("Loading the StoryHub demo: made-up stories about probation, spoken by a "
               "computer voice. It takes a few minutes.")
    try:
        result = service.load(limit, echo=click.echo)
    except service.DemoRefused as exc:
        raise click.ClickException(str(exc)) from exc
    except service.DemoFailed as exc:
        raise click.ClickException(f"{exc} What was loaded so far is kept.") from exc
    if result.pack is None:
        click.echo(f"  ({result.packs_note})")
    click.echo(f"\nThe demo is loaded: {len(result.story_ids)} stories "
               f"({result.added} added now), transcribed, reviewed and themed, in "
               f"{result.timings['total']:.0f} s ("
               + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in result.timings.items()
                           if step != "total") + ").")
    click.echo("\nDemo accounts (the passwords are shown only now; run `storyhub demo` "
               "again for new ones):")
    width = max(len(a.account.username) for a in result.accounts)
    for loaded in result.accounts:
        click.echo(f"  {loaded.account.username:<{width}}  {loaded.password}  "
                   f"{loaded.account.role.label}: {loaded.account.what}")
    click.echo("\nWhere to look:")
    places = _where_to_look(result, site_url.rstrip("/"))
    width = max(len(what) for what, _url in places)
    for what, url in places:
        click.echo(f"  {what:<{width}}  {url}")
