"""Redaction: what is suggested, what others read and hear once a reporter accepts it."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.redaction import ADDRESS, DATE, EMAIL, ID, NAME, PHONE, PLACE, suggest
from storyhub.redaction.service import run_muting_job
from storyhub.stories.audio import mute_spans
from storyhub.stories.models import Story
from storyhub.themes.models import Passage
from storyhub.transcripts.channels import decode
from storyhub.transcripts.service import get_transcript

from . import audio_fixtures as af

STORY = ("My name is Darren Hollis and I live at 14 Acacia Road, Leeds LS6 2QT. My probation "
         "officer Mrs Okafor was great. Call me on 07700 900 123 or darren.h@example.com. I "
         "was in HMP Belmarsh, prison number A1234BC. Universal Credit took ages. On Monday "
         "Sandra at the Jobcentre helped me in Bradford. My mate Kwabena came too. I'm OK now.")


def found(text: str, **kwargs) -> dict[str, str]:
    return {s.text: s.label for s in suggest(text.split(), **kwargs)}


@pytest.mark.no_database
def test_suggests_each_kind_of_personal_detail() -> None:
    assert found(STORY) == {
        "Darren Hollis": NAME, "14 Acacia Road": ADDRESS, "Leeds": PLACE, "LS6 2QT": ADDRESS,
        "Okafor": NAME, "07700 900 123": PHONE, "darren.h@example.com": EMAIL,
        "Belmarsh": PLACE, "A1234BC": ID, "Sandra": NAME, "Bradford": PLACE, "Kwabena": NAME}


@pytest.mark.no_database
def test_ordinary_capitals_are_not_suggested() -> None:
    text = ("Probation helped. I went to the Jobcentre on Monday and Universal Credit paid in "
            "March. The NHS and my GP were fine. Christmas was hard. I'm OK.")
    assert found(text) == {}


@pytest.mark.no_database
def test_a_rejected_suggestion_is_not_made_again() -> None:
    rejected = [s.key for s in suggest(STORY.split()) if s.text == "Bradford"]
    assert "Bradford" not in found(STORY, rejected=rejected)
    assert "Leeds" in found(STORY, rejected=rejected)


@pytest.mark.no_database
def test_local_names_can_be_added() -> None:
    text = "I saw Ngozi at Ferncliffe on Tuesday."
    assert found(text, extra_places=["Ferncliffe"])["Ferncliffe"] == PLACE


def _rms(audio: np.ndarray, start: float, end: float, rate: int = 16000) -> float:
    part = audio[int(start * rate):int(end * rate)]
    return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0


@pytest.mark.no_database
def test_muted_stretches_are_silent_and_the_rest_is_kept(tmp_path: Path) -> None:
    source = af.sine_wav(tmp_path / "tone.wav", 4.0)
    out = tmp_path / "muted.m4a"
    length = mute_spans(source, out, [(1.0, 1.5), (2.5, 3.0)])
    audio = decode(out)
    assert abs(length - 4.0) < 0.05 and abs(len(audio) / 16000 - 4.0) < 0.1
    # AAC smears a little across the edges: look inside each stretch.
    for start, end in ((1.05, 1.45), (2.55, 2.95)):
        assert _rms(audio, start, end) < 0.003, (start, end)
    for start, end in ((0.2, 0.9), (1.6, 2.4), (3.1, 3.8)):
        assert _rms(audio, start, end) > 0.05, (start, end)


# --- through the site ---------------------------------------------------------------------

@pytest.fixture
def prepared(corpus_instance):
    return corpus_instance


def _muting_job(app, story_id: int) -> int:
    with app.app_context():
        job = db.session.scalar(select(Job).where(
            Job.kind == "mute_audio", Job.target_id == story_id,
            Job.status == JobStatus.QUEUED))
        assert job is not None
        return job.id


@pytest.mark.slow
def test_redacted_words_are_read_as_labels_and_heard_as_silence(app, client, auth,
                                                                corpus_instance, tmp_path):
    story_id = corpus_instance.data["ids"]["housing-1"]
    with app.app_context():
        reporter = db.session.get(User, corpus_instance.data["reporter"])
        username = reporter.username
        transcript = get_transcript(db.session.get(Story, story_id))
        words = [w for seg in transcript.segments for w in seg.words]
        # A word from the middle of the story, long enough to hear.
        target = max(words[2:-2], key=lambda w: (w.end - w.start, w.id))
        said, start, end = target.text.strip(".,"), target.start, target.end
    auth.login(username, "quiet lantern orchard 42")
    page = client.get(f"/stories/{story_id}/transcript")
    assert page.status_code == 200 and 'id="redaction"' in page.get_data(as_text=True)
    response = client.post(f"/stories/{story_id}/transcript/redactions/phrase",
                           data={"phrase": said, "label": NAME})
    assert response.status_code == 302
    assert "Redacted" in html.unescape(client.get(response.location).get_data(as_text=True))
    # The reporter who gathered it still reads and hears it whole.
    own = client.get(f"/stories/{story_id}/transcript.txt").get_data(as_text=True)
    assert said.lower() in own.lower()
    assert client.get(f"/stories/{story_id}/audio", buffered=True).status_code == 200

    auth.logout()
    auth.login_as(Role.FACILITATOR)
    text = client.get(f"/stories/{story_id}/transcript.txt").get_data(as_text=True)
    assert "[NAME]" in text and f" {said.lower()} " not in f" {text.lower()} "
    waiting = client.get(f"/stories/{story_id}/audio")
    assert waiting.status_code == 403 and "muted" in waiting.get_json()["error"]
    with app.app_context():
        passages = db.session.scalars(select(Passage).where(Passage.story_id == story_id))
        assert all(said.lower() not in p.text.lower().split() for p in passages)
        assert run_muting_job(_muting_job(app, story_id)) == "done"
    heard = client.get(f"/stories/{story_id}/audio", buffered=True)
    assert heard.status_code == 200
    copy = tmp_path / "heard.m4a"
    copy.write_bytes(heard.data)
    audio = decode(copy)
    assert end - start > 0.15, (said, start, end)
    inside = _rms(audio, start + 0.06, end - 0.01)
    assert inside < 0.003, (said, start, end, inside)
    assert _rms(audio, 0, len(audio) / 16000) > 0.01


@pytest.mark.no_database
def test_text_without_capitals_is_read_by_word_lists_and_cues() -> None:
    text = ("my name is darren hollis and i moved to ferncliffe last year my mate will came "
            "with me call me on 07700 900 123 my number is a1234bc")
    assert found(text) == {"darren hollis": NAME, "ferncliffe": PLACE, "07700 900 123": PHONE,
                           "a1234bc": ID}


@pytest.mark.slow
def test_a_redacted_name_leaves_the_board_the_map_and_the_theme_words(app, client, auth,
                                                                      corpus_instance):
    from .test_privacy import PHRASE, tell_story
    from .test_themes import run_now

    ids = corpus_instance.data["ids"]
    story_id = ids["housing-1"]
    tell_story(app, story_id, corpus_instance.data["reporter"])
    with app.app_context():
        # Said often enough to be one of the theme's words.
        story = db.session.get(Story, story_id)
        reporter = db.session.get(User, corpus_instance.data["reporter"])
        from storyhub.transcripts import service as transcripts

        segment = get_transcript(story).segments[-1]
        transcripts.edit_segment(story, segment.id, segment.text + " Wexquayle. " * 6,
                                 reporter)
        transcripts.mark_reviewed(story, reporter)
        db.session.commit()
    facilitator = auth.login_as(Role.FACILITATOR)
    run_id = run_now(app, facilitator)
    pages = (f"/themes/runs/{run_id}/board", f"/themes/runs/{run_id}/map.json",
             f"/themes/runs/{run_id}")
    assert any("wexquayle" in client.get(url).get_data(as_text=True).lower() for url in pages)
    auth.logout()
    auth.login("corpus-reporter", "quiet lantern orchard 42")
    for phrase in (PHRASE, "Wexquayle"):
        response = client.post(f"/stories/{story_id}/transcript/redactions/phrase",
                               data={"phrase": phrase, "label": NAME})
        assert response.status_code == 302
    auth.logout()
    auth.login_as(Role.FACILITATOR)
    for url in pages:
        body = client.get(url).get_data(as_text=True).lower()
        assert "wexquayle" not in body and "marigold" not in body, url
    with app.app_context():
        from storyhub.themes.models import ThemeRun

        run = db.session.get(ThemeRun, run_id)
        words = " ".join(t.label + " " + " ".join(t.keywords) for t in run.themes).lower()
        assert "wexquayle" not in words and "marigold" not in words
    # The run's saved model (its vocabulary held the name) is gone; the words stay only in the
    # transcript itself, for the reporter who gathered the story.
    from .test_privacy import files_holding

    stored = [f for f in files_holding(Path(app.instance_path), "wexquayle")
              if not f.startswith("file:storyhub.sqlite")]
    assert stored == []


@pytest.mark.no_database
def test_dates_of_birth_are_suggested() -> None:
    assert found("I was born on the 3rd of May 1985 in a town.") == {"3rd of May 1985": DATE}
    assert found("My date of birth is 12/03/1985 on the form.") == {"12/03/1985": DATE}


def test_an_admin_adds_a_sites_local_names_and_they_are_suggested(app, client, auth):
    from storyhub.accounts.models import Site
    from storyhub.redaction.service import local_terms

    auth.login_as(Role.ADMIN)
    client.post("/admin/sites", data={"name": "Northgate office"})
    with app.app_context():
        site = db.session.scalar(select(Site).where(Site.name == "Northgate office"))
        site_id = site.id
    page = client.get("/admin/sites").get_data(as_text=True)
    assert f"/admin/sites/{site_id}/terms" in page and "Local names to redact" in page
    response = client.post(f"/admin/sites/{site_id}/terms", data={
        f"site{site_id}-local_terms": "Ferncliffe Estate\n\n  Harbour House hostel  \n"})
    assert response.status_code == 302
    with app.app_context():
        site = db.session.get(Site, site_id)
        assert site.term_list == ["Ferncliffe Estate", "Harbour House hostel"]
        words = local_terms(Story(site=site))
        assert {"ferncliffe", "harbour"} <= set(words) and "estate" not in words
        text = "I stayed at Harbour House for a month, then Ferncliffe Estate."
        labels = {s.text: s.label for s in suggest(text.split(), extra_places=words)}
        assert labels.get("Harbour House") or labels.get("Harbour")
        assert "Ferncliffe Estate" in labels or "Ferncliffe" in labels
