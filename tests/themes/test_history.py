"""Theme edits are safe: a merge asks first, every edit can be undone exactly, staff see only
what a facilitator published, and each theme's badge names everyone who told its stories.

Starts from the prepared themed instance (the twelve corpus stories, one finished run by the
real model). Its themes can differ a little between CPUs, so the tests take whatever themes it
found and assert what the facilitator and staff see, never a particular grouping.
"""

from __future__ import annotations

import html
import re
from collections import Counter

import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.audit import AuditEvent
from storyhub.extensions import db
from storyhub.library import service as library
from storyhub.packs import service as packs
from storyhub.packs.models import WorkshopTheme
from storyhub.stories import service as stories
from storyhub.stories.models import Story, StorytellerRole
from storyhub.themes.models import Theme, ThemeEdit, ThemePassage, ThemeRun
from storyhub.themes.reading import ThemeView

pytestmark = pytest.mark.slow

P, S, M = (StorytellerRole.PERSON_ON_PROBATION, StorytellerRole.STAFF,
           StorytellerRole.PEER_MENTOR)
F, A = StorytellerRole.FAMILY, StorytellerRole.PARTNER_AGENCY

# (stories by role, the badge)
BADGES = [
    ({P: 3}, "Only people on probation"),
    ({S: 2}, "Only staff"),
    ({M: 1}, "Only peer mentors"),
    ({P: 1, M: 3}, "Told by peer mentors and people on probation"),  # the theme
    ({P: 2, M: 2}, "Told by people on probation and peer mentors"),
    ({S: 1, P: 2}, "Shared by staff and people on probation"),
    ({P: 3, S: 1, M: 2}, "Shared by staff, people on probation and peer mentors"),
    ({F: 1, A: 2}, "Told by partner agencies and family members"),
    ({}, "No stories"),
]


@pytest.mark.no_database
@pytest.mark.parametrize(("stories_by_role", "badge"), BADGES)
def test_a_badge_names_every_storyteller_role(stories_by_role, badge):
    view = ThemeView(Theme(label="A theme"))
    first = 1
    for role, count in stories_by_role.items():
        view.stories_by_role[role] = set(range(first, first + count))
        first += count
    assert view.shared_label == badge


@pytest.fixture
def prepared(themed_instance):
    return themed_instance


@pytest.fixture
def data(themed_instance) -> dict:
    return themed_instance.data


def run_state(run_id: int) -> dict:
    """Everything an undo must put back: each theme's fields and every passage's place."""
    db.session.expire_all()
    themes = {t.id: (t.number, t.position, t.label, t.auto_label, t.description,
                     list(t.keywords), t.hidden, t.edited, list(t.merged_from), t.split_of)
              for t in db.session.scalars(select(Theme).where(Theme.run_id == run_id))}
    rows = {r.passage_id: (r.theme_id, r.moved, r.pinned) for r in db.session.scalars(
        select(ThemePassage).where(ThemePassage.run_id == run_id))}
    return {"themes": themes, "rows": rows}


def shown_themes(run_id: int) -> list[Theme]:
    """The run's themes with passages, most stories first."""
    counts = Counter(db.session.execute(select(ThemePassage.theme_id, ThemePassage.story_id)
                                        .where(ThemePassage.run_id == run_id,
                                               ThemePassage.theme_id.is_not(None))
                                        .distinct()).scalars())
    return sorted((db.session.get(Theme, i) for i in counts), key=lambda t: -counts[t.id])


def undo_button(page: str) -> str:
    """The edit id the page's Undo button would undo."""
    found = re.search(r'name="edit" value="(\d+)"', page)
    assert found, "the page offers Undo"
    return found.group(1)


def staff_see(client, auth) -> tuple[list[str], dict[str, list[str]]]:
    """What staff see of themes: the library's theme filter, and each card's themes."""
    auth.logout()
    auth.login("sam")
    page = html.unescape(client.get("/library/").get_data(as_text=True))
    found = re.search(r'<select id="theme" name="theme">(.*?)</select>', page, re.DOTALL)
    names = re.findall(r'<option value="\d+">([^<]*)</option>', found.group(1)) if found else []
    cards = {s["code"]: s["themes"]
             for s in client.get("/library/stories.json").get_json()["stories"]}
    auth.logout()
    auth.login("lead-facilitator")
    return names, cards


