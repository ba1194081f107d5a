"""Transcription verbs: start a job, run it, store the transcript, edit and export it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from .. import audit, keys, policy, signals
from ..accounts.models import User
from ..database import utcnow
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import Job, JobStatus
from ..storage import StoredFile, get_storage
from ..stories.models import Story, StoryStatus
from ..stories.state import StoryState, state_of
from . import channels
from .engines import EngineSettings, SegmentResult, Transcription, get_engine
from .models import Segment, Transcript, Word

logger = logging.getLogger(__name__)
KIND = "transcribe"
SPEAKER_NAMES = {"S1": "Speaker 1", "S2": "Speaker 2"}


class TranscriptError(ValueError):
    """A transcription request the user can fix; the message says how."""


def job_key(recording_id: int) -> str:
    return f"transcribe:recording:{recording_id}"


def latest_job(story: Story) -> Job | None:
    return jobs.latest_job(KIND, story_id=story.id)


def start_transcription(story: Story, actor: User | None) -> Job:
    """Queue the story's recording for transcription, if `actor` (None: StoryHub) may."""
    policy.require(actor, story, policy.Action.TRANSCRIBE)
    if story.recording is None:
        raise TranscriptError("This story has no recording to transcribe.")
    if get_transcript(story) is not None:
        raise TranscriptError("This recording has already been transcribed.")
    job = latest_job(story)
    if job is not None and job.active:
        return job
    try:
        if job is not None and job.status is JobStatus.FAILED:
            jobs.retry(job)
        else:
            job = jobs.enqueue(KIND, key=job_key(story.recording.id), story_id=story.id,
                               target_id=story.recording.id)
    except jobs.JobConflict as exc:
        return exc.job
    audit.record("transcription.start", actor.id if actor else None, "story", story.id)
    return job


@signals.story_created.connect
def _transcribe_new_story(story: Story, actor_id: int | None = None, **_kwargs) -> None:
    if policy.decide(None, story, policy.Action.TRANSCRIBE).allowed:
        start_transcription(story, None)


def _language(story: Story) -> str:
    configured = current_app.config["WHISPER_LANGUAGE"]
    if configured:
        return configured
    return story.language if story.language and story.language != "other" else "en"


@dataclass(frozen=True)
class Prepared:
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


def transcribe_audio(job: Prepared, report: Callable[[float], None]) -> Transcription:
    """Run the configured engine over the recording; one voice per stereo side splits.

    The coverage of a split dialogue is short when either side's is.
    """
    engine = get_engine(job.settings, checkpoint_dir=job.checkpoint_dir)
    duration = max(job.duration, 0.001)
    sides = None
    if job.channels == 2:
        stereo = channels.decode(job.original, channels=2)
        if channels.voices_on_separate_channels(stereo):
            sides = [stereo[:, 0].copy(), stereo[:, 1].copy()]
        del stereo
    if sides is None:
        audio = channels.decode(job.normalised)
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
    add_segments(transcript, segments)
    return transcript


def add_segments(transcript: Transcript, segments: list[SegmentResult]) -> None:
    """Append the engine's segments, with their timed words, to `transcript`."""
    for pos, seg in enumerate(segments):
        row = Segment(position=pos, start=seg.start, end=seg.end, speaker=seg.speaker,
                      text=seg.text)
        row.words = [Word(position=i, start=w.start, end=w.end, text=w.text,
                          probability=w.probability) for i, w in enumerate(seg.words)]
        transcript.segments.append(row)


class TranscriptionJobs:
    """How the job runner transcribes a story's recording (queue `transcribe`)."""

    kind = KIND
    queue = "transcribe"  # GPU workers can take only these
    failure_message = ("Transcription failed on the server. Press Retry; if it fails again, "
                       "tell your StoryHub admin.")

    def prepare(self, job: Job) -> Prepared:
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
        return Prepared(story.id, recording.id, storage.file(source, data_key),
                        storage.file(recording.normalised_key, data_key), recording.channels,
                        recording.duration_seconds, _language(story),
                        EngineSettings.from_config(current_app.config), storage.root / "models")

    def work(self, prepared: Prepared,
             report: Callable[[float], None]) -> tuple[Transcription, float]:
        started = time.perf_counter()
        heard = transcribe_audio(prepared, report)
        return heard, time.perf_counter() - started

    def publish(self, job: Job, prepared: Prepared, result: tuple[Transcription, float]) -> None:
        heard, seconds = result
        story = db.session.get(Story, prepared.story_id)
        if story is None:
            raise jobs.JobRefused("This story was erased while it was being transcribed.")
        db.session.add(_build_transcript(story, heard, seconds))
        logger.info("Story %s transcribed in %.1fs", prepared.story_id, seconds)

    def discard(self, prepared: Prepared) -> None:
        """Nothing is made aside: the transcript is written only when published."""


