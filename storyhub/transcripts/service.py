"""Transcription verbs: start a job, run it, store the transcript, edit and export it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..database import utcnow
from ..extensions import db
from ..jobs import service as jobs
from ..jobs.models import Job, JobKind, JobStatus
from ..storage import get_storage
from ..stories import consent
from ..stories.consent import Scope
from ..stories.models import Story, StoryStatus
from . import channels
from .engines import EngineSettings, SegmentResult, Transcription, get_engine
from .models import Segment, Transcript, Word

logger = logging.getLogger(__name__)
SPEAKER_NAMES = {"S1": "Speaker 1", "S2": "Speaker 2"}


class TranscriptError(ValueError):
    """A transcription request the user can fix; the message says how."""


def active_job(story: Story) -> Job | None:
    return db.session.scalar(
        select(Job).where(Job.story_id == story.id, Job.kind == JobKind.TRANSCRIBE)
        .order_by(Job.id.desc()).limit(1))


def start_transcription(story: Story, actor_id: int | None) -> Job:
    """Queue the story's recording for transcription, if its consent allows."""
    consent.require(story, Scope.TRANSCRIBE_ANALYSE)
    if story.recording is None:
        raise TranscriptError("This story has no recording to transcribe.")
    existing = db.session.scalar(select(Transcript).where(
        Transcript.recording_id == story.recording.id))
    if existing is not None:
        raise TranscriptError("This recording has already been transcribed.")
    job = active_job(story)
    if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return job
    if job is not None and job.status is JobStatus.FAILED:
        jobs.retry(job)
    else:
        job = jobs.enqueue(JobKind.TRANSCRIBE, story.id, story.recording.id)
    story.status = StoryStatus.QUEUED
    audit.record("transcription.start", actor_id, "story", story.id)
    return job


def _language(story: Story) -> str:
    configured = current_app.config["WHISPER_LANGUAGE"]
    if configured:
        return configured
    return story.language if story.language and story.language != "other" else "en"


def transcribe_audio(story: Story, report: Callable[[float], None]) -> Transcription:
    """Run the configured engine over the story's recording; one voice per stereo side splits.

    The coverage of a split dialogue is short when either side's is.
    """
    recording = story.recording
    if recording is None:
        raise TranscriptError("This story has no recording to transcribe.")
    storage = get_storage()
    engine = get_engine(EngineSettings.from_config(current_app.config),
                        checkpoint_dir=storage.root / "models")
    language = _language(story)
    duration = max(recording.duration_seconds, 0.001)
    sides = None
    if recording.channels == 2:
        stereo = channels.decode(storage.path(recording.original_key), channels=2)
        if channels.voices_on_separate_channels(stereo):
            sides = [stereo[:, 0].copy(), stereo[:, 1].copy()]
        del stereo
    if sides is None:
        audio = channels.decode(storage.path(recording.normalised_key))
        return engine.transcribe(audio, language, lambda t: report(100 * t / duration))
    results: list[SegmentResult] = []
    coverages = []
    for index, side in enumerate(sides):
        def progress(t: float, offset: int = index) -> None:
            report(100 * (offset * duration + t) / (len(sides) * duration))

        heard = engine.transcribe(side, language, progress)
        for seg in heard.segments:
            seg.speaker = f"S{index + 1}"
            results.append(seg)
        coverages.append(heard.coverage)
    results.sort(key=lambda s: (s.start, s.speaker))
    return Transcription(results, coverages[0].merge(coverages[1]))


def _build_transcript(story: Story, transcription: Transcription, seconds: float) -> Transcript:
    segments = transcription.segments
    settings = EngineSettings.from_config(current_app.config)
    engine = get_engine(settings)
    speakers = sorted({s.speaker for s in segments}) or ["S1"]
    names = {key: SPEAKER_NAMES.get(key, key) for key in speakers}
    if len(speakers) == 1:
        names = {speakers[0]: "Storyteller"}
    transcript = Transcript(recording_id=story.recording.id, story_id=story.id,  # type: ignore
                            engine=engine.name, model_name=str(engine.model_name)[-200:],
                            language=_language(story), speakers=names,
                            processing_seconds=round(seconds, 2),
                            needs_checking=transcription.coverage.short)
    for pos, seg in enumerate(segments):
        row = Segment(position=pos, start=seg.start, end=seg.end, speaker=seg.speaker,
                      text=seg.text)
        row.words = [Word(position=i, start=w.start, end=w.end, text=w.text,
                          probability=w.probability) for i, w in enumerate(seg.words)]
        transcript.segments.append(row)
    return transcript


