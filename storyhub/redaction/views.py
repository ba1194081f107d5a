"""Redaction pages: the editor's "Personal details" section and its verbs (accept or reject
suggestions, redact a phrase, show words again)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from .. import policy, signals
from ..extensions import db
from ..transcripts.service import TranscriptError
from ..web import allowed, story_or_abort, word_ids
from . import LABELS, service, tasks  # noqa: F401  (tasks: the job handler)

bp = Blueprint("redaction", __name__, url_prefix="/stories", template_folder="templates")
# The verbs are guarded at the door like the rest of the editor (READ); story_or_abort then asks
# for EDIT, and refuses an admin (who reads but does not correct) with the policy's reason.


@signals.transcript_editor_panels.connect
def editor_panel(story, actor=None, transcript=None, full=False, **_kwargs) -> Markup | None:
    """The transcript editor's "Personal details" section, for those who may edit it."""
    if actor is None or transcript is None:
        return None
    return Markup(render_template(  # noqa: S704 - a rendered (escaping) template
        "redaction/_editor.html", story=story, labels=LABELS,
        offers=service.offers(story, actor),
        redacted=service.redacted_runs(transcript) if full else [],
        muting=bool(story.recording and story.recording.redaction_pending)))


@bp.route("/<int:story_id>/transcript/redactions", methods=["POST"])
@allowed(policy.Action.READ)
def redactions(story_id: int):
    """Accept the ticked suggestions, or say they are not personal."""
    story = story_or_abort(story_id, policy.Action.EDIT)
    chosen = request.form.getlist("offer")
    try:
        if not chosen:
            flash("Tick at least one suggestion first.", "error")
        elif request.form.get("decision") == "reject":
            count = service.reject(story, current_user, chosen)
            db.session.commit()
            flash(f"{count} suggestion{'s' if count != 1 else ''} kept as said, and not "
                  "suggested again.", "success")
        else:
            count = service.accept(story, current_user, chosen)
            db.session.commit()
            flash(f"Redacted {count} word{'s' if count != 1 else ''}. Others now read a label "
                  "instead, and the recording is being prepared with them muted.", "success")
    except TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("stories.show", story_id=story.id))
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#redaction")


@bp.route("/<int:story_id>/transcript/redactions/phrase", methods=["POST"])
@allowed(policy.Action.READ)
def redact_phrase(story_id: int):
    """Redact a word or phrase everywhere the transcript says it."""
    story = story_or_abort(story_id, policy.Action.EDIT)
    try:
        count = service.redact_phrase(story, current_user, request.form.get("phrase", ""),
                                      request.form.get("label", ""))
        db.session.commit()
        flash(f"Redacted {count} word{'s' if count != 1 else ''} wherever they are said.",
              "success")
    except TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#redaction")


@bp.route("/<int:story_id>/transcript/redactions/undo", methods=["POST"])
@allowed(policy.Action.READ)
def unredact(story_id: int):
    story = story_or_abort(story_id, policy.Action.EDIT)
    ids = word_ids([i for i in request.form.get("words", "").split(",") if i.strip()])
    try:
        count = service.unredact(story, current_user, ids)
    except TranscriptError as exc:
        flash(str(exc), "error")
        return redirect(url_for("stories.show", story_id=story.id))
    db.session.commit()
    flash(f"{count} word{'s' if count != 1 else ''} shown again.", "success")
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#redaction")
