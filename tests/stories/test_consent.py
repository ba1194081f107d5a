"""Consent scopes enforced by the service layer: a story is played only while its storyteller's
consent covers it, and the page says why when it does not.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import pytest

from storyhub import dates
from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.policy import AccessDenied, Action
from storyhub.policy import require as policy_require
from storyhub.stories import service
from storyhub.stories.models import Story
from tests.support.uploads import NEEDS_AUDIO_TOOLS, get_user, play, plays

pytestmark = [NEEDS_AUDIO_TOOLS, pytest.mark.usefixtures("quick_password_hashing")]


def _change_consent(app, story_id: int, **values) -> None:
    with app.app_context():
        consent = db.session.get(Story, story_id).consent
        for key, value in values.items():
            setattr(consent, key, value)
        db.session.commit()


WITHDRAWN = datetime(2024, 3, 5, 14, 30)
OVERDUE = dates.today() - timedelta(days=1)
REFUSALS = [
    pytest.param({"consent_transcribe_analyse": None, "consent_quote_in_packs": "y"}, {},
                 "The storyteller did not agree to their story being transcribed or analysed.",
                 True, id="scope-not-agreed"),
    pytest.param({}, {"withdrawn_at": WITHDRAWN},
                 "The storyteller withdrew their consent on 05 March 2024, so this story "
                 "cannot be played.", False, id="withdrawn"),
    pytest.param({}, {"review_on": OVERDUE},
                 f"The storyteller's consent was due for review on {OVERDUE:%d %B %Y}. Check "
                 "with them and renew the consent before this story is played.",
                 True, id="review-overdue"),
]


@pytest.mark.parametrize(("fields", "change", "expected", "gatherer_plays"), REFUSALS)
def test_playback_refused_without_consent(app, client, auth, make_user, add_story, fields,
                                          change, expected, gatherer_plays):
    """Others are refused; the reporter who made the recording plays it until withdrawal."""
    story_id = add_story(**fields)
    if change:
        _change_consent(app, story_id, **change)
    admin_id = make_user(Role.ADMIN)
    with app.app_context():
        story = db.session.get(Story, story_id)
        with pytest.raises(AccessDenied) as refused:
            service.playback_file(story, get_user(admin_id))
        assert str(refused.value) == expected
        db.session.rollback()

    own = play(client, story_id)  # the reporter who gathered it
    assert own.status_code == (200 if gatherer_plays else 403)
    assert plays(app, story_id) == (1 if gatherer_plays else 0)
    auth.logout()
    auth.login_as(Role.ADMIN)
    response = play(client, story_id)
    assert response.status_code == 403
    assert response.get_json() == {"error": expected}
    page = client.get(f"/stories/{story_id}")
    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert expected in text and f"/stories/{story_id}/audio" not in text
    assert plays(app, story_id) == (1 if gatherer_plays else 0)


def test_story_without_consent_row_is_refused(app, client, add_story):
    story_id = add_story()
    with app.app_context():
        db.session.delete(db.session.get(Story, story_id).consent)
        db.session.commit()
        story = db.session.get(Story, story_id)
        with pytest.raises(AccessDenied, match="No consent has been recorded"):
            policy_require(None, story, Action.ANALYSE)
    response = play(client, story_id)
    assert response.status_code == 403
    assert "No consent has been recorded for this story" in response.get_json()["error"]


def test_review_due_today_still_plays(app, client, make_user, add_story):
    story_id = add_story(consent_given_on=(dates.today() - timedelta(days=30)).isoformat(),
                         consent_review_on=dates.today().isoformat())
    admin_id = make_user(Role.ADMIN)
    with app.app_context():
        stored = service.playback_file(db.session.get(Story, story_id), get_user(admin_id))
        assert stored.exists()
        db.session.commit()
    assert play(client, story_id).status_code == 200
    assert plays(app, story_id) == 1  # heard through the site, not the service call