def run_transcription_job(job_id: int) -> str:
    """Do one transcription job (the Celery task calls this); return what happened."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = jobs.worker_name()
    if not jobs.claim(job_id, worker):
        logger.info("Job %s not claimed (done, running elsewhere or out of attempts)", job_id)
        return "skipped"
    job = db.session.get(Job, job_id)
    story = db.session.get(Story, job.story_id) if job else None
    if job is None or story is None:
        return "skipped"
    started = time.perf_counter()
    try:
        consent.require(story, Scope.TRANSCRIBE_ANALYSE)
        story.status = StoryStatus.TRANSCRIBING
        db.session.commit()
        found: list[Transcription] = []

        def work(report: Callable[[float], None]) -> None:
            found.append(transcribe_audio(story, report))

        jobs.run_with_heartbeat(app, job_id, worker, work)
        seconds = time.perf_counter() - started
        db.session.add(_build_transcript(story, found[0], seconds))
        # Done only if this worker still holds the job: so a job finishes exactly once.
        jobs.mark_done(job_id, worker)
        story.status = StoryStatus.TRANSCRIBED
        db.session.commit()
        logger.info("Story %s transcribed in %.1fs", story.id, seconds)
        return "done"
    except jobs.JobGone:
        db.session.rollback()
        logger.warning("Job %s was taken over by another worker; dropping this attempt", job_id)
        return "lost"
    except IntegrityError:
        db.session.rollback()
        logger.warning("Job %s: a transcript already exists for this recording", job_id)
        return "duplicate"
    except consent.ConsentRefused as exc:
        _record_failure(job_id, worker, str(exc), retry=False)
        return "refused"
    except Exception:
        logger.exception("Transcription job %s failed", job_id)
        _record_failure(job_id, worker, "Transcription failed on the server. Press Retry; if it "
                                        "fails again, tell your StoryHub admin.", retry=True)
        return "failed"


def _record_failure(job_id: int, worker: str, message: str, retry: bool) -> None:
    job = jobs.fail(job_id, worker, message, retry)
    if job is not None and job.story_id is not None:
        story = db.session.get(Story, job.story_id)
        if story is not None:
            story.status = (StoryStatus.QUEUED if job.status is JobStatus.QUEUED
                            else StoryStatus.FAILED)
    db.session.commit()


def get_transcript(story: Story) -> Transcript | None:
    if story.recording is None:
        return None
    return db.session.scalar(select(Transcript).where(
        Transcript.recording_id == story.recording.id))


def _editable(story: Story) -> Transcript:
    consent.require(story, Scope.TRANSCRIBE_ANALYSE)
    transcript = get_transcript(story)
    if transcript is None:
        raise TranscriptError("This story has not been transcribed yet.")
    return transcript


def edit_segment(story: Story, segment_id: int, text: str, actor_id: int) -> Segment:
    """Change one segment's text; unchanged words keep their timestamps."""
    from .editing import apply_segment_text

    transcript = _editable(story)
    segment = db.session.get(Segment, segment_id)
    if segment is None or segment.transcript_id != transcript.id:
        raise LookupError(segment_id)
    text = " ".join(text.split())
    if not text:
        raise TranscriptError("A passage cannot be empty. To remove words, delete them but "
                              "leave at least one.")
    apply_segment_text(segment, text)
    if transcript.reviewed_at is not None:
        transcript.reviewed_at = None  # changed since review: needs another look
    audit.record("transcript.edit", actor_id, "story", story.id)
    return segment


def rename_speakers(story: Story, names: dict[str, str], actor_id: int) -> None:
    transcript = _editable(story)
    updated = dict(transcript.speakers)
    for key, name in names.items():
        name = " ".join(name.split())[:60]
        if key in updated and name:
            updated[key] = name
    transcript.speakers = updated
    audit.record("transcript.speakers", actor_id, "story", story.id)


def mark_reviewed(story: Story, actor_id: int) -> None:
    transcript = _editable(story)
    transcript.reviewed_at = utcnow()
    transcript.reviewed_by_id = actor_id
    transcript.needs_checking = False  # a person has listened and checked it
    story.status = StoryStatus.REVIEWED
    audit.record("transcript.review", actor_id, "story", story.id)


def status_of(story: Story) -> dict:
    """Return the story's processing state for the live progress display."""
    job = active_job(story)
    data = {"status": story.status.value, "progress": 0.0, "seconds_left": None,
            "error": None, "can_retry": False}
    if job is not None:
        data.update(progress=round(job.progress, 1), seconds_left=job.seconds_left,
                    error=job.error if job.status is JobStatus.FAILED else None,
                    can_retry=job.status is JobStatus.FAILED, attempts=job.attempts)
    if story.status in (StoryStatus.TRANSCRIBED, StoryStatus.REVIEWED):
        data["progress"] = 100.0
    transcript = get_transcript(story)
    data["needs_checking"] = bool(transcript and transcript.needs_checking)
    return data
