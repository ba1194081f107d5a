"""A transcript's words as a reader may see them: whole, or with redacted words replaced.

Redactions are marks on words (`Word.redaction`, e.g. "[NAME]"); a run of marked words with
the same label reads as one label. Everything that shows or exports transcript text asks here
with the form the policy gave (`storyhub.policy.Form`), so a redacted name cannot slip out
through one view that forgot.

Unsure words are defined here too, once: words the recogniser gave a probability under
`UNSURE_BELOW` that nobody has looked at since. The editor underlines them, the review lists
them, and workshop packs ask `unsure_between` before printing a quote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from ..extensions import db
from ..policy import Form
from .models import Segment, Transcript, Word

# A word the recogniser gave a lower probability than this was a guess ("feel like a nugget"):
# a person should hear it before it is printed. Measured on the test corpus (84 espeak-ng
# stories, 1,844 words, misheard = not in the script's words by a diff):
#   base (the default): 121 misheard; under 0.5 are 32% of them and 3.4% of the words heard
#     right (under 0.6: 52% and 6.4%; under 0.7: 63% and 9.8%);
#   tiny.en: 161 misheard; under 0.5 are 41% of them and 4.9% of the words heard right.
# At 0.5, base leaves fewer misheard words unflagged than tiny.en (82 against 95) and asks
# about fewer right ones (59 against 82): about one word in twenty to check.
UNSURE_BELOW = 0.5


def is_unsure(word: Word) -> bool:
    """Say whether `word` still needs a person to look at it before it is printed.

    It does when the recogniser was unsure of it and nobody has confirmed it (`checked`),
    corrected it (`edited`) or redacted it (then it is never printed).
    """
    return (word.probability < UNSURE_BELOW and not word.checked and not word.edited
            and not word.redaction)


@dataclass(frozen=True)
class Token:
    """A word as shown: its text (or redaction label), its time, and the words it stands for.

    `unsure`: a word nobody has looked at since the recogniser guessed it (`is_unsure`).
    """

    text: str
    start: float
    end: float
    probability: float
    edited: bool
    redacted: bool
    word_ids: tuple[int, ...]
    unsure: bool = False


_TRAILING = re.compile(r"[.,;:?!…]+['\")\]]*$")


def _shown(label: str, last_word: str) -> str:
    """Return the label with the punctuation that ended the words it replaces ("[NAME].")."""
    found = _TRAILING.search(last_word)
    return label + (found.group(0) if found else "")


def tokens(words: Sequence[Word], form: Form) -> list[Token]:
    """Return `words` as shown in `form`: redacted runs become one label in REDACTED form."""
    out: list[Token] = []
    label: str | None = None  # the label of the redacted run `out[-1]` stands for
    for word in words:
        if form is Form.FULL or not word.redaction:
            out.append(Token(word.text, word.start, word.end, word.probability, word.edited,
                             bool(word.redaction), (word.id,), is_unsure(word)))
            label = None
            continue
        if label == word.redaction and not _TRAILING.search(out[-1].text):
            last = out[-1]
            out[-1] = Token(_shown(label, word.text), last.start, word.end, 1.0, False, True,
                            (*last.word_ids, word.id))
        else:
            label = word.redaction
            out.append(Token(_shown(label, word.text), word.start, word.end, 1.0, False, True,
                             (word.id,)))
    return out


def segment_text(segment: Segment, form: Form) -> str:
    """Return the segment's text in `form`."""
    if form is Form.FULL or not any(w.redaction for w in segment.words):
        return segment.text
    return " ".join(t.text for t in tokens(segment.words, form))


def words_between(transcript: Transcript, speaker: str, start: float, end: float,
                   ) -> list[Word]:
    """Return the words `speaker` (a key like "S1" or its shown name) says from start to end."""
    names = transcript.speakers or {}

    def within(seg: Segment, any_speaker: bool) -> list[Word]:
        if not any_speaker and speaker not in (seg.speaker, names.get(seg.speaker)):
            return []
        return [w for w in seg.words if start - 0.01 <= (w.start + w.end) / 2 <= end + 0.01]

    words = [w for seg in transcript.segments for w in within(seg, False)]
    if not words:  # the speaker was renamed since: the times still hold
        words = [w for seg in transcript.segments for w in within(seg, True)]
    return words


def text_between(transcript: Transcript, speaker: str, start: float, end: float,
                 form: Form) -> str:
    """Return what `speaker` (a key like "S1" or its shown name) says from `start` to `end`.

    A passage keeps its times while its words are corrected or redacted, so this is always
    the transcript's current wording of it.
    """
    return " ".join(t.text for t in tokens(words_between(transcript, speaker, start, end), form))


def unsure_between(transcript: Transcript, speaker: str, start: float, end: float,
                   ) -> list[Token]:
    """Return the unsure words nobody has looked at in what `speaker` says from start to end.

    The stretch is `text_between`'s. Redacted words are never among them (they are never
    printed), so the tokens are the same in every form.
    """
    words = words_between(transcript, speaker, start, end)
    return [t for t in tokens(words, Form.REDACTED) if t.unsure]


def count_unsure(transcript: Transcript) -> int:
    """Return how many of the transcript's words are unsure and not yet looked at."""
    return sum(1 for seg in transcript.segments for w in seg.words if is_unsure(w))


def unsure_counts(transcript_ids: Iterable[int]) -> dict[int, int]:
    """Return transcript id -> its unsure words not yet looked at (`count_unsure`), in one query.

    Transcripts without any are left out.
    """
    ids = list(transcript_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Segment.transcript_id, func.count(Word.id))
        .join(Word, Word.segment_id == Segment.id)
        .where(Segment.transcript_id.in_(ids), Word.probability < UNSURE_BELOW,
               Word.checked.is_(False), Word.edited.is_(False), Word.redaction.is_(None))
        .group_by(Segment.transcript_id))
    return {transcript_id: count for transcript_id, count in rows}


def muted_spans(transcript: Transcript, pad: float = 0.05) -> list[tuple[float, float]]:
    """Return the stretches of audio to mute: redacted words' times, padded and merged."""
    spans = sorted((max(0.0, w.start - pad), w.end + pad)
                   for seg in transcript.segments for w in seg.words if w.redaction)
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