def test_a_merge_asks_first_undo_puts_it_back_and_staff_see_only_what_was_published(
        app, client, auth, make_user, data):
    run_id = data["run"]
    make_user(Role.STAFF, username="sam")
    with app.app_context():
        facilitator = db.session.get(User, data["facilitator"])
        for story_id in data["ids"].values():
            story = db.session.get(Story, story_id)
            library.save_curation(story, facilitator, "A story about probation.")
            library.approve(story, facilitator)
        themes = shown_themes(run_id)
        names = {t.id: f"Theme told {n}" for n, t in enumerate(themes, start=1)}
        target, source, other = themes[0].id, themes[1].id, themes[2].id
        db.session.commit()
        # A workshop built from the run holds the theme about to be merged away.
        workshop = packs.create_workshop(run_id, data["facilitator"], "What helps",
                                         theme_ids=[source, other])
        db.session.commit()
        workshop_theme = next(t.id for t in workshop.themes if t.theme_id == source)
    auth.login("lead-facilitator")
    for theme_id, name in names.items():
        client.post(f"/themes/runs/{run_id}/themes/{theme_id}/rename",
                    data={"label": name, "description": ""})
    client.post(f"/library/themes/{run_id}/publish")
    published = staff_see(client, auth)
    assert sorted(published[0]) == sorted(names.values())
    page = html.unescape(client.get(f"/themes/runs/{run_id}").get_data(as_text=True))
    assert "Published to the staff library." in page
    with app.app_context():
        before = run_state(run_id)

    # The theme page's Merge asks first, on a page of its own; asking changes nothing.
    theme_page = html.unescape(client.get(f"/themes/runs/{run_id}/themes/{target}")
                               .get_data(as_text=True))
    assert f'<form method="get" action="/themes/runs/{run_id}/themes/{target}/merge">' \
        in theme_page
    url = f"/themes/runs/{run_id}/themes/{target}/merge"
    asked = html.unescape(client.get(f"{url}?sources={source}").get_data(as_text=True))
    assert f"Merge “{names[source]}” into “{names[target]}”?" in asked
    assert "Merge the themes" in asked and "You can undo the merge" in asked
    assert "Staff see run" in asked and "as they were on" in asked
    # A merge posted without the confirmation (a stray request, an old form) only asks too.
    again = html.unescape(client.post(url, data={"sources": str(source)})
                          .get_data(as_text=True))
    assert "Merge the themes" in again
    with app.app_context():
        assert run_state(run_id) == before

    merged = html.unescape(client.post(url, data={"sources": str(source), "confirm": "yes"},
                                       follow_redirects=True).get_data(as_text=True))
    assert "Themes merged." in merged
    assert f"Merged “{names[source]}” into “{names[target]}”" in merged  # the latest change
    assert "1 change made since is a draft" in merged
    with app.app_context():
        assert db.session.get(Theme, source) is None
        assert db.session.get(WorkshopTheme, workshop_theme).theme_id is None
    # Split another theme too: staff still see the themes as published.
    client.post(f"/themes/runs/{run_id}/themes/{other}/split", data={"parts": "2"})
    with app.app_context():
        split = run_state(run_id)
        assert len(split["themes"]) == len(before["themes"])  # one merged away, one more
    assert staff_see(client, auth) == published
    run_page = html.unescape(client.get(f"/themes/runs/{run_id}").get_data(as_text=True))
    assert "2 changes made since are drafts" in run_page
    changes = run_page.split('id="changes-heading"')[1].split('<li class="change')[1:]
    assert "Split “" in changes[0] and f"Merged “{names[source]}”" in changes[1], "newest first"
    assert all("Lead Facilitator" in change for change in changes[:2])  # who made each

    # An Undo from a page loaded before another change is refused: it would undo another.
    stale = undo_button(merged)
    refused = html.unescape(client.post(f"/themes/runs/{run_id}/undo", data={"edit": stale},
                                        follow_redirects=True).get_data(as_text=True))
    assert "no longer the latest change" in refused
    with app.app_context():
        assert run_state(run_id) == split

    # Undo the split, then the merge: the run is exactly as it was, ids and all.
    client.post(f"/themes/runs/{run_id}/undo", data={"edit": undo_button(run_page)})
    run_page = client.get(f"/themes/runs/{run_id}").get_data(as_text=True)
    undone = html.unescape(client.post(
        f"/themes/runs/{run_id}/undo", data={"edit": undo_button(run_page),
                                             "theme": str(target)},
        follow_redirects=True).get_data(as_text=True))
    assert f"Undone: Merged “{names[source]}” into “{names[target]}”." in undone
    assert f"<h1>{names[target]}</h1>" in undone  # back on the theme's page
    with app.app_context():
        assert run_state(run_id) == before
        # The workshop's theme is linked to the theme again.
        assert db.session.get(WorkshopTheme, workshop_theme).theme_id == source
        undos = db.session.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "themes.undo", AuditEvent.actor_id == data["facilitator"]
        ).order_by(AuditEvent.id)).all()
        assert [d.split(" ")[0] for d in undos] == ["split", "merge"]
    run_page = html.unescape(client.get(f"/themes/runs/{run_id}").get_data(as_text=True))
    assert run_page.count("Undone by Lead Facilitator") == 2
    assert "Published to the staff library." in run_page  # nothing left in draft
    assert staff_see(client, auth) == published


