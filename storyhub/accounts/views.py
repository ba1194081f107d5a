"""Sign in, sign out, change password, and first-run set-up."""

from __future__ import annotations

import hmac
import math
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from ..extensions import db
from . import limits, service, setup
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


def _too_many(template: str, form, exc: limits.TooManyAttempts):
    flash(str(exc), "error")
    response = make_response(render_template(template, form=form), 429)
    response.headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        # Only a real password check counts: an invalid form (no CSRF token) never gets here.
        username = service.normalise_username(form.username.data)
        try:
            check = limits.begin_sign_in(username)
        except limits.TooManyAttempts as exc:
            return _too_many("accounts/login.html", form, exc)
        user = service.authenticate(username, form.password.data)
        db.session.commit()
        check.finish(user is not None)
        if user is not None:
            login_user(user)
            response = redirect(_safe_next(request.args.get("next")))
            limits.remember_browser(response, username)
            return response
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
        try:
            check = limits.begin_password_check(current_user.id)
        except limits.TooManyAttempts as exc:
            return _too_many("accounts/change_password.html", form, exc)
        correct = service.verify_password(current_user, form.current_password.data)
        check.finish(correct)
        if not correct:
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
