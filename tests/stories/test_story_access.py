"""Who may see, play and add a story (sites and roles, in the views and the service), the
admin's record of who read what, and stories that stay readable when the master key changes.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from sqlalchemy import select

from storyhub import dates
from storyhub.accounts.models import Role, Site, User
from storyhub.extensions import db
from storyhub.policy import AccessDenied
from storyhub.stories import service
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story
from tests.support.uploads import (
    NEEDS_AUDIO_TOOLS,
    assert_nothing_stored,
    assert_refused,
    login_client,
    play,
    plays,
    story_id_from,
    upload,
)

pytestmark = [NEEDS_AUDIO_TOOLS, pytest.mark.usefixtures("quick_password_hashing")]


def _new_story(**fields) -> service.NewStory:
    values = {"title": "Direct", "storyteller_role": "person_on_probation",
              "story_type": "snapshot", "recorded_on": dates.today(), **fields}
    return service.NewStory(**values)


def _new_consent(**fields) -> service.NewConsent:
    values = {"scopes": {Scope.TRANSCRIBE_ANALYSE}, "method": "spoken",
              "given_on": dates.today(), "spoken_at_seconds": 0.0, **fields}
    return service.NewConsent(**values)


@pytest.fixture
def sites(app) -> dict[str, int]:
    with app.app_context():
        made = {name: Site(name=f"Site {name}") for name in ("A", "B")}
        db.session.add_all(made.values())
        db.session.commit()
        return {name: site.id for name, site in made.items()}


@pytest.fixture
def site_b_story(app, make_user, sites, tone) -> int:
    """A story filed for site B by a reporter at site B."""
    author = login_client(app, make_user, Role.REPORTER, username="bea", site_id=sites["B"])
    return story_id_from(upload(author, tone(), title="Site B story", site=str(sites["B"])))


def test_reporter_at_another_site_cannot_see_or_play(app, make_user, sites, site_b_story):
    other = login_client(app, make_user, Role.REPORTER, username="al", site_id=sites["A"])
    assert other.get(f"/stories/{site_b_story}").status_code == 403
    assert play(other, site_b_story).status_code == 403
    assert play(other, site_b_story, "bytes=0-99").status_code == 403
    listing = other.get("/stories/")
    assert listing.status_code == 200
    assert "Site B story" not in listing.get_data(as_text=True)
    assert f"/stories/{site_b_story}" not in listing.get_data(as_text=True)
    assert plays(app, site_b_story) == 0
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "al"))
        story = db.session.get(Story, site_b_story)
        with pytest.raises(AccessDenied, match="belongs to another site"):
            service.playback_file(story, user)
        with pytest.raises(AccessDenied):
            service.get_story(site_b_story, user)
        assert site_b_story not in db.session.scalars(
            service.visible_stories(user)).all()


@pytest.mark.parametrize(("role", "fields"), [
    pytest.param(Role.REPORTER, {"site": "B"}, id="reporter-same-site"),
    pytest.param(Role.REPORTER, {"site": "A", "all_sites": True}, id="reporter-all-sites"),
    pytest.param(Role.FACILITATOR, {}, id="facilitator"),
    pytest.param(Role.ADMIN, {}, id="admin"),
])
def test_who_can_see_and_play(app, make_user, sites, site_b_story, role, fields):
    fields = dict(fields)
    if "site" in fields:
        fields["site_id"] = sites[fields.pop("site")]
    reader = login_client(app, make_user, role, **fields)
    page = reader.get(f"/stories/{site_b_story}")
    assert page.status_code == 200 and "Site B story" in page.get_data(as_text=True)
    played = play(reader, site_b_story)
    assert played.status_code == 200 and played.mimetype == "audio/mp4"
    assert play(reader, site_b_story, "bytes=0-99").status_code == 206
    assert "Site B story" in reader.get("/stories/").get_data(as_text=True)


def test_reporter_cannot_file_a_story_for_another_site(app, make_user, sites, encodings):
    reporter = login_client(app, make_user, Role.REPORTER, username="al", site_id=sites["A"])
    response = upload(reporter, encodings["m4a-aac"], site=str(sites["B"]), recorder=True)
    assert_refused(response, 400, "Not a valid choice.")  # site B is not offered to them
    assert_nothing_stored(app)
    # The service refuses it too, whatever page or import asks.
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "al"))
        with pytest.raises(AccessDenied, match="only add stories for your own site"):
            service.create_story(_new_story(site_id=sites["B"]), _new_consent(),
                                 encodings["m4a-aac"], user)
        db.session.rollback()
    assert_nothing_stored(app)


def test_staff_cannot_add_stories(app, make_user, encodings, sites):
    staff = login_client(app, make_user, Role.STAFF, site_id=sites["A"])
    page = staff.get("/stories/new")
    assert page.status_code == 403
    assert "You do not have access to this page" in page.get_data(as_text=True)
    for recorder in (False, True):
        response = upload(staff, encodings["wav"], site=str(sites["A"]), recorder=recorder)
        assert response.status_code == 403
    assert staff.get("/stories/").status_code == 403
    assert_nothing_stored(app)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.role == Role.STAFF))
        with pytest.raises(AccessDenied, match="Only community reporters"):
            service.create_story(_new_story(), _new_consent(), encodings["wav"], user)
        db.session.rollback()
    assert_nothing_stored(app)


# --- reading a story later -------------------------------------------------------------------

def test_admin_sees_who_read_what_when_and_from_where(app, client, auth, add_story):
    story_id = add_story()  # uploaded by the facilitator "fiona"
    assert client.get(f"/stories/{story_id}").status_code == 200
    play(client, story_id)
    play(client, story_id, "bytes=100-")  # the same listening, seeking on
    auth.logout()
    auth.login_as(Role.ADMIN)

    page = client.get(f"/admin/audit?who=fiona&story={story_id}").get_data(as_text=True)
    assert "<code>story.view</code>" in page and "127.0.0.1" in page
    # What each entry is, in words, beside its code: in the log and in its filter.
    text = html.unescape(page)
    assert "Opened a story's page <code>story.view</code>" in text
    assert '<option value="story.play">Listened to a story (story.play)</option>' in text
    plays = client.get("/admin/audit?who=fiona&action=story.play").get_data(as_text=True)
    assert plays.count("<code>story.play</code>") == 1
    csv_text = client.get(f"/admin/audit.csv?who=fiona&story={story_id}").get_data(
        as_text=True)
    rows = csv_text.splitlines()
    assert rows[0] == "when_utc,who,action,target_type,target_id,detail,ip"
    assert any(f",fiona,story.play,story,{story_id},,127.0.0.1" in row for row in rows)
    none = client.get("/admin/audit?who=nobody-here").get_data(as_text=True)
    assert "Nothing recorded that matches" in none
    future = client.get("/admin/audit?since=2999-01-01").get_data(as_text=True)
    assert "Nothing recorded that matches" in future
    bad = html.unescape(client.get("/admin/audit?since=yesterday").get_data(as_text=True))
    assert "“yesterday” is not a date" in bad


def test_master_key_rotation_keeps_every_story_readable(app, client, add_story, runner):
    from storyhub import sealed

    story_id = add_story()
    old = app.extensions["storyhub.master_keys"]
    result = runner.invoke(args=["new-master-key"])
    assert result.exit_code == 0
    entry = result.stdout.strip().splitlines()[0]
    new_id = entry.split(":")[0]
    old_entries = (Path(app.instance_path) / "master.keys").read_text().strip()
    app.extensions["storyhub.master_keys"] = sealed.load_master_keys(f"{entry},{old_entries}")
    assert play(client, story_id).status_code == 200  # the old master still reads
    result = runner.invoke(args=["rewrap-keys"])
    assert result.exit_code == 0 and f"master key {new_id}" in result.output
    with app.app_context():
        assert db.session.get(Story, story_id).wrapped_key.startswith(new_id + ":")
    app.extensions["storyhub.master_keys"] = sealed.load_master_keys(entry)  # old one gone
    assert play(client, story_id).status_code == 200
    assert old.current_id != new_id


def test_redaction_before_transcription_says_why(app, client, add_story):
    story_id = add_story()
    for url, data in ((f"/stories/{story_id}/transcript/redactions",
                       {"offer": "1-2-[NAME]", "decision": "accept"}),
                      (f"/stories/{story_id}/transcript/redactions/phrase",
                       {"phrase": "hello", "label": "[NAME]"}),
                      (f"/stories/{story_id}/transcript/redactions/undo", {"words": "1,2"})):
        response = client.post(url, data=data, follow_redirects=True)
        assert response.status_code == 200, url
        assert "has not been transcribed yet" in response.get_data(as_text=True), url
    bad = client.post(f"/stories/{story_id}/transcript/redactions/undo", data={"words": "x"})
    assert bad.status_code == 400
    assert client.get("/themes/runs/999/passages/1/clip.m4a").status_code == 404