jobs.register(TranscriptionJobs())


def run_transcription_job(job_id: int) -> str:
    """Do one transcription job here and now (as a worker would); return what happened."""
    return jobs.run_job(job_id)


def get_transcript(story: Story) -> Transcript | None:
    if story.recording is None:
        return None
    return db.session.scalar(select(Transcript).where(
        Transcript.recording_id == story.recording.id))


def readable(story: Story, actor: User, action: policy.Action = policy.Action.READ,
             ) -> tuple[Transcript, policy.Form]:
    """Return the transcript `actor` may read (or export), and in which form; audit it."""
    form = policy.require(actor, story, action)
    transcript = get_transcript(story)
    if transcript is None:
        raise TranscriptError("This story has not been transcribed yet.")
    audit.record(f"transcript.{action.value}", actor.id, "story", story.id, detail=form.value)
    return transcript, form


def _editable(story: Story, actor: User) -> Transcript:
    policy.require(actor, story, policy.Action.EDIT)
    transcript = get_transcript(story)
    if transcript is None:
        raise TranscriptError("This story has not been transcribed yet.")
    return transcript


def edit_segment(story: Story, segment_id: int, text: str, actor: User) -> Segment:
    """Change one segment's text; unchanged words keep their timestamps (and redactions)."""
    from .editing import apply_segment_text

    transcript = _editable(story, actor)
    segment = db.session.get(Segment, segment_id)
    if segment is None or segment.transcript_id != transcript.id:
        raise LookupError(segment_id)
    text = " ".join(text.split())
    if not text:
        raise TranscriptError("A passage cannot be empty. To remove words, delete them but "
                              "leave at least one.")
    if text == segment.text:
        return segment  # nothing changed: nothing to review again
    if not policy.gathered_by(actor, story) and any(w.redaction for w in segment.words):
        raise TranscriptError("This passage has redacted words, so only the reporter who "
                              "gathered the story can change it.")
    apply_segment_text(segment, text)
    if transcript.reviewed_at is not None:
        transcript.reviewed_at = None  # changed since review: needs another look
    words_changed(transcript)
    audit.record("transcript.edit", actor.id, "story", story.id)
    return segment


def words_changed(transcript: Transcript) -> None:
    """Note that the transcript's words changed, and tell whoever shows them."""
    transcript.changed_at = utcnow()
    db.session.flush()
    signals.transcript_changed.send(transcript.story_id)


def rename_speakers(story: Story, names: dict[str, str], actor: User) -> None:
    transcript = _editable(story, actor)
    updated = dict(transcript.speakers)
    for key, name in names.items():
        name = " ".join(name.split())[:60]
        if key in updated and name:
            updated[key] = name
    transcript.speakers = updated
    audit.record("transcript.speakers", actor.id, "story", story.id)


def mark_reviewed(story: Story, actor: User) -> None:
    transcript = _editable(story, actor)
    transcript.reviewed_at = utcnow()
    transcript.reviewed_by_id = actor.id
    transcript.needs_checking = False  # a person has listened and checked it
    audit.record("transcript.review", actor.id, "story", story.id)


@signals.story_states.connect
def story_states(stories: list[Story]) -> dict[int, StoryState]:
    """Derive each story's state from its transcript, else its latest transcription job."""
    ids = [s.id for s in stories]
    if not ids:
        return {}
    transcripts = {t.story_id: t for t in db.session.scalars(
        select(Transcript).where(Transcript.story_id.in_(ids)))}
    latest: dict[int | None, Job] = {}
    for row in db.session.scalars(select(Job).where(Job.kind == KIND, Job.story_id.in_(ids))
                                  .order_by(Job.id)):
        latest[row.story_id] = row
    states = {}
    for story in stories:
        transcript, job = transcripts.get(story.id), latest.get(story.id)
        if transcript is not None:
            states[story.id] = StoryState(
                StoryStatus.REVIEWED if transcript.reviewed_at else StoryStatus.TRANSCRIBED,
                progress=100.0, needs_checking=transcript.needs_checking)
        elif job is not None and job.status is not JobStatus.DONE:
            state = StoryState(_JOB_STATES[job.status], progress=round(job.progress, 1),
                               seconds_left=job.seconds_left, attempts=job.attempts)
            if job.status is JobStatus.FAILED:
                state.error = job.error
                state.can_retry = policy.decide(None, story, policy.Action.TRANSCRIBE).allowed
            states[story.id] = state
    return states


_JOB_STATES = {JobStatus.QUEUED: StoryStatus.QUEUED, JobStatus.RUNNING: StoryStatus.TRANSCRIBING,
               JobStatus.FAILED: StoryStatus.FAILED}


def status_of(story: Story) -> dict:
    """Return the story's processing state for the live progress display."""
    return state_of(story).to_json()
