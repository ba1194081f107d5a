"""What workshops agreed, and feeding it back: actions, the action board, "You said, we did".

Also where a story being erased leaves the workshops: its quotes go, and so does every pack
version that printed its words, with a notice on the workshop saying why.
"""

from __future__ import annotations

import logging
from datetime import date

from flask import url_for
from sqlalchemy import select

from .. import audit, policy, signals
from ..extensions import db
from ..stories.models import Story
from .models import (
    ActionStatus,
    AgreedAction,
    Workshop,
    WorkshopPack,
    WorkshopQuote,
    WorkshopTheme,
)
from .service import gathering_of, quote_problem, story_code, workshop_details

logger = logging.getLogger(__name__)


def _clean(what: str, who: str) -> tuple[str, str]:
    what, who = what.strip(), " ".join(who.split())
    if not what:
        raise ValueError("Say what was agreed.")
    return what, who[:200]


def _theme_id(workshop: Workshop, workshop_theme_id: int | None) -> int | None:
    if workshop_theme_id is None:
        return None
    if workshop_theme_id not in {t.id for t in workshop.themes}:
        raise LookupError(workshop_theme_id)
    return workshop_theme_id


def add_action(workshop: Workshop, actor_id: int, what: str, who: str = "",
               due_on: date | None = None, workshop_theme_id: int | None = None,
               status: str = ActionStatus.AGREED.value, outcome: str = "") -> AgreedAction:
    what, who = _clean(what, who)
    action = AgreedAction(workshop_id=workshop.id, what=what, who=who, due_on=due_on,
                          workshop_theme_id=_theme_id(workshop, workshop_theme_id),
                          status=ActionStatus(status), outcome=outcome.strip(),
                          created_by_id=actor_id)
    workshop.actions.append(action)
    db.session.flush()
    audit.record("workshop.action_add", actor_id, "workshop", workshop.id)
    return action


def get_action(workshop: Workshop, action_id: int) -> AgreedAction:
    found = next((a for a in workshop.actions if a.id == action_id), None)
    if found is None:
        raise LookupError(action_id)
    return found


def update_action(workshop: Workshop, action_id: int, actor_id: int, what: str, who: str,
                  due_on: date | None, workshop_theme_id: int | None, status: str,
                  outcome: str) -> AgreedAction:
    action = get_action(workshop, action_id)
    action.what, action.who = _clean(what, who)
    action.due_on = due_on
    action.workshop_theme_id = _theme_id(workshop, workshop_theme_id)
    action.status = ActionStatus(status)
    action.outcome = outcome.strip()
    audit.record("workshop.action_edit", actor_id, "workshop", workshop.id)
    return action


def delete_action(workshop: Workshop, action_id: int, actor_id: int) -> None:
    workshop.actions.remove(get_action(workshop, action_id))
    audit.record("workshop.action_delete", actor_id, "workshop", workshop.id)


def action_board(status: str | None = None) -> list[AgreedAction]:
    """Return every workshop's actions, open ones first, soonest due first."""
    query = select(AgreedAction).join(Workshop)
    if status:
        query = query.where(AgreedAction.status == ActionStatus(status))
    actions = db.session.scalars(query).all()
    closed = (ActionStatus.DONE, ActionStatus.DROPPED)
    return sorted(actions, key=lambda a: (a.status in closed, a.due_on or date.max,
                                          a.workshop_id, a.id))


def _action_item(action: AgreedAction) -> dict:
    return {"what": action.what, "who": action.who, "status": action.status.label,
            "due_on": f"{action.due_on.day} {action.due_on:%B %Y}" if action.due_on else "",
            "outcome": action.outcome}


def feedback_content(workshop: Workshop, actor=None) -> dict:
    """Return the "You said, we did" content: per theme, one quote still consented, and actions.

    Quotes are checked now, not when the pack was made: a story whose consent has since been
    withdrawn or narrowed is never quoted here.
    """
    themes = []
    quoted: set[int] = set()
    for theme in workshop.themes:
        fine = [q for q in theme.quotes if quote_problem(theme, q, actor) is None]
        quoted |= {q.story_id for q in fine}
        quote = fine[0] if fine else None
        story = db.session.get(Story, quote.story_id) if quote else None
        themes.append({
            "title": theme.title, "description": theme.description,
            "quote": {"text": quote.text, "role": story.storyteller.role.label,
                      "code": story_code(story.id)} if quote and story else None,
            "actions": [_action_item(a) for a in workshop.actions
                        if a.workshop_theme_id == theme.id]})
    return {"workshop": workshop_details(workshop), "gathering": gathering_of(workshop, quoted),
            "themes": themes,
            "other_actions": [_action_item(a) for a in workshop.actions
                              if a.workshop_theme_id is None]}


@signals.feedback_sheets.connect
def feedback_sheets(_sender=None, limit: int = 10, **_kwargs) -> list[dict]:
    """Return the "You said, we did" sheets worth reading: workshops with actions recorded."""
    rows = db.session.execute(
        select(Workshop.id, Workshop.title, Workshop.held_on)
        .where(Workshop.actions.any())
        .order_by(Workshop.held_on.desc().nulls_last(), Workshop.id.desc()).limit(limit)).all()
    return [{"title": title, "held_on": held_on,
             "url": url_for("packs.feedback", workshop_id=workshop_id)}
            for workshop_id, title, held_on in rows]


@signals.theme_renamed.connect
def _follow_theme_name(theme_id: int, old: str = "", new: str = "", **_kwargs) -> None:
    """Give workshops the theme's new name where they still print the name it had."""
    for theme in db.session.scalars(select(WorkshopTheme).where(
            WorkshopTheme.theme_id == theme_id, WorkshopTheme.title == old)):
        theme.title = new[:120]


@signals.story_erasing.connect
def drop_from_workshops(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    """Take an erased story's words out of workshops: its quotes, and packs that printed them."""
    if policy.Action.QUOTE not in policy.affected(scopes):
        return []  # e.g. playing audio withdrawn: packs become stale, their words may stay
    for quote in db.session.scalars(select(WorkshopQuote).where(
            WorkshopQuote.story_id == story_id)):
        db.session.delete(quote)
    for pack in db.session.scalars(select(WorkshopPack)).all():
        if story_id in (pack.story_ids or []):
            workshop = pack.workshop
            workshop.notice = (f"Pack version {pack.version} was deleted because a storyteller "
                               "withdrew consent for a story it quoted. Generate the pack "
                               "again.")
            db.session.delete(pack)
            logger.info("Workshop %s: pack version %s deleted with an erased story",
                        workshop.id, pack.version)
    db.session.flush()
    return []

