"""Transcript pages: live status, retry, the editor, and exports."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from .. import policy
from ..accounts.auth import role_required
from ..accounts.models import Role
from ..extensions import db
from ..jobs import runner as jobs
from ..redaction import LABELS
from ..redaction import service as redaction
from ..security import number_arg
from ..stories.views import story_or_abort
from . import editing, service
from .text import tokens

bp = Blueprint("transcripts", __name__, url_prefix="/stories", template_folder="templates")
WORKERS = (Role.REPORTER, Role.FACILITATOR, Role.ADMIN)
EXPORTS = {"txt": ("text/plain", editing.to_text), "vtt": ("text/vtt", editing.to_vtt),
           "srt": ("application/x-subrip", editing.to_srt),
           "json": ("application/json", editing.to_json)}


@bp.route("/<int:story_id>/status")
@role_required(*WORKERS)
def status(story_id: int):
    response = jsonify(service.status_of(story_or_abort(story_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:story_id>/transcribe", methods=["POST"])
@role_required(*WORKERS)
def transcribe(story_id: int):
    story = story_or_abort(story_id)
    try:
        service.start_transcription(story, current_user)
        db.session.commit()
    except (policy.AccessDenied, service.TranscriptError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
    except IntegrityError as exc:
        if not jobs.is_conflict(exc):
            raise
        db.session.rollback()
        flash("Someone else has just queued this story's transcription.", "info")
    else:
        flash("Transcription queued. This page shows its progress.", "success")
    return redirect(url_for("stories.show", story_id=story.id))


@bp.route("/<int:story_id>/transcript")
@role_required(*WORKERS)
def editor(story_id: int):
    low = number_arg("low", float) or None  # a bad one is a 400, before anything is read
    story = story_or_abort(story_id)
    try:
        transcript, form = service.readable(story, current_user)
    except service.TranscriptError as exc:
        flash(str(exc), "info")
        return redirect(url_for("stories.show", story_id=story.id))
    db.session.commit()  # the audit entry
    can_edit = policy.decide(current_user, story, policy.Action.EDIT).allowed
    full = form is policy.Form.FULL
    return render_template(
        "transcripts/editor.html", story=story, transcript=transcript, form=form, low=low,
        tokens=tokens, can_edit=can_edit, full=full, labels=LABELS,
        offers=redaction.offers(story, current_user) if can_edit else [],
        redacted=redaction.redacted_runs(transcript) if can_edit and full else [],
        muting=bool(story.recording and story.recording.redaction_pending))


@bp.route("/<int:story_id>/transcript/redactions", methods=["POST"])
@role_required(*WORKERS)
def redactions(story_id: int):
    """Accept the ticked suggestions, or say they are not personal."""
    story = story_or_abort(story_id, policy.Action.EDIT)
    chosen = request.form.getlist("offer")
    try:
        if not chosen:
            flash("Tick at least one suggestion first.", "error")
        elif request.form.get("decision") == "reject":
            count = redaction.reject(story, current_user, chosen)
            db.session.commit()
            flash(f"{count} suggestion{'s' if count != 1 else ''} kept as said, and not "
                  "suggested again.", "success")
        else:
            count = redaction.accept(story, current_user, chosen)
            db.session.commit()
            flash(f"Redacted {count} word{'s' if count != 1 else ''}. Others now read a label "
                  "instead, and the recording is being prepared with them muted.", "success")
    except service.TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("stories.show", story_id=story.id))
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#redaction")


@bp.route("/<int:story_id>/transcript/redactions/phrase", methods=["POST"])
@role_required(*WORKERS)
def redact_phrase(story_id: int):
    """Redact a word or phrase everywhere the transcript says it."""
    story = story_or_abort(story_id, policy.Action.EDIT)
    try:
        count = redaction.redact_phrase(story, current_user, request.form.get("phrase", ""),
                                        request.form.get("label", ""))
        db.session.commit()
        flash(f"Redacted {count} word{'s' if count != 1 else ''} wherever they are said.",
              "success")
    except service.TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#redaction")


@bp.route("/<int:story_id>/transcript/redactions/undo", methods=["POST"])
@role_required(*WORKERS)
def unredact(story_id: int):
    story = story_or_abort(story_id, policy.Action.EDIT)
    try:
        ids = [int(i) for i in request.form.get("words", "").split(",") if i.strip()]
    except ValueError:
        abort(400)
    try:
        count = redaction.unredact(story, current_user, ids)
    except service.TranscriptError as exc:
        flash(str(exc), "error")
        return redirect(url_for("stories.show", story_id=story.id))
    db.session.commit()
    flash(f"{count} word{'s' if count != 1 else ''} shown again.", "success")
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#redaction")


@bp.route("/<int:story_id>/transcript/segments/<int:segment_id>", methods=["POST"])
@role_required(*WORKERS)
def edit_segment(story_id: int, segment_id: int):
    story = story_or_abort(story_id)
    payload = request.get_json(silent=True) or request.form
    try:
        segment = service.edit_segment(story, segment_id, str(payload.get("text", "")),
                                       current_user)
        db.session.commit()
    except LookupError:
        abort(404)
    except service.TranscriptError as exc:
        db.session.rollback()
        return jsonify({"error": str(exc)}), 422
    return jsonify({"id": segment.id, "text": segment.text, "words": [
        {"text": w.text, "start": w.start, "end": w.end, "probability": w.probability,
         "edited": w.edited} for w in segment.words]})


@bp.route("/<int:story_id>/transcript/speakers", methods=["POST"])
@role_required(*WORKERS)
def speakers(story_id: int):
    story = story_or_abort(story_id)
    names = {key[len("speaker-"):]: value for key, value in request.form.items()
             if key.startswith("speaker-")}
    try:
        service.rename_speakers(story, names, current_user)
        db.session.commit()
        flash("Speaker names saved.", "success")
    except service.TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("transcripts.editor", story_id=story.id))


@bp.route("/<int:story_id>/transcript/review", methods=["POST"])
@role_required(*WORKERS)
def review(story_id: int):
    story = story_or_abort(story_id)
    try:
        service.mark_reviewed(story, current_user)
        db.session.commit()
        flash("Transcript marked as reviewed. It can now be used for themes.", "success")
    except service.TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("transcripts.editor", story_id=story.id))


@bp.route("/<int:story_id>/transcript.<fmt>")
@role_required(*WORKERS)
def export(story_id: int, fmt: str):
    if fmt not in EXPORTS:
        abort(404)
    story = story_or_abort(story_id)
    try:
        transcript, form = service.readable(story, current_user, policy.Action.EXPORT)
    except service.TranscriptError:
        abort(404)
    db.session.commit()  # the audit entry
    mimetype, render = EXPORTS[fmt]
    response = Response(render(transcript, form), mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="story-{story.id}-transcript.{fmt}"')
    response.headers["Cache-Control"] = "no-store"
    return response
