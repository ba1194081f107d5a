"""Edit a transcript without losing its timing, and export it."""

from __future__ import annotations

import difflib
import json

from ..policy import Form
from .models import Segment, Transcript, Word
from .text import segment_text, tokens


def _norm(token: str) -> str:
    return "".join(ch for ch in token.lower() if ch.isalnum() or ch == "'")


Timed = tuple[str, float, float, float, bool, str | None]


def retime_words(old: list[Word], new_tokens: list[str], seg_start: float,
                 seg_end: float) -> list[Timed]:
    """Return (text, start, end, probability, edited, redaction) for `new_tokens`.

    Words the editor did not change keep their times, confidence and redaction; changed or
    added words take the time of the words they replace, or share the gap between their
    neighbours.
    """
    matcher = difflib.SequenceMatcher(a=[_norm(w.text) for w in old],
                                      b=[_norm(t) for t in new_tokens], autojunk=False)
    out: list[Timed] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for w, token in zip(old[a0:a1], new_tokens[b0:b1], strict=True):
                # Same word, perhaps with new punctuation or capitals.
                out.append((token, w.start, w.end, w.probability, w.edited or token != w.text,
                            w.redaction))
            continue
        if op == "delete":
            continue
        if a1 > a0:
            start, end = old[a0].start, old[a1 - 1].end
        else:
            start = old[a0 - 1].end if a0 > 0 else seg_start
            end = old[a0].start if a0 < len(old) else seg_end
            end = max(end, start)
        count = b1 - b0
        step = (end - start) / count
        for i, token in enumerate(new_tokens[b0:b1]):
            out.append((token, round(start + i * step, 3), round(start + (i + 1) * step, 3),
                        1.0, True, None))
    return out


def apply_segment_text(segment: Segment, text: str) -> None:
    """Replace a segment's text, keeping the timestamps of the words that did not change."""
    tokens = text.split()
    timed = retime_words(list(segment.words), tokens, segment.start, segment.end)
    segment.words.clear()
    for pos, (token, start, end, prob, edited, redaction) in enumerate(timed):
        segment.words.append(Word(position=pos, start=start, end=end, text=token,
                                  probability=prob, edited=edited, redaction=redaction))
    segment.text = " ".join(tokens)
    segment.edited = True


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
