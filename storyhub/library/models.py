"""A story's place in the staff library (curation, summary, highlights); the themes staff see."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..database import utcnow, value_enum
from ..extensions import Model
from ..stories.models import Story


class CurationState(enum.StrEnum):
    """Where a story stands in curation; before a draft, its transcript's review decides."""

    DRAFT = "draft"  # a summary written, not yet approved
    APPROVED = "approved"  # in the library
    RETIRED = "retired"  # taken out of the library by a facilitator; can be approved again

    @property
    def label(self) -> str:
        return {"draft": "Draft, not in the library", "approved": "In the staff library",
                "retired": "Retired from the library"}[self.value]


class LibraryEntry(Model):
    """A story's library card: summary, highlight passages, state and who curated it.

    `embedding` is the mean of the story's passage embeddings (normalised), the coarse key that
    meaning search compares first before it ranks the passages of the closest stories.
    """

    __tablename__ = "library_entries"
    # Every library request asks how many approved entries there are and their last change;
    # from this index it does not read the rows (each holds a summary and an embedding).
    __table_args__ = (Index("ix_library_entries_state_changed", "state", "changed_at",
                            "story_id"),)

    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          primary_key=True)
    # What staff see instead of the storyteller's code: it says nothing about who told it.
    code: Mapped[str] = mapped_column(String(12), unique=True)
    state: Mapped[CurationState] = mapped_column(value_enum(CurationState, "curation_state"),
                                                 index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    highlights: Mapped[list] = mapped_column(JSON, default=list)  # passage ids, in order
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    curated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(index=True)
    retired_at: Mapped[datetime | None]
    # When anything staff see changed (state, summary, words): the search caches follow it.
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[Story] = relationship()
    curated_by: Mapped[User | None] = relationship()


class PublishedTheme(Model):
    """A theme as staff see it: its name when a facilitator published its run.

    Kept apart from the run's themes, so the facilitator's later edits (names, merges, hidden
    themes, moved passages) reach staff only when they publish again.
    """

    __tablename__ = "library_themes"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("theme_runs.id", ondelete="CASCADE"),
                                        index=True)
    # The run's theme it was published from (gone if the facilitator merged it away since).
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("themes.id", ondelete="SET NULL"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(120))


class PublishedThemeStory(Model):
    """A story in a published theme, with how many of its passages were there."""

    __tablename__ = "library_theme_stories"

    theme_id: Mapped[int] = mapped_column(ForeignKey("library_themes.id", ondelete="CASCADE"),
                                          primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)
    passages: Mapped[int]
