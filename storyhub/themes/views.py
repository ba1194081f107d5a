"""Theme pages: start a run, read and shape its themes, the printable board and the map."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from .. import audit, policy
from ..config import settings
from ..extensions import db
from ..security import CSP, db_id, form_id
from ..web import allowed, send_audio, starts_listening
from . import (
    facilitator_edits,
    history,
    reading,
    service,
    story_changes,  # noqa: F401  (its signal receivers)
    tasks,  # noqa: F401  (its job handler)
)
from .models import RunStatus, ThemeRun

bp = Blueprint("themes", __name__, url_prefix="/themes", template_folder="templates")


def run_or_abort(run_id: int) -> ThemeRun:
    try:
        return service.get_run(run_id)
    except LookupError:
        abort(404)


def done_run_or_abort(run_id: int) -> ThemeRun:
    run = run_or_abort(run_id)
    if run.status is not RunStatus.DONE:
        flash("This run has not finished yet.", "info")
        abort(redirect(url_for("themes.index")))
    return run


@bp.route("/")
@allowed(policy.Work.SHAPE_THEMES)
def index(status: int = 200):
    runs = db.session.scalars(select(ThemeRun).order_by(ThemeRun.number.desc())).all()
    active = next((r for r in runs if r.status in (RunStatus.QUEUED, RunStatus.RUNNING)), None)
    return render_template("themes/index.html", runs=runs, active=active,
                           found=service.readiness(),
                           minimum=settings().theme_min_stories,
                           last_seeds="\n".join(
                               s["name"] + (": " + ", ".join(s["keywords"])
                                            if s["keywords"] else "")
                               for s in (runs[0].seeds if runs else []))), status


def _conflict(message: str):
    """Answer 409 on the themes page: another run got there first."""
    db.session.rollback()
    flash(message, "error")
    return index(status=409)


@bp.route("/runs", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def start():
    try:
        run = service.start_run(current_user.id, request.form.get("seeds", ""))
        db.session.commit()
    except service.RunConflict as exc:
        return _conflict(str(exc))
    except service.ThemeError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("themes.index"))
    flash(f"Run {run.number} queued. This page shows its progress.", "success")
    return redirect(url_for("themes.index"))


@bp.route("/runs/<int:run_id>/retry", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def retry(run_id: int):
    run = run_or_abort(run_id)
    try:
        service.retry_run(run, current_user.id)
        db.session.commit()
    except service.RunConflict as exc:
        return _conflict(str(exc))
    except service.ThemeError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"Run {run.number} queued again. This page shows its progress.", "success")
    return redirect(url_for("themes.index"))


@bp.route("/runs/<int:run_id>/status")
@allowed(policy.Work.SHAPE_THEMES)
def status(run_id: int):
    run = run_or_abort(run_id)
    return jsonify(service.run_status(run) | {"url": url_for("themes.run", run_id=run.id)})


def _audit_read(action: str, run_id: int) -> None:
    """Record that the signed-in facilitator read a run's passages (quotes, map, board)."""
    audit.record(action, current_user.id, "theme_run", run_id)
    db.session.commit()


@bp.route("/runs/<int:run_id>")
@allowed(policy.Work.SHAPE_THEMES)
def run(run_id: int):
    run = done_run_or_abort(run_id)
    views, unassigned = reading.theme_views(run)
    shared = [v for v in views if not v.theme.hidden and v.shared_by == "shared"]
    _audit_read("themes.view_run", run.id)
    return render_template("themes/run.html", run=run, views=views, unassigned=unassigned,
                           shared=shared, no_passage=service.no_passage_stories(run),
                           staff=history.staff_view(run), changes=history.recent(run),
                           latest=history.latest(run), describe=history.describe)


@bp.route("/runs/<int:run_id>/themes/<int:theme_id>")
@allowed(policy.Work.SHAPE_THEMES)
def theme(run_id: int, theme_id: int):
    run = done_run_or_abort(run_id)
    views, _ = reading.theme_views(run)
    view = next((v for v in views if v.theme.id == theme_id), None)
    if view is None:
        abort(404)
    found = facilitator_edits.passages_of(run, theme_id)
    allowed = service.consented_story_ids({r.passage.story_id for r in found})
    rows = [r for r in found if r.passage.story_id in allowed]
    _audit_read("themes.view_theme", run.id)
    return render_template("themes/theme.html", run=run, view=view, rows=rows,
                           others=[v.theme for v in views if v.theme.id != theme_id],
                           staff=history.staff_view(run), latest=history.latest(run),
                           describe=history.describe)


def _edit(run_id: int, theme_id: int | None, action, message: str):
    run = done_run_or_abort(run_id)
    try:
        result = action(run)
        db.session.commit()
    except (ValueError, LookupError) as exc:
        db.session.rollback()
        if isinstance(exc, LookupError):
            abort(404)
        flash(str(exc), "error")
        result = None
    else:
        flash(message, "success")
    target = request.form.get("next") or ""
    if target.startswith("/themes/"):
        return redirect(target)
    if theme_id is not None and result is not None and getattr(result, "id", None):
        return redirect(url_for("themes.theme", run_id=run.id, theme_id=result.id))
    return redirect(url_for("themes.run", run_id=run.id))


