"""An attacker's probes over HTTP: numbers too large, negative or not numbers in every parameter
of every route, as each role. None may be a server error (a 500): a 400 or a clamped answer.

The parameter names are read from the code (views, forms and templates of each blueprint), so a
parameter added later is probed too, without this file knowing of it.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.packs import service as packs
from storyhub.packs.models import Workshop
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.slow

PACKAGE = Path(__file__).resolve().parents[2] / "storyhub"
BAD_NUMBERS = ["99999999999999999999", "-99999999999999999999", "1e999"]
# Routes whose POST changes something for good: probed with GET only where they have one.
LAST_WORD = re.compile(r"/(delete|erase|withdraw|logout)$")


@pytest.fixture
def prepared(themed_instance):
    return themed_instance


def _names_in(folder: Path) -> tuple[set[str], set[str]]:
    """Every request parameter a blueprint's code or pages name, and those it reads as numbers
    (each of those is probed on its own; the rest all at once)."""
    found: set[str] = set()
    numeric: set[str] = set()
    for path in folder.rglob("*"):
        if path.suffix not in {".py", ".html"}:
            continue
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'name="(\w+)"', text))
        found |= set(re.findall(r'\.(?:get|getlist)\(\s*"(\w+)"', text))
        found |= set(re.findall(r"^\s+(\w+) = \w*Field\(", text, re.MULTILINE))
        numeric |= set(re.findall(r'(?:number_arg|_int)\(\s*"(\w+)"', text))
        numeric |= set(re.findall(r'db_id\([^)]*?"(\w+)"', text))
        numeric |= set(re.findall(r'\.get\(\s*"(\w+)"[^)]*type=int', text))
        numeric |= set(re.findall(r'getlist\(\s*"(\w+)"', text))
        numeric |= set(re.findall(r"^\s+(\w+) = \w*Field\([^)]*coerce=", text, re.MULTILINE))
    return found - {"csrf_token", "viewport"} | numeric, numeric


def _path_values(app) -> dict[str, str]:
    with app.app_context():
        workshop = db.session.scalar(select(Workshop))
        theme = workshop.themes[0]
        return {"workshop_id": str(workshop.id), "theme_id": str(theme.id),
                "quote_id": str(theme.quotes[0].id), "version": "1", "fmt": "md",
                "verb": "move", "code": "LS-NONE", "filename": "css/app.css"}


def _url(rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), "1"), rule.rule)


def _reaching(clients: dict, method: str, url: str):
    """The first role whose request gets past sign-in and role checks, or None."""
    for role, client in clients.items():
        response = client.get(url) if method == "GET" else client.post(url, data={})
        response.close()
        if response.status_code not in (401, 403) and "/login" not in response.headers.get(
                "Location", ""):
            return role
    return None


def test_no_parameter_of_any_route_makes_a_server_error(app, make_user, data_for_probes,
                                                        caplog):
    names = {folder.name: _names_in(folder) for folder in PACKAGE.iterdir() if folder.is_dir()}
    common = _names_in(PACKAGE / "templates")
    values = data_for_probes
    clients = {}
    for role in (Role.FACILITATOR, Role.REPORTER, Role.ADMIN, Role.STAFF):
        client = app.test_client()
        username = f"probe-{role.value}"
        make_user(role, username=username, all_sites=role is Role.REPORTER)
        assert client.post("/login", data={"username": username,
                                           "password": PASSWORD}).status_code == 302
        clients[role] = client
    failures = []
    probed = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static") or rule.endpoint == "themes.plotly_js":
            continue  # files, no parameters
        every, numeric = names.get(rule.endpoint.split(".")[0], (set(), set()))
        every, numeric = every | common[0] | {"page"}, numeric | common[1] | {"page"}
        url = _url(rule, values)
        for method in sorted(rule.methods & {"GET", "POST"}):
            if method == "POST" and LAST_WORD.search(rule.rule):
                continue
            role = _reaching(clients, method, url)
            if role is None:
                continue
            client = clients[role]
            send = client.get if method == "GET" else client.post
            probes = [{name: bad} for name in sorted(numeric) for bad in BAD_NUMBERS[:1]]
            probes += [dict.fromkeys(every, bad) for bad in BAD_NUMBERS]  # as a scanner sends
            for fields in probes:
                bad = next(iter(fields.values()))
                what = f"{role.value} {method} {url} {sorted(fields)[:4]}={bad}"
                sent = {"query_string": fields} if method == "GET" else {"data": fields}
                probed += 1
                failures += _failure(what, lambda: send(url, **sent))  # noqa: B023
    # Seen by hand: a search's page number past any integer.
    for url in ("/library/?q=x&how=words&page=", "/library/stories.json?q=x&how=words&page=",
                "/library/?page=", "/admin/audit?page="):
        for bad in BAD_NUMBERS:
            for client in (clients[Role.STAFF], clients[Role.ADMIN]):
                failures += _failure(f"GET {url}{bad}", lambda: client.get(url + bad))  # noqa: B023
    assert probed > 200
    assert not failures, "\n".join(failures[:40])
    caught = [r.getMessage() for r in caplog.records if "out of range reached" in r.getMessage()]
    assert not caught, "numbers reached the database unchecked:\n" + "\n".join(caught[:40])


def _failure(what: str, request) -> list[str]:
    """Send one probe; return what went wrong (a 5xx, or an error the app let through)."""
    try:
        response = request()
    except Exception as exc:  # noqa: BLE001 - TESTING lets the app's errors through
        return [f"{what}: {type(exc).__name__}: {str(exc)[:80]}"]
    response.close()
    return [f"{what}: {response.status_code}"] if response.status_code >= 500 else []


@pytest.fixture
def data_for_probes(app, themed_instance) -> dict[str, str]:
    """A workshop with a generated pack in the themed instance, for routes that need one."""
    data = themed_instance.data
    with app.app_context():
        workshop = packs.create_workshop(data["run"], data["facilitator"], "Probe workshop",
                                         held_on=date(2026, 12, 10))
        db.session.commit()
        packs.generate_pack(workshop.id, data["facilitator"])
        db.session.commit()
    return _path_values(app)
