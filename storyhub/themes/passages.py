"""Split a reviewed transcript into passages: one speaker, whole sentences, about 40-150 words.

A short story (up to SHORT_STORY_WORDS) is cut into passages of about SHORT_PASSAGE_WORDS
instead, so that a 90-word story that touches two themes is not one indivisible unit.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from sqlalchemy import select

from .. import signals
from ..extensions import db
from ..policy import Form
from ..stories.models import Story
from ..transcripts.models import Transcript
from ..transcripts.text import tokens
from .models import Passage, Theme, ThemePassage

MIN_WORDS = 40
MAX_WORDS = 150
# A story this short is cut into passages of about SHORT_PASSAGE_WORDS words each.
SHORT_STORY_WORDS = 250
SHORT_PASSAGE_WORDS = 60
# A turn shorter than this that is not joined to a passage is back-channel ("Yeah, go on").
SHORT_TURN_WORDS = 8
FILLER = frozenset("um umm uh uhh er erm ah oh mm mhm mm-hm hmm yeah yes yep ok okay right "
                   "so well like you know i mean and but sure no".split())
SENTENCE_END = re.compile(r"[.?!…]['\")\]]*$")


@dataclass
class Sentence:
    speaker: str
    start: float
    end: float
    words: list[str]


@dataclass
class PassageText:
    speaker: str
    start: float
    end: float
    text: str

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.start:.1f}|{self.text}".encode()).hexdigest()


def _is_filler(words: list[str]) -> bool:
    return all(re.sub(r"[^\w'-]", "", w.lower()) in FILLER for w in words)


def sentences(transcript: Transcript, form: Form = Form.REDACTED) -> list[Sentence]:
    """Return the transcript's sentences with speaker and times (from word timestamps).

    Redacted by default: what is analysed never holds the personal details a reviewer took out.
    """
    found: list[Sentence] = []
    for segment in transcript.segments:
        words = [(t.text.strip(), t.start, t.end) for t in tokens(segment.words, form)
                 if t.text.strip()]
        if not words:
            words = [(t, segment.start, segment.end) for t in segment.text.split()]
        current: list[tuple[str, float, float]] = []
        for word in words:
            current.append(word)
            if SENTENCE_END.search(word[0]):
                found.append(Sentence(segment.speaker, current[0][1], current[-1][2],
                                      [w[0] for w in current]))
                current = []
        if current:
            found.append(Sentence(segment.speaker, current[0][1], current[-1][2],
                                  [w[0] for w in current]))
    return found


def split_passages(transcript: Transcript) -> list[PassageText]:
    """Group sentences into passages that never cross a change of speaker.

    Short stories give passages of about SHORT_PASSAGE_WORDS words (see `_short_story`).
    """
    told = [s for s in sentences(transcript) if not _is_filler(s.words)]
    total = sum(len(s.words) for s in told)
    if 0 < total <= SHORT_STORY_WORDS:
        return _short_story(transcript, told, total)
    names = transcript.speakers or {}
    passages: list[PassageText] = []
    group: list[Sentence] = []

    def close() -> None:
        if not group:
            return
        words = [w for s in group for w in s.words]
        if len(words) >= SHORT_TURN_WORDS:
            passages.append(PassageText(names.get(group[0].speaker, group[0].speaker),
                                        group[0].start, group[-1].end, " ".join(words)))
        group.clear()

    for sentence in told:
        # A sentence longer than a passage (no punctuation) is cut at MAX_WORDS.
        pieces = [sentence.words[i:i + MAX_WORDS]
                  for i in range(0, len(sentence.words), MAX_WORDS)]
        for words in pieces:
            part = Sentence(sentence.speaker, sentence.start, sentence.end, words)
            size = sum(len(s.words) for s in group)
            if group and (group[0].speaker != part.speaker or size + len(words) > MAX_WORDS
                          and size >= MIN_WORDS):
                close()
            group.append(part)
    close()
    return _join_short(passages)


def _join_short(passages: list[PassageText]) -> list[PassageText]:
    """Join a short passage to the next one by the same speaker when together they still fit."""
    joined: list[PassageText] = []
    for p in passages:
        last = joined[-1] if joined else None
        if (last is not None and last.speaker == p.speaker and last.word_count < MIN_WORDS
                and last.word_count + p.word_count <= MAX_WORDS):
            joined[-1] = PassageText(last.speaker, last.start, p.end, f"{last.text} {p.text}")
        else:
            joined.append(p)
    return joined


def _short_story(transcript: Transcript, told: list[Sentence], total: int) -> list[PassageText]:
    """Cut a short story into about total / SHORT_PASSAGE_WORDS passages of similar length.

    Cuts fall between sentences, and always where the speaker changes; a reporter's short
    question or a back-channel (under SHORT_TURN_WORDS) is left out.
    """
    names = transcript.speakers or {}
    wanted = max(1, round(total / SHORT_PASSAGE_WORDS))
    share = total / wanted
    passages: list[PassageText] = []
    group: list[Sentence] = []
    said = 0  # words of the story before the current group

    def close() -> None:
        words = [w for s in group for w in s.words]
        if len(words) >= SHORT_TURN_WORDS:
            passages.append(PassageText(names.get(group[0].speaker, group[0].speaker),
                                        group[0].start, group[-1].end, " ".join(words)))
        group.clear()

    for sentence in told:
        size = sum(len(s.words) for s in group)
        # Cut when this sentence's middle lies past the next share of the story.
        due = said + size + len(sentence.words) / 2 > share * (len(passages) + 1)
        if group and (group[0].speaker != sentence.speaker or due and size >= SHORT_TURN_WORDS):
            said += size
            close()
        group.append(sentence)
    if group:
        close()
    return passages


@signals.subject_access_parts.connect
def _subject_access(story: Story, **_kwargs) -> dict[str, str]:
    """The story's passages used in theme runs, with the themes they are in."""
    rows = db.session.execute(
        select(Passage, ThemePassage.run_id, Theme.label).join(
            ThemePassage, ThemePassage.passage_id == Passage.id).outerjoin(
            Theme, Theme.id == ThemePassage.theme_id).where(Passage.story_id == story.id)
        .order_by(ThemePassage.run_id, Passage.position)).all()
    return {"themes.json": json.dumps([
        {"run": run_id, "theme": label, "start": passage.start, "end": passage.end,
         "text": passage.text} for passage, run_id, label in rows], indent=2)}
