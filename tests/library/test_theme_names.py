"""Theme names in the staff library, from a real theme run: never the keyword names a run
makes, only the names a facilitator gave, once they publish the run; the same names as the
workshop pack built from it.

Starts from the prepared themed instance (the twelve corpus stories, one finished run by the
real model); every story is approved for the library here.
"""

from __future__ import annotations

import html
import re
from collections import Counter

import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.library import publishing
from storyhub.library import service as library
from storyhub.stories.models import Story
from storyhub.themes.models import ThemePassage, ThemeRun
from tests.support.theme_corpus import THEME_OF

pytestmark = pytest.mark.slow

# What the facilitator calls a theme, by the corpus theme most of its stories are about.
NAMES = {"housing": "Somewhere to live", "work": "Work and money",
         "drugs": "Drink, drugs and recovery", "officer": "Trust in probation officers"}


@pytest.fixture
def prepared(themed_instance):
    return themed_instance


def _filter_names(client) -> list[str]:
    page = client.get("/library/").get_data(as_text=True)
    found = re.search(r'<select id="theme" name="theme">(.*?)</select>', page, re.DOTALL)
    if found is None:
        return []
    return [html.unescape(name) for name in re.findall(
        r'<option value="\d+">([^<]*)</option>', found.group(1))]


def _as(auth, username: str) -> None:
    auth.logout()
    assert auth.login(username).status_code == 302


def test_staff_see_the_names_the_facilitator_gave_the_same_as_the_pack(
        app, client, auth, themed_instance, make_user):
    data = themed_instance.data
    run_id = data["run"]
    make_user(Role.STAFF, username="sam")
    with app.app_context():
        facilitator = db.session.get(User, data["facilitator"])
        key_of = {story_id: key for key, story_id in data["ids"].items()}
        for story_id in key_of:
            story = db.session.get(Story, story_id)
            about = THEME_OF[key_of[story_id]]
            library.save_curation(story, facilitator, f"A story about {about}.")
            library.approve(story, facilitator)
        run = db.session.get(ThemeRun, run_id)
        shown = publishing.to_publish(run)
        order = [t.id for t in shown]  # board order
        keyword_names = {t.id: t.label for t in shown}
        assert not any(publishing.named(t) for t in shown), "a run names themes by keywords"
        given: dict[int, str] = {}
        for theme in shown:  # each theme named for the corpus theme most of its stories tell
            stories = db.session.scalars(select(ThemePassage.story_id).where(
                ThemePassage.run_id == run_id, ThemePassage.theme_id == theme.id))
            about = Counter(THEME_OF[key_of[s]] for s in stories).most_common(1)[0][0]
            name = NAMES[about]
            given[theme.id] = name if name not in given.values() else f"{name} ({theme.number})"
        db.session.commit()

    _as(auth, "sam")
    assert _filter_names(client) == []  # nothing published yet: no themes at all
    assert all(s["themes"] == [] for s in client.get("/library/stories.json").get_json()[
        "stories"])

    _as(auth, "lead-facilitator")
    refused = html.unescape(client.post(f"/library/themes/{run_id}/publish",
                                        follow_redirects=True).get_data(as_text=True))
    assert "before publishing" in refused
    assert all(f"“{name}”" in refused for name in keyword_names.values()), refused
    for theme_id, name in given.items():
        client.post(f"/themes/runs/{run_id}/themes/{theme_id}/rename",
                    data={"label": name, "description": ""})
    published = client.post(f"/library/themes/{run_id}/publish", follow_redirects=True)
    assert "Staff now see the" in html.unescape(published.get_data(as_text=True))

    _as(auth, "sam")
    assert _filter_names(client) == [given[theme_id] for theme_id in order]
    card_names = {name for s in client.get("/library/stories.json").get_json()["stories"]
                  for name in s["themes"]}
    assert card_names and card_names <= set(given.values())
    pages = html.unescape(client.get("/library/").get_data(as_text=True)) + html.unescape(
        client.get("/library/stories.json").get_data(as_text=True))
    assert not any(name in pages for name in keyword_names.values())

    with app.app_context():  # the workshop pack built from the run, as its page shows it
        from storyhub.packs import service as packs

        workshop = packs.create_workshop(run_id, data["facilitator"], "What helps")
        pack_names = [t.title for t in workshop.themes]
        db.session.commit()
    assert pack_names and set(pack_names) <= set(given.values())
    assert pack_names == [n for n in _filter_names(client) if n in pack_names]

