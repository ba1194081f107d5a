"""Sign in, sign out, change password, and first-run set-up."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from ..extensions import db, limiter
from . import service, setup
from .auth import any_signed_in
from .forms import ChangePasswordForm, LoginForm, SetupForm
from .models import Role

bp = Blueprint("accounts", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an attacker's link must not bounce a user to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        if not urlsplit(target).netloc:
            return target
    return url_for("home.index")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"],
               deduct_when=lambda response: response.status_code != 302,
               error_message="Too many sign-in attempts.")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = service.authenticate(form.username.data, form.password.data)
        db.session.commit()
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("That username and password do not match an active account. "
              "Check them and try again.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("accounts/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@any_signed_in
def logout():
    service.end_sessions(current_user)
    db.session.commit()
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@any_signed_in
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not service.verify_password(current_user, form.current_password.data):
            form.current_password.errors.append("That is not your current password.")
        else:
            try:
                service.set_password(current_user, form.new_password.data, current_user.id)
            except service.AccountError as exc:
                form.new_password.errors.append(str(exc))
            else:
                db.session.commit()
                # The token changed, so sign in again on this device with the new cookie.
                login_user(current_user)
                flash("Your password has been changed. You have been signed out everywhere else.",
                      "success")
                return redirect(url_for("home.index"))
    return render_template("accounts/change_password.html", form=form)


@bp.route("/setup", methods=["GET", "POST"])
def first_admin():
    token = setup.read_token(current_app.instance_path)
    given = request.args.get("token", "")
    if (token is None or service.count_users() > 0
            or not hmac.compare_digest(token.encode(), given.encode())):
        abort(404)
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = service.create_user(form.username.data, form.display_name.data, Role.ADMIN,
                                       form.new_password.data)
        except service.AccountError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            setup.remove_token(current_app.instance_path)
            login_user(user)
            flash("Welcome to StoryHub. Next, create accounts for your reporters, "
                  "facilitators and staff.", "success")
            return redirect(url_for("admin.users"))
    return render_template("accounts/setup.html", form=form)
