"""Account verbs: create, authenticate, change passwords, disable, end sessions.

Functions flush but never commit; the request or CLI command commits once.
"""

from __future__ import annotations

import contextlib
import logging
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from .. import audit
from ..database import utcnow
from ..extensions import db
from . import passwords
from .models import Role, Site, User, new_session_token

logger = logging.getLogger(__name__)
hasher = PasswordHasher()
# Verified when a username is unknown, so a wrong username takes as long as a wrong password.
_DUMMY_HASH = hasher.hash("storyhub-dummy-password")

MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class AccountError(ValueError):
    """A user-caused problem with an account request; the message is shown to the user."""


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_password_rules(password: str, username: str = "", display_name: str = "") -> None:
    """Raise AccountError, saying why, if `password` is too short or too easy to guess."""
    reason = passwords.weakness(password, username, display_name)
    if reason is not None:
        raise AccountError(reason)


def get_user_by_username(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == normalise_username(username)))


def create_user(username: str, display_name: str, role: Role | str, password: str,
                actor_id: int | None = None, must_change_password: bool = False,
                site_id: int | None = None, all_sites: bool = False) -> User:
    """Create an account; raise AccountError if the username is taken or the password is weak."""
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        raise AccountError("Usernames are 2 to 64 lower-case letters, digits, dots, dashes "
                           "or underscores, starting with a letter or digit.")
    if get_user_by_username(username) is not None:
        raise AccountError(f"The username “{username}” is already taken. Choose another.")
    check_password_rules(password, username, display_name)
    user = User(username=username, display_name=display_name.strip() or username,
                role=Role(role), password_hash=hasher.hash(password),
                must_change_password=must_change_password, site_id=site_id or None,
                all_sites=all_sites)
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", actor_id, "user", user.id, f"role={user.role.value}")
    logger.info("User %s created with role %s", user.id, user.role.value)
    return user


def authenticate(username: str, password: str) -> User | None:
    """Return the enabled user with these credentials, or None."""
    user = get_user_by_username(username)
    if user is None:
        with contextlib.suppress(VerificationError):
            hasher.verify(_DUMMY_HASH, password)
        logger.info("Sign-in failed: no account has that username")
        return None
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        audit.record("login.failed", None, "user", user.id)
        logger.info("Sign-in failed: wrong password for user %s", user.id)
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    if not user.enabled:
        audit.record("login.disabled", user.id, "user", user.id)
        return None
    user.last_login_at = utcnow()
    audit.record("login", user.id, "user", user.id)
    return user


def verify_password(user: User, password: str) -> bool:
    try:
        return hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def end_sessions(user: User) -> None:
    """Invalidate every login cookie this user holds."""
    user.session_token = new_session_token()


def set_password(user: User, password: str, actor_id: int | None,
                 must_change: bool = False) -> None:
    """Set a new password and end the user's other sessions."""
    check_password_rules(password, user.username, user.display_name)
    user.password_hash = hasher.hash(password)
    user.must_change_password = must_change
    end_sessions(user)
    action = "password.change" if actor_id == user.id else "password.reset"
    audit.record(action, actor_id, "user", user.id)


def update_user(user: User, display_name: str, role: Role | str, enabled: bool,
                actor_id: int | None, site_id: int | None = None,
                all_sites: bool = False) -> None:
    """Change a user's name, role or enabled state; a role change or disabling ends sessions."""
    role = Role(role)
    if user.id == actor_id and (not enabled or role is not Role.ADMIN):
        raise AccountError("You cannot disable yourself or remove your own admin role.")
    if user.role is Role.ADMIN and (role is not Role.ADMIN or not enabled):
        if count_enabled_admins() <= 1:
            raise AccountError("StoryHub needs at least one enabled admin. "
                               "Make another admin first.")
    changes = []
    if role is not user.role:
        changes.append(f"role={role.value}")
    if enabled != user.enabled:
        changes.append("enabled" if enabled else "disabled")
    if (site_id or None) != user.site_id or all_sites != user.all_sites:
        changes.append(f"site={site_id or '-'}{'+all' if all_sites else ''}")
        # Seeing fewer stories takes effect at once: end sessions as for a role change.
        end_sessions(user)
    user.site_id = site_id or None
    user.all_sites = all_sites
    user.display_name = display_name.strip() or user.username
    if role is not user.role or not enabled:
        end_sessions(user)
    user.role = role
    user.enabled = enabled
    audit.record("user.update", actor_id, "user", user.id, ",".join(changes) or None)


def create_site(name: str, actor_id: int | None) -> Site:
    name = " ".join(name.split())
    if db.session.scalar(select(Site).where(func.lower(Site.name) == name.lower())):
        raise AccountError(f"There is already a site called “{name}”.")
    site = Site(name=name)
    db.session.add(site)
    db.session.flush()
    audit.record("site.create", actor_id, "site", site.id)
    return site


def count_enabled_admins() -> int:
    return db.session.scalar(
        select(func.count(User.id)).where(User.role == Role.ADMIN, User.enabled.is_(True))) or 0


def count_users() -> int:
    return db.session.scalar(select(func.count(User.id))) or 0
