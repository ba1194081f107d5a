"""Retention: keep personal data no longer than the schedule says, checked once a day.

Two schedules (config.py, each can be switched off with None):

- RETENTION_ORIGINAL_DAYS: the original upload is deleted that many days after the story's
  transcript was reviewed. The playback copy stays, so the story can still be heard and, if
  ever needed, transcribed again.
- RETENTION_EXPIRED_DAYS: a story whose consent passed its review date that many days ago
  without being renewed is erased, as if withdrawn. Until then the policy already keeps it
  out of analysis, packs and the library, and the reporter sees it listed to renew.

The sweep runs as a job (kind "retention", one a day, queued by the reaper's loop; see
tasks.py), so it is retried like any job and its actions are audited without content.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select

from .. import audit, dates, signals
from ..config import settings
from ..database import utcnow
from ..extensions import db
from ..jobs import runner as jobs
from ..storage import get_storage
from .erasure import request_erasure
from .models import Consent, Recording, Story

logger = logging.getLogger(__name__)
KIND = "retention"


def today() -> date:
    """The date the schedules count from, where the service is (tests move it)."""
    return dates.today()


def _now() -> datetime:
    """Now in UTC, moved by as many days as a test moved `today`."""
    return utcnow() + (today() - dates.today())


def overdue_stories(reporter_id: int | None = None) -> list[Story]:
    """Stories whose consent is past its review date and not withdrawn (a reporter's own)."""
    query = select(Story).join(Consent).where(Consent.review_on < today(),
                                              Consent.withdrawn_at.is_(None))
    if reporter_id is not None:
        query = query.where(Story.reporter_id == reporter_id)
    return list(db.session.scalars(query.order_by(Consent.review_on)))


def sweep() -> dict[str, int]:
    """Apply both schedules now; return how many originals were deleted and stories erased."""
    configured = settings()
    done = {"originals": 0, "erasures": 0}
    days = configured.retention_original_days
    if days is not None:
        before = _now() - timedelta(days=days)
        reviewed = [Recording.story_id.in_(ids) for _receiver, ids
                    in signals.stories_reviewed_before.send(before) if ids is not None]
        recordings = db.session.scalars(select(Recording).where(
            or_(*reviewed), Recording.original_key != "")).all() if reviewed else []
        storage = get_storage()
        for recording in recordings:
            storage.delete(recording.original_key)
            recording.original_key = ""
            audit.record("retention.original_deleted", None, "story", recording.story_id,
                         detail=f"{days} days after review")
            done["originals"] += 1
    days = configured.retention_expired_days
    if days is not None:
        limit = today() - timedelta(days=days)
        for consent in db.session.scalars(select(Consent).where(
                Consent.review_on < limit, Consent.withdrawn_at.is_(None))):
            story = consent.story
            consent.withdrawn_at = utcnow()
            jobs.cancel(story.id, "The storyteller's consent expired and was not renewed.")
            request_erasure(story, None, reason="retention: consent expired, not renewed")
            audit.record("retention.erase", None, "story", story.id,
                         detail=f"consent {int(days)} days past its review date")
            done["erasures"] += 1
    if any(done.values()):
        logger.info("Retention: %s", done)
    return done


def daily_key() -> str:
    return f"{KIND}:{today().isoformat()}"
