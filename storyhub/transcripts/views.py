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

from .. import policy, signals
from ..extensions import db
from ..jobs import runner as jobs
from ..security import number_arg
from ..web import allowed, story_or_abort, word_ids
from . import service, tasks, timed_text, unsure  # noqa: F401  (tasks: the job handler)
from .text import count_unsure, tokens

bp = Blueprint("transcripts", __name__, url_prefix="/stories", template_folder="templates")
EXPORTS = {"txt": ("text/plain", timed_text.to_text), "vtt": ("text/vtt", timed_text.to_vtt),
           "srt": ("application/x-subrip", timed_text.to_srt),
           "json": ("application/json", timed_text.to_json)}


@bp.route("/<int:story_id>/status")
@allowed(policy.Action.READ)
def status(story_id: int):
    response = jsonify(service.status_of(story_or_abort(story_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:story_id>/transcribe", methods=["POST"])
@allowed(policy.Action.TRANSCRIBE)
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
@allowed(policy.Action.READ)
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
        tokens=tokens, can_edit=can_edit, full=full,
        # Other features' sections of the editor (the redaction panel), for those who edit.
        panels=[panel for _receiver, panel in signals.transcript_editor_panels.send(
            story, actor=current_user, transcript=transcript, full=full) if panel]
        if can_edit else [],
        # The reporter who gathered it reads the words themselves: each marked with its label.
        labels_of={w.id: w.redaction for seg in transcript.segments for w in seg.words
                   if w.redaction} if full else {},
        unsure=unsure.unsure_words(story, current_user) if can_edit else [])


def _segment_json(story, segment, **extra):
    """Return a segment's words as `current_user` may read them, for the editor's script."""
    form = policy.decide(current_user, story, policy.Action.EDIT).form
    shown = tokens(segment.words, form)
    labels = {w.id: w.redaction for w in segment.words
              if w.redaction} if form is policy.Form.FULL else {}
    return jsonify({"id": segment.id, "text": " ".join(t.text for t in shown), "words": [
        {"id": None if t.redacted else t.word_ids[0], "text": t.text, "start": t.start,
         "end": t.end, "probability": t.probability, "edited": t.edited, "unsure": t.unsure,
         "redacted": t.redacted, "label": labels.get(t.word_ids[0])} for t in shown],
        **extra})


def _after_change(segment) -> dict:
    """What the editor's script shows after a change: words left to check, review state."""
    transcript = segment.transcript
    return {"unsure_left": count_unsure(transcript),
            "reviewed": transcript.reviewed_at is not None}


@bp.route("/<int:story_id>/transcript/segments/<int:segment_id>", methods=["POST"])
@allowed(policy.Action.READ)
def edit_segment(story_id: int, segment_id: int):
    story = story_or_abort(story_id)
    payload = request.get_json(silent=True) or request.form
    try:
        segment = service.edit_segment(story, segment_id, str(payload.get("text", "")),
                                       current_user)
        db.session.commit()
    except LookupError:
        abort(404)
    except service.RedactedPassage as exc:
        db.session.commit()  # the refusal's audit entry; nothing else was changed
        return jsonify({"error": str(exc)}), 422
    except service.TranscriptError as exc:
        db.session.rollback()
        return jsonify({"error": str(exc)}), 422
    return _segment_json(story, segment, **_after_change(segment))


@bp.route("/<int:story_id>/transcript/words/confirm", methods=["POST"])
@allowed(policy.Action.READ)
def confirm_words(story_id: int):
    """“It's right”: the unsure words named were heard right."""
    story = story_or_abort(story_id, policy.Action.EDIT)
    payload = request.get_json(silent=True)
    ids = word_ids(payload.get("words", []) if isinstance(payload, dict)
                    else request.form.getlist("word"))
    try:
        count = unsure.confirm_words(story, ids, current_user)
        db.session.commit()
    except service.TranscriptError as exc:
        db.session.rollback()
        if payload is not None:
            return jsonify({"error": str(exc)}), 422
        flash(str(exc), "error")
        return redirect(url_for("stories.show", story_id=story.id))
    left = unsure.left_to_check(story)
    if payload is not None:
        return jsonify({"confirmed": count, "unsure_left": left})
    flash(f"Marked as heard right. {_words_to_check(left)}", "success")
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#unsure")


@bp.route("/<int:story_id>/transcript/words/<int:word_id>", methods=["POST"])
@allowed(policy.Action.READ)
def correct_word(story_id: int, word_id: int):
    """Correct one word (one the computer was unsure of, or any word clicked in the
    transcript), keeping the timing around it."""
    story = story_or_abort(story_id, policy.Action.EDIT)
    payload = request.get_json(silent=True)
    text = str((payload if isinstance(payload, dict) else request.form).get("text", ""))
    try:
        segment = unsure.correct_word(story, word_id, text, current_user)
        db.session.commit()
    except LookupError:
        abort(404)
    except service.TranscriptError as exc:
        if isinstance(exc, service.RedactedPassage):
            db.session.commit()  # the refusal's audit entry; nothing else was changed
        else:
            db.session.rollback()
        if payload is not None:
            return jsonify({"error": str(exc)}), 422
        flash(str(exc), "error")
        return redirect(url_for("transcripts.editor", story_id=story.id) + "#unsure")
    after = _after_change(segment)
    if payload is not None:
        return _segment_json(story, segment, **after)
    flash(f"Word corrected. {_words_to_check(after['unsure_left'])}", "success")
    return redirect(url_for("transcripts.editor", story_id=story.id) + "#unsure")


def _words_to_check(count: int) -> str:
    if not count:
        return "No unsure words are left to check."
    return f"{count} unsure word{'s' if count != 1 else ''} left to check."


@bp.route("/<int:story_id>/transcript/speakers", methods=["POST"])
@allowed(policy.Action.READ)
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
@allowed(policy.Action.READ)
def review(story_id: int):
    # How many unsure words the editor showed, which the reporter agrees to leave unchecked:
    # more than that, and the editor lists them first. A post without it (not from the
    # editor) is not asked; the audit entry says how many were left either way.
    leave = number_arg("leave_unsure", int, source=request.form)
    story = story_or_abort(story_id)
    try:
        service.mark_reviewed(story, current_user, leave_unsure=leave)
        db.session.commit()
        flash("Transcript marked as reviewed. It can now be used for themes.", "success")
    except service.UnsureWordsLeft as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("transcripts.editor", story_id=story.id) + "#unsure")
    except service.TranscriptError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("transcripts.editor", story_id=story.id))


@bp.route("/<int:story_id>/transcript.<fmt>")
@allowed(policy.Action.EXPORT)
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
