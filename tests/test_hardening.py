"""Hardening: sign-in limits behind a proxy, password policy, storyteller codes per site,
bounded upload work, logs that survive start-up, private files, small request checks."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from storyhub.accounts import limits
from storyhub.accounts.models import Role
from storyhub.audit import AuditEvent
from storyhub.extensions import db

from .conftest import PASSWORD

WRONG = "not the password"


def _login(client, username, password=WRONG, address="10.0.0.1", headers=None, **fields):
    return client.post("/login", data={"username": username, "password": password, **fields},
                       environ_base={"REMOTE_ADDR": address}, headers=headers or {})


class FakeClock:
    """The edge of the world: time that moves only when the test says so."""

    def __init__(self, start: float = 2_000_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limits, "clock", fake)
    return fake


# --- Sign-in limits --------------------------------------------------------------------

def _csrf_token(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("config_overrides", [{"WTF_CSRF_ENABLED": True}])
def test_failures_from_one_address_do_not_lock_out_an_innocent_user(app, make_user):
    make_user(Role.REPORTER, username="rita")
    make_user(Role.REPORTER, username="victim")
    attacker, innocent = app.test_client(), app.test_client()
    # Requests refused for a missing CSRF token are not password checks and do not count.
    for _ in range(30):
        assert _login(attacker, "victim").status_code == 400
    token = _csrf_token(attacker)
    for name in ["victim"] * 6 + [f"guess{n}" for n in range(5)]:
        assert _login(attacker, name, csrf_token=token).status_code in (401, 429)
    response = _login(innocent, "rita", PASSWORD, csrf_token=_csrf_token(innocent))
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT": "3 per 15 minutes"}])
def test_address_limit_spares_browsers_that_signed_in_before(app, make_user):
    make_user(Role.REPORTER, username="rita")
    ritas_browser, attacker, newcomer = app.test_client(), app.test_client(), app.test_client()
    assert _login(ritas_browser, "rita", PASSWORD).status_code == 302
    ritas_browser.post("/logout")
    for n in range(3):
        assert _login(attacker, f"guess{n}").status_code == 401
    refused = _login(newcomer, "someone")
    assert refused.status_code == 429
    assert "too many failed sign-ins from your network" in refused.get_data(as_text=True)
    assert _login(ritas_browser, "rita", PASSWORD).status_code == 302


def test_wrong_passwords_for_one_account_wait_longer_each_time(app, client, make_user, clock):
    make_user(Role.REPORTER, username="rita")
    owners_browser = app.test_client()
    assert _login(owners_browser, "rita", PASSWORD, address="10.9.9.9").status_code == 302
    owners_browser.post("/logout")
    # Thirty addresses, one account: five checks, then a doubling wait, whatever the address.
    answers = [_login(client, "rita", address=f"10.1.0.{n}").status_code for n in range(30)]
    assert answers == [401] * 5 + [429] * 25
    for wait in (30, 60, 120, 240):
        clock.now += wait - 1
        refused = _login(client, "rita", PASSWORD, address="10.2.0.1")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        clock.now += 1
        assert _login(client, "rita", address="10.2.0.2").status_code == 401
    # The owner's own browser is not held up by the guesses made elsewhere.
    assert _login(owners_browser, "rita", PASSWORD, address="10.9.9.9").status_code == 302
    owners_browser.post("/logout")
    # After the wait a right password gets in and clears the count.
    clock.now += 480
    assert _login(client, "rita", PASSWORD, address="10.2.0.3").status_code == 302
    client.post("/logout")
    assert _login(client, "rita", address="10.2.0.4").status_code == 401


def test_the_wait_never_grows_past_its_ceiling(app):
    rule = limits.Rule(free=5, window=86400, delay=30, max_delay=900)
    assert [rule.wait_after(n) for n in (4, 5, 6, 9, 10, 400)] == [0, 30, 60, 480, 900, 900]


@pytest.mark.parametrize("config_overrides", [{"TRUSTED_PROXIES": 1,
                                               "LOGIN_RATE_LIMIT": "2 per 15 minutes"}])
def test_proxy_address_is_used_with_a_trusted_proxy(app, make_user):
    make_user(Role.REPORTER, username="rita")
    for n in range(2):
        _login(app.test_client(), f"guess{n}", headers={"X-Forwarded-For": "203.0.113.7"})
    assert _login(app.test_client(), "other", headers={"X-Forwarded-For": "203.0.113.7"}
                  ).status_code == 429
    # Another person behind the same proxy is someone else.
    response = _login(app.test_client(), "rita", PASSWORD,
                      headers={"X-Forwarded-For": "198.51.100.4"})
    assert response.status_code == 302
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "login"))
        assert event.ip == "198.51.100.4"


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT": "2 per 15 minutes"}])
def test_forwarded_address_is_ignored_without_trusted_proxies(app, make_user):
    make_user(Role.REPORTER, username="rita")
    # Without a trusted proxy a client cannot pick a fresh address for each guess.
    for n in range(2):
        _login(app.test_client(), f"guess{n}", headers={"X-Forwarded-For": f"203.0.113.{n}"})
    assert _login(app.test_client(), "other", headers={"X-Forwarded-For": "203.0.113.99"}
                  ).status_code == 429
    response = _login(app.test_client(), "rita", PASSWORD, address="10.5.5.5",
                      headers={"X-Forwarded-For": "198.51.100.4"})
    assert response.status_code == 302
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "login"))
        assert event.ip == "10.5.5.5"


def _at_once(app, count, request):
    """Send `count` sign-ins at the same moment, each from its own client; their statuses."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def one(n):
        client = app.test_client()
        barrier.wait()
        statuses.append(request(client, n).status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


@pytest.mark.parametrize("config_overrides", [{"LOGIN_RATE_LIMIT": "10 per 15 minutes"}])
def test_forty_concurrent_wrong_passwords_check_no_more_than_the_limits(app, make_user):
    make_user(Role.REPORTER, username="rita")
    # One account from forty addresses: at most the account's five free checks.
    statuses = _at_once(app, 40, lambda c, n: _login(c, "rita", address=f"10.3.0.{n}"))
    assert len(statuses) == 40 and set(statuses) <= {401, 429}
    assert 1 <= statuses.count(401) <= 5
    # Forty accounts from one address: at most the address's ten.
    statuses = _at_once(app, 40, lambda c, n: _login(c, f"guess{n}", address="10.4.0.1"))
    assert len(statuses) == 40 and set(statuses) <= {401, 429}
    assert 1 <= statuses.count(401) <= 10


def test_current_password_on_the_change_page_is_limited(app, client, auth):
    auth.login_as(Role.REPORTER, username="rita")

    def change(current):
        return client.post("/account/password", data={
            "current_password": current, "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase"})

    for _ in range(5):
        response = change(WRONG)
        assert response.status_code == 200
        assert "That is not your current password." in response.get_data(as_text=True)
    refused = change(PASSWORD)
    assert refused.status_code == 429
    assert "wrong current password too many times" in refused.get_data(as_text=True)


# --- Password policy --------------------------------------------------------------------

# (password, what the refusal must say); the username is "rita", the name "Rita Jones".
WEAK = [
    ("aaaaaaaaaa", "one character or a short pattern repeated"),
    ("1234567890", "keys or letters in order"),
    ("qwertyuiop", "keys or letters in order"),
    ("1q2w3e4r5t", "keys or letters in order"),
    ("password12", "a common password"),
    ("P@ssw0rd2024", "a common password"),
    ("Liverpool123!", "a common password"),
    ("rita", "at least 10 characters"),
    ("rita123456", "your username or name"),
    ("ritajones1", "too close to your username or name"),
]
STRONG = [PASSWORD, "a brand new passphrase", "Tr0ub4dor&3", "my dog likes long walks"]


@pytest.mark.parametrize(("password", "why"), WEAK)
def test_easily_guessed_passwords_are_refused_saying_why(password, why):
    from storyhub.accounts.passwords import weakness

    assert why in (weakness(password, "rita", "Rita Jones") or "")


@pytest.mark.parametrize("password", STRONG)
def test_passphrases_are_accepted(password):
    from storyhub.accounts.passwords import weakness

    assert weakness(password, "rita", "Rita Jones") is None


def test_common_password_list_ships_with_the_app():
    from storyhub.accounts.passwords import common_passwords

    listed = common_passwords()
    assert len(listed) > 1000 and {"123456", "password", "qwerty", "iloveyou"} <= listed


def test_weak_passwords_are_refused_wherever_passwords_are_set(app, client, auth, runner):
    admin_id = auth.login_as(Role.ADMIN, username="ada")
    new_user = client.post("/admin/users/new", data={
        "username": "newbie", "display_name": "New Person", "role": "reporter", "site": "0",
        "new_password": "qwertyuiop", "confirm": "qwertyuiop"})
    assert "keys or letters in order" in new_user.get_data(as_text=True)
    changed = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": "password12", "confirm": "password12"})
    assert "a common password" in changed.get_data(as_text=True)
    reset = client.post(f"/admin/users/{admin_id}/password", data={
        "new_password": "ada1234567", "confirm": "ada1234567"}, follow_redirects=True)
    assert "your username or name" in reset.get_data(as_text=True)
    result = runner.invoke(args=["create-user", "carl", "--role", "staff", "--password-stdin"],
                           input="aaaaaaaaaa\n")
    assert result.exit_code != 0 and "one character or a short pattern repeated" in \
        result.output
    from storyhub.accounts.models import User

    with app.app_context():
        assert {u.username for u in db.session.scalars(select(User))} == {"ada"}
