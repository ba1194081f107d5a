"""Check that a transcript covers the speech in its recording.

Whisper sometimes stops early on a stretch of speech and returns a few words for it, or gets
stuck repeating one phrase; nothing in its output says so. Voice activity detection (Silero VAD,
shipped inside faster-whisper) finds where people speak; comparing that with the words decoded
shows a stretch that came back far short.

The figures behind the thresholds (tiny.en, int8, 2 cores; 72 espeak-ng stories of 11-72 s in
nine voices at 130-190 words a minute and five containers, JFK's speech, and the 7 stories out
of 600 generated ones that the batched decoder got wrong):

- stories decoded well: 2.17-4.1 words per second of VAD speech in every chunk, no stretch of
  more than 0.7 s of speech without a word within a second of it, text compressing 1.5-1.8
  times (zlib); JFK: 2.1 words a second;
- stories cut short: 0.07-0.70 words a second, or 1.57 with 10.5 s of speech left without a
  word (one decoded only its last third);
- stories stuck in a loop ("me and me and me ..."): text compressing 9-11 times, 15-23 words a
  second;
- words the model was sure of: a mean word probability of 0.77-0.92 per story over 36 stories
  and JFK's speech; speech it could only guess at (another language to an English model, speech
  under loud noise, babble, gibberish) 0.42-0.58, however it was decoded.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .text import UNSURE_BELOW

if TYPE_CHECKING:
    from .engines import SegmentResult

SAMPLE_RATE = 16_000
# Whisper's window: VAD spans are grouped into chunks of at most this much speech, as the
# batched decoder groups them.
CHUNK_SECONDS = 30.0
# A chunk is short with fewer words than this per second of speech (half the slowest seen).
MIN_WORDS_PER_SECOND = 1.0
# ... or with this much speech in a row with no word within WORD_REACH_SECONDS of it.
MAX_UNCOVERED_SECONDS = 8.0
WORD_REACH_SECONDS = 1.0
# A chunk is looping when its text compresses more than this: Whisper's own threshold for
# falling back to a higher temperature, which the batched decoder does not apply.
MAX_COMPRESSION_RATIO = 2.4
# ... or with the words' mean probability below this: the model was guessing, not hearing.
MIN_MEAN_PROBABILITY = 0.6
# Chunks with less speech than this are not judged short: a lone "yes" proves nothing.
MIN_JUDGED_SECONDS = 4.0


@dataclass(frozen=True)
class Span:
    """A stretch of the recording, in seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Coverage:
    """How much of the speech VAD found in a recording came back as words.

    `short` means part of the speech may be missing from the transcript or misheard, so a
    person should listen and fill it in. `checked` is False when the check could not be made.
    `redecoded` counts the chunks that were decoded a second time because the first try fell
    short.
    """

    speech_seconds: float
    words: int
    short: bool
    checked: bool = True
    redecoded: int = 0

    def merge(self, other: Coverage) -> Coverage:
        """Return the coverage of two parts (e.g. the two sides of a stereo dialogue)."""
        return Coverage(round(self.speech_seconds + other.speech_seconds, 2),
                        self.words + other.words, self.short or other.short,
                        self.checked and other.checked, self.redecoded + other.redecoded)


NOT_CHECKED = Coverage(0.0, 0, short=False, checked=False)


