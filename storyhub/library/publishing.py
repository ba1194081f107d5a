"""Publish a theme run to the staff library: the theme names, and their stories, staff see.

A facilitator publishes a finished run from its page. Staff then see its shown themes by the
names a facilitator gave them, in the library's theme filter and on story cards; before any
run is published they see no themes. A name StoryHub made from keywords ("Mentor, lowest and
point") means nothing to staff, so publishing asks for a name first: it names the themes still
called by their keywords, and the facilitator names them (or hides them) and publishes again.

What staff see is kept as it was at publication (`PublishedTheme`, `PublishedThemeStory`), so
the facilitator's later edits (names, merges, hidden themes, moved passages) and newer runs
reach staff only when a run is published again. One run at most is published: publishing one
takes the last one's themes out of the library.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import delete, func, insert, literal, select, update

from .. import audit, policy
from ..accounts.models import User
from ..database import utcnow
from ..extensions import db
from ..themes.modeling import readable_label
from ..themes.models import RunStatus, Theme, ThemePassage, ThemeRun
from .models import PublishedTheme, PublishedThemeStory

logger = logging.getLogger(__name__)
CARD_THEMES = 4  # themes a story card shows, most passages first


class PublishError(ValueError):
    """A run that cannot be published as it is; the message says what to do."""


def _plain(name: str) -> str:
    return " ".join(name.split()).casefold()


def named(theme: Theme) -> bool:
    """Say whether a person gave the theme its name, rather than StoryHub from its keywords.

    A facilitator's expected theme is named by them. Otherwise the name must differ from the
    automatic ones: the run's (`auto_label`) and the one made from the theme's keywords now (a
    split or a refresh names a theme so). `edited` does not say it: merging, splitting or
    describing a theme sets it and leaves a keyword name.
    """
    if theme.seed and _plain(theme.label) == _plain(theme.seed):
        return True
    automatic = {_plain(theme.auto_label), _plain(readable_label(theme.keywords or []))}
    return _plain(theme.label) not in automatic


def _with_passages(run: ThemeRun) -> set[int]:
    return set(db.session.scalars(select(ThemePassage.theme_id).where(
        ThemePassage.run_id == run.id, ThemePassage.theme_id.is_not(None)).distinct()))


def to_publish(run: ThemeRun) -> list[Theme]:
    """Return the themes staff would see: shown, with passages, in board order."""
    used = _with_passages(run)
    return [t for t in run.themes if not t.hidden and t.id in used]


def _name_first(waiting: list[Theme]) -> str:
    listed = ", ".join(f"“{t.label}”" for t in waiting)
    if len(waiting) == 1:
        return (f"Give the theme {listed} a name staff will understand before publishing: it "
                "is still named by its keywords. Rename it on its page (or hide it if staff "
                "should not see it), then publish.")
    return (f"Give these {len(waiting)} themes names staff will understand before publishing: "
            f"{listed}. They are still named by their keywords. Rename each on its page (or "
            "hide those staff should not see), then publish.")


def publish(run_id: int, actor: User) -> ThemeRun:
    """Show this finished run's themes to staff, by their names as they are now."""
    if not policy.may(actor, policy.Work.PUBLISH_THEMES):
        raise policy.AccessDenied("Only facilitators and admins publish themes to the staff "
                                  "library.")
    run = db.session.get(ThemeRun, run_id)
    if run is None:
        raise LookupError(run_id)
    if run.status is not RunStatus.DONE:
        raise PublishError("This run has not finished yet. Publish it once its themes are "
                           "found.")
    themes = to_publish(run)
    if not themes:
        raise PublishError("Every theme of this run is hidden. Show the themes staff should "
                           "see, then publish.")
    waiting = [t for t in themes if not named(t)]
    if waiting:
        raise PublishError(_name_first(waiting))
    # Staff see one run's themes: the last publication's go, whichever run it was.
    db.session.execute(delete(PublishedThemeStory))
    db.session.execute(delete(PublishedTheme))
    db.session.execute(update(ThemeRun).where(ThemeRun.id != run.id,
                                              ThemeRun.published_at.is_not(None))
                       .values(published_at=None, published_by_id=None))
    for position, theme in enumerate(themes):
        shown = PublishedTheme(run_id=run.id, theme_id=theme.id, position=position,
                               name=theme.label)
        db.session.add(shown)
        db.session.flush()
        db.session.execute(insert(PublishedThemeStory).from_select(
            ["theme_id", "story_id", "passages"],
            select(literal(shown.id), ThemePassage.story_id, func.count())
            .where(ThemePassage.run_id == run.id, ThemePassage.theme_id == theme.id)
            .group_by(ThemePassage.story_id)))
    run.published_at, run.published_by_id = utcnow(), actor.id
    db.session.flush()
    audit.record("library.publish_themes", actor.id, "theme_run", run.id,
                 f"themes={len(themes)}")
    logger.info("Theme run %s published to the library (%d themes)", run.id, len(themes))
    return run


def published_run() -> ThemeRun | None:
    return db.session.scalar(select(ThemeRun).where(ThemeRun.published_at.is_not(None))
                             .order_by(ThemeRun.published_at.desc()).limit(1))


def marker() -> tuple:
    """What changes whenever what staff see of themes changes (a run published, again)."""
    return tuple(db.session.execute(select(ThemeRun.id, ThemeRun.published_at).where(
        ThemeRun.published_at.is_not(None))).first() or ())


def theme_choices() -> list[tuple[int, str]]:
    """The published themes, as (id, name) in board order: the library's theme filter."""
    return [tuple(row) for row in db.session.execute(  # type: ignore[misc]
        select(PublishedTheme.id, PublishedTheme.name)
        .order_by(PublishedTheme.position, PublishedTheme.id))]


def stories_in(theme_id: int):
    """A select of the ids of the stories in a published theme."""
    return select(PublishedThemeStory.story_id).where(PublishedThemeStory.theme_id == theme_id)


def story_themes(story_ids: list[int]) -> dict[int, list[str]]:
    """Return the published themes of each story, most of its passages first."""
    if not story_ids:
        return {}
    found: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for story_id, name, passages, position in db.session.execute(
            select(PublishedThemeStory.story_id, PublishedTheme.name,
                   PublishedThemeStory.passages, PublishedTheme.position)
            .join(PublishedTheme, PublishedTheme.id == PublishedThemeStory.theme_id)
            .where(PublishedThemeStory.story_id.in_(story_ids))):
        found[story_id].append((-passages, position, name))
    return {story_id: [name for *_order, name in sorted(rows)][:CARD_THEMES]
            for story_id, rows in found.items()}


def forget_story(story_id: int) -> None:
    """Take an erased story out of the published themes."""
    db.session.execute(delete(PublishedThemeStory).where(
        PublishedThemeStory.story_id == story_id))
