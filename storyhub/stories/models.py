"""Stories, storytellers, consent and recordings."""

from __future__ import annotations

import enum
import re
from datetime import date, datetime

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import Site, User
from ..database import utcnow, value_enum
from ..extensions import Model


class StorytellerRole(enum.StrEnum):
    PERSON_ON_PROBATION = "person_on_probation"
    STAFF = "staff"
    PEER_MENTOR = "peer_mentor"
    FAMILY = "family"
    PARTNER_AGENCY = "partner_agency"

    @property
    def label(self) -> str:
        return {
            "person_on_probation": "Person on probation",
            "staff": "Probation staff member",
            "peer_mentor": "Peer mentor or volunteer",
            "family": "Family member",
            "partner_agency": "Partner agency",
        }[self.value]


class StoryType(enum.StrEnum):
    SNAPSHOT = "snapshot"
    DIALOGUE = "dialogue"
    MONOLOGUE = "monologue"

    @property
    def label(self) -> str:
        return {
            "snapshot": "Snapshot – one open question, a few minutes",
            "dialogue": "Dialogue – a conversation between peers",
            "monologue": "Monologue – a longer reflection",
        }[self.value]


class StoryStatus(enum.StrEnum):
    """A story's processing state; derived, never stored (see stories.state)."""

    UPLOADED = "uploaded"
    QUEUED = "queued"
    TRANSCRIBING = "transcribing"
    TRANSCRIBED = "transcribed"
    REVIEWED = "reviewed"
    FAILED = "failed"


class ConsentMethod(enum.StrEnum):
    SPOKEN = "spoken"
    SIGNED_FORM = "signed_form"


class Storyteller(Model):
    """The person whose story it is, known in StoryHub only by a pseudonymous code."""

    __tablename__ = "storytellers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[StorytellerRole] = mapped_column(value_enum(StorytellerRole, "storyteller_role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The site whose reporters may add stories under this code (see stories.service).
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"),
                                                index=True)
    identity: Mapped[StorytellerIdentity | None] = relationship(
        back_populates="storyteller", cascade="all, delete-orphan", uselist=False)

    def named_in(self, *texts: str) -> bool:
        """Say whether any of `texts` holds a word of the storyteller's stored real name."""
        if self.identity is None:
            return False
        # Words, not spellings: "Zebedee's", "O'Brien" and "Smith-Jones" name them as well.
        parts = {p for p in re.findall(r"\w+", self.identity.real_name.lower()) if len(p) > 1}
        return any(parts & set(re.findall(r"\w+", text.lower())) for text in texts)


class StorytellerIdentity(Model):
    """A storyteller's real name, kept apart and only when they agreed to it being stored."""

    __tablename__ = "storyteller_identities"

    storyteller_id: Mapped[int] = mapped_column(
        ForeignKey("storytellers.id", ondelete="CASCADE"), primary_key=True)
    real_name: Mapped[str] = mapped_column(String(200))
    storyteller: Mapped[Storyteller] = relationship(back_populates="identity")


class Story(Model):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    storyteller_id: Mapped[int] = mapped_column(ForeignKey("storytellers.id"))
    story_type: Mapped[StoryType] = mapped_column(value_enum(StoryType, "story_type"))
    prompt: Mapped[str | None] = mapped_column(Text)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    recorded_on: Mapped[date]
    tags: Mapped[str] = mapped_column(String(500), default="")
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The key its files are encrypted with, wrapped by a master key (storyhub/keys.py). Erasing
    # the story deletes it, so no copy of its files, backups included, can be read again.
    wrapped_key: Mapped[str | None] = mapped_column(String(200))

    storyteller: Mapped[Storyteller] = relationship()
    site: Mapped[Site | None] = relationship()
    reporter: Mapped[User | None] = relationship()
    consent: Mapped[Consent | None] = relationship(back_populates="story", uselist=False,
                                                   cascade="all, delete-orphan")
    recording: Mapped[Recording | None] = relationship(back_populates="story", uselist=False,
                                                       cascade="all, delete-orphan")

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]


class Consent(Model):
    """What the storyteller agreed to, how, and until when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          unique=True)
    transcribe_analyse: Mapped[bool] = mapped_column(default=False)
    quote_in_packs: Mapped[bool] = mapped_column(default=False)
    play_in_workshops: Mapped[bool] = mapped_column(default=False)
    staff_library: Mapped[bool] = mapped_column(default=False)
    publish_external: Mapped[bool] = mapped_column(default=False)
    store_real_name: Mapped[bool] = mapped_column(default=False)
    method: Mapped[ConsentMethod] = mapped_column(value_enum(ConsentMethod, "consent_method"))
    spoken_at_seconds: Mapped[float | None]
    form_key: Mapped[str | None] = mapped_column(String(255))
    witnessed_by: Mapped[str | None] = mapped_column(String(200))
    given_on: Mapped[date]
    review_on: Mapped[date | None]
    withdrawn_at: Mapped[datetime | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                  ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[Story] = relationship(back_populates="consent")


class Recording(Model):
    """The audio of a story: the original and the files made from it."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          unique=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    original_key: Mapped[str] = mapped_column(String(255))
    original_format: Mapped[str] = mapped_column(String(64))
    normalised_key: Mapped[str] = mapped_column(String(255))
    playback_key: Mapped[str] = mapped_column(String(255))
    # The playback copy muted over the redacted words, for everyone but the story's reporter;
    # pending while it is being made again after the redactions changed.
    redacted_playback_key: Mapped[str | None] = mapped_column(String(255))
    redaction_pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    duration_seconds: Mapped[float]
    channels: Mapped[int]
    sample_rate: Mapped[int]
    size_bytes: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[Story] = relationship(back_populates="recording")
