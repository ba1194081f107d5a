"""View helpers every blueprint may use: a story by id as the policy allows, audio to play.

`allowed` guards a view with the policy's role table. They live here, not in one feature's
views.py, so that features need not import each other's
pages. Nothing here knows a feature beyond the story model the policy itself reads.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, abort, request, send_file
from flask_login import current_user
from werkzeug.wsgi import wrap_file

from . import policy
from .accounts.auth import role_required
from .extensions import db
from .security import db_id
from .storage import StoredFile
from .stories.models import Story

F = TypeVar("F", bound=Callable[..., Any])


def allowed(what: policy.Action | policy.Work) -> Callable[[F], F]:
    """Let only signed-in users whose role the policy's table gives `what` reach the view.

    For a story's pages this is the first gate only: `story_or_abort` then asks the policy
    about the story itself (site, consent, and a narrower action such as EDIT).
    """
    return role_required(*policy.ROLES[what])


def story_or_abort(story_id: int, action: policy.Action = policy.Action.SEE) -> Story:
    """Return the story if the signed-in user may do `action` to it, else answer 404 or 403.

    A refusal (AccessDenied) becomes a 403 page, or JSON, saying why (security.py).
    """
    story = db.session.get(Story, story_id)
    if story is None:
        abort(404)
    policy.require(current_user, story, action)
    return story


def starts_listening() -> bool:
    """Return True for a request that starts playing (not a later Range request of it)."""
    ranges = request.range.ranges if request.range else []
    return not ranges or ranges[0][0] in (0, None)


def send_audio(stored: StoredFile, name: str) -> Response:
    """Send a stored audio file for playing in the page (Range requests, never cached).

    A sealed file is decrypted as it is sent, only the ranges asked for.
    """
    if not stored.sealed:
        response = send_file(stored.path, mimetype="audio/mp4", conditional=True,
                             download_name=name, max_age=0)
    else:
        reader = stored.open()
        size = reader.seek(0, io.SEEK_END)
        reader.seek(0)
        response = Response(wrap_file(request.environ, reader), mimetype="audio/mp4",
                            direct_passthrough=True)
        response.content_length = size
        response.make_conditional(request, accept_ranges=True, complete_length=size)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


def word_ids(values: object) -> list[int]:
    """Return word ids as sent (a form list, or JSON numbers); anything else is a 400."""
    if not isinstance(values, list):
        abort(400)
    ids = [db_id(str(v)) if isinstance(v, int | str) and not isinstance(v, bool) else None
           for v in values[:1000]]
    if any(i is None for i in ids):
        abort(400)
    return [i for i in ids if i is not None]
