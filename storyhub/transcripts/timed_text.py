"""Edit a transcript without losing its timing, and export it."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from ..policy import Form
from .models import Segment, Transcript, Word
from .text import segment_text, tokens


def _norm(token: str) -> str:
    return "".join(ch for ch in token.lower() if ch.isalnum() or ch == "'")


@dataclass(frozen=True)
class Timed:
    """A word of an edited passage: its text and time, and the stored word it still is, if any."""

    text: str
    start: float
    end: float
    kept: Word | None = None  # the same word as before, perhaps with new punctuation


def retime_words(old: list[Word], new_tokens: list[str], seg_start: float,
                 seg_end: float) -> list[Timed]:
    """Return `new_tokens` timed, each tied to the stored word it still is.

    Words the editor did not change keep their times, confidence, checks and redaction; changed
    or added words take the time of the words they replace, or share the gap between their
    neighbours.
    """
    matcher = difflib.SequenceMatcher(a=[_norm(w.text) for w in old],
                                      b=[_norm(t) for t in new_tokens], autojunk=False)
    out: list[Timed] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            out += [Timed(token, w.start, w.end, w)
                    for w, token in zip(old[a0:a1], new_tokens[b0:b1], strict=True)]
            continue
        if op == "delete":
            continue
        if a1 > a0:
            start, end = old[a0].start, old[a1 - 1].end
        else:
            start = old[a0 - 1].end if a0 > 0 else seg_start
            end = old[a0].start if a0 < len(old) else seg_end
            end = max(end, start)
        out += _spread(new_tokens[b0:b1], start, end)
    return out


def _spread(new_tokens: list[str], start: float, end: float) -> list[Timed]:
    step = (end - start) / len(new_tokens)
    return [Timed(token, round(start + i * step, 3), round(start + (i + 1) * step, 3))
            for i, token in enumerate(new_tokens)]


def _store(segment: Segment, timed: list[Timed]) -> None:
    """Make `timed` the segment's words: kept words stay the same rows, new ones are added."""
    words = []
    for pos, item in enumerate(timed):
        word = item.kept
        if word is None:  # typed by a person: as sure as can be, and looked at
            word = Word(start=item.start, end=item.end, text=item.text, probability=1.0,
                        edited=True)
        elif item.text != word.text:  # same word, new punctuation or capitals: looked at
            word.text, word.edited = item.text, True
        word.position = pos
        words.append(word)
    segment.words = words
    segment.text = " ".join(item.text for item in timed)
    segment.edited = True


def apply_segment_text(segment: Segment, text: str) -> None:
    """Replace a segment's text, keeping the timestamps of the words that did not change."""
    _store(segment, retime_words(list(segment.words), text.split(), segment.start, segment.end))


def replace_word(segment: Segment, word: Word, text: str) -> None:
    """Put `text` (any number of words, or none) in place of one word, in its time.

    Only that word changes, by its place in the passage: the words around it (redacted or
    not) stay as they are, whatever the new text says.
    """
    timed = []
    for other in segment.words:
        if other is word:
            timed += _spread(text.split(), word.start, word.end) if text.split() else []
        else:
            timed.append(Timed(other.text, other.start, other.end, other))
    _store(segment, timed)


def _stamp(seconds: float, sep: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def to_text(transcript: Transcript, form: Form) -> str:
    lines, last = [], None
    for seg in transcript.segments:
        name = transcript.speakers.get(seg.speaker, seg.speaker)
        if name != last and len(transcript.speakers) > 1:
            lines.append(f"\n{name}:")
            last = name
        lines.append(segment_text(seg, form))
    return "\n".join(lines).strip() + "\n"


def to_vtt(transcript: Transcript, form: Form) -> str:
    out = ["WEBVTT", ""]
    for seg in transcript.segments:
        name = transcript.speakers.get(seg.speaker, seg.speaker)
        out += [f"{_stamp(seg.start, '.')} --> {_stamp(seg.end, '.')}",
                f"<v {name}>{segment_text(seg, form)}", ""]
    return "\n".join(out)


def to_srt(transcript: Transcript, form: Form) -> str:
    out = []
    for i, seg in enumerate(transcript.segments, 1):
        name = transcript.speakers.get(seg.speaker, seg.speaker)
        prefix = f"{name}: " if len(transcript.speakers) > 1 else ""
        out += [str(i), f"{_stamp(seg.start, ',')} --> {_stamp(seg.end, ',')}",
                prefix + segment_text(seg, form), ""]
    return "\n".join(out)


def to_json(transcript: Transcript, form: Form) -> str:
    return json.dumps({
        "story_id": transcript.story_id, "engine": transcript.engine,
        "language": transcript.language, "speakers": transcript.speakers,
        "reviewed": transcript.reviewed_at is not None, "redacted": form is not Form.FULL,
        "segments": [{
            "id": seg.id, "start": seg.start, "end": seg.end, "speaker": seg.speaker,
            "text": segment_text(seg, form),
            "words": [{"text": t.text, "start": t.start, "end": t.end,
                       "probability": round(t.probability, 3)}
                      for t in tokens(seg.words, form)],
        } for seg in transcript.segments],
    }, indent=2)
