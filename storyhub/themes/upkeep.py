"""Keep finished theme runs true to their stories when a transcript changes or a story goes.

A run is fitted once, but its pages are read for weeks. When a reporter corrects or redacts a
transcript, its passages take the new (redacted) wording at once, on every run, so a removed
name leaves the board, the theme pages and the map. When a story is withdrawn, its passages
leave every run. Either way each affected theme's keywords are kept only where the words are
still said by the theme's remaining passages (so a name said only in the withdrawn story goes),
default names follow their keywords, the run's saved model (whose vocabulary holds the old
words) is deleted, and the run says that it no longer matches its stories and offers a re-run.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict

from sqlalchemy import delete, select

from .. import signals
from ..extensions import db
from ..policy import Form
from ..storage import get_storage
from ..stories.consent import Scope
from ..transcripts.models import Transcript
from ..transcripts.text import text_between
from . import modeling
from .models import Passage, Theme, ThemePassage, ThemeRun
from .service import clip_folder

logger = logging.getLogger(__name__)

EDITED = ("A transcript in this run was corrected or redacted after the run: the quotes show the "
          "new words. Find themes again to regroup them.")
WITHDRAWN = ("A storyteller withdrew their story after this run: it has been taken out of every "
             "theme. Find themes again to regroup the rest.")


def _said(keyword: str, texts: list[str]) -> bool:
    pattern = re.compile(r"\b" + r"\s+".join(map(re.escape, keyword.lower().split())) + r"\b")
    return any(pattern.search(text.lower()) for text in texts)


def refresh_runs(run_ids: set[int], reason: str) -> list[str]:
    """Bring each run's keywords and default names in line with its passages as they are now.

    Returns the storage keys of saved models that must be deleted.
    """
    keys: list[str] = []
    for run in db.session.scalars(select(ThemeRun).where(ThemeRun.id.in_(run_ids))):
        texts: dict[int, list[str]] = defaultdict(list)
        rows = db.session.execute(
            select(ThemePassage.theme_id, Passage.text, Passage.story_id)
            .join(Passage, Passage.id == ThemePassage.passage_id)
            .where(ThemePassage.run_id == run.id)).all()
        for theme_id, text, _story in rows:
            if theme_id is not None:
                texts[theme_id].append(text)
        for theme in run.themes:
            kept = [k for k in theme.keywords if _said(k, texts.get(theme.id, []))]
            if kept != theme.keywords:
                theme.keywords = kept
                auto = modeling.readable_label(kept)[:120]
                if not theme.edited:
                    theme.label = auto
                theme.auto_label = auto
        run.stale_reason = reason
        run.results = dict(run.results, stories=len({story for *_, story in rows}),
                           passages=len(rows))
        if run.model_key:
            keys.append(run.model_key)
            run.model_key = None
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
    changed = []
    for passage in passages:
        text = text_between(transcript, passage.speaker, passage.start, passage.end,
                            Form.REDACTED)
        if text != passage.text:
            passage.text = text
            passage.word_count = len(text.split())
            changed.append(passage.id)
    if not changed:
        return
    runs = set(db.session.scalars(select(ThemePassage.run_id).where(
        ThemePassage.passage_id.in_(changed))))
    db.session.flush()
    _delete_folders(refresh_runs(runs, EDITED))
    logger.info("Story %s: %d passage(s) reworded in %d run(s)", story_id, len(changed),
                len(runs))


@signals.story_erasing.connect
def erase_story(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    """Take the story out of every run (when analysis is withdrawn); return keys to delete."""
    clips = [clip_folder(story_id)]
    if scopes is not None and not {Scope.TRANSCRIBE_ANALYSE.value,
                                   Scope.PLAY_IN_WORKSHOPS.value} & set(scopes):
        return []
    if scopes is not None and Scope.TRANSCRIBE_ANALYSE.value not in scopes:
        return clips
    passage_ids = list(db.session.scalars(select(Passage.id).where(
        Passage.story_id == story_id)))
    if not passage_ids:
        return clips
    runs = set(db.session.scalars(select(ThemePassage.run_id).where(
        ThemePassage.passage_id.in_(passage_ids))))
    db.session.execute(delete(ThemePassage).where(ThemePassage.passage_id.in_(passage_ids)))
    db.session.execute(delete(Passage).where(Passage.id.in_(passage_ids)))
    db.session.flush()
    # Themes left with no passage and no facilitator's edit go too.
    for theme in db.session.scalars(select(Theme).where(Theme.run_id.in_(runs))):
        if not theme.edited and db.session.scalar(select(ThemePassage.passage_id).where(
                ThemePassage.theme_id == theme.id).limit(1)) is None:
            db.session.delete(theme)
    db.session.flush()
    return clips + refresh_runs(runs, WITHDRAWN)
