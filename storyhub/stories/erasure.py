"""Erase a story, whole or for the consent scopes a storyteller took back, in one job.

Whole: every audio file (original, 16 kHz copy, playback copies, clips), the consent form, the
transcript with its segments and words, passages and embeddings, theme memberships (the runs
are refreshed without it, see themes/story_changes.py), and whatever else a feature made from
it: each feature, transcripts included, listens to `signals.story_erasing`. The story row
goes, and with it the story's data key, so even an old backup of its files cannot be read. Only
an audit entry without content remains: which story number was erased, when, by whom and why.

One scope: what only that use needed. Taking back "transcribe and analyse" erases the
transcript, the 16 kHz copy and the muted copy and takes the story out of theme runs; the
recording stays for the reporter to play back until the storyteller withdraws altogether.

Asking for an erasure already takes the story's words out of what many stories share (theme
keywords, names and saved models: `signals.story_erasure_requested`), in the asking
transaction, so nothing shows them while the job waits for a worker.

Files are deleted before the rows, in the transaction that finishes the job, so a crash
between the two leaves rows without files (and the job runs again), never files without rows.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func, select

from .. import audit, policy, signals
from ..accounts.models import User
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import Job
from ..storage import get_storage
from .consent import Scope
from .models import Story, StorytellerIdentity

logger = logging.getLogger(__name__)
KIND = "erase"
WHOLE = "whole"


def job_key(story_id: int) -> str:
    return f"erase:story:{story_id}"


def request_erasure(story: Story, actor: User | None, scopes: Iterable[Scope] | None = None,
                    reason: str = "withdrawn") -> Job:
    """Queue the erasure of `story` (whole, or for `scopes`); an erasure already queued
    for the whole story covers any scope.

    What shows words of many stories at once (theme keywords and names, saved theme models)
    lets go of this story's now, in this transaction: the job may wait for a worker for hours.
    """
    wanted = None if scopes is None else sorted(Scope(s).value for s in scopes)
    signals.story_erasure_requested.send(story.id, scopes=wanted)
    existing = jobs.active_job(job_key(story.id))
    if existing is not None and (existing.params.get("scopes") is None or wanted is not None
                                 and set(wanted) <= set(existing.params["scopes"])):
        return existing
    if existing is not None:  # a narrower erasure is queued: make it the whole one
        existing.params = dict(existing.params, scopes=None if wanted is None else sorted(
            set(wanted) | set(existing.params["scopes"])))
        return existing
    job = jobs.enqueue(KIND, key=job_key(story.id), target_id=story.id,
                       params={"scopes": wanted, "reason": reason,
                               "actor_id": actor.id if actor else None})
    audit.record("story.erase_requested", actor.id if actor else None, "story", story.id,
                 detail=_what(wanted))
    return job


def _what(scopes: list[str] | None) -> str:
    return WHOLE if scopes is None else "scopes: " + ", ".join(scopes)


def _recording_keys(story: Story, whole: bool) -> list[str]:
    recording = story.recording
    if recording is None:
        return []
    derived = [recording.normalised_key, recording.redacted_playback_key]
    if whole:
        derived += [recording.original_key, recording.playback_key]
    return [key for key in derived if key]


def erase_now(story: Story, scopes: list[str] | None, actor_id: int | None,
              reason: str) -> dict[str, int]:
    """Erase `story` (whole when `scopes` is None) here and now; return what went, counted."""
    whole = scopes is None
    story_id = story.id
    keys: list[str] = []
    folders: list[str] = []
    removed: Counter[str] = Counter()
    for _receiver, found in signals.story_erasing.send(story_id, scopes=scopes,
                                                       removed=removed):
        folders.extend(found or [])
    analysis = policy.Action.TRANSCRIBE in policy.affected(scopes)
    if analysis:
        keys += _recording_keys(story, whole)
    if analysis and story.recording is not None and not whole:
        story.recording.normalised_key = ""
        story.recording.redacted_playback_key = None
    if whole and story.consent is not None and story.consent.form_key:
        keys.append(story.consent.form_key)
    storage = get_storage()
    for key in keys:
        storage.delete(key)
    for folder in folders:
        storage.delete_folder(folder)
    counts = {"files": len(keys), "folders": len(folders), **removed}
    if whole:
        storyteller = story.storyteller
        db.session.delete(story)
        db.session.flush()
        others = db.session.scalar(select(func.count()).select_from(Story).where(
            Story.storyteller_id == storyteller.id))
        if not others:
            identity = db.session.get(StorytellerIdentity, storyteller.id)
            if identity is not None:
                db.session.delete(identity)
            db.session.delete(storyteller)
    db.session.flush()
    audit.record("story.erase", actor_id, "story", story_id,
                 detail=f"{_what(scopes)} ({reason}); " + ", ".join(
                     f"{n} {what}" for what, n in counts.items()))
    logger.info("Story %s erased (%s): %s", story_id, _what(scopes), counts)
    return counts
