"""The job row: what a background job is doing, the source of truth for every worker."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow, value_enum
from ..extensions import Model


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
_ACTIVE_SQL = text("status IN ('queued', 'running')")


class Job(Model):
    """One piece of background work; features say what `kind` means (see jobs.runner)."""

    __tablename__ = "jobs"
    __table_args__ = (
        # At most one active job per key (e.g. one transcription per recording, one theme run
        # at a time): a second one collides here, even when two requests race.
        Index("uq_jobs_active_key", "key", unique=True, postgresql_where=_ACTIVE_SQL,
              sqlite_where=_ACTIVE_SQL),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(120))
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    # What the job works on, e.g. the recording for a transcription, and how (a few plain
    # values, e.g. the consent scopes an erasure covers).
    target_id: Mapped[int | None]
    params: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    status: Mapped[JobStatus] = mapped_column(
        value_enum(JobStatus, "job_status"),
        default=JobStatus.QUEUED, index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    # Raised by every claim: a worker's writes carry the number it claimed with, so a worker
    # whose lease was taken over can change nothing (fencing).
    claims: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def seconds_left(self) -> float | None:
        """Estimate the time left from the time taken so far."""
        if self.status is not JobStatus.RUNNING or not self.started_at or self.progress <= 1:
            return None
        elapsed = (utcnow() - self.started_at).total_seconds()
        return max(elapsed * (100 - self.progress) / self.progress, 0.0)
