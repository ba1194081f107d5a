"""Unsure words: list the words the recogniser guessed at, confirm them or correct them.

A word is unsure (`text.is_unsure`) until a person looks at it: "It's right" marks it checked,
a correction replaces it. Confirming changes no words, so the transcript stays reviewed;
correcting is an edit, so it asks for another review, as every edit does. Redacted words are
never unsure, so none of this shows or touches them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import audit, policy
from ..accounts.models import User
from ..extensions import db
from ..stories.models import Story
from .models import Segment, Word
from .service import TranscriptError, editable, get_transcript, refuse_redacted, words_changed
from .text import count_unsure, is_unsure, tokens
from .timed_text import replace_word

CONTEXT_WORDS = 5  # shown on each side of an unsure word in the review list


@dataclass(frozen=True)
class UnsureWord:
    """An unsure word as the review lists it, with the words around it in the reader's form."""

    id: int
    segment_id: int
    text: str
    start: float
    end: float
    probability: float
    before: str
    after: str


def unsure_words(story: Story, actor: User) -> list[UnsureWord]:
    """Return the transcript's unsure words nobody has looked at yet, in order."""
    transcript, form = editable(story, actor)
    found = []
    for segment in transcript.segments:
        shown = tokens(segment.words, form)
        for i, token in enumerate(shown):
            if not token.unsure:
                continue
            found.append(UnsureWord(
                token.word_ids[0], segment.id, token.text, token.start, token.end,
                token.probability,
                " ".join(t.text for t in shown[max(0, i - CONTEXT_WORDS):i]),
                " ".join(t.text for t in shown[i + 1:i + 1 + CONTEXT_WORDS])))
    return found


def left_to_check(story: Story) -> int:
    """Return how many unsure words of the story's transcript nobody has looked at yet."""
    transcript = get_transcript(story)
    return count_unsure(transcript) if transcript is not None else 0


def _words_of(story: Story, actor: User,
              word_ids: list[int]) -> tuple[list[Word], policy.Form]:
    """Return the transcript's words among `word_ids`, and the form `actor` reads them in."""
    transcript, form = editable(story, actor)
    if not word_ids:
        return [], form
    words = db.session.scalars(
        select(Word).join(Segment, Segment.id == Word.segment_id)
        .where(Segment.transcript_id == transcript.id, Word.id.in_(word_ids))).all()
    return list(words), form


def _confirm(story: Story, words: list[Word], actor: User) -> int:
    confirmed = [w for w in words if is_unsure(w)]
    for word in confirmed:
        word.checked = True
    if confirmed:
        db.session.flush()
        audit.record("transcript.confirm_words", actor.id, "story", story.id,
                     detail=f"{len(confirmed)} words")
    return len(confirmed)


def confirm_words(story: Story, word_ids: list[int], actor: User) -> int:
    """Mark the named unsure words as heard right; return how many were still unchecked.

    Words that are not unsure (already looked at, corrected, redacted, or sure) are left as
    they are. The transcript stays reviewed: no word changed.
    """
    return _confirm(story, _words_of(story, actor, word_ids)[0], actor)


def confirm_word(story: Story, word_id: int, actor: User) -> int:
    """Mark one unsure word as heard right (see `confirm_words`); LookupError if not there."""
    words, _form = _words_of(story, actor, [word_id])
    if not words:
        raise LookupError(word_id)
    return _confirm(story, words, actor)


def correct_word(story: Story, word_id: int, text: str, actor: User) -> Segment:
    """Put `text` in place of one word, in its time; return its segment.

    The same text again means the word was right: it is confirmed, and the transcript stays
    reviewed. A redacted word is refused, as any change to it is, whatever `text` says.
    """
    words, form = _words_of(story, actor, [word_id])
    if not words:
        raise LookupError(word_id)
    word = words[0]
    segment = word.segment
    if word.redaction:
        if form is not policy.Form.FULL:
            raise refuse_redacted(story, actor)
        raise TranscriptError("This word is redacted. To change it, edit its passage.")
    text = " ".join(text.split())
    if text == word.text:
        _confirm(story, words, actor)
        return segment
    if not text and len(segment.words) == 1:
        raise TranscriptError("A passage cannot be empty. Type what was said instead.")
    replace_word(segment, word, text)
    transcript = segment.transcript
    if transcript.reviewed_at is not None:
        transcript.reviewed_at = None  # changed since review: needs another look
    words_changed(transcript)
    audit.record("transcript.edit", actor.id, "story", story.id, detail="one word")
    return segment
