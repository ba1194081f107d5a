"""Transcripts: timed segments and words, with speakers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow
from ..extensions import Model


class Transcript(Model):
    """The transcript of one recording (there is exactly one per recording)."""

    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), unique=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          index=True)
    engine: Mapped[str] = mapped_column(String(40))
    model_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    # Speaker key (e.g. "S1") -> the name shown, editable by the reporter.
    speakers: Mapped[dict] = mapped_column(JSON, default=dict)
    processing_seconds: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of the speech may be missing from the words (see coverage.py): a person should
    # listen and fill it in. Marking the transcript reviewed clears it.
    needs_checking: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Phrases the reviewer said are not personal details, so they are not suggested again.
    redaction_rejected: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    # When the words last changed (an edit or a redaction), for theme runs made before.
    changed_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    segments: Mapped[list[Segment]] = relationship(
        back_populates="transcript", order_by="Segment.position", cascade="all, delete-orphan")


class Segment(Model):
    __tablename__ = "transcript_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_id: Mapped[int] = mapped_column(
        ForeignKey("transcripts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    start: Mapped[float]
    end: Mapped[float]
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    edited: Mapped[bool] = mapped_column(default=False)
    transcript: Mapped[Transcript] = relationship(back_populates="segments")
    words: Mapped[list[Word]] = relationship(
        back_populates="segment", order_by="Word.position", cascade="all, delete-orphan")


class Word(Model):
    __tablename__ = "transcript_words"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("transcript_segments.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    start: Mapped[float]
    end: Mapped[float]
    text: Mapped[str] = mapped_column(String(200))
    probability: Mapped[float]
    edited: Mapped[bool] = mapped_column(default=False)
    # The label shown instead of this word ("[NAME]") once its redaction is accepted.
    redaction: Mapped[str | None] = mapped_column(String(24))
    # A person confirmed this word as heard ("It's right"), though the recogniser was unsure.
    checked: Mapped[bool] = mapped_column(default=False, server_default=false())
    segment: Mapped[Segment] = relationship(back_populates="words")
