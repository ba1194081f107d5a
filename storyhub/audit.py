"""An append-only record of who did what, for data-governance review.

Entries name the actor, the action and the object's id: never transcript text or personal data.
"""

from __future__ import annotations

from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .database import utcnow
from .extensions import Model, db


class AuditEvent(Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),
                      Index("ix_audit_events_action", "action"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))


def record(action: str, actor_id: int | None = None, target_type: str | None = None,
           target_id: int | None = None, detail: str | None = None) -> AuditEvent:
    """Add an audit event to the session (the caller commits)."""
    event = AuditEvent(action=action, actor_id=actor_id, target_type=target_type,
                       target_id=target_id, detail=detail,
                       ip=request.remote_addr if has_request_context() else None)
    db.session.add(event)
    return event
