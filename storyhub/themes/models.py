"""Passages of stories, theme runs, themes and which passage sits in which theme."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..database import utcnow
from ..extensions import Model
from ..jobs.models import Job
from ..stories.models import Story


class Passage(Model):
    """A stretch of one speaker's words in a reviewed transcript, the unit that is themed.

    Passages are kept across runs (a re-run finds the same passage again by its digest), so
    a facilitator's moves and pins can follow them; the embedding is cached on the row.
    """

    __tablename__ = "passages"
    # (id, story_id): which story a passage is in, without reading its text and embedding.
    __table_args__ = (UniqueConstraint("story_id", "digest"),
                      Index("ix_passages_id_story", "id", "story_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          index=True)
    digest: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]
    speaker: Mapped[str] = mapped_column(String(60))
    start: Mapped[float]
    end: Mapped[float]
    text: Mapped[str] = mapped_column(Text)
    word_count: Mapped[int]
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[Story] = relationship()


class RunStatus(enum.StrEnum):
    """A run's state: its job's, never stored apart from it."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ThemeRun(Model):
    """One versioned analysis: its inputs, parameters, results and who asked for it."""

    __tablename__ = "theme_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    previous_run_id: Mapped[int | None] = mapped_column(ForeignKey("theme_runs.id",
                                                                   ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    seeds: Mapped[list] = mapped_column(JSON, default=list)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)
    results: Mapped[dict] = mapped_column(JSON, default=dict)
    model_key: Mapped[str | None] = mapped_column(String(255))
    # The data key the saved model's files are sealed with, wrapped by a master key
    # (themes/service.py says why a run has its own); cleared when the model is deleted.
    model_wrapped_key: Mapped[str | None] = mapped_column(String(200))
    # Why the run no longer matches its stories (a transcript changed, a story was withdrawn):
    # its pages show the current words and offer a re-run.
    stale_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # When a facilitator last published this run's themes to the staff library, and who: set
    # on one run at most, the one staff see (library/publishing.py keeps what they see).
    published_at: Mapped[datetime | None]
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    published_by: Mapped[User | None] = relationship(foreign_keys=[published_by_id])
    job: Mapped[Job | None] = relationship()
    themes: Mapped[list[Theme]] = relationship(
        back_populates="run", order_by="Theme.position", cascade="all, delete-orphan")

    @property
    def status(self) -> RunStatus:
        return RunStatus(self.job.status.value) if self.job else RunStatus.QUEUED

    @property
    def error(self) -> str | None:
        return self.job.error if self.job and self.status is RunStatus.FAILED else None


class Theme(Model):
    __tablename__ = "themes"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("theme_runs.id", ondelete="CASCADE"),
                                        index=True)
    number: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)
    label: Mapped[str] = mapped_column(String(120))
    auto_label: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    seed: Mapped[str | None] = mapped_column(String(120))
    hidden: Mapped[bool] = mapped_column(default=False)
    # Set when a facilitator renamed, described, merged or split it: carried to the next run.
    edited: Mapped[bool] = mapped_column(default=False)
    merged_from: Mapped[list] = mapped_column(JSON, default=list)
    # The theme this one was split from (by a facilitator), so a re-run can split it again.
    split_of: Mapped[int | None]

    run: Mapped[ThemeRun] = relationship(back_populates="themes")


class ThemePassage(Model):
    """Where a passage sits in a run: its theme (or none), map position, pin and move marks."""

    __tablename__ = "theme_passages"
    # A theme's stories (the library's theme filter) and some stories' themes (its cards),
    # each from one index alone.
    __table_args__ = (Index("ix_theme_passages_theme_story", "theme_id", "story_id"),
                      Index("ix_theme_passages_run_story", "run_id", "story_id", "theme_id"))

    run_id: Mapped[int] = mapped_column(ForeignKey("theme_runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    passage_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"),
                                            primary_key=True, index=True)
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("themes.id", ondelete="SET NULL"),
                                                 index=True)
    # The passage's story, kept here too (a passage never changes story): see the library.
    story_id: Mapped[int]
    x: Mapped[float] = mapped_column(default=0.0)
    y: Mapped[float] = mapped_column(default=0.0)
    pinned: Mapped[bool] = mapped_column(default=False)
    moved: Mapped[bool] = mapped_column(default=False)

    passage: Mapped[Passage] = relationship()
    theme: Mapped[Theme | None] = relationship()


class ThemeEdit(Model):
    """One facilitator's edit of a run's themes, with what it changed, so it can be undone.

    `before` holds the touched themes and passage places as they were (themes/history.py says
    what); it is dropped when a story's words change or leave, since it may hold them.
    """

    __tablename__ = "theme_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("theme_runs.id", ondelete="CASCADE"),
                                        index=True)
    action: Mapped[str] = mapped_column(String(20))
    # The theme the edit was made on (no key: a merge or an undo may remove it).
    theme_id: Mapped[int | None]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    before: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    undone_at: Mapped[datetime | None]
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    undone_by: Mapped[User | None] = relationship(foreign_keys=[undone_by_id])
