"""Hardening: sign-in limits behind a proxy, password policy, storyteller codes per site,
bounded upload work, logs that survive start-up, private files, small request checks."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role
from storyhub.audit import AuditEvent
from storyhub.extensions import db
from tests.support.factories import PASSWORD

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
    from storyhub.accounts import limits

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


def test_the_wait_never_grows_past_its_ceiling():
    from storyhub.accounts import limits

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


@pytest.mark.slow  # about 3 s: up to fifteen real password checks
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


# --- Storyteller codes belong to their site ---------------------------------------------

def _signed_in(app, username):
    client = app.test_client()
    assert _login(client, username, PASSWORD, address="127.0.0.1").status_code == 302
    return client


def test_a_code_from_another_site_is_refused_like_an_unknown_one(app, make_user, tmp_path):
    from storyhub.accounts import service as accounts
    from storyhub.stories.models import Story, Storyteller
    from tests.support import audio_fixtures as af
    from tests.support.uploads import assert_refused, story_id_from, upload

    with app.app_context():
        site_a, site_b = (accounts.create_site(name, None).id for name in ("North", "South"))
        db.session.commit()
    make_user(Role.REPORTER, username="anna", site_id=site_a)
    make_user(Role.REPORTER, username="ben", site_id=site_b)
    anna, ben = _signed_in(app, "anna"), _signed_in(app, "ben")
    first = story_id_from(upload(anna, af.sine_wav(tmp_path / "a.wav", 1.0), site=str(site_a),
                                 real_name="Jane Realname", store_real_name="y"))
    with app.app_context():
        code = db.session.get(Story, first).storyteller.code
    answers = [upload(ben, af.sine_wav(tmp_path / f"b{n}.wav", 1.5 + n), site=str(site_b),
                      storyteller_code=given, real_name="Someone Else", store_real_name="y")
               for n, given in enumerate((code, "ST-ZZZZZZ"))]
    for answer in answers:
        assert_refused(answer, 422, "No storyteller with that code has told a story at this "
                                    "site.")
    # The same page, but for the code typed back into the form and the CSRF token, whose
    # signature carries the second it was made.
    pages = [re.sub(r'name="csrf[_-]token" (value|content)="[^"]*"', "TOKEN",
                    a.get_data(as_text=True).replace(given, "CODE"))
             for a, given in zip(answers, (code, "ST-ZZZZZZ"), strict=True)]
    assert pages[0] == pages[1]
    # The storyteller's own site can add to their stories.
    again = story_id_from(upload(anna, af.sine_wav(tmp_path / "a2.wav", 2.5), site=str(site_a),
                                 storyteller_code=code.lower()))
    with app.app_context():
        assert db.session.scalar(select(Story.site_id).where(Story.id == again)) == site_a
        teller = db.session.scalar(select(Storyteller).where(Storyteller.code == code))
        assert teller.site_id == site_a and teller.identity.real_name == "Jane Realname"
        assert [s.id for s in db.session.scalars(select(Story).order_by(Story.id))] == \
            [first, again]


# --- Upload work bounded before decoding ------------------------------------------------

def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def silent_flac(path, seconds: float, rate: int, channels: int, declare: bool = True):
    """Write a real FLAC of digital silence, frame by frame (sox or PyAV take 10 s to encode
    the 1.8 billion samples of the 10-minute case; this takes a fraction of one).

    `declare=False` leaves the length out of the header, as a streamed FLAC may.
    """
    import struct

    block, total = 65535, int(seconds * rate)
    info = struct.pack(">HH", block, block) + b"\0" * 6
    packed = (rate << 44) | ((channels - 1) << 41) | (15 << 36) | (total if declare else 0)
    info += packed.to_bytes(8, "big") + b"\0" * 16  # 16-bit samples; no MD5
    out = bytearray(b"fLaC\x80" + len(info).to_bytes(3, "big") + info)
    subframes = b"\0\0\0" * channels  # each channel one CONSTANT subframe of 0
    number = done = 0
    while done < total:
        size = min(block, total - done)
        head = bytes([0xFF, 0xF8, 0x70, ((channels - 1) << 4) | 0x08]) + chr(number).encode() \
            + struct.pack(">H", size - 1)
        frame = head + bytes([_crc8(head)]) + subframes
        out += frame + struct.pack(">H", _crc16(frame))
        number, done = number + 1, done + size
    path.write_bytes(bytes(out))
    return path


def test_the_silence_bomb_is_what_it_claims(tmp_path):
    import av

    bomb = silent_flac(tmp_path / "bomb.flac", 600, 384_000, 8)
    assert bomb.stat().st_size < 253 * 1024
    with av.open(str(bomb)) as container:
        stream = container.streams.audio[0]
        assert container.duration / av.time_base == 600
        assert (stream.codec_context.channels, stream.codec_context.sample_rate) == (8, 384_000)
        frame = next(container.decode(stream))
        assert frame.samples == 65535 and not frame.to_ndarray().any()


@pytest.mark.parametrize(("seconds", "rate", "channels", "declare", "why"), [
    pytest.param(600, 384_000, 8, True, "unusual shape (8 channels at 384000 Hz)",
                 id="10-min-384kHz-8ch"),
    pytest.param(600, 48_000, 2, True, "far more than a real recording", id="stereo-header"),
    pytest.param(20 * 60, 48_000, 2, False, "far more than a real recording",
                 id="stereo-no-length"),
])
def test_decode_amplification_is_refused_and_nothing_stored(app, auth, client, tmp_path,
                                                           seconds, rate, channels, declare,
                                                           why):
    from tests.support.uploads import assert_nothing_stored, assert_refused, upload

    bomb = silent_flac(tmp_path / "bomb.flac", seconds, rate, channels, declare)
    auth.login_as(Role.REPORTER)
    assert_refused(upload(client, bomb, recorder=True), 422, why)
    assert_nothing_stored(app)


# --- Logs that survive start-up ---------------------------------------------------------

def test_app_loggers_stay_alive_after_the_schema_upgrade(app, client, make_user, tmp_path):
    import logging

    from storyhub import logs
    from storyhub.database import upgrade_schema

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        # As `storyhub run` does: configure logging, then upgrade the schema through Alembic.
        path = logs.configure(str(tmp_path / "run-instance"), console_level=logging.CRITICAL)
        upgrade_schema(app)
        names = [name for name, logger in logging.root.manager.loggerDict.items()
                 if isinstance(logger, logging.Logger)
                 and name.startswith(("storyhub", "flask-limiter", "flask_limiter"))]
        assert len(names) > 10
        assert [name for name in names if logging.getLogger(name).disabled] == []
        make_user(Role.REPORTER, username="rita")
        for n in range(6):
            _login(client, "rita", f"guess number {n}")
        text = path.read_text()
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "[storyhub.database] Database schema is up to date" in text
    assert "[storyhub.accounts.service] Sign-in failed: wrong password for user" in text
    assert "[storyhub.accounts.limits] Sign-in refused" in text
    # Nothing a person typed: no username, no password.
    assert "rita" not in text and "guess number" not in text


# --- Private files ------------------------------------------------------------------------

def test_an_existing_instance_folder_and_database_are_made_private(tmp_path, monkeypatch):
    import os
    import sqlite3
    import stat

    from sqlalchemy import text

    from storyhub import create_app

    instance = tmp_path / "instance"
    for folder in (instance, instance / "storage", instance / "broker"):
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o755)  # noqa: S103 - the loose mode this test tightens
    database = instance / "storyhub.sqlite"
    sqlite3.connect(database).close()
    os.chmod(database, 0o644)
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(instance))
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "BROKER_URL": ""})
    with app.app_context():
        db.session.execute(text("CREATE TABLE probe (x INTEGER)"))  # a write, in WAL mode
        db.session.commit()
        modes = {path.name: stat.S_IMODE(path.stat().st_mode)
                 for path in (instance, instance / "storage", instance / "storage" / "tmp",
                              instance / "broker", database,
                              instance / "storyhub.sqlite-wal", instance / "storyhub.sqlite-shm")}
        db.engine.dispose()
    assert modes == {"instance": 0o700, "storage": 0o700, "tmp": 0o700, "broker": 0o700,
                     "storyhub.sqlite": 0o600, "storyhub.sqlite-wal": 0o600,
                     "storyhub.sqlite-shm": 0o600}


def test_a_new_database_file_is_private_from_the_start(tmp_path, monkeypatch):
    import stat

    from storyhub import create_app

    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(tmp_path / "fresh"))
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "BROKER_URL": ""})
    with app.app_context():
        db.engine.dispose()
    assert stat.S_IMODE((tmp_path / "fresh" / "storyhub.sqlite").stat().st_mode) == 0o600


# --- Small things -------------------------------------------------------------------------

@pytest.fixture
def story_id(app, auth, client, tmp_path) -> int:
    from tests.support import audio_fixtures as af
    from tests.support.uploads import story_id_from, upload

    auth.login_as(Role.ADMIN)
    return story_id_from(upload(client, af.sine_wav(tmp_path / "s.wav", 1.0)))


@pytest.mark.parametrize("query", ["low=abc", "low=nan", "low=1e999"])
def test_a_number_parameter_that_is_not_a_number_is_a_400(client, story_id, query):
    response = client.get(f"/stories/{story_id}/transcript?{query}")
    assert response.status_code == 400
    assert "“low” must be a number." in response.get_data(as_text=True)
    assert client.get("/admin/audit?page=abc").status_code == 400
    assert client.get("/admin/audit?story=99999999999999999999").status_code == 400
    assert client.get("/admin/audit?page=999999999999").status_code == 200
    assert client.get("/stories/99999999999999999999").status_code == 404


def test_personal_data_is_never_cached(client, story_id):
    for url in (f"/stories/{story_id}/status", f"/stories/{story_id}", "/admin/audit.csv",
                "/stories/", "/login", "/stories/99999"):
        response = client.get(url)
        assert response.status_code in (200, 302, 404), url
        assert response.headers["Cache-Control"] == "no-store", url
    assert client.get(f"/stories/{story_id}/status").is_json
    with client.get("/static/favicon.svg") as static:
        assert "no-store" not in static.headers.get("Cache-Control", "")


def test_a_refusal_from_the_service_layer_is_a_403_not_a_logged_500(app, make_user, story_id,
                                                                   caplog):
    from storyhub.accounts import service as accounts
    from storyhub.stories.models import Story

    with app.app_context():
        other = accounts.create_site("Elsewhere", None).id
        db.session.get(Story, story_id).site_id = accounts.create_site("Here", None).id
        db.session.commit()
    make_user(Role.REPORTER, username="rory", site_id=other)
    rory = app.test_client()
    assert _login(rory, "rory", PASSWORD, address="127.0.0.1").status_code == 302
    response = rory.get(f"/stories/{story_id}/status")
    assert response.status_code == 403 and response.get_json()["error"]
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


def test_no_service_raises_a_builtin_permission_error():
    """PermissionError is an OSError (a disk problem, a 500); refusals raise AccessDenied."""
    import ast
    from pathlib import Path

    import storyhub

    found = []
    for path in Path(storyhub.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name) and target.id == "PermissionError":
                    found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_audit_csv_cells_never_start_a_spreadsheet_formula(app, client, auth):
    import csv
    import io


    auth.login_as(Role.ADMIN)
    payloads = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A9)",
                "\tTAB", "\rCR", "safe text"]
    with app.app_context():
        for text in payloads:
            db.session.add(AuditEvent(action="probe.csv", detail=text, ip=text,
                                      target_type=text))
        db.session.commit()
    response = client.get("/admin/audit.csv?action=probe.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["when_utc", "who", "action", "target_type", "target_id", "detail", "ip"]
    cells = [cell for row in rows[1:] for cell in row]
    assert len(rows) == len(payloads) + 1
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    for text in payloads:  # each is still there to read, as text
        shown = text if text == "safe text" else "'" + text
        assert sum(row[5] == shown for row in rows[1:]) == 1