def test_every_kind_of_edit_is_undone_in_turn(app, client, auth, data):
    run_id = data["run"]
    auth.login("lead-facilitator")
    with app.app_context():
        first, second = (t.id for t in shown_themes(run_id)[:2])
        passage = db.session.scalar(select(ThemePassage.passage_id).where(
            ThemePassage.run_id == run_id, ThemePassage.theme_id == first).limit(1))
    base = f"/themes/runs/{run_id}"
    # "Move this passage to" starts at the passage's own theme: pressing Move moves nothing.
    page = html.unescape(client.get(f"{base}/themes/{first}").get_data(as_text=True))
    chosen = re.search(rf'<select id="move-{passage}" name="theme_id">(.*?)</select>', page)
    assert chosen and re.search(rf'<option value="{first}" selected>', chosen.group(1))
    kept = html.unescape(client.post(f"{base}/passages/{passage}/move",
                                     data={"theme_id": str(first)}, follow_redirects=True)
                         .get_data(as_text=True))
    assert "The passage is already there" in kept
    edits = [
        (f"{base}/themes/{first}/rename", {"label": "Somewhere to live", "description": "d"}),
        (f"{base}/themes/{second}/hide", {"hidden": "1"}),
        (f"{base}/passages/{passage}/move", {"theme_id": str(second)}),
        (f"{base}/passages/{passage}/pin", {"pinned": "1"}),
        (f"{base}/passages/{passage}/move", {"theme_id": ""}),
        (f"{base}/themes/{first}/split", {"parts": "2"}),
        (f"{base}/themes/{first}/merge", {"sources": str(second), "confirm": "yes"}),
    ]
    states = []
    with app.app_context():
        assert db.session.scalars(select(ThemeEdit)).all() == [], "no edit made so far"
    for url, form in edits:
        with app.app_context():
            states.append(run_state(run_id))
        response = client.post(url, data=form)
        assert response.status_code == 302, url
    with app.app_context():
        assert run_state(run_id) != states[-1]
    for state in reversed(states):
        page = client.get(base).get_data(as_text=True)
        client.post(f"{base}/undo", data={"edit": undo_button(page)})
        with app.app_context():
            assert run_state(run_id) == state
    page = client.get(base).get_data(as_text=True)
    assert 'name="edit"' not in page, "nothing left to undo"
    assert page.count("Undone by") == 7



@pytest.mark.parametrize("value", ["abc", "99999999999999999999", "-1", "1.5"])
def test_a_bad_theme_or_count_is_refused_and_changes_nothing(app, client, auth, data, value):
    """Empty means "in no theme" or "split as StoryHub sees fit"; a value that is not an id
    is a 400, never read as empty."""
    run_id = data["run"]
    auth.login("lead-facilitator")
    with app.app_context():
        first = shown_themes(run_id)[0].id
        passage = db.session.scalar(select(ThemePassage.passage_id).where(
            ThemePassage.run_id == run_id, ThemePassage.theme_id == first).limit(1))
        before = run_state(run_id)
    base = f"/themes/runs/{run_id}"
    for url, form in ((f"{base}/passages/{passage}/move", {"theme_id": value}),
                      (f"{base}/themes/{first}/split", {"parts": value})):
        response = client.post(url, data=form)
        assert response.status_code == 400, url
        assert "must be a number" in html.unescape(response.get_data(as_text=True)), url
    with app.app_context():
        assert run_state(run_id) == before
        assert db.session.scalars(select(ThemeEdit)).all() == []

