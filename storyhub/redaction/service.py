"""Redaction verbs: suggest, accept, add by phrase, reject, undo; and the muted audio copy.

Accepted redactions are labels on words (`Word.redaction`). Everyone but the reporter who
gathered the story reads the label instead of the words (storyhub.transcripts.text) and hears
silence over them: a job (kind "mute_audio") makes a playback copy with those stretches muted,
and until it has, the policy's redacted playback is refused rather than served unmuted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import select

from .. import audit, policy, signals
from ..accounts.models import User
from ..config import settings
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import Job, JobStatus
from ..stories.models import Story
from ..transcripts.models import Transcript, Word
from ..transcripts.service import TranscriptError, editable, get_transcript, words_changed
from ..transcripts.text import words_between
from . import LABELS, Suggestion, bare, gazetteer, ranked, suggest

logger = logging.getLogger(__name__)
KIND = "mute_audio"


@dataclass(frozen=True)
class Offer:
    """A suggestion tied to the words it covers, as the editor offers it."""

    suggestion: Suggestion
    word_ids: tuple[int, ...]

    @property
    def value(self) -> str:
        """The form value naming this offer: first and last word ids and the label."""
        return f"{self.word_ids[0]}-{self.word_ids[-1]}-{self.suggestion.label}"

    @property
    def preticked(self) -> bool:
        """True if the editor ticks it in advance: StoryHub is sure of it (see `suggest`)."""
        return self.suggestion.preticked


def _words(transcript: Transcript) -> list[Word]:
    return [w for seg in transcript.segments for w in seg.words]


def known_names(story: Story) -> list[str]:
    """Names StoryHub already knows: the storyteller's stored real name and staff accounts'."""
    names = []
    identity = story.storyteller.identity
    if identity is not None:
        names += identity.real_name.split()
    for display in db.session.scalars(select(User.display_name)):
        names += [part for part in display.split() if len(part) > 2]
    return names


def local_terms(story: Story) -> list[str]:
    """The words of the story's site's local names (estates, hostels, offices)."""
    if story.site is None:
        return []
    words = [bare(w).lower() for term in story.site.term_list for w in term.split()]
    return [w for w in words if w and w not in gazetteer.FUNCTION_WORDS
            and w not in gazetteer.NOT_PERSONAL and w not in gazetteer.STREET_WORDS]


def offers(story: Story, actor: User) -> list[Offer]:
    """Return the redactions StoryHub suggests for the story's transcript, not yet decided,
    surest first (those it ticks in advance, `Offer.preticked`, before the guesses)."""
    return _offers(story, editable(story, actor)[0])


def undecided(story: Story) -> list[str]:
    """Return the words StoryHub suggests redacting that nobody has redacted or dismissed."""
    transcript = get_transcript(story)
    if transcript is None:
        return []
    return list(dict.fromkeys(offer.suggestion.text for offer in _offers(story, transcript)))


@signals.redactions_waiting.connect
def _waiting(story: Story, within: tuple[str, float, float] | None = None, **_kwargs) -> int:
    """Count the suggestions nobody has decided on (in `within`'s stretch, if given)."""
    transcript = get_transcript(story)
    if transcript is None:
        return 0
    # Asked once a quote when a workshop page or pack is checked: suggested once a request.
    memo = g.setdefault("redaction_offers", {}) if has_request_context() else {}
    key = (transcript.id, transcript.changed_at, tuple(transcript.redaction_rejected or ()))
    if key not in memo:
        memo[key] = _offers(story, transcript)
    found = memo[key]
    if within is None:
        return len(found)
    stretch = {w.id for w in words_between(transcript, *within)}
    return sum(1 for offer in found if stretch & set(offer.word_ids))


def _offers(story: Story, transcript: Transcript) -> list[Offer]:
    words = _words(transcript)
    configured = settings()
    found = suggest([w.text for w in words], transcript.redaction_rejected or [],
                    [*configured.redaction_extra_names, *known_names(story)],
                    [*configured.redaction_extra_places, *local_terms(story)])
    result = []
    for s in ranked(found):
        covered = words[s.first:s.last + 1]
        if any(w.redaction for w in covered):
            continue
        result.append(Offer(s, tuple(w.id for w in covered)))
    return result


def _apply(story: Story, transcript: Transcript, words: list[Word], label: str,
           actor: User) -> int:
    changed = [w for w in words if w.redaction != label]
    for word in changed:
        word.redaction = label
    if changed:
        audit.record("transcript.redact", actor.id, "story", story.id,
                     detail=f"{len(changed)} words as {label}")
        _changed(story, transcript)
    return len(changed)


def _changed(story: Story, transcript: Transcript) -> None:
    words_changed(transcript)
    if story.recording is not None:
        story.recording.redaction_pending = True
        request_muting(story)


def accept(story: Story, actor: User, values: list[str]) -> int:
    """Redact the offered suggestions named by `values`; return how many words were redacted."""
    transcript = editable(story, actor)[0]
    by_value = {offer.value: offer for offer in _offers(story, transcript)}
    words = {w.id: w for w in _words(transcript)}
    count = 0
    for value in values:
        offer = by_value.get(value)
        if offer is None:
            continue  # already decided, or the transcript changed under the page
        count += _apply(story, transcript, [words[i] for i in offer.word_ids],
                        offer.suggestion.label, actor)
    return count


def reject(story: Story, actor: User, values: list[str]) -> int:
    """Remember that the named suggestions are not personal; return how many."""
    transcript = editable(story, actor)[0]
    by_value = {offer.value: offer for offer in _offers(story, transcript)}
    keys = [by_value[v].suggestion.key for v in values if v in by_value]
    if keys:
        transcript.redaction_rejected = sorted(set(transcript.redaction_rejected or []) |
                                               set(keys))
        audit.record("transcript.redaction_rejected", actor.id, "story", story.id,
                     detail=f"{len(keys)} suggestions")
    return len(keys)


def redact_phrase(story: Story, actor: User, phrase: str, label: str) -> int:
    """Redact every place the transcript says `phrase`; return how many words."""
    if label not in LABELS:
        raise TranscriptError("Choose what kind of detail it is.")
    wanted = [bare(w).lower() for w in phrase.split() if bare(w)]
    if not wanted:
        raise TranscriptError("Type the word or words to redact, as the transcript has them.")
    transcript = editable(story, actor)[0]
    words = _words(transcript)
    # Others read redacted words as labels, so they cannot name them: a guess at one is
    # answered as a word not said, never "Redacted", which would confirm it.
    whole = policy.gathered_by(actor, story)
    plain = [bare(w.text).lower() if whole or not w.redaction else None for w in words]
    hits: list[Word] = []
    n = len(wanted)
    for i in range(len(words) - n + 1):
        if plain[i:i + n] == wanted:
            hits.extend(words[i:i + n])
    if not hits:
        raise TranscriptError(f"“{' '.join(wanted)}” is not in the transcript. Type it as the "
                              "transcript spells it.")
    return _apply(story, transcript, hits, label, actor) or len(hits)


def unredact(story: Story, actor: User, word_ids: list[int]) -> int:
    """Show redacted words again: only for the reporter who gathered the story (who hears them)."""
    if not policy.gathered_by(actor, story):
        raise policy.AccessDenied("Only the reporter who gathered this story can undo a "
                                  "redaction: they are the one who knows what was said.")
    transcript = editable(story, actor)[0]
    wanted = set(word_ids)
    words = [w for w in _words(transcript) if w.id in wanted and w.redaction]
    for word in words:
        word.redaction = None
    if words:
        audit.record("transcript.unredact", actor.id, "story", story.id,
                     detail=f"{len(words)} words")
        _changed(story, transcript)
    return len(words)


def redacted_runs(transcript: Transcript) -> list[tuple[str, str, tuple[int, ...]]]:
    """Return (label, the words, word ids) for each run of redacted words, in order."""
    runs: list[tuple[str, list[str], list[int]]] = []
    previous: Word | None = None
    for word in _words(transcript):
        if word.redaction and previous is not None and previous.redaction == word.redaction:
            runs[-1][1].append(word.text)
            runs[-1][2].append(word.id)
        elif word.redaction:
            runs.append((word.redaction, [word.text], [word.id]))
        previous = word
    return [(label, " ".join(texts), tuple(ids)) for label, texts, ids in runs]


# --- the muted playback copy (made by tasks.py) --------------------------------------------

def request_muting(story: Story) -> Job:
    """Queue a job to (re)make the muted copy, unless one is already waiting to start."""
    waiting = db.session.scalar(select(Job).where(
        Job.kind == KIND, Job.target_id == story.id, Job.status == JobStatus.QUEUED))
    if waiting is not None:
        return waiting
    return jobs.enqueue(KIND, target_id=story.id)