def speech_spans(audio: np.ndarray) -> list[Span]:
    """Return where VAD hears speech, with the settings of faster-whisper's batched decoder."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=160, max_speech_duration_s=CHUNK_SECONDS)
    return [Span(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE)
            for s in get_speech_timestamps(audio, options)]


def chunks_of(spans: Sequence[Span]) -> list[list[Span]]:
    """Group consecutive spans into chunks of at most CHUNK_SECONDS of speech."""
    chunks: list[list[Span]] = []
    for span in spans:
        if chunks and sum(s.seconds for s in chunks[-1]) + span.seconds <= CHUNK_SECONDS:
            chunks[-1].append(span)
        else:
            chunks.append([span])
    return chunks


def territories(chunks: Sequence[Sequence[Span]]) -> list[Span]:
    """Split the timeline between chunks: each boundary halfway through the silence between.

    A word belongs to the chunk whose territory holds its middle.
    """
    bounds = [(a[-1].end + b[0].start) / 2 for a, b in zip(chunks, chunks[1:], strict=False)]
    edges = [float("-inf"), *bounds, float("inf")]
    return [Span(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]


@dataclass(frozen=True)
class _Word:
    start: float
    end: float
    text: str
    probability: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def _words_of(segments: Sequence[SegmentResult]) -> list[_Word]:
    words: list[_Word] = []
    for seg in segments:
        if seg.words:
            words.extend(_Word(w.start, w.end, w.text, w.probability) for w in seg.words)
        else:  # no word timings: spread the segment's words evenly over it, sure of none
            texts = seg.text.split()
            step = (seg.end - seg.start) / max(len(texts), 1)
            words.extend(_Word(seg.start + i * step, seg.start + (i + 1) * step, text, 1.0)
                         for i, text in enumerate(texts))
    return words


def _longest_uncovered(chunk: Sequence[Span], words: Sequence[_Word]) -> float:
    """Return the longest run of speech in `chunk` with no word within reach, in seconds."""
    step = 0.1
    origin = chunk[0].start
    grid = origin + step * np.arange(int(np.ceil((chunk[-1].end - origin) / step)))
    alone = np.zeros(len(grid), dtype=bool)
    for span in chunk:
        alone |= (grid >= span.start) & (grid < span.end)
    for word in words:
        alone &= (grid < word.start - WORD_REACH_SECONDS) | (grid >= word.end + WORD_REACH_SECONDS)
    longest = run = 0
    for value in alone:
        run = run + 1 if value else 0
        longest = max(longest, run)
    return round(longest * step, 1)


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True)
class ChunkCoverage:
    """One chunk's speech against the words decoded in its territory."""

    start: float
    end: float
    speech_seconds: float
    words: int
    uncovered_seconds: float
    compression: float
    confidence: float
    sure_words: int

    @property
    def short(self) -> bool:
        if self.speech_seconds < MIN_JUDGED_SECONDS:
            return False
        return (self.words < MIN_WORDS_PER_SECOND * self.speech_seconds
                or self.uncovered_seconds >= MAX_UNCOVERED_SECONDS)

    @property
    def looping(self) -> bool:
        return self.compression > MAX_COMPRESSION_RATIO

    @property
    def unsure(self) -> bool:
        return self.speech_seconds >= MIN_JUDGED_SECONDS and self.confidence < MIN_MEAN_PROBABILITY

    @property
    def failed(self) -> bool:
        return self.short or self.looping or self.unsure


def chunk_coverage(chunks: Sequence[Sequence[Span]],
                   segments: Sequence[SegmentResult]) -> list[ChunkCoverage]:
    """Measure each chunk: its speech, words, longest stretch without, repetition, certainty."""
    words = _words_of(segments)
    result = []
    for chunk, land in zip(chunks, territories(chunks), strict=True):
        mine = [w for w in words if land.start <= w.middle < land.end]
        result.append(ChunkCoverage(
            chunk[0].start, chunk[-1].end, round(sum(s.seconds for s in chunk), 2), len(mine),
            _longest_uncovered(chunk, mine), compression_ratio(" ".join(w.text for w in mine)),
            float(np.mean([w.probability for w in mine])) if mine else 0.0,
            sum(1 for w in mine if w.probability >= UNSURE_BELOW)))
    return result


def measure(spans: Sequence[Span], segments: Sequence[SegmentResult],
            redecoded: int = 0) -> Coverage:
    """Return the coverage of `segments` against the speech `spans` of one recording.

    Short when any chunk is short, looping or unsure, or when the whole has too few words.
    """
    speech = sum(s.seconds for s in spans)
    words = len(_words_of(segments))
    too_few = speech >= MIN_JUDGED_SECONDS and words < MIN_WORDS_PER_SECOND * speech
    failed = any(c.failed for c in chunk_coverage(chunks_of(spans), segments))
    return Coverage(round(speech, 2), words, too_few or failed, redecoded=redecoded)
