"""Redaction: what is suggested, what others read and hear once a reporter accepts it."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.jobs.runner import run_job
from storyhub.media.audio import mute_spans
from storyhub.redaction import ADDRESS, DATE, EMAIL, ID, NAME, PHONE, PLACE, ranked, suggest
from storyhub.stories.models import Story
from storyhub.themes.models import Passage
from storyhub.transcripts.engine_audio import decode
from storyhub.transcripts.service import get_transcript
from tests.support import audio_fixtures as af

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "redaction.py"
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
        assert run_job(_muting_job(app, story_id)) == "done"
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
    from tests.support.factories import PHRASE, run_now, tell_story

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
    from tests.support.factories import files_holding

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


# --- trust: what is ticked in advance, and what is never suggested --------------------------

# Demo story S010 ("A key on the first night") as Whisper writes a long monologue: no full
# stops, and a capital on whatever follows a pause.
S010 = ("I slept in a tent by the canal for six weeks after my last sentence So when I meet "
        "someone coming out with nowhere to go I know what that feels like Now I go with them "
        "to the housing office I sit with them in the queue I help them fill in the forms And "
        "I make sure they don't walk out when they're told to come back tomorrow People talk "
        "to me differently because I've been there Last month a young lad called Jamie got a "
        "room in shared housing He rang me the first night just to say he had a key That's why "
        "I do this")

# Capitalised everyday words, as Whisper writes them after a pause or at a sentence start.
EVERYDAY_CAPITALS = ["So", "Now", "And", "People", "Last", "He", "She", "They", "Then",
                     "Because", "Honestly", "Sometimes", "Eventually", "Nowadays", "Basically",
                     "Anyway", "Afterwards", "Hostel", "Canal", "Queue", "Forms", "Housing",
                     "Tent", "Curfew", "Methadone", "Will", "Hope", "Grace", "Mark", "Bill"]


@pytest.mark.no_database
def test_an_unpunctuated_monologue_gets_no_everyday_word_suggested() -> None:
    suggestions = suggest(S010.split())
    assert {s.text: s.preticked for s in suggestions} == {"Jamie": True}


@pytest.mark.no_database
@pytest.mark.parametrize("word", EVERYDAY_CAPITALS)
def test_an_everyday_word_is_never_suggested_for_its_capital(word: str) -> None:
    # In the middle of a punctuated sentence, where a capital says most; and mid-run.
    assert found(f"I told them {word} about it, and that was that.") == {}
    assert found(f"{S010} {word} was there") == {"Jamie": NAME}


# A Whisper-style monologue holding each kind of detail, and what a reporter should find ticked
# in advance (patterns, listed names, titles and cues) and offered unticked (guesses).
MONOLOGUE = ("so anyway my name is Kwabena Osei and my number is 07700 900 123 or you can email "
             "me at kw88@example.com my National Insurance is QQ123456C I live at 14 Acacia "
             "Road LS6 2QT Now my officer Tyrone rang me every week and Mrs Okafor at the "
             "hostel was brilliant Sandra too People think it is easy but it is not a lad called "
             "Will came round and my mate Hope did as well I grew up near Thornaby")
TICKED = {"Kwabena Osei": NAME, "07700 900 123": PHONE, "kw88@example.com": EMAIL,
          "QQ123456C": ID, "14 Acacia Road": ADDRESS, "LS6 2QT": ADDRESS, "Tyrone": NAME,
          "Okafor": NAME, "Sandra": NAME, "Will": NAME}
UNTICKED = {"Hope": NAME, "Thornaby": NAME}


@pytest.mark.no_database
def test_patterns_listed_and_cued_names_are_ticked_and_guesses_offered_below() -> None:
    suggestions = suggest(MONOLOGUE.split())
    assert {s.text: s.label for s in suggestions if s.preticked} == TICKED
    # A name that is an everyday word after "my mate", with no full stop to trust its capital,
    # and a capitalised word no English word list knows: offered, not ticked.
    assert {s.text: s.label for s in suggestions if not s.preticked} == UNTICKED
    ordered = ranked(suggestions)
    assert [s.preticked for s in ordered] == sorted((s.preticked for s in ordered),
                                                    reverse=True)
    assert ordered[-1].text == "Thornaby", "a guess from a capital alone comes last"


@pytest.mark.no_database
def test_a_name_that_is_an_everyday_word_is_suggested_only_after_a_cue() -> None:
    uncued = ("Will I ever get my kids back? Hope is what keeps me going. Mark my words, I "
              "won't go back. Bill after bill came. I said Grace before tea.")
    assert found(uncued) == {}
    cued = suggest("My officer Will rang me. A lad called Grace helped. Mr Bill was kind. "
                   "My mate Hope came too.".split())
    assert {s.text: s.preticked for s in cued} == {"Will": True, "Grace": True, "Bill": True,
                                                  "Hope": True}
    # Without capitals "will" after "my mate" is the verb; "hope" may be a name: offered only.
    lower = suggest("my mate will come with me and my mate hope came too".split())
    assert {s.text: s.preticked for s in lower} == {"hope": False}
    # A colleague's name that is an everyday word ("Reporter") is a name only after a cue.
    assert found("The Reporter came on Monday.", extra_names=["Reporter"]) == {}
    assert found("My officer Reporter came.", extra_names=["Reporter"]) == {"Reporter": NAME}
    assert found("I saw Quillfeather there.", extra_names=["Quillfeather"]) == {
        "Quillfeather": NAME}


@pytest.mark.no_database
def test_an_hour_of_words_is_read_in_well_under_a_second() -> None:
    words = (S010 + " " + MONOLOGUE).split() * 50  # about 9,500 words
    suggest(words[:50])  # the word list is read once per process
    started = time.perf_counter()
    suggestions = suggest(words)
    assert time.perf_counter() - started < 1.0
    assert len([s for s in suggestions if s.text == "Jamie"]) == 50


@pytest.mark.no_database
def test_the_benchmark_runs_quick_and_meets_its_targets() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick"], capture_output=True,
                          text=True, timeout=120, check=True)
    last = done.stdout.strip().splitlines()[-1]
    keys = ["spans", "recall_ids", "recall_names", "recall_places", "precision",
            "preticked_precision", "peer_recall_names", "peer_precision"]
    assert re.fullmatch("RESULT " + " ".join(f"{k}=[0-9.]+" for k in keys), last), last
    figures = {k: float(v) for k, v in (pair.split("=") for pair in last.split()[1:])}
    assert figures["spans"] >= 100
    assert figures["recall_ids"] >= 0.95
    assert figures["recall_names"] >= 0.85 and figures["recall_places"] >= 0.85
    assert figures["preticked_precision"] >= 0.95 and figures["precision"] >= 0.80


@pytest.mark.slow
def test_the_editor_ticks_only_what_it_is_sure_of_surest_first(app, client, auth,
                                                               corpus_instance):
    from storyhub.redaction import service as redaction
    from storyhub.transcripts import service as transcripts

    story_id = corpus_instance.data["ids"]["housing-1"]
    with app.app_context():
        story = db.session.get(Story, story_id)
        reporter = db.session.get(User, corpus_instance.data["reporter"])
        segment = get_transcript(story).segments[0]
        transcripts.edit_segment(story, segment.id, MONOLOGUE, reporter)
        db.session.commit()
        username = reporter.username
    auth.login(username, "quiet lantern orchard 42")
    page = html.unescape(client.get(f"/stories/{story_id}/transcript").get_data(as_text=True))
    boxes = re.findall(r'<input type="checkbox" name="offer" value="([^"]+)" id="offer-\d+"'
                       r'( checked)?>\s*<label[^>]*><strong>([^<]+)</strong>', page)
    ticked = [text for _, checked, text in boxes if checked]
    unticked = [text for _, checked, text in boxes if not checked]
    assert set(TICKED) <= set(ticked) and set(UNTICKED) <= set(unticked)
    assert [bool(checked) for _, checked, _ in boxes] == [True] * len(ticked) + [False] * len(
        unticked), "the ticked ones first"
    assert page.index("Less sure") > page.index(f"<strong>{ticked[-1]}</strong>")
    # One click on "Redact ticked" redacts what was ticked, and nothing else.
    response = client.post(f"/stories/{story_id}/transcript/redactions", data={
        "decision": "accept", "offer": [value for value, checked, _ in boxes if checked]})
    assert response.status_code == 302
    with app.app_context():
        story = db.session.get(Story, story_id)
        reporter = db.session.get(User, corpus_instance.data["reporter"])
        left = {o.suggestion.text: o.preticked for o in redaction.offers(story, reporter)}
        assert left == dict.fromkeys(unticked, False)
