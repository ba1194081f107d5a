"""Keep finished theme runs true to their stories when a transcript changes or a story goes.

A run is fitted once, but its pages are read for weeks. When a reporter corrects or redacts a
transcript, its passages take the new (redacted) wording at once, on every run, so a removed
name leaves the board, the theme pages and the map. When a story is withdrawn, its words
leave every run at once (`withdraw_story`, in the withdrawing transaction, while its erasure
waits for a worker), and its passages leave with the erasure (`drop_from_themes`).

Each time, the words the change took away (said in the passages as they were, not as they are)
leave a theme's keywords and StoryHub's names for it wherever the theme's own passages no
longer say them: privacy wins over a name. Nothing else about a theme's words changes: keywords
are never re-ranked or replaced, and a name only loses those words ("Sarah and housing" becomes
"Housing"), so the name a facilitator saw on the board or took into a workshop stays the one
everywhere. A name the facilitator gave (a rename, an expected theme) is never changed. The
run's saved model (whose vocabulary holds the old words) is deleted with its key, and the run
says that it no longer matches its stories and offers a re-run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import delete, func, select

from .. import policy, signals
from ..extensions import db
from ..policy import Form
from ..storage import get_storage
from ..stories.models import Consent
from ..transcripts.models import Transcript
from ..transcripts.text import text_between
from .models import Passage, Theme, ThemePassage, ThemeRun
from .naming import Said, name_words, without
from .service import clip_folder

logger = logging.getLogger(__name__)

EDITED = ("A transcript in this run was corrected or redacted after the run: the quotes show the "
          "new words, and words no longer said have left theme keywords and default names. "
          "Find themes again to regroup them.")
WITHDRAWN = ("A storyteller withdrew their story after this run: it has been taken out of every "
             "theme, and words only it said have left theme keywords and default names. Find "
             "themes again to regroup the rest.")


class TakenAway:
    """The words a change took away: said in some passages as they were, not as they are."""

    def __init__(self, was: Iterable[str], now: Iterable[str] = ()):
        self.was, self.now = Said(was), Said(now)

    def __call__(self, phrase: str) -> bool:
        return phrase in self.was and phrase not in self.now


def _said_in(theme_id: int, leaving: int | None) -> Said:
    """What a theme's passages say now, leaving out stories no longer analysed."""
    refused = select(Consent.story_id).where(Consent.withdrawn_at.is_not(None)
                                             | Consent.transcribe_analyse.is_(False))
    query = (select(Passage.text).join(ThemePassage, ThemePassage.passage_id == Passage.id)
             .where(ThemePassage.theme_id == theme_id, ThemePassage.story_id.not_in(refused)))
    if leaving is not None:
        query = query.where(ThemePassage.story_id != leaving)
    return Said(db.session.scalars(query))


def _let_go(theme: Theme, taken: TakenAway, leaving: int | None) -> bool:
    """Take the words `taken` away out of the theme's words where its passages no longer say
    them; return whether any left. Its name loses only those words, and only if StoryHub gave it.
    """
    names = [theme.label, theme.auto_label, *theme.merged_from]
    if not any(map(taken, theme.keywords)) and not any(
            taken(word) for name in names for word in name_words(name)):
        return False
    said = _said_in(theme.id, leaving)

    def gone(phrase: str) -> bool:
        return taken(phrase) and phrase not in said

    keywords = [k for k in theme.keywords if not gone(k)]
    merged = [without(name, gone) for name in theme.merged_from]
    # A name the facilitator gave (a rename, an expected theme's) stays. StoryHub's name (the
    # theme's name while it is still its default, merged or split or not), and the names of
    # merged themes shown beside it, are made of the stories' words.
    facilitators = theme.seed is not None or theme.label != theme.auto_label
    label = theme.label if facilitators else without(theme.label, gone)
    auto_label = theme.auto_label if theme.seed else without(theme.auto_label, gone)
    if [keywords, label, auto_label, merged] == [theme.keywords, *names[:2], theme.merged_from]:
        return False
    theme.keywords, theme.label, theme.auto_label = keywords, label, auto_label
    theme.merged_from = merged
    return True


