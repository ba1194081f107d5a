"""Workshops, their themes and quotes, pack versions and the actions agreed."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..database import utcnow, value_enum
from ..extensions import Model
from ..themes.models import ThemeRun


class Audience(enum.StrEnum):
    MIXED = "mixed"
    STAFF = "staff"
    PROBATION = "probation"

    @property
    def label(self) -> str:
        return {"mixed": "Staff and people on probation together",
                "staff": "Probation staff",
                "probation": "People on probation"}[self.value]


class ActionStatus(enum.StrEnum):
    AGREED = "agreed"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DROPPED = "dropped"

    @property
    def label(self) -> str:
        return {"agreed": "Agreed", "in_progress": "In progress", "done": "Done",
                "dropped": "Not going ahead"}[self.value]


class Workshop(Model):
    """A Conversations for Change workshop: when and where, for whom, and what it looks at."""

    __tablename__ = "workshops"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    held_on: Mapped[date | None]
    place: Mapped[str] = mapped_column(String(200), default="")
    audience: Mapped[Audience] = mapped_column(value_enum(Audience, "workshop_audience"),
                                               default=Audience.MIXED)
    facilitators: Mapped[str] = mapped_column(String(300), default="")
    # Who to talk to if a story upsets you, printed in the ground rules.
    safeguarding_contact: Mapped[str] = mapped_column(String(300), default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("theme_runs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a pack version had to be deleted (a story it quoted was withdrawn).
    notice: Mapped[str | None] = mapped_column(String(300))
    # The highest pack version made, so a deleted version's number is never given again.
    last_version: Mapped[int] = mapped_column(default=0)

    run: Mapped[ThemeRun | None] = relationship()
    created_by: Mapped[User | None] = relationship()
    themes: Mapped[list[WorkshopTheme]] = relationship(
        back_populates="workshop", order_by="WorkshopTheme.position",
        cascade="all, delete-orphan")
    packs: Mapped[list[WorkshopPack]] = relationship(
        back_populates="workshop", order_by="WorkshopPack.version.desc()",
        cascade="all, delete-orphan")
    actions: Mapped[list[AgreedAction]] = relationship(
        back_populates="workshop", order_by="AgreedAction.id", cascade="all, delete-orphan")


class WorkshopTheme(Model):
    """A theme as the workshop shows it: its name and questions, in the workshop's order."""

    __tablename__ = "workshop_themes"

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"),
                                             index=True)
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("themes.id", ondelete="SET NULL"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    # One question per line.
    questions: Mapped[str] = mapped_column(Text, default="")

    workshop: Mapped[Workshop] = relationship(back_populates="themes")
    quotes: Mapped[list[WorkshopQuote]] = relationship(
        back_populates="workshop_theme", order_by="WorkshopQuote.position",
        cascade="all, delete-orphan")

    @property
    def question_list(self) -> list[str]:
        return [q.strip() for q in self.questions.splitlines() if q.strip()]


class WorkshopQuote(Model):
    """A passage chosen to quote, with its words as they were when it was chosen.

    Generating a pack compares these words with the story's current transcript, so a pack
    never prints words the transcript no longer says.
    """

    __tablename__ = "workshop_quotes"
    __table_args__ = (UniqueConstraint("workshop_theme_id", "passage_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_theme_id: Mapped[int] = mapped_column(
        ForeignKey("workshop_themes.id", ondelete="CASCADE"), index=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          index=True)
    passage_id: Mapped[int | None] = mapped_column(ForeignKey("passages.id",
                                                              ondelete="SET NULL"))
    position: Mapped[int]
    speaker: Mapped[str] = mapped_column(String(60))
    start: Mapped[float]
    end: Mapped[float]
    text: Mapped[str] = mapped_column(Text)
    # The facilitator chose to print it although words in it the recogniser was unsure of
    # have not been checked (see packs.service.fault).
    keep_unsure: Mapped[bool] = mapped_column(default=False, server_default=false())

    workshop_theme: Mapped[WorkshopTheme] = relationship(back_populates="quotes")


class WorkshopPack(Model):
    """One generated version of a workshop's pack: the content it was made from, and its Markdown.

    HTML, PDF, cards and poster are rendered from `content` and `markdown` whenever they are
    asked for, so they always match this version.
    """

    __tablename__ = "workshop_packs"
    __table_args__ = (UniqueConstraint("workshop_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"),
                                             index=True)
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict] = mapped_column(JSON)
    markdown: Mapped[str] = mapped_column(Text)
    story_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workshop: Mapped[Workshop] = relationship(back_populates="packs")
    created_by: Mapped[User | None] = relationship()


class AgreedAction(Model):
    """A change agreed at a workshop: what, who, by when, and how it is going."""

    __tablename__ = "agreed_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"),
                                             index=True)
    workshop_theme_id: Mapped[int | None] = mapped_column(
        ForeignKey("workshop_themes.id", ondelete="SET NULL"))
    what: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(200), default="")
    due_on: Mapped[date | None]
    status: Mapped[ActionStatus] = mapped_column(value_enum(ActionStatus, "action_status"),
                                                 default=ActionStatus.AGREED)
    # What was done, in words for the "You said, we did" sheet.
    outcome: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    workshop: Mapped[Workshop] = relationship(back_populates="actions")
    workshop_theme: Mapped[WorkshopTheme | None] = relationship()
