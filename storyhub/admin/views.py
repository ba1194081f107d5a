"""Admin pages: manage accounts and read the audit log."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import Select, select

from .. import audit, policy
from ..accounts import service
from ..accounts.forms import NewUserForm, ResetPasswordForm, SiteForm, SiteTermsForm, UserForm
from ..accounts.models import Site, User
from ..audit import AuditEvent
from ..extensions import db
from ..library.models import LibraryEntry
from ..security import number_arg
from ..web import allowed

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


def _site_choices(form) -> None:
    sites = db.session.scalars(select(Site).order_by(Site.name)).all()
    form.site.choices = [(0, "No site")] + [(s.id, s.name) for s in sites]


def _get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users")
@allowed(policy.Work.ADMINISTER)
def users():
    people = db.session.scalars(select(User).order_by(User.enabled.desc(), User.username)).all()
    return render_template("admin/users.html", users=people)


@bp.route("/users/new", methods=["GET", "POST"])
@allowed(policy.Work.ADMINISTER)
def new_user():
    form = NewUserForm()
    _site_choices(form)
    if form.validate_on_submit():
        try:
            user = service.create_user(form.username.data, form.display_name.data, form.role.data,
                                       form.new_password.data, actor_id=current_user.id,
                                       must_change_password=form.must_change.data,
                                       site_id=form.site.data, all_sites=form.all_sites.data)
        except service.AccountError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"Account “{user.username}” created as {user.role.label}. "
                  "Give them the password in person or by phone, never by email.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_new.html", form=form)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@allowed(policy.Work.ADMINISTER)
def edit_user(user_id: int):
    user = _get_user(user_id)
    form = UserForm(obj=user) if request.method == "GET" else UserForm()
    _site_choices(form)
    if request.method == "GET":
        form.role.data = user.role.value
        form.site.data = user.site_id or 0
    if form.validate_on_submit():
        try:
            service.update_user(user, form.display_name.data, form.role.data, form.enabled.data,
                                actor_id=current_user.id, site_id=form.site.data,
                                all_sites=form.all_sites.data)
        except service.AccountError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"Saved changes to “{user.username}”.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_edit.html", form=form, user=user,
                           reset_form=ResetPasswordForm())


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@allowed(policy.Work.ADMINISTER)
def reset_password(user_id: int):
    user = _get_user(user_id)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            service.set_password(user, form.new_password.data, current_user.id,
                                 must_change=user.id != current_user.id)
        except service.AccountError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"Temporary password set for “{user.username}”. They have been signed out and "
                  "will choose their own password when they next sign in.", "success")
            return redirect(url_for("admin.users"))
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
    return redirect(url_for("admin.edit_user", user_id=user.id))


AUDIT_PAGE = 50
# What each audited action is, in words; the log and its filter show the code beside it (the
# CSV keeps the code). An action not named here shows its code alone.
ACTION_LABELS = {
    "audit.export": "Downloaded the audit log",
    "consent.change": "Changed or renewed consent",
    "consent.withdraw": "Withdrew consent",
    "demo.load": "Loaded the demo",
    "library.approve": "Approved a story for the staff library",
    "library.play": "Listened to a story in the staff library",
    "library.publish_themes": "Published themes to the staff library",
    "library.read": "Read a story in the staff library",
    "library.retire": "Retired a story from the staff library",
    "library.save": "Saved a story's library summary",
    "login": "Signed in",
    "login.disabled": "Tried to sign in to a disabled account",
    "login.failed": "Signed in with a wrong password",
    "pack.download": "Downloaded a workshop pack",
    "pack.download_refused": "Was refused a workshop pack download",
    "pack.generate": "Generated a workshop pack",
    "password.change": "Changed their own password",
    "password.reset": "Reset someone's password",
    "quote.play": "Played a quote's clip",
    "retention.erase": "Erased a story whose consent lapsed",
    "retention.original_deleted": "Deleted an original upload after review",
    "site.create": "Added a site",
    "site.terms": "Changed a site's local names and places",
    "story.create": "Added a story",
    "story.erase": "Erased a story",
    "story.erase_requested": "Asked for a story to be erased",
    "story.play": "Listened to a story",
    "story.rename": "Changed a story's title",
    "story.view": "Opened a story's page",
    "subject_access.export": "Downloaded a subject access export",
    "themes.hide": "Hid or showed a theme",
    "themes.merge": "Merged two themes",
    "themes.move": "Moved a passage to another theme",
    "themes.pin": "Pinned or unpinned a quote",
    "themes.rename": "Renamed or described a theme",
    "themes.retry": "Ran a failed theme run again",
    "themes.run": "Started a theme run",
    "themes.split": "Split a theme",
    "themes.undo": "Undid a theme change",
    "themes.view_board": "Opened a theme board",
    "themes.view_map": "Opened a theme map",
    "themes.view_run": "Opened a theme run",
    "themes.view_theme": "Opened a theme",
    "transcript.confirm_words": "Confirmed unsure words",
    "transcript.edit": "Corrected a transcript",
    "transcript.edit_refused": "Was refused a transcript edit",
    "transcript.export": "Downloaded a transcript",
    "transcript.read": "Opened a transcript",
    "transcript.redact": "Redacted words",
    "transcript.redaction_rejected": "Said suggested words are not personal",
    "transcript.review": "Marked a transcript reviewed",
    "transcript.speakers": "Named the speakers",
    "transcript.unredact": "Showed redacted words again",
    "transcription.start": "Started transcription",
    "user.create": "Created an account",
    "user.update": "Changed an account",
    "workshop.action_add": "Recorded an agreed action",
    "workshop.action_delete": "Deleted an agreed action",
    "workshop.action_edit": "Changed an agreed action",
    "workshop.create": "Created a workshop",
    "workshop.delete": "Deleted a workshop",
    "workshop.edit": "Changed a workshop",
    "workshop.view": "Opened a workshop",
    "workshop.view_feedback": "Opened a “You said, we did” sheet",
    "workshop.view_quotes": "Opened a workshop's quotes",
}


def action_label(action: str) -> str:
    """An audited action as the log shows it: what it is, and its code."""
    label = ACTION_LABELS.get(action)
    return f"{label} ({action})" if label else action


def _story_arg() -> int | None:
    """The story filter: a story number, or the library code staff know it by (LS-…)."""
    raw = (request.args.get("story") or "").strip()
    if raw.upper().startswith("LS-"):
        found = db.session.scalar(select(LibraryEntry.story_id).where(
            LibraryEntry.code == raw.upper()))
        return found if found is not None else -1
    return number_arg("story")


def _audit_filters() -> tuple[Select, dict[str, str]]:
    """Return the audit query narrowed by the page's filters, and the filters as given."""
    args = {key: (request.args.get(key) or "").strip() for key in
            ("who", "action", "story", "since", "until", "ip")}
    query = select(AuditEvent)
    if args["who"]:
        user_id = db.session.scalar(select(User.id).where(User.username == args["who"]))
        query = query.where(AuditEvent.actor_id == (user_id or -1))
    if args["action"]:
        query = query.where(AuditEvent.action.startswith(args["action"]))
    story_id = _story_arg()
    if story_id is not None:
        query = query.where(AuditEvent.target_type == "story", AuditEvent.target_id == story_id)
    if args["ip"]:
        query = query.where(AuditEvent.ip == args["ip"])
    for key, compare in (("since", AuditEvent.at.__ge__), ("until", AuditEvent.at.__lt__)):
        try:
            day = date.fromisoformat(args[key]) if args[key] else None
        except ValueError:
            flash(f"“{args[key]}” is not a date: use the date picker.", "error")
            args[key] = ""
            continue
        if day is not None:
            edge = datetime.combine(day + timedelta(days=1 if key == "until" else 0), time())
            query = query.where(compare(edge))
    return query, args


