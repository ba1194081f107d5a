"""Every route, every role: anonymous users go to sign-in, the wrong role gets 403."""

from __future__ import annotations

import pytest
from flask import Flask

from storyhub.accounts.models import Role

# Who may reach each page, written out here (not read from the code under test), so that a
# changed decorator shows up as a failing test. A new route fails the test until it is listed.
A, F, R, S = Role.ADMIN, Role.FACILITATOR, Role.REPORTER, Role.STAFF
EVERYONE = {A, F, R, S}
STORY_WORKERS = {A, F, R}  # those who gather stories and check transcripts
THEME_WORKERS = {A, F}  # those who shape themes
LIBRARY_READERS = {A, F, S}  # the staff library: staff, and those who curate or oversee it
EXPECTED_ACCESS: dict[str, set[Role]] = {
    "accounts.change_password": EVERYONE,
    "accounts.logout": EVERYONE,
    "home.index": EVERYONE,
    "admin.audit_log": {A},
    "admin.audit_csv": {A},
    "admin.edit_user": {A},
    "admin.new_user": {A},
    "admin.reset_password": {A},
    "admin.sites": {A},
    "admin.site_terms": {A},
    "admin.users": {A},
    "stories.audio": STORY_WORKERS,
    "stories.index": STORY_WORKERS,
    "stories.new": STORY_WORKERS,
    "stories.show": STORY_WORKERS,
    "stories.consent": STORY_WORKERS,
    "stories.withdraw_consent": STORY_WORKERS,
    "stories.rename": STORY_WORKERS,
    "transcripts.edit_segment": STORY_WORKERS,
    "transcripts.confirm_words": STORY_WORKERS,
    "transcripts.correct_word": STORY_WORKERS,
    "transcripts.editor": STORY_WORKERS,
    "transcripts.export": STORY_WORKERS,
    "transcripts.review": STORY_WORKERS,
    "redaction.redactions": STORY_WORKERS,
    "redaction.redact_phrase": STORY_WORKERS,
    "redaction.unredact": STORY_WORKERS,
    "transcripts.speakers": STORY_WORKERS,
    "transcripts.status": STORY_WORKERS,
    "transcripts.transcribe": STORY_WORKERS,
    "themes.hide": THEME_WORKERS,
    "themes.index": THEME_WORKERS,
    "themes.map_data": THEME_WORKERS,
    "themes.merge": THEME_WORKERS,
    "themes.move": THEME_WORKERS,
    "themes.pin": THEME_WORKERS,
    "themes.plotly_js": THEME_WORKERS,
    "themes.rename": THEME_WORKERS,
    "themes.retry": THEME_WORKERS,
    "themes.run": THEME_WORKERS,
    "themes.split": THEME_WORKERS,
    "themes.start": THEME_WORKERS,
    "themes.status": THEME_WORKERS,
    "themes.theme": THEME_WORKERS,
    "themes.theme_board": THEME_WORKERS,
    "themes.theme_map": THEME_WORKERS,
    "themes.undo": THEME_WORKERS,
    "themes.workshop_clip": THEME_WORKERS,
    "library.index": LIBRARY_READERS,
    "library.index_json": LIBRARY_READERS,
    "library.show": LIBRARY_READERS,
    "library.audio": LIBRARY_READERS,
    "library.curate": {F},
    "library.publish_themes": THEME_WORKERS,
    "packs.index": THEME_WORKERS,
    "packs.new": THEME_WORKERS,
    "packs.show": THEME_WORKERS,
    "packs.details": THEME_WORKERS,
    "packs.move_theme": THEME_WORKERS,
    "packs.remove_theme": THEME_WORKERS,
    "packs.add_theme": THEME_WORKERS,
    "packs.edit_theme": THEME_WORKERS,
    "packs.quotes": THEME_WORKERS,
    "packs.choose_quote": THEME_WORKERS,
    "packs.quote_action": THEME_WORKERS,
    "packs.generate": THEME_WORKERS,
    "packs.download": THEME_WORKERS,
    "packs.add_action": THEME_WORKERS,
    "packs.edit_action": THEME_WORKERS,
    "packs.action_board": THEME_WORKERS,
    "packs.delete": THEME_WORKERS,
    "packs.feedback": LIBRARY_READERS,  # "You said, we did" goes back to staff too
    "evaluation.index": THEME_WORKERS,
    "evaluation.download": THEME_WORKERS,
    "stories.erase": {A},
    "stories.subject_access_export": {A},
}
# Routes anyone may reach: signing in, first-run set-up (needs a secret token), health, assets.
PUBLIC_ENDPOINTS = {"static", "accounts.login", "accounts.first_admin", "home.health"}


def _guarded_routes(app: Flask):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        assert rule.endpoint in EXPECTED_ACCESS, (
            f"{rule.endpoint} ({rule.rule}) is not in EXPECTED_ACCESS: say who may reach it")
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "1")
        yield rule.endpoint, method, url, EXPECTED_ACCESS[rule.endpoint]


def test_every_route_has_an_expected_access_rule(app):
    endpoints = {endpoint for endpoint, *_ in _guarded_routes(app)}
    assert endpoints == set(EXPECTED_ACCESS), "the table lists a route that no longer exists"


def test_anonymous_users_are_sent_to_sign_in(app, client):
    for endpoint, method, url, _roles in _guarded_routes(app):
        response = client.open(url, method=method)
        assert response.status_code == 302, f"{endpoint} {method} {url}"
        assert "/login" in response.headers["Location"], endpoint


@pytest.mark.parametrize("role", list(Role))
def test_roles_reach_only_their_routes(app, client, auth, make_user, role):
    make_user(Role.ADMIN, username="someone")  # gives id-based routes something to find
    auth.login_as(role)
    for endpoint, method, url, roles in _guarded_routes(app):
        if endpoint == "accounts.logout":
            continue  # would end this test's session
        response = client.open(url, method=method)
        response.close()  # file responses (audio, vendored JS) hold their file open
        if role in roles:
            assert response.status_code != 403, f"{role} should reach {endpoint} {url}"
            assert "/login" not in response.headers.get("Location", ""), endpoint
        else:
            assert response.status_code == 403, f"{role} must not reach {endpoint} {url}"
            assert b"You do not have access to this page" in response.data


def test_first_admin_setup_link_works_once(app, client, runner):
    from storyhub.accounts import setup

    assert client.get("/setup?token=guess").status_code == 404
    token = setup.issue_token(app.instance_path)
    assert client.get("/setup?token=wrong").status_code == 404
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 200
    response = client.post(f"/setup?token={token}", data={
        "display_name": "Ada Admin", "username": "ada", "new_password": "a long passphrase",
        "confirm": "a long passphrase"})
    assert response.status_code == 302
    assert client.get("/admin/users").status_code == 200
    # The link is spent: a second visitor cannot make another admin.
    assert app.test_client().get(f"/setup?token={token}").status_code == 404


def test_menu_marks_only_the_current_page(client, auth):
    auth.login_as(Role.REPORTER)
    page = client.get("/stories/new").get_data(as_text=True)
    assert page.count('aria-current="page"') == 1
    assert 'href="/stories/new" aria-current="page"' in page
    listing = client.get("/stories/").get_data(as_text=True)
    assert 'href="/stories/" aria-current="page"' in listing
