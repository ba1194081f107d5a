"""People who use StoryHub and what their role lets them do."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import utcnow, value_enum
from ..extensions import Model


class Role(enum.StrEnum):
    ADMIN = "admin"
    REPORTER = "reporter"
    FACILITATOR = "facilitator"
    STAFF = "staff"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.ADMIN: "Admin",
    Role.REPORTER: "Community reporter",
    Role.FACILITATOR: "Facilitator",
    Role.STAFF: "Probation staff (reader)",
}


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class Site(Model):
    """A probation office or project where stories are gathered."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # Local names to redact in this site's stories (offices, estates, hostels), one per line.
    local_terms: Mapped[str] = mapped_column(Text, default="", server_default="")

    def __repr__(self) -> str:
        return f"<Site {self.id}>"

    @property
    def term_list(self) -> list[str]:
        return [line.strip() for line in self.local_terms.splitlines() if line.strip()]


class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(value_enum(Role, "user_role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Part of the login cookie: changing it ends every session this user has open.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Reporters see their own site's stories; `all_sites` lets a lead reporter see every site.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    all_sites: Mapped[bool] = mapped_column(default=False)
    site: Mapped[Site | None] = relationship()

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:
        return self.enabled

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class SignInCounter(Model):
    """Recent password checks for one account, address or browser (see accounts/limits.py).

    The key is a hash, so the table holds no username or address. Times are Unix seconds.
    """

    __tablename__ = "sign_in_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    hits: Mapped[int]
    not_before: Mapped[float]
    expires_at: Mapped[float] = mapped_column(index=True)
    version: Mapped[int]
