"""Transcription verbs: start a job (tasks.py runs it), store the transcript, edit and export it."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from sqlalchemy import Select, select

from .. import audit, config, policy, signals
from ..accounts.models import User
from ..database import utcnow
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import Job, JobStatus
from ..stories.models import Story, StoryStatus
from ..stories.state import StoryState, state_of
from . import timed_text
from .engines import EngineSettings, SegmentResult, Transcription, get_engine
from .models import Segment, Transcript, Word
from .text import count_unsure, segment_text, tokens

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


def language_of(story: Story) -> str:
    """The language to transcribe the story in (the configured one, else the story's)."""
    configured = config.settings().whisper_language
    if configured:
        return configured
    return story.language if story.language and story.language != "other" else "en"


def build_transcript(story: Story, transcription: Transcription, seconds: float) -> Transcript:
    """Return a new transcript of what the engine heard (the caller adds it to the session)."""
    segments = transcription.segments
    settings = EngineSettings.from_config(config.settings())
    engine = get_engine(settings)
    speakers = sorted({s.speaker for s in segments}) or ["S1"]
    names = {key: SPEAKER_NAMES.get(key, key) for key in speakers}
    if len(speakers) == 1:
        names = {speakers[0]: "Storyteller"}
    transcript = Transcript(recording_id=story.recording.id, story_id=story.id,  # type: ignore
                            engine=engine.name, model_name=str(engine.model_name)[-200:],
                            language=language_of(story), speakers=names,
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
    return editable(story, actor)[0]


def editable(story: Story, actor: User) -> tuple[Transcript, policy.Form]:
    """Return the transcript `actor` may correct, and the form they may read it in."""
    form = policy.require(actor, story, policy.Action.EDIT)
    transcript = get_transcript(story)
    if transcript is None:
        raise TranscriptError("This story has not been transcribed yet.")
    return transcript, form


REDACTED_PASSAGE = ("This passage has redacted words, so only the reporter who gathered the "
                    "story can change it.")


class RedactedPassage(TranscriptError):
    """A change to redacted words by someone who reads them as labels (already audited)."""


def refuse_redacted(story: Story, actor: User) -> RedactedPassage:
    """Audit a change refused because it touches redacted words; return the error to raise.

    The answer is the same whatever was typed, so nobody but the reporter who gathered the
    story can find out a redacted word by guessing it.
    """
    audit.record("transcript.edit_refused", actor.id, "story", story.id,
                 detail="passage holds redacted words")
    return RedactedPassage(REDACTED_PASSAGE)


def edit_segment(story: Story, segment_id: int, text: str, actor: User) -> Segment:
    """Change one segment's text; unchanged words keep their timestamps (and redactions).

    `text` is compared with the segment as `actor` reads it: others than the reporter who
    gathered the story read redacted words as labels, and may not change a passage holding
    them.
    """
    transcript, form = editable(story, actor)
    segment = db.session.get(Segment, segment_id)
    if segment is None or segment.transcript_id != transcript.id:
        raise LookupError(segment_id)
    text = " ".join(text.split())
    if not text:
        raise TranscriptError("A passage cannot be empty. To remove words, delete them but "
                              "leave at least one.")
    shown = (segment_text(segment, form), " ".join(t.text for t in tokens(segment.words, form)))
    if text in shown:  # as stored, or as the editor joins its words
        return segment  # nothing changed: nothing to review again
    if form is not policy.Form.FULL and any(w.redaction for w in segment.words):
        raise refuse_redacted(story, actor)
    timed_text.apply_segment_text(segment, text)
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


class UnsureWordsLeft(TranscriptError):
    """Marking reviewed would leave more unsure words unchecked than the reporter agreed to."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(
            f"{count} word{'s' if count != 1 else ''} the computer was unsure of "
            f"{'have' if count != 1 else 'has'} not been checked. Listen to each and press "
            "“It's right” or correct it, or mark the transcript reviewed anyway.")


def mark_reviewed(story: Story, actor: User, leave_unsure: int | None = None) -> None:
    """Mark the transcript reviewed by `actor`.

    `leave_unsure`: how many unsure words the reporter agreed to leave unchecked, having been
    shown them; more than that raises UnsureWordsLeft. None (StoryHub's own callers, such as
    the demo) does not ask. Either way the audit entry says how many were left.
    """
    transcript = _editable(story, actor)
    left = count_unsure(transcript)
    if leave_unsure is not None and left > leave_unsure:
        raise UnsureWordsLeft(left)
    transcript.reviewed_at = utcnow()
    transcript.reviewed_by_id = actor.id
    transcript.needs_checking = False  # a person has listened and checked it
    audit.record("transcript.review", actor.id, "story", story.id,
                 detail=f"{left} unsure words left unchecked" if left else None)


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


# --- what other features ask of transcripts ---------------------------------------------------

@signals.story_erasing.connect
def _erase(story_id: int, scopes: list[str] | None = None,
           removed: Counter[str] | None = None, **_kwargs) -> list[str]:
    """Delete the story's transcript (segments and words with it) once transcription goes."""
    count = 0
    if policy.Action.TRANSCRIBE in policy.affected(scopes):
        for transcript in db.session.scalars(select(Transcript).where(
                Transcript.story_id == story_id)):
            db.session.delete(transcript)
            count += 1
    if removed is not None:
        removed["transcripts"] += count
    return []


@signals.stories_reviewed_before.connect
def _reviewed_before(before: datetime, **_kwargs) -> Select[int]:
    """The stories whose transcript was reviewed before `before` (for retention)."""
    return select(Transcript.story_id).where(Transcript.reviewed_at < before)


@signals.subject_access_parts.connect
def _subject_access(story: Story, **_kwargs) -> dict[str, str]:
    """The whole transcript, unredacted (it is the storyteller's own words), as text and JSON."""
    transcript = get_transcript(story)
    if transcript is None:
        return {}
    return {"transcript.txt": timed_text.to_text(transcript, policy.Form.FULL),
            "transcript.json": timed_text.to_json(transcript, policy.Form.FULL)}
