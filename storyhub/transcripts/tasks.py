"""The transcription job: hear a story's recording with the configured engine, off the request.

The transcript is written only when the job is published, so a job that is lost, refused or
handed back leaves nothing half-written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .. import keys, policy
from ..config import settings
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.handler import JobHandler
from ..jobs.models import Job
from ..storage import StoredFile, get_storage
from ..stories.models import Story
from . import engine_audio
from .engines import EngineSettings, SegmentResult, Transcription, get_engine
from .service import KIND, build_transcript, get_transcript, language_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscriptionInputs:
    """What a transcription needs, read before the long part (no database during it)."""

    story_id: int
    recording_id: int
    original: StoredFile
    normalised: StoredFile
    channels: int
    duration: float
    language: str
    settings: EngineSettings
    checkpoint_dir: Path


def transcribe_audio(job: TranscriptionInputs, report: jobs.Report) -> Transcription:
    """Run the configured engine over the recording; one voice per stereo side splits.

    The coverage of a split dialogue is short when either side's is.
    """
    engine = get_engine(job.settings, checkpoint_dir=job.checkpoint_dir)
    duration = max(job.duration, 0.001)
    sides = None
    if job.channels == 2:
        stereo = engine_audio.decode(job.original, channels=2)
        if engine_audio.voices_on_separate_channels(stereo):
            sides = [stereo[:, 0].copy(), stereo[:, 1].copy()]
        del stereo
    if sides is None:
        audio = engine_audio.decode(job.normalised)
        return engine.transcribe(audio, job.language, lambda t: report(100 * t / duration))
    results: list[SegmentResult] = []
    coverages = []
    for index, side in enumerate(sides):
        def progress(t: float, offset: int = index) -> None:
            report(100 * (offset * duration + t) / (len(sides) * duration))

        heard = engine.transcribe(side, job.language, progress)
        for seg in heard.segments:
            seg.speaker = f"S{index + 1}"
            results.append(seg)
        coverages.append(heard.coverage)
    results.sort(key=lambda s: (s.start, s.speaker))
    return Transcription(results, coverages[0].merge(coverages[1]))


class TranscriptionHandler(JobHandler[TranscriptionInputs, tuple[Transcription, float]]):
    """How the job runner transcribes a story's recording (queue `transcribe`)."""

    kind = KIND
    queue = "transcribe"  # GPU workers can take only these
    failure_message = ("Transcription failed on the server. Press Retry; if it fails again, "
                       "tell your StoryHub admin.")

    def prepare(self, job: Job) -> TranscriptionInputs:
        story = db.session.get(Story, job.story_id)
        if story is None or story.recording is None:
            raise jobs.JobRefused("This story has no recording to transcribe.")
        decision = policy.decide(None, story, policy.Action.TRANSCRIBE)
        if not decision.allowed:
            raise jobs.JobRefused(decision.reason)
        if get_transcript(story) is not None:
            raise jobs.NothingToDo()  # a duplicate job: the transcript is there already
        storage = get_storage()
        recording = story.recording
        # The original may be gone (retention): the playback copy is the same speech.
        source = recording.original_key or recording.playback_key
        data_key = keys.story_key(story)
        return TranscriptionInputs(
            story.id, recording.id, storage.file(source, data_key),
            storage.file(recording.normalised_key, data_key), recording.channels,
            recording.duration_seconds, language_of(story),
            EngineSettings.from_config(settings()), storage.root / "models")

    def work(self, prepared: TranscriptionInputs,
             report: jobs.Report) -> tuple[Transcription, float]:
        started = time.perf_counter()
        heard = transcribe_audio(prepared, report)
        return heard, time.perf_counter() - started

    def publish(self, job: Job, prepared: TranscriptionInputs,
                result: tuple[Transcription, float]) -> None:
        heard, seconds = result
        story = db.session.get(Story, prepared.story_id)
        if story is None:
            raise jobs.JobRefused("This story was erased while it was being transcribed.")
        db.session.add(build_transcript(story, heard, seconds))
        logger.info("Story %s transcribed in %.1fs", prepared.story_id, seconds)


jobs.register(TranscriptionHandler())
