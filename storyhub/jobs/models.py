"""The job row: what a background job is doing, the source of truth for every worker."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow, value_enum
from ..extensions import Model


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobKind(enum.StrEnum):
    TRANSCRIBE = "transcribe"
    ANALYSIS = "analysis"


class Job(Model):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(
        value_enum(JobKind, "job_kind"))
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    # What the job works on, e.g. the recording for a transcription.
    target_id: Mapped[int | None]
    status: Mapped[JobStatus] = mapped_column(
        value_enum(JobStatus, "job_status"),
        default=JobStatus.QUEUED, index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def seconds_left(self) -> float | None:
        """Estimate the time left from the time taken so far."""
        if self.status is not JobStatus.RUNNING or not self.started_at or self.progress <= 1:
            return None
        elapsed = (utcnow() - self.started_at).total_seconds()
        return max(elapsed * (100 - self.progress) / self.progress, 0.0)
