"""Login sessions and role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user, login_required

from ..extensions import db, login_manager
from .models import Role, User

F = TypeVar("F", bound=Callable[..., Any])

# Endpoints a user who must change their password may still reach.
_PASSWORD_CHANGE_ALLOWED = {"accounts.change_password", "accounts.logout", "static"}


@login_manager.user_loader
def load_user(cookie_id: str) -> User | None:
    """Return the user for a session cookie, only while its session token is still current."""
    user_id, _, token = cookie_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.enabled or user.session_token != token:
        return None
    return user


def role_required(*roles: Role) -> Callable[[F], F]:
    """Let only signed-in users with one of `roles` reach the view; others get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        guarded = login_required(wrapped)
        guarded.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorator


def any_signed_in(view: F) -> F:
    """Let every signed-in user reach the view."""
    guarded = login_required(view)
    guarded.allowed_roles = frozenset(Role)  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


def _require_password_change():
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in _PASSWORD_CHANGE_ALLOWED):
        return redirect(url_for("accounts.change_password"))
    return None


def init_app(app: Flask) -> None:
    """Configure Flask-Login for this app."""
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    app.before_request(_require_password_change)