def test_a_withdrawn_story_leaves_the_history_and_its_edits_cannot_be_undone(
        app, client, auth, data):
    run_id = data["run"]
    auth.login("lead-facilitator")
    with app.app_context():
        target, source = (t.id for t in shown_themes(run_id)[:2])
        leaving = db.session.scalar(select(ThemePassage.story_id).where(
            ThemePassage.theme_id == source).limit(1))
    client.post(f"/themes/runs/{run_id}/themes/{target}/merge",
                data={"sources": str(source), "confirm": "yes"})
    with app.app_context():
        edit = db.session.scalar(select(ThemeEdit))
        assert edit.before["themes"], "the merge kept the themes as they were"
        stories.withdraw_consent(db.session.get(Story, leaving),
                                 db.session.get(User, data["facilitator"]))
        db.session.commit()
        db.session.expire_all()
        edit = db.session.get(ThemeEdit, edit.id)
        assert edit.before is None  # nothing of the story's words is kept for an undo
    page = html.unescape(client.get(f"/themes/runs/{run_id}").get_data(as_text=True))
    assert "Merged themes" in page and "can no longer be undone" in page
    refused = html.unescape(client.post(f"/themes/runs/{run_id}/undo",
                                        data={"edit": str(edit.id)}, follow_redirects=True)
                            .get_data(as_text=True))
    assert "corrected, redacted or withdrawn since" in refused
    with app.app_context():
        assert db.session.get(Theme, source) is None


def test_a_mixed_theme_names_every_role_on_the_board(app, client, auth, data):
    """The issue's theme: mostly peer mentors, one person on probation."""
    run_id = data["run"]
    auth.login("lead-facilitator")
    with app.app_context():
        theme = shown_themes(run_id)[0]
        story_ids = sorted(set(db.session.scalars(select(ThemePassage.story_id).where(
            ThemePassage.theme_id == theme.id))))
        assert len(story_ids) >= 3, "the largest theme holds three stories or more"
        for n, story_id in enumerate(story_ids):
            db.session.get(Story, story_id).storyteller.role = P if n == 0 else M
        label = theme.label
        db.session.commit()
    for url in (f"/themes/runs/{run_id}", f"/themes/runs/{run_id}/board"):
        page = html.unescape(client.get(url).get_data(as_text=True))
        card = next(c for c in re.split(r'<li class="(?:card theme-card|board-card)', page)
                    if label in c.split("</h")[0])
        assert "Told by peer mentors and people on probation" in card, url
        assert "Only people on probation" not in card, url


def test_a_theme_whose_id_was_taken_meanwhile_comes_back_under_a_new_one(app, client, auth,
                                                                        data):
    """SQLite gives a removed highest id to the next theme made (of a new run, say)."""
    run_id = data["run"]
    auth.login("lead-facilitator")
    with app.app_context():
        target, source = (t.id for t in shown_themes(run_id)[:2])
        moving = db.session.scalar(select(ThemePassage.passage_id).where(
            ThemePassage.run_id == run_id, ThemePassage.theme_id == source).limit(1))
        workshop = packs.create_workshop(run_id, data["facilitator"], "What helps",
                                         theme_ids=[source])
        db.session.commit()
        workshop_theme = workshop.themes[0].id
        before = run_state(run_id)
    base = f"/themes/runs/{run_id}"
    client.post(f"{base}/passages/{moving}/move", data={"theme_id": str(target)})
    client.post(f"{base}/themes/{target}/merge", data={"sources": str(source), "confirm": "yes"})
    with app.app_context():
        other = ThemeRun(number=99)
        db.session.add(other)
        db.session.flush()
        db.session.add(Theme(id=source, run_id=other.id, number=1, label="Another run's",
                             auto_label="Another run's"))
        db.session.commit()
    for _ in range(2):
        client.post(f"{base}/undo", data={"edit": undo_button(
            client.get(base).get_data(as_text=True))})
    with app.app_context():
        after = run_state(run_id)
        back = next(i for i in after["themes"] if i not in before["themes"])
        assert back != source
        assert after["themes"][back] == before["themes"][source]
        # Every passage of the theme, the moved one too, is back in it, and so is the workshop.
        assert {p: r for p, r in after["rows"].items() if r[0] == back} == {
            p: (back, *r[1:]) for p, r in before["rows"].items() if r[0] == source}
        assert db.session.get(WorkshopTheme, workshop_theme).theme_id == back
        assert db.session.get(Theme, source).label == "Another run's"
