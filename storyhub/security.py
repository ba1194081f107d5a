"""Security headers and friendly error pages."""

from __future__ import annotations

import errno
import logging
import math
from collections.abc import Mapping

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import BadRequest, InternalServerError
from werkzeug.routing import IntegerConverter

from .extensions import db
from .policy import AccessDenied

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

ERROR_MESSAGES = {
    400: ("Something in that request was not right",
          "Go back, check the form and try again."),
    403: ("You do not have access to this page",
          "Your role does not include this. Ask a StoryHub admin if you think it should."),
    404: ("We could not find that page", "It may have been moved or deleted."),
    405: ("That action is not available here", "Go back and use the buttons on the page."),
    413: ("That file is too large",
          "Split the recording into shorter parts, or ask an admin about the upload limit."),
    429: ("Too many attempts",
          "For safety, wait 15 minutes before trying again."),
    500: ("Something went wrong on our side",
          "Nothing you entered has been lost. Try again in a minute."),
}


def _set_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy",
                                "microphone=(self), camera=(), geolocation=()")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Pages, JSON and downloads carry personal data: keep them out of shared caches and the
    # back/forward cache. Only the app's own static files (no personal data) may be cached.
    endpoint = request.endpoint or ""
    if endpoint != "static" and not endpoint.endswith(".static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(error):
    code = getattr(error, "code", 500) or 500
    title, advice = ERROR_MESSAGES.get(code, ERROR_MESSAGES[500])
    description = getattr(error, "storyhub_message", None)
    return render_template("error.html", code=code, title=title, advice=advice,
                           description=description), code


def _os_error(error: OSError):
    if error.errno != errno.ENOSPC:
        logger.exception("Unexpected OS error", exc_info=error)
        return _error_page(InternalServerError())
    logger.error("Storage is full: a request was refused")
    message = ("The server's storage is full, so nothing was saved. Nothing has been stored. "
               "Tell your StoryHub admin.")
    if request.headers.get("X-Requested-With") == "storyhub-recorder":
        return jsonify({"error": message, "link": None}), 507
    return render_template("error.html", code=507, title="The server's storage is full",
                           advice="Tell your StoryHub admin.", description=message), 507


def _access_denied(error: AccessDenied):
    """Answer a refusal from the policy: 403 with its reason, as JSON to scripts."""
    db.session.rollback()
    message = str(error) or ERROR_MESSAGES[403][1]
    if (request.headers.get("X-Requested-With") == "storyhub-recorder"
            or request.accept_mimetypes.best == "application/json"
            or request.path.endswith((".json", "/status", "/audio", ".m4a"))):
        return jsonify({"error": message}), 403
    title, advice = ERROR_MESSAGES[403]
    return render_template("error.html", code=403, title=title, advice=advice,
                           description=message), 403


MAX_ID = 2**63 - 1  # the largest integer PostgreSQL and SQLite store


class BoundedInteger(IntegerConverter):
    """`<int:...>` in URLs, no larger than a database integer (bigger ones are a 404)."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def number_arg(name: str, kind: type[int] | type[float] = int, default=None,
               source: Mapping[str, str] | None = None):
    """Return the query (or form) parameter `name` as a number, or `default` if it is empty.

    Anything else is a 400 saying which parameter was wrong, never a 500.
    """
    raw = (request.args if source is None else source).get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except (ValueError, OverflowError):
        value = None
    if value is None or not math.isfinite(value) or abs(value) > MAX_ID:
        error = BadRequest()
        error.storyhub_message = f"“{name}” must be a number."  # type: ignore[attr-defined]
        raise error
    return value


def db_id(value: str | None) -> int | None:
    """Return a form or query value as a database id when it is one, else None.

    Digits only, and no larger than a database integer: a larger one would fail in the driver.
    """
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def form_id(name: str) -> int | None:
    """Return the form field `name` as a database id, or None if it was left empty.

    For fields where empty means something ("in no theme", "not swapping"): anything else that
    is not an id is a 400, never taken as empty, so a bad value changes nothing.
    """
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    value = db_id(raw)
    if value is None:
        error = BadRequest()
        error.storyhub_message = f"“{name}” must be a number."  # type: ignore[attr-defined]
        raise error
    return value


def _out_of_range(error: Exception):
    """A number too large for the database reached it: a 400, and a warning to find the view.

    Every view bounds its numbers itself (`number_arg`, `db_id`); this is the net beneath them.
    """
    db.session.rollback()
    logger.warning("A number out of range reached the database: %s %s (%s)", request.method,
                   request.path, type(error).__name__)
    error_400 = BadRequest()
    error_400.storyhub_message = "A number in that request is out of range."  # type: ignore
    return _error_page(error_400)


def init_app(app: Flask) -> None:
    """Add security headers to every response and register friendly error pages."""
    app.url_map.converters["int"] = BoundedInteger
    app.after_request(_set_headers)
    for code in ERROR_MESSAGES:
        app.register_error_handler(code, _error_page)
    app.register_error_handler(OSError, _os_error)
    app.register_error_handler(AccessDenied, _access_denied)
    app.register_error_handler(OverflowError, _out_of_range)
    app.register_error_handler(DataError, _out_of_range)