@bp.route("/audit")
@allowed(policy.Work.ADMINISTER)
def audit_log():
    """Who did what, when and from where; filtered by person, action, story and dates."""
    query, args = _audit_filters()
    page = min(max(number_arg("page", default=1), 1), 10**6)
    events = db.paginate(query.order_by(AuditEvent.id.desc()), page=page,
                         per_page=AUDIT_PAGE, error_out=False)
    names = {row.id: row.username for row in db.session.execute(select(User.id, User.username))}
    actions = [(action, action_label(action)) for action in db.session.scalars(
        select(AuditEvent.action).distinct().order_by(AuditEvent.action))]
    stories = {e.target_id for e in events.items if e.target_type == "story"}
    codes = dict(db.session.execute(select(LibraryEntry.story_id, LibraryEntry.code).where(
        LibraryEntry.story_id.in_(stories))).all()) if stories else {}
    kept = {key: value for key, value in args.items() if value}
    return render_template("admin/audit.html", events=events, names=names, args=args,
                           actions=actions, kept=kept, codes=codes,
                           label=lambda action: ACTION_LABELS.get(action, ""))


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """Return `text` so a spreadsheet shows it as text, never runs it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@bp.route("/audit.csv")
@allowed(policy.Work.ADMINISTER)
def audit_csv():
    """The filtered audit log as CSV, for a data-governance review."""
    query, _args = _audit_filters()
    names = {row.id: row.username for row in db.session.execute(select(User.id, User.username))}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["when_utc", "who", "action", "target_type", "target_id", "detail", "ip"])
    for e in db.session.scalars(query.order_by(AuditEvent.id)):
        writer.writerow([e.at.isoformat(timespec="seconds"), *map(csv_cell, (
            names.get(e.actor_id, ""), e.action, e.target_type or "")), e.target_id or "",
            csv_cell(e.detail or ""), csv_cell(e.ip or "")])
    audit.record("audit.export", current_user.id)
    db.session.commit()
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="storyhub-audit.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/sites", methods=["GET", "POST"])
@allowed(policy.Work.ADMINISTER)
def sites():
    form = SiteForm()
    if form.validate_on_submit():
        try:
            site = service.create_site(form.name.data, current_user.id)
        except service.AccountError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"Site “{site.name}” added. Assign people to it from People and roles.",
                  "success")
            return redirect(url_for("admin.sites"))
    all_sites = db.session.scalars(select(Site).order_by(Site.name)).all()
    terms = {}
    for site in all_sites:
        terms[site.id] = SiteTermsForm(prefix=f"site{site.id}", local_terms=site.local_terms)
    return render_template("admin/sites.html", form=form, sites=all_sites, terms=terms)


@bp.route("/sites/<int:site_id>/terms", methods=["POST"])
@allowed(policy.Work.ADMINISTER)
def site_terms(site_id: int):
    site = db.session.get(Site, site_id)
    if site is None:
        abort(404)
    form = SiteTermsForm(prefix=f"site{site.id}")
    if form.validate_on_submit():
        site.local_terms = "\n".join(line.strip() for line in
                                     (form.local_terms.data or "").splitlines() if line.strip())
        audit.record("site.terms", current_user.id, "site", site.id,
                     detail=f"{len(site.term_list)} local names")
        db.session.commit()
        flash(f"Local names for “{site.name}” saved.", "success")
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
    return redirect(url_for("admin.sites"))