@bp.route("/runs/<int:run_id>/themes/<int:theme_id>/rename", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def rename(run_id: int, theme_id: int):
    return _edit(run_id, theme_id, lambda run: facilitator_edits.rename(
        run, theme_id, request.form.get("label", ""), request.form.get("description", ""),
        current_user.id), "Theme saved.")


@bp.route("/runs/<int:run_id>/themes/<int:theme_id>/hide", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def hide(run_id: int, theme_id: int):
    hidden = request.form.get("hidden") == "1"
    return _edit(run_id, theme_id, lambda run: facilitator_edits.set_hidden(
        run, theme_id, hidden, current_user.id),
        "Theme hidden from the board and map." if hidden else "Theme shown again.")


@bp.route("/runs/<int:run_id>/themes/<int:theme_id>/merge", methods=["GET", "POST"])
@allowed(policy.Work.SHAPE_THEMES)
def merge(run_id: int, theme_id: int):
    """Ask first (a page of its own, so it works without JavaScript), then merge."""
    sources = [i for i in map(db_id, request.values.getlist("sources")) if i is not None]
    if request.method == "POST" and request.form.get("confirm") == "yes":
        return _edit(run_id, theme_id, lambda run: facilitator_edits.merge(
            run, theme_id, sources, current_user.id), "Themes merged.")
    run = done_run_or_abort(run_id)
    try:
        target, chosen = facilitator_edits.merging(run, theme_id, sources)
    except LookupError:
        abort(404)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("themes.theme", run_id=run.id, theme_id=theme_id))
    views = {v.theme.id: v for v in reading.theme_views(run)[0]}
    joining = [views.get(t.id) or reading.ThemeView(t) for t in chosen]
    return render_template("themes/merge.html", run=run,
                           target=views.get(target.id) or reading.ThemeView(target),
                           joining=joining, staff=history.staff_view(run))


@bp.route("/runs/<int:run_id>/themes/<int:theme_id>/split", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def split(run_id: int, theme_id: int):
    parts = form_id("parts")
    return _edit(run_id, theme_id, lambda run: facilitator_edits.split(
        run, theme_id, current_user.id, parts)[0],
        "Theme split. Check the new themes' names.")


@bp.route("/runs/<int:run_id>/passages/<int:passage_id>/move", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def move(run_id: int, passage_id: int):
    theme_id = form_id("theme_id")  # empty: in no theme
    return _edit(run_id, None, lambda run: facilitator_edits.move(
        run, passage_id, theme_id, current_user.id),
        "Passage moved.")


@bp.route("/runs/<int:run_id>/passages/<int:passage_id>/pin", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def pin(run_id: int, passage_id: int):
    pinned = request.form.get("pinned") == "1"
    return _edit(run_id, None,
                 lambda run: facilitator_edits.pin(run, passage_id, pinned, current_user.id),
                 "Quote pinned to the board." if pinned else "Quote unpinned.")


@bp.route("/runs/<int:run_id>/undo", methods=["POST"])
@allowed(policy.Work.SHAPE_THEMES)
def undo(run_id: int):
    """Undo the run's latest edit; go back to the theme page it came from, if still there."""
    run = done_run_or_abort(run_id)
    try:
        edit = history.undo(run, db_id(request.form.get("edit", "")) or 0, current_user.id)
        db.session.commit()
    except history.UndoError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"Undone: {history.describe(edit)}.", "success")
    back = db_id(request.form.get("theme", ""))
    if back is not None and any(t.id == back for t in run.themes):
        return redirect(url_for("themes.theme", run_id=run.id, theme_id=back))
    return redirect(url_for("themes.run", run_id=run.id, _anchor="changes"))


@bp.route("/runs/<int:run_id>/board")
@allowed(policy.Work.SHAPE_THEMES)
def theme_board(run_id: int):
    run = done_run_or_abort(run_id)
    views, _ = reading.theme_views(run, include_hidden=False, quotes=4)
    _audit_read("themes.view_board", run.id)
    return render_template("themes/board.html", run=run, views=views,
                           no_passage=service.no_passage_stories(run),
                           staff=history.staff_view(run))


@bp.route("/runs/<int:run_id>/map")
@allowed(policy.Work.SHAPE_THEMES)
def theme_map(run_id: int):
    run = done_run_or_abort(run_id)
    response = make_response(render_template("themes/map.html", run=run))
    # plotly.js sets inline styles on the chart it draws; scripts stay 'self' only.
    response.headers["Content-Security-Policy"] = CSP.replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'")
    return response


@bp.route("/runs/<int:run_id>/map.json")
@allowed(policy.Work.SHAPE_THEMES)
def map_data(run_id: int):
    response = jsonify(reading.map_points(done_run_or_abort(run_id)))
    _audit_read("themes.view_map", run_id)
    return response


@bp.route("/runs/<int:run_id>/passages/<int:passage_id>/clip.m4a")
@allowed(policy.Work.SHAPE_THEMES)
def workshop_clip(run_id: int, passage_id: int):
    """Serve just a quote's stretch of audio, for playing in a workshop (consent permitting).

    The clip is cut on the server, from the copy muted over redacted words: the rest of the
    recording never leaves it.
    """
    try:
        clip, story_id = service.quote_clip(run_or_abort(run_id), passage_id, current_user)
    except LookupError:
        abort(404)
    if starts_listening():
        audit.record("quote.play", current_user.id, "story", story_id)
        db.session.commit()
    return send_audio(clip, f"quote-{passage_id}.m4a")


@bp.route("/vendor/plotly.min.js")
@allowed(policy.Work.SHAPE_THEMES)
def plotly_js():
    """Serve plotly.js from the installed plotly package: pinned, offline, no CDN."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return send_file(path, mimetype="text/javascript", max_age=86400)
