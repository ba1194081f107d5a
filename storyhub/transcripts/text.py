"""A transcript's words as a reader may see them: whole, or with redacted words replaced.

Redactions are marks on words (`Word.redaction`, e.g. "[NAME]"); a run of marked words with
the same label reads as one label. Everything that shows or exports transcript text asks here
with the form the policy gave (`storyhub.policy.Form`), so a redacted name cannot slip out
through one view that forgot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..policy import Form
from .models import Segment, Transcript, Word


@dataclass(frozen=True)
class Token:
    """A word as shown: its text (or redaction label), its time, and the words it stands for."""

    text: str
    start: float
    end: float
    probability: float
    edited: bool
    redacted: bool
    word_ids: tuple[int, ...]


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
                             bool(word.redaction), (word.id,)))
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


def has_redactions(transcript: Transcript) -> bool:
    return any(w.redaction for seg in transcript.segments for w in seg.words)


def text_between(transcript: Transcript, speaker: str, start: float, end: float,
                 form: Form) -> str:
    """Return what `speaker` (a key like "S1" or its shown name) says from `start` to `end`.

    A passage keeps its times while its words are corrected or redacted, so this is always
    the transcript's current wording of it.
    """
    names = transcript.speakers or {}

    def within(seg: Segment, any_speaker: bool) -> list[Word]:
        if not any_speaker and speaker not in (seg.speaker, names.get(seg.speaker)):
            return []
        return [w for w in seg.words if start - 0.01 <= (w.start + w.end) / 2 <= end + 0.01]

    words = [w for seg in transcript.segments for w in within(seg, False)]
    if not words:  # the speaker was renamed since: the times still hold
        words = [w for seg in transcript.segments for w in within(seg, True)]
    return " ".join(t.text for t in tokens(words, form))


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
