"""The muted playback copy's job: silence the redacted stretches of a story's recording.

Until it has run, the policy refuses redacted playback rather than serve the words unmuted
(service.py queues it whenever redactions change).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.handler import JobHandler
from ..jobs.models import Job
from ..keys import story_key
from ..media.audio import mute_spans
from ..storage import StoredFile, get_storage, track_new_file
from ..stories.models import Story
from ..transcripts.service import get_transcript
from ..transcripts.text import muted_spans
from .service import KIND

logger = logging.getLogger(__name__)


@dataclass
class MutingInputs:
    """The stretches to mute in a story's playback copy, and where the muted copy goes."""

    story_id: int
    spans: list[tuple[float, float]]
    source: StoredFile
    out: Path
    replaced: list[str] = field(default_factory=list)


class MutingHandler(JobHandler[MutingInputs, None]):
    """How the job runner makes a story's muted playback copy (queue `default`)."""

    kind = KIND
    failure_message = ("Preparing the recording with redacted words muted failed. Others "
                       "cannot play this story until it works: try again, or tell your admin.")

    def prepare(self, job: Job) -> MutingInputs:
        story = db.session.get(Story, job.target_id)
        transcript = get_transcript(story) if story is not None else None
        if story is None or story.recording is None or transcript is None:
            raise jobs.NothingToDo()
        storage = get_storage()
        return MutingInputs(story.id, muted_spans(transcript),
                            storage.file(story.recording.playback_key, story_key(story)),
                            storage.temp_path(".m4a"))

    def work(self, prepared: MutingInputs, report: jobs.Report) -> None:
        if prepared.spans:
            mute_spans(prepared.source, prepared.out, prepared.spans)

    def publish(self, job: Job, prepared: MutingInputs, result: None) -> None:
        story = db.session.get(Story, prepared.story_id)
        transcript = get_transcript(story) if story is not None else None
        if story is None or story.recording is None or transcript is None:
            return
        if muted_spans(transcript) != prepared.spans:
            return  # redacted again meanwhile: the job queued then makes the copy
        recording = story.recording
        if recording.redacted_playback_key:
            prepared.replaced.append(recording.redacted_playback_key)
        key = None
        if prepared.spans:
            storage = get_storage()
            key = storage.new_key("audio", "playback-redacted.m4a")
            storage.put(prepared.out, key, prepared.source.data_key)
            track_new_file(db.session, key)
        recording.redacted_playback_key = key
        recording.redaction_pending = False
        logger.info("Muted copy of story %s made (%d stretches)", story.id, len(prepared.spans))

    def discard(self, prepared: MutingInputs) -> None:
        prepared.out.unlink(missing_ok=True)

    def after_commit(self, prepared: MutingInputs) -> None:
        prepared.out.unlink(missing_ok=True)
        for key in prepared.replaced:
            get_storage().delete(key)


jobs.register(MutingHandler())
