"""Workshop pages: build from a theme run, shape, generate and download packs, record actions."""

from __future__ import annotations

import io

from flask import (
    Blueprint,
    abort,
    flash,
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
from ..extensions import db
from ..security import db_id, form_id
from ..themes.models import RunStatus, ThemeRun
from ..web import allowed
from . import exports, outcomes, render, service, shaping
from .forms import ActionForm, WorkshopForm
from .models import ActionStatus, Workshop

bp = Blueprint("packs", __name__, url_prefix="/packs", template_folder="templates")
# "You said, we did" is fed back to staff as well as storytellers.


def workshop_or_404(workshop_id: int) -> Workshop:
    try:
        return service.get_workshop(workshop_id)
    except LookupError:
        abort(404)


def _back(workshop: Workshop, anchor: str = ""):
    return redirect(url_for("packs.show", workshop_id=workshop.id) + anchor)


def _change(workshop_id: int, change, message: str, anchor: str = ""):
    """Apply a change to a workshop, commit, and go back to its page saying what happened."""
    workshop = workshop_or_404(workshop_id)
    try:
        change(workshop)
        db.session.commit()
    except LookupError:
        db.session.rollback()
        abort(404)
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(message, "success")
    return _back(workshop, anchor)


def _int(name: str) -> int | None:
    return db_id(request.form.get(name))


def _offset() -> int:
    return -1 if request.form.get("direction") == "up" else 1


@bp.route("/")
@allowed(policy.Work.PREPARE_WORKSHOPS)
def index():
    workshops = db.session.scalars(select(Workshop).order_by(Workshop.id.desc())).all()
    states = {w.id: service.pack_state(w, current_user) for w in workshops}
    runs = db.session.scalars(select(ThemeRun).order_by(ThemeRun.number.desc())).all()
    done = [r for r in runs if r.status is RunStatus.DONE]
    return render_template("packs/index.html", workshops=workshops, states=states, runs=done)


@bp.route("/new", methods=["GET", "POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def new():
    run_id = db_id(request.values.get("run_id"))
    run = db.session.get(ThemeRun, run_id) if run_id else None
    if run is None or run.status is not RunStatus.DONE:
        flash("Choose a finished theme run to build the workshop from.", "error")
        return redirect(url_for("packs.index"))
    form = WorkshopForm()
    choices = service.theme_choices(run)
    chosen = {c.theme.id for c in choices[:service.MAX_THEMES]}
    if request.method == "GET":
        form.title.data = "Conversations for Change"
    elif request.form.get("themes_shown"):  # else the default (a client without the list)
        chosen = {i for i in map(db_id, request.form.getlist("theme")) if i is not None}
    if form.validate_on_submit():
        try:
            workshop = service.create_workshop(
                run.id, current_user.id, form.title.data or "", form.held_on.data,
                form.place.data or "", form.audience.data or "mixed",
                form.facilitators.data or "", form.safeguarding_contact.data or "",
                theme_ids=sorted(chosen))
            db.session.commit()
        except LookupError:
            db.session.rollback()
            flash("A theme you chose is no longer in this run. Choose again.", "error")
        except ValueError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            left = len(choices) - len(workshop.themes)
            flash(f"Workshop created with {len(workshop.themes)} themes from run {run.number}"
                  + (f" ({left} left out: add them from the workshop page)" if left else "")
                  + ". Check the order and the quotes, then generate the pack.", "success")
            return _back(workshop)
    return render_template("packs/new.html", form=form, run=run, choices=choices,
                           chosen=chosen, max_themes=service.MAX_THEMES)


@bp.route("/<int:workshop_id>")
@allowed(policy.Work.PREPARE_WORKSHOPS)
def show(workshop_id: int):
    workshop = workshop_or_404(workshop_id)
    form = WorkshopForm(obj=workshop)
    form.audience.data = workshop.audience.value
    action_form = ActionForm()
    action_form.set_themes(workshop)
    state = service.pack_state(workshop, current_user)
    problems = state.checked.quote_problems
    others = {t.id: shaping.swap_candidates(workshop, t.id)[:6] for t in workshop.themes}
    playable = state.checked.playable
    refused = {p.version: service.version_problems(p, current_user) for p in workshop.packs}
    unchecked = service.unchecked_passages([row for rows in others.values() for row in rows])
    held = {t.theme_id for t in workshop.themes}
    left_out = ([c for c in service.theme_choices(workshop.run) if c.theme.id not in held]
                if workshop.run is not None and workshop.run.status is RunStatus.DONE else [])
    audit.record("workshop.view", current_user.id, "workshop", workshop.id)
    db.session.commit()
    return render_template("packs/show.html", workshop=workshop, form=form, state=state,
                           problems=problems, action_form=action_form, others=others,
                           playable=playable, refused=refused,
                           shown_instead=state.checked.shown_instead,
                           kinds=state.checked.quote_kinds, unchecked=unchecked,
                           left_out=left_out,
                           statuses=list(ActionStatus), clock=render.clock,
                           code=service.story_code, max_quotes=service.MAX_QUOTES,
                           min_quotes=service.MIN_QUOTES, max_themes=service.MAX_THEMES)


@bp.route("/<int:workshop_id>/details", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def details(workshop_id: int):
    form = WorkshopForm()
    if not form.validate():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return _back(workshop_or_404(workshop_id))
    return _change(workshop_id, lambda w: service.update_details(
        w, current_user.id, title=form.title.data, held_on=form.held_on.data,
        place=form.place.data, audience=form.audience.data, facilitators=form.facilitators.data,
        safeguarding_contact=form.safeguarding_contact.data), "Workshop details saved.")


@bp.route("/<int:workshop_id>/themes/<int:theme_id>/move", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def move_theme(workshop_id: int, theme_id: int):
    return _change(workshop_id, lambda w: shaping.move_theme(w, theme_id, _offset()),
                   "Theme moved.", f"#wtheme-{theme_id}")


@bp.route("/<int:workshop_id>/themes/<int:theme_id>/remove", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def remove_theme(workshop_id: int, theme_id: int):
    return _change(workshop_id, lambda w: shaping.remove_theme(w, theme_id),
                   "Theme taken out of the workshop.", "#themes")


@bp.route("/<int:workshop_id>/themes", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def add_theme(workshop_id: int):
    theme_id = _int("theme_id")
    if theme_id is None:
        flash("Choose a theme to add.", "error")
        return _back(workshop_or_404(workshop_id), "#themes")
    return _change(workshop_id, lambda w: shaping.add_theme(w, theme_id), "Theme added.",
                   "#themes")


@bp.route("/<int:workshop_id>/themes/<int:theme_id>", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def edit_theme(workshop_id: int, theme_id: int):
    return _change(workshop_id, lambda w: shaping.edit_theme(
        w, theme_id, request.form.get("title", ""), request.form.get("description", ""),
        request.form.get("questions", "")), "Theme saved.", f"#wtheme-{theme_id}")


@bp.route("/<int:workshop_id>/themes/<int:theme_id>/quotes")
@allowed(policy.Work.PREPARE_WORKSHOPS)
def quotes(workshop_id: int, theme_id: int):
    """List the passages that could be quoted for a theme, to add or swap one in."""
    workshop = workshop_or_404(workshop_id)
    theme = next((t for t in workshop.themes if t.id == theme_id), None)
    if theme is None:
        abort(404)
    replacing = db_id(request.args.get("replace"))
    if replacing is not None and replacing not in {q.id for q in theme.quotes}:
        abort(404)
    rows = shaping.swap_candidates(workshop, theme_id)
    audit.record("workshop.view_quotes", current_user.id, "workshop", workshop.id)
    db.session.commit()
    return render_template("packs/quotes.html", workshop=workshop, theme=theme, rows=rows,
                           unchecked=service.unchecked_passages(rows),
                           replacing=replacing, clock=render.clock, code=service.story_code)


@bp.route("/<int:workshop_id>/themes/<int:theme_id>/quotes", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def choose_quote(workshop_id: int, theme_id: int):
    passage_id = _int("passage_id")
    if passage_id is None:
        abort(400)
    replacing = form_id("replace")  # empty: add the quote
    return _change(workshop_id, lambda w: shaping.choose_quote(
        w, theme_id, passage_id, replacing),
        "Quote swapped." if replacing else "Quote added.", f"#wtheme-{theme_id}")


@bp.route("/<int:workshop_id>/themes/<int:theme_id>/quotes/<int:quote_id>/<verb>",
          methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def quote_action(workshop_id: int, theme_id: int, quote_id: int, verb: str):
    verbs = {
        "remove": (lambda w: shaping.remove_quote(w, theme_id, quote_id), "Quote removed."),
        "move": (lambda w: shaping.move_quote(w, theme_id, quote_id, _offset()), "Quote moved."),
        "keep": (lambda w: shaping.keep_quote(w, theme_id, quote_id),
                 "The quote will be printed as it is, unchecked words and all."),
        "refresh": (lambda w: shaping.refresh_quote(w, theme_id, quote_id),
                    "The quote now has the transcript's current words. Read it again before "
                    "you generate the pack."),
    }
    if verb not in verbs:
        abort(404)
    change, message = verbs[verb]
    return _change(workshop_id, change, message, f"#wtheme-{theme_id}")


@bp.route("/<int:workshop_id>/generate", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def generate(workshop_id: int):
    workshop = workshop_or_404(workshop_id)
    try:
        pack, made = service.generate_pack(workshop.id, current_user.id)
        db.session.commit()
    except service.PackError as exc:
        db.session.rollback()
        flash("The pack was not generated: " + " ".join(exc.problems), "error")
        return _back(workshop, "#pack")
    flash(f"Pack version {pack.version} generated." if made else
          f"Nothing has changed since version {pack.version}: it is still the latest.",
          "success")
    return _back(workshop, "#pack")


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:workshop_id>/packs/<int:version>/<fmt>")
@allowed(policy.Work.PREPARE_WORKSHOPS)
def download(workshop_id: int, version: int, fmt: str):
    workshop = workshop_or_404(workshop_id)
    try:
        pack = service.get_pack(workshop, version)
    except LookupError:
        abort(404)
    if fmt != "zip" and fmt not in exports.FORMATS:
        abort(404)
    # Asked now, not when the version was made: a story it quotes may have been withdrawn,
    # gone past its consent's review date, or had a word redacted since.
    problems = service.version_problems(pack, current_user)
    if problems:
        audit.record("pack.download_refused", current_user.id, "workshop", workshop.id,
                     detail=f"version {version} {fmt}: {len(problems)} quote(s)")
        db.session.commit()
        return _no_store(make_response(render_template(
            "packs/refused.html", workshop=workshop, pack=pack, problems=problems), 409))
    if fmt == "zip":
        buffer = io.BytesIO()
        left_out = exports.write_zip(pack, current_user, buffer)
        audit.record("pack.download", current_user.id, "workshop", workshop.id,
                     detail=f"version {version} zip")
        db.session.commit()
        response = send_file(io.BytesIO(buffer.getvalue()), mimetype="application/zip",
                             as_attachment=True,
                             download_name=exports.filename(pack, "pack", "zip"))
        if left_out:
            response.headers["X-Clips-Left-Out"] = str(len(left_out))
        return _no_store(response)
    made = exports.export(pack, fmt)
    audit.record("pack.download", current_user.id, "workshop", workshop.id,
                 detail=f"version {version} {fmt}")
    db.session.commit()
    return _no_store(send_file(io.BytesIO(made.data), mimetype=made.mimetype,
                               as_attachment=True, download_name=made.filename))


@bp.route("/<int:workshop_id>/actions", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def add_action(workshop_id: int):
    workshop = workshop_or_404(workshop_id)
    form = ActionForm()
    form.set_themes(workshop)
    if not form.validate():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return _back(workshop, "#actions")
    return _change(workshop_id, lambda w: outcomes.add_action(
        w, current_user.id, form.what.data or "", form.who.data or "", form.due_on.data,
        form.theme_id, form.status.data or "agreed", form.outcome.data or ""),
        "Action recorded.", "#actions")


@bp.route("/<int:workshop_id>/actions/<int:action_id>", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def edit_action(workshop_id: int, action_id: int):
    workshop = workshop_or_404(workshop_id)
    if request.form.get("delete"):
        return _change(workshop_id, lambda w: outcomes.delete_action(w, action_id,
                                                                     current_user.id),
                       "Action deleted.", "#actions")
    form = ActionForm()
    form.set_themes(workshop)
    if not form.validate():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return _back(workshop, "#actions")
    return _change(workshop_id, lambda w: outcomes.update_action(
        w, action_id, current_user.id, form.what.data or "", form.who.data or "",
        form.due_on.data, form.theme_id, form.status.data or "agreed",
        form.outcome.data or ""), "Action saved.", "#actions")


@bp.route("/actions")
@allowed(policy.Work.PREPARE_WORKSHOPS)
def action_board():
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in ActionStatus}:
        abort(400)
    return render_template("packs/actions.html", actions=outcomes.action_board(status),
                           statuses=list(ActionStatus), status=status)


@bp.route("/<int:workshop_id>/you-said-we-did")
@bp.route("/<int:workshop_id>/you-said-we-did.<fmt>")
@allowed(policy.Work.READ_FEEDBACK)
def feedback(workshop_id: int, fmt: str = "page"):
    """The "You said, we did" sheet: on screen, as Markdown or as a PDF."""
    workshop = workshop_or_404(workshop_id)
    content = outcomes.feedback_content(workshop, current_user)
    source = render.markdown_for("feedback", content)
    audit.record("workshop.view_feedback", current_user.id, "workshop", workshop.id)
    db.session.commit()
    name = f"{exports.slug(workshop.title)}-you-said-we-did"
    title = f"You said, we did: {workshop.title}"
    if fmt == "pdf":
        return _no_store(send_file(io.BytesIO(render.pdf_for("feedback", source, title)),
                                   mimetype="application/pdf", as_attachment=True,
                                   download_name=f"{name}.pdf"))
    if fmt == "md":
        return _no_store(send_file(io.BytesIO(source.encode()), as_attachment=True,
                                   mimetype="text/markdown",
                                   download_name=f"{name}.md"))
    if fmt != "page":
        abort(404)
    body = render.html_body(source)
    return _no_store(make_response(render_template(
        "packs/feedback.html", workshop=workshop, body=body)))


@bp.route("/<int:workshop_id>/delete", methods=["POST"])
@allowed(policy.Work.PREPARE_WORKSHOPS)
def delete(workshop_id: int):
    workshop = workshop_or_404(workshop_id)
    audit.record("workshop.delete", current_user.id, "workshop", workshop.id)
    db.session.delete(workshop)
    db.session.commit()
    flash("Workshop deleted, with its packs and actions.", "success")
    return redirect(url_for("packs.index"))
