"""Admin pages: manage accounts and read the audit log."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import Select, select

from .. import audit
from ..accounts import service
from ..accounts.auth import role_required
from ..accounts.forms import NewUserForm, ResetPasswordForm, SiteForm, SiteTermsForm, UserForm
from ..accounts.models import Role, Site, User
from ..audit import AuditEvent
from ..extensions import db
from ..security import number_arg

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
@role_required(Role.ADMIN)
def users():
    people = db.session.scalars(select(User).order_by(User.enabled.desc(), User.username)).all()
    return render_template("admin/users.html", users=people)


@bp.route("/users/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
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
@role_required(Role.ADMIN)
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
@role_required(Role.ADMIN)
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
    story_id = number_arg("story")
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
@role_required(Role.ADMIN)
def audit_log():
    """Who did what, when and from where; filtered by person, action, story and dates."""
    query, args = _audit_filters()
    page = min(max(number_arg("page", default=1), 1), 10**6)
    events = db.paginate(query.order_by(AuditEvent.id.desc()), page=page,
                         per_page=AUDIT_PAGE, error_out=False)
    names = {row.id: row.username for row in db.session.execute(select(User.id, User.username))}
    actions = list(db.session.scalars(select(AuditEvent.action).distinct().order_by(
        AuditEvent.action)))
    kept = {key: value for key, value in args.items() if value}
    return render_template("admin/audit.html", events=events, names=names, args=args,
                           actions=actions, kept=kept)


@bp.route("/audit.csv")
@role_required(Role.ADMIN)
def audit_csv():
    """The filtered audit log as CSV, for a data-governance review."""
    query, _args = _audit_filters()
    names = {row.id: row.username for row in db.session.execute(select(User.id, User.username))}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["when_utc", "who", "action", "target_type", "target_id", "detail", "ip"])
    for e in db.session.scalars(query.order_by(AuditEvent.id)):
        writer.writerow([e.at.isoformat(timespec="seconds"), names.get(e.actor_id, ""),
                         e.action, e.target_type or "", e.target_id or "", e.detail or "",
                         e.ip or ""])
    audit.record("audit.export", current_user.id)
    db.session.commit()
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="storyhub-audit.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/sites", methods=["GET", "POST"])
@role_required(Role.ADMIN)
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
@role_required(Role.ADMIN)
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
