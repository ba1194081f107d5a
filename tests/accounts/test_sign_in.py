"""Signing in and out, password rules and storage, sessions that end, rate limits, CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.audit import AuditEvent
from storyhub.extensions import db
from tests.support.factories import PASSWORD


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in to StoryHub" in response.data
    assert b'<label for="username">Username</label>' in response.data


def test_login_and_logout(client, make_user):
    make_user(Role.REPORTER, username="rita")
    response = client.post("/login", data={"username": "Rita ", "password": PASSWORD})
    assert response.status_code == 302
    home = client.get("/")
    assert b"Hello, Rita" in home.data
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_message(client, make_user):
    make_user(Role.REPORTER, username="rita")
    response = client.post("/login", data={"username": "rita", "password": "wrong password"})
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_passwords_are_stored_as_argon2(app, make_user):
    user_id = make_user(Role.STAFF)
    with app.app_context():
        stored = db.session.get(User, user_id).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_short_password_is_refused(client, auth):
    auth.login_as(Role.ADMIN)
    response = client.post("/admin/users/new", data={
        "username": "newbie", "display_name": "New", "role": "reporter", "site": "0",
        "new_password": "short", "confirm": "short"})
    assert response.status_code == 200
    assert "at least 10 characters" in response.get_data(as_text=True)


def test_five_wrong_passwords_make_the_account_wait(client, make_user):
    make_user(Role.REPORTER, username="rita")
    for _ in range(5):
        assert client.post("/login", data={"username": "rita", "password": "nope-nope"}
                           ).status_code == 401
    response = client.post("/login", data={"username": "rita", "password": PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many wrong passwords for this username. Wait 30 seconds" in \
        response.get_data(as_text=True)


def test_successful_logins_do_not_use_up_the_limit(client, make_user):
    make_user(Role.REPORTER, username="rita")
    for _ in range(12):
        assert client.post("/login", data={"username": "rita", "password": PASSWORD}
                           ).status_code == 302
        client.post("/logout")


def _session_cookie(client):
    return client.get_cookie("storyhub_session").value


def _copy_of_session(app, cookie_value):
    other = app.test_client()
    other.set_cookie("storyhub_session", cookie_value)
    return other


def test_logout_ends_a_copied_cookie(app, client, auth):
    auth.login_as(Role.REPORTER)
    stolen = _copy_of_session(app, _session_cookie(client))
    assert stolen.get("/").status_code == 200
    auth.logout()
    assert stolen.get("/").status_code == 302


def test_disabled_users_old_cookie_stops_working(app, client, auth, make_user):
    victim_client = app.test_client()
    make_user(Role.REPORTER, username="rita")
    victim_client.post("/login", data={"username": "rita", "password": PASSWORD})
    copied = _copy_of_session(app, _session_cookie(victim_client))
    assert copied.get("/").status_code == 200

    auth.login_as(Role.ADMIN)
    with app.app_context():
        rita = db.session.scalar(select(User).where(User.username == "rita"))
    response = client.post(f"/admin/users/{rita.id}", data={
        "display_name": "Rita", "role": "reporter", "site": "0"})  # checkbox left out = disabled
    assert response.status_code == 302
    assert copied.get("/").status_code == 302
    assert victim_client.get("/").status_code == 302
    # And the disabled account cannot sign in again.
    response = app.test_client().post("/login", data={"username": "rita", "password": PASSWORD})
    assert response.status_code == 401


def test_password_change_ends_other_sessions(app, client, auth):
    auth.login_as(Role.FACILITATOR, username="fran")
    other_device = app.test_client()
    other_device.post("/login", data={"username": "fran", "password": PASSWORD})
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": "a brand new passphrase",
        "confirm": "a brand new passphrase"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this device stays signed in
    assert other_device.get("/").status_code == 302
    assert auth.login("fran", "a brand new passphrase").status_code == 302


def test_admin_reset_forces_password_change(app, client, auth, make_user):
    rita = make_user(Role.REPORTER, username="rita")
    auth.login_as(Role.ADMIN)
    response = client.post(f"/admin/users/{rita}/password", data={
        "new_password": "temporary password 1", "confirm": "temporary password 1"})
    assert response.status_code == 302
    auth.logout()
    assert auth.login("rita", "temporary password 1").status_code == 302
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/password")


def test_admin_creates_edits_and_audits_users(app, client, auth):
    admin_id = auth.login_as(Role.ADMIN)
    response = client.post("/admin/users/new", data={
        "username": "Peer.Mentor", "display_name": "Pat", "role": "reporter", "site": "0",
        "new_password": "long enough pass", "confirm": "long enough pass"},
        follow_redirects=True)
    assert "Account “peer.mentor” created as Community reporter" in response.get_data(as_text=True)
    duplicate = client.post("/admin/users/new", data={
        "username": "peer.mentor", "display_name": "Pat 2", "role": "staff", "site": "0",
        "new_password": "long enough pass", "confirm": "long enough pass"})
    assert "already taken" in duplicate.get_data(as_text=True)
    with app.app_context():
        pat = db.session.scalar(select(User).where(User.username == "peer.mentor"))
        assert pat.role is Role.REPORTER and pat.must_change_password is False
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.actor_id == admin_id)).all()
    assert "user.create" in actions
    client.post(f"/admin/users/{pat.id}", data={"display_name": "Pat", "role": "facilitator",
                                                "enabled": "y", "site": "0"})
    with app.app_context():
        assert db.session.get(User, pat.id).role is Role.FACILITATOR
    assert b"user.update" in client.get("/admin/audit").data


def test_last_admin_cannot_lock_everyone_out(app, client, auth):
    admin_id = auth.login_as(Role.ADMIN)
    response = client.post(f"/admin/users/{admin_id}",
                           data={"display_name": "Me", "role": "staff", "enabled": "y",
                                 "site": "0"},
                           follow_redirects=True)
    assert "cannot disable yourself or remove your own admin role" in response.get_data(
        as_text=True)
    with app.app_context():
        assert db.session.get(User, admin_id).role is Role.ADMIN


def test_next_parameter_cannot_leave_the_site(client, make_user):
    make_user(Role.STAFF, username="sam")
    response = client.post("/login?next=//evil.example/", data={"username": "sam",
                                                               "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_security_headers(client):
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


class TestWithCsrf:
    @pytest.fixture
    def config_overrides(self):
        return {"WTF_CSRF_ENABLED": True, "SESSION_COOKIE_SECURE": True}

    def test_post_without_token_is_refused(self, client, make_user):
        make_user(Role.REPORTER, username="rita")
        response = client.post("/login", data={"username": "rita", "password": PASSWORD})
        assert response.status_code == 400
        assert client.get("/").status_code == 302

    def test_post_with_token_signs_in_and_cookie_is_secure(self, client, make_user):
        import re

        make_user(Role.REPORTER, username="rita")
        page = client.get("/login", base_url="https://localhost")
        cookie = page.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                          page.get_data(as_text=True)).group(1)
        response = client.post("/login", base_url="https://localhost",
                               headers={"Referer": "https://localhost/login"},
                               data={"username": "rita", "password": PASSWORD,
                                     "csrf_token": token})
        assert response.status_code == 302


def test_admin_adds_site_and_assigns_reporter(app, client, auth, make_user):
    from storyhub.accounts.models import Site

    rita = make_user(Role.REPORTER, username="rita")
    auth.login_as(Role.ADMIN)
    response = client.post("/admin/sites", data={"name": "Leeds  Office"}, follow_redirects=True)
    assert "Site “Leeds Office” added" in response.get_data(as_text=True)
    again = client.post("/admin/sites", data={"name": "leeds office"})
    assert "There is already a site called" in again.get_data(as_text=True)
    with app.app_context():
        site_id = db.session.scalar(select(Site.id))
    client.post(f"/admin/users/{rita}", data={"display_name": "Rita", "role": "reporter",
                                              "enabled": "y", "site": str(site_id)})
    with app.app_context():
        assert db.session.get(User, rita).site_id == site_id
    assert "Leeds Office" in client.get("/admin/users").get_data(as_text=True)