def refresh_runs(run_ids: set[int], reason: str, taken: TakenAway,
                 leaving: int | None = None) -> list[str]:
    """Take the words `taken` away out of each run's themes where their passages no longer say
    them (without those of the story `leaving`, when one is on its way out), and mark the runs.

    Returns the storage keys of saved models that must be deleted.
    """
    keys: list[str] = []
    for run in db.session.scalars(select(ThemeRun).where(ThemeRun.id.in_(run_ids))):
        changed = [theme.id for theme in db.session.scalars(
            select(Theme).where(Theme.run_id == run.id)) if _let_go(theme, taken, leaving)]
        if changed:
            logger.info("Run %s: words taken away from %d theme(s)", run.number, len(changed))
        counted = select(func.count(), func.count(ThemePassage.story_id.distinct())).where(
            ThemePassage.run_id == run.id)
        if leaving is not None:
            counted = counted.where(ThemePassage.story_id != leaving)
        passages, stories = db.session.execute(counted).one()
        run.stale_reason = reason
        run.results = dict(run.results, stories=stories, passages=passages)
        if run.model_key:
            keys.append(run.model_key)
            run.model_key = None
        # Without its key, a copy of the sealed model (a backup, say) is noise.
        run.model_wrapped_key = None
    return keys


def _delete_folders(keys: list[str]) -> None:
    storage = get_storage()
    for key in keys:
        storage.delete_folder(key)


@signals.transcript_changed.connect
def follow_transcript(story_id: int, **_kwargs) -> None:
    """Give the story's passages their current (redacted) words; refresh runs that hold them."""
    transcript = db.session.scalar(select(Transcript).where(Transcript.story_id == story_id))
    passages = db.session.scalars(select(Passage).where(Passage.story_id == story_id)).all()
    # Quote clips were cut from the audio as it was: cut them again from the new muted copy.
    get_storage().delete_folder(clip_folder(story_id))
    if transcript is None or not passages:
        return
    changed, was, now = [], [], []
    for passage in passages:
        text = text_between(transcript, passage.speaker, passage.start, passage.end,
                            Form.REDACTED)
        if text != passage.text:
            was.append(passage.text)
            now.append(text)
            passage.text = text
            passage.word_count = len(text.split())
            changed.append(passage.id)
    if not changed:
        return
    runs = set(db.session.scalars(select(ThemePassage.run_id).where(
        ThemePassage.passage_id.in_(changed))))
    db.session.flush()
    _delete_folders(refresh_runs(runs, EDITED, TakenAway(was, now)))
    logger.info("Story %s: %d passage(s) reworded in %d run(s)", story_id, len(changed),
                len(runs))


@signals.story_erasure_requested.connect
def withdraw_story(story_id: int, scopes: list[str] | None = None, **_kwargs) -> None:
    """Take a withdrawn story's words out of every run now: keywords, default names, models.

    Its passages stay until the erasure job (which calls `drop_from_themes`); the pages already
    leave them out, as the policy refuses them.
    """
    if policy.Action.ANALYSE not in policy.affected(scopes):
        return
    runs = set(db.session.scalars(select(ThemePassage.run_id).where(
        ThemePassage.story_id == story_id).distinct()))
    if not runs:
        return
    said = db.session.scalars(select(Passage.text).where(Passage.story_id == story_id))
    _delete_folders(refresh_runs(runs, WITHDRAWN, TakenAway(said), leaving=story_id))
    db.session.flush()
    logger.info("Story %s taken out of %d theme run(s) on withdrawal", story_id, len(runs))


@signals.story_erasing.connect
def drop_from_themes(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    """Take the story out of every run (when analysis is withdrawn); return keys to delete."""
    clips = [clip_folder(story_id)]
    lost = policy.affected(scopes)
    if policy.Action.PLAY_CLIP not in lost:
        return []
    if policy.Action.ANALYSE not in lost:
        return clips
    passage_ids = list(db.session.scalars(select(Passage.id).where(
        Passage.story_id == story_id)))
    if not passage_ids:
        return clips
    runs = set(db.session.scalars(select(ThemePassage.run_id).where(
        ThemePassage.passage_id.in_(passage_ids))))
    taken = TakenAway(db.session.scalars(select(Passage.text).where(
        Passage.id.in_(passage_ids))).all())
    db.session.execute(delete(ThemePassage).where(ThemePassage.passage_id.in_(passage_ids)))
    db.session.execute(delete(Passage).where(Passage.id.in_(passage_ids)))
    db.session.flush()
    # Themes left with no passage and no facilitator's edit go too.
    for theme in db.session.scalars(select(Theme).where(Theme.run_id.in_(runs))):
        if not theme.edited and db.session.scalar(select(ThemePassage.passage_id).where(
                ThemePassage.theme_id == theme.id).limit(1)) is None:
            db.session.delete(theme)
    db.session.flush()
    return clips + refresh_runs(runs, WITHDRAWN, taken)
