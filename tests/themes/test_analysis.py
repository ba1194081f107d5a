"""Theme analysis on stories with known themes: real BERTopic, the real queue, real consent.

Most tests start from a copy of one prepared instance holding the twelve corpus stories (real
intake, transcripts stored in tests/data), so they assert what a facilitator needs on the same
words on every machine. `test_themes_from_real_audio` runs real audio through a real worker,
Whisper and BERTopic end to end. Model output can differ a little between CPUs, so no test
asserts an exact number of themes: they assert how the known themes are grouped.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict

import av
import pytest
from sqlalchemy import select

from storyhub import dates
from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story
from storyhub.themes import modeling, service
from storyhub.themes.models import Passage, RunStatus, Theme, ThemePassage, ThemeRun
from storyhub.transcripts.models import Transcript, Word
from tests.support.factories import run_now, set_scopes
from tests.support.http import multipart
from tests.support.theme_corpus import CORPUS, THEME_OF
from tests.support.workers import FAST_JOBS, Worker, wait_for

pytestmark = pytest.mark.slow
# How far a grouping may stray from the known themes and still be what a facilitator needs:
# each known theme's three stories keep at least two together, and no theme holds more than
# one story from another known theme.
STRAY = 1


@pytest.fixture
def prepared(corpus_instance):
    return corpus_instance


@pytest.fixture
def config_overrides():
    return dict(FAST_JOBS)


@pytest.fixture
def ids(corpus_instance) -> dict[str, int]:
    return corpus_instance.data["ids"]


def partition(app, run_id: int) -> dict[str, set[str]]:
    """Return theme label -> corpus keys of the stories with passages in it."""
    with app.app_context():
        run = db.session.get(ThemeRun, run_id)
        key_of = {s.id: s.title.removeprefix("Story ")
                  for s in db.session.scalars(select(Story))}
        found: dict[str, set[str]] = defaultdict(set)
        for row in service.run_passages(run):
            label = row.theme.label if row.theme else "(none)"
            found[label].add(key_of[row.passage.story_id])
        return dict(found)


def assert_known_themes(groups: dict[str, set[str]], keys, theme_of=THEME_OF,
                        stray: int = STRAY) -> None:
    """Every story placed; known themes kept together and not mixed, within `stray` stories."""
    assert "(none)" not in groups, f"every story is placed: {groups}"
    assert set().union(*groups.values()) == set(keys), groups
    known: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        known[theme_of[key]].add(key)
    for theme, members in known.items():
        together = max(len(members & found) for found in groups.values())
        assert together >= len(members) - stray, f"{theme} is scattered: {groups}"
    for label, found in groups.items():
        main = max(len(found & members) for members in known.values())
        assert len(found) - main <= stray, f"{label!r} mixes known themes: {groups}"


def set_reviewed(app, story_ids, reviewed: bool) -> None:
    """Mark transcripts reviewed or not, as a reporter would, so runs use them or leave them."""
    from storyhub.database import utcnow

    with app.app_context():
        for transcript in db.session.scalars(select(Transcript).where(
                Transcript.story_id.in_(list(story_ids)))):
            transcript.reviewed_at = utcnow() if reviewed else None
        db.session.commit()


@pytest.mark.one_database  # the model's determinism; the rows it stores are covered on both
def test_same_input_gives_same_themes(app, make_user, ids):
    facilitator = make_user(Role.FACILITATOR)
    first = run_now(app, facilitator)
    groups = partition(app, first)
    assert_known_themes(groups, ids)
    assert partition(app, run_now(app, facilitator)) == groups
    # Readable labels from the words of the stories.
    with app.app_context():
        labels = " ".join(t.label for t in db.session.get(ThemeRun, first).themes)
    assert re.search(r"hostel|housing|homeless|flat|landlord|council", labels, re.I), labels
    assert re.search(r"heroin|alcohol|drug|rehab|recovery", labels, re.I), labels


# Words the corpus stories say (tests/data/theme_corpus.json), each kept in a run's vocabulary.
SAID = ("methadone", "forklift", "guarantor", "hostel", "landlord")


def test_saved_model_is_sealed_and_opens_for_its_run(app, make_user, runner, ids):
    """The saved model holds every story's words: on disk only sealed, the run opens it."""
    from pathlib import Path

    from storyhub.sealed import KeyDestroyed, is_sealed, load_master_keys, unseal_to
    from storyhub.storage import get_storage

    run_id = run_now(app, make_user(Role.FACILITATOR))
    # After a master key rotation the model is read with the new key alone.
    entry = runner.invoke(args=["new-master-key"]).stdout.strip().splitlines()[0]
    old_entries = (Path(app.instance_path) / "master.keys").read_text().strip()
    app.extensions["storyhub.master_keys"] = load_master_keys(f"{entry},{old_entries}")
    result = runner.invoke(args=["rewrap-keys"])
    assert result.exit_code == 0 and "1 theme model keys" in result.output, result.output
    app.extensions["storyhub.master_keys"] = load_master_keys(entry)
    with app.app_context():
        run = db.session.get(ThemeRun, run_id)
        files = sorted(get_storage().path(run.model_key).iterdir())
        assert {"config.json", "topics.json", "ctfidf_config.json",
                "topic_embeddings.safetensors"} <= {f.name for f in files}
        for file in files:
            assert is_sealed(file), file.name
            raw = file.read_bytes().lower()
            assert [word for word in SAID if word.encode() in raw] == [], file.name
        # No plain copy is left beside the stored files either.
        left = [f for f in get_storage().tmp.rglob("*") if f.is_file()
                and b"methadone" in f.read_bytes().lower()]
        assert left == []

        model = service.load_run_model(run)
        assert all(word in model.vectorizer_model.vocabulary_ for word in SAID)
        assert len([t for t in model.get_topics() if t != -1]) == len(run.themes)

        # Without its key (the model was let go of), nothing opens it.
        token, run.model_wrapped_key = run.model_wrapped_key, None
        with pytest.raises(KeyDestroyed):
            service.load_run_model(run)
        # A model saved before models were sealed still opens.
        run.model_wrapped_key = token
        key = service.model_data_key(run)
        for file in files:
            unseal_to(file, file.with_suffix(".plain"), key, f"{run.model_key}/{file.name}")
            file.with_suffix(".plain").replace(file)
        run.model_wrapped_key = None
        assert service.load_run_model(run).vectorizer_model.vocabulary_.keys() >= set(SAID)
        db.session.rollback()


def test_a_story_withdrawn_while_its_run_works_leaves_it_as_it_is_stored(app, make_user, ids):
    from storyhub.jobs import runner as jobs
    from storyhub.themes import story_changes

    facilitator, admin = make_user(Role.FACILITATOR), make_user(Role.ADMIN)
    leaving = ids["housing-1"]
    with app.app_context():
        run = service.start_run(facilitator)
        db.session.commit()
        run_id, job = run.id, run.job
        handler = jobs.handler_for(service.KIND)
        prepared = handler.prepare(job)
        db.session.commit()
        assert leaving in prepared.used
        # Withdrawn now, while the worker fits the model (no worker here: the erasure waits).
        stories.withdraw_consent(db.session.get(Story, leaving), db.session.get(User, admin))
        db.session.commit()
        analysis = handler.work(prepared, lambda _progress: None)
        handler.publish(db.session.get(Job, job.id), prepared, analysis)
        db.session.commit()
        run = db.session.get(ThemeRun, run_id)
        assert run.stale_reason == story_changes.WITHDRAWN
        assert run.model_key is None and run.model_wrapped_key is None
        others: dict[int, list[str]] = defaultdict(list)
        for row in db.session.scalars(select(ThemePassage).where(
                ThemePassage.run_id == run_id, ThemePassage.story_id != leaving)):
            others[row.theme_id].append(row.passage.text.lower())
        for theme in run.themes:
            for keyword in theme.keywords:  # each still said in the theme by another story
                # in any form ("license condition" in "license conditions", "story" in "stories")
                pattern = r"\b" + r"\W+".join(re.escape(w.removesuffix("y")) + r"\w*"
                                               for w in keyword.lower().split()) + r"\b"
                assert any(re.search(pattern, text) for text in others[theme.id]), keyword
        assert not list(get_storage_folder(app, "themes").glob(f"run-{run_id}*"))


def get_storage_folder(app, key: str):
    from storyhub.storage import get_storage

    with app.app_context():
        return get_storage().path(key)


def test_board_says_which_stories_gave_no_passage_and_why(app, client, auth, ids):
    facilitator = auth.login_as(Role.FACILITATOR)
    with app.app_context():
        transcript = db.session.scalar(select(Transcript).where(
            Transcript.story_id == ids["work-3"]))
        for segment in transcript.segments[1:]:
            transcript.segments.remove(segment)
        first = transcript.segments[0]
        first.text = "Yeah. Okay, thanks."
        first.words = [Word(position=i, start=first.start + i, end=first.start + i + 0.5,
                            text=w, probability=0.9)
                       for i, w in enumerate(first.text.split())]
        db.session.commit()
    run_id = run_now(app, facilitator)
    for url in (f"/themes/runs/{run_id}", f"/themes/runs/{run_id}/board"):
        page = client.get(url).get_data(as_text=True)
        section = page.split("Stories that gave no passage")[1]
        assert "Story work-3" in section, url
        assert "only short replies or fillers" in section, url
        assert "Story work-1" not in section


def test_re_run_embeds_only_new_passages(app, make_user, ids):
    facilitator = make_user(Role.FACILITATOR)
    later = [ids[s.key] for s in CORPUS[9:]]
    set_reviewed(app, later, False)
    run_now(app, facilitator)
    with app.app_context():
        cached = {p.id: p.embedding for p in db.session.scalars(select(Passage))}
    set_reviewed(app, later, True)
    calls = []
    real_embed = modeling.embed

    def counting(texts, model=""):
        calls.append(len(texts))
        return real_embed(texts, model)

    modeling.embed = counting
    try:
        run_now(app, facilitator)
    finally:
        modeling.embed = real_embed
    with app.app_context():
        new = db.session.scalars(select(Passage).where(Passage.id.not_in(cached))).all()
        assert {p.story_id for p in new} == set(later)
        assert sum(calls) == len(new) > 0
        for passage in db.session.scalars(select(Passage).where(Passage.id.in_(cached))):
            assert passage.embedding == cached[passage.id]


def _theme_with(app, run_id: int, key: str) -> Theme:
    with app.app_context():
        story = db.session.scalar(select(Story).where(Story.title == f"Story {key}"))
        row = db.session.scalar(select(ThemePassage).join(Passage).where(
            ThemePassage.run_id == run_id, Passage.story_id == story.id))
        theme = db.session.get(Theme, row.theme_id)
        db.session.expunge(theme)
        return theme


def test_edits_persist_and_survive_a_re_run(app, client, auth, ids):
    facilitator = auth.login_as(Role.FACILITATOR)
    run_id = run_now(app, facilitator)
    with app.app_context():
        found = len(db.session.get(ThemeRun, run_id).themes)
    housing = _theme_with(app, run_id, "housing-1")
    work = _theme_with(app, run_id, "work-2")
    drugs = _theme_with(app, run_id, "drugs-1")
    officer = _theme_with(app, run_id, "officer-1")
    assert len({housing.id, work.id, drugs.id, officer.id}) == 4, "known themes kept apart"

    # Rename and describe, through the page.
    client.post(f"/themes/runs/{run_id}/themes/{housing.id}/rename",
                data={"label": "A safe place to live", "description": "Housing after prison"})
    # Merge work into drugs (a facilitator's choice, confirmed).
    client.post(f"/themes/runs/{run_id}/themes/{drugs.id}/merge",
                data={"sources": str(work.id), "confirm": "yes"})
    client.post(f"/themes/runs/{run_id}/themes/{drugs.id}/rename",
                data={"label": "Work and recovery", "description": ""})
    # Split the officer theme in two.
    client.post(f"/themes/runs/{run_id}/themes/{officer.id}/split", data={"parts": "2"})
    # Move a passage of drugs-3 into housing, and pin one housing quote.
    with app.app_context():
        moved = db.session.scalar(select(Passage).where(Passage.story_id == ids["drugs-3"]))
        pinned = db.session.scalar(select(Passage).where(Passage.story_id == ids["housing-2"]))
        moved_id, pinned_id = moved.id, pinned.id
    client.post(f"/themes/runs/{run_id}/passages/{moved_id}/move",
                data={"theme_id": str(housing.id)})
    client.post(f"/themes/runs/{run_id}/passages/{pinned_id}/pin", data={"pinned": "1"})

    def state(run_id):
        with app.app_context():
            run = db.session.get(ThemeRun, run_id)
            split_parts = [t for t in run.themes if t.split_of is not None
                           or any(x.split_of == t.id for x in run.themes)]
            moved_row = db.session.get(ThemePassage, (run_id, moved_id))
            pinned_row = db.session.get(ThemePassage, (run_id, pinned_id))
            work_row = db.session.scalar(select(ThemePassage).join(Passage).where(
                ThemePassage.run_id == run_id, Passage.story_id == ids["work-2"]))
            return {"labels": {t.label for t in run.themes}, "themes": len(run.themes),
                    "split_parts": len(split_parts),
                    "moved_to": moved_row.theme.label if moved_row.theme else None,
                    "pinned": pinned_row.pinned,
                    "work_in": work_row.theme.label,
                    "description": next(t.description for t in run.themes
                                        if t.label == "A safe place to live")}

    before = state(run_id)
    assert {"A safe place to live", "Work and recovery"} <= before["labels"]
    assert before["themes"] == found  # one merged away, one split into two
    assert before["split_parts"] == 2
    assert before["moved_to"] == "A safe place to live"
    assert before["pinned"] is True
    assert before["work_in"] == "Work and recovery"
    assert before["description"] == "Housing after prison"

    # A re-run over the same stories finds the same themes again and takes the edits over.
    assert state(run_now(app, facilitator)) == before


def test_hidden_theme_stays_off_the_board_and_map(app, client, auth):
    facilitator = auth.login_as(Role.FACILITATOR)
    run_id = run_now(app, facilitator)
    with app.app_context():
        found = len(db.session.get(ThemeRun, run_id).themes)
    drugs = _theme_with(app, run_id, "drugs-2")
    client.post(f"/themes/runs/{run_id}/themes/{drugs.id}/hide", data={"hidden": "1"})
    board = client.get(f"/themes/runs/{run_id}/board").get_data(as_text=True)
    assert drugs.label not in board
    assert board.count('class="board-card"') == found - 1
    names = {t["name"] for t in client.get(f"/themes/runs/{run_id}/map.json").json["traces"]}
    assert drugs.label not in names and len(names) == found - 1
    # A re-run keeps it hidden.
    run2 = run_now(app, facilitator)
    assert _theme_with(app, run2, "drugs-2").hidden


def test_story_without_analysis_consent_never_appears(app, client, auth, ids):
    facilitator = auth.login_as(Role.FACILITATOR)
    set_scopes(app, ids["housing-3"], set(Scope) - {Scope.TRANSCRIBE_ANALYSE})
    page = client.get("/themes/").get_data(as_text=True)
    assert "11 stories are ready" in page
    assert "1 is left out because consent does not cover analysis" in page
    run_id = run_now(app, facilitator)
    with app.app_context():
        assert db.session.scalars(select(Passage).where(
            Passage.story_id == ids["housing-3"])).all() == []
    secret = "guarantor"
    for url in (f"/themes/runs/{run_id}", f"/themes/runs/{run_id}/board",
                f"/themes/runs/{run_id}/map.json"):
        assert secret not in client.get(url).get_data(as_text=True)
    # Consent withdrawn after a run: the story leaves every theme page at once.
    with app.app_context():
        story = db.session.get(Story, ids["housing-1"])
        text = db.session.scalar(select(Passage.text).where(Passage.story_id == story.id))
        stories.withdraw_consent(story, db.session.get(User, facilitator))
        db.session.commit()
    snippet = " ".join(text.split()[:6])
    for url in (f"/themes/runs/{run_id}", f"/themes/runs/{run_id}/board",
                f"/themes/runs/{run_id}/map.json"):
        assert snippet not in client.get(url).get_data(as_text=True), url
    # ...and a new run leaves it out.
    with app.app_context():
        run = service.start_run(facilitator)
        db.session.commit()
        assert ids["housing-1"] not in run.inputs["stories"]


def test_board_has_quotes_and_working_audio_spans(app, client, auth, ids):
    facilitator = auth.login_as(Role.FACILITATOR)
    set_scopes(app, ids["work-2"], set(Scope) - {Scope.PLAY_IN_WORKSHOPS})
    set_scopes(app, ids["drugs-3"], set(Scope) - {Scope.QUOTE_IN_PACKS})
    run_id = run_now(app, facilitator)
    with app.app_context():
        run = db.session.get(ThemeRun, run_id)
        quotable = {t.label: len({r.passage.story_id for r in service.run_passages(run)
                                  if r.theme_id == t.id and r.passage.story_id != ids["drugs-3"]})
                    for t in run.themes}
    page = client.get(f"/themes/runs/{run_id}/board").get_data(as_text=True)
    cards = page.split('class="board-card"')[1:]
    assert len(cards) == len(quotable)
    for card in cards:
        label = next(name for name in quotable if name in card)
        quotes = card.count('<li class="quote">')
        assert min(2, quotable[label]) <= quotes <= 4, (label, quotes)
    # Quoting needs consent; the staff story about drug treatment must not be quoted.
    assert "referral to treatment" not in page
    buttons = re.findall(r'data-seconds="([\d.]+)" data-src="([^"]+)"', page)
    assert buttons, "quotes with consent to play have a play button"
    with app.app_context():
        work_2 = db.session.scalar(select(ThemePassage.passage_id).join(Passage).where(
            ThemePassage.run_id == run_id, Passage.story_id == ids["work-2"]).limit(1))
    assert f"/passages/{work_2}/clip.m4a" not in page
    for seconds, src in buttons:
        response = client.get(src, buffered=True)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "audio/mp4"
        with av.open(io.BytesIO(response.data)) as clip:
            # The server sends the quote's stretch only, whatever the page's script does.
            assert abs(float(clip.duration / av.time_base) - float(seconds)) < 0.5, src
    refused = client.get(f"/themes/runs/{run_id}/passages/{work_2}/clip.m4a")
    assert refused.status_code == 403
    assert "played in workshops" in refused.json["error"]
    # Pinned quotes come first on the board.
    with app.app_context():
        row = db.session.scalar(select(ThemePassage).join(Passage).where(
            ThemePassage.run_id == run_id, Passage.story_id == ids["officer-3"]))
        pid, text = row.passage_id, row.passage.text
    client.post(f"/themes/runs/{run_id}/passages/{pid}/pin", data={"pinned": "1"})
    page = client.get(f"/themes/runs/{run_id}/board").get_data(as_text=True)
    card = next(c for c in page.split('class="board-card"') if text[:40] in c)
    assert card.index(text[:40]) < card.index("</blockquote>")


def test_perspectives_show_shared_and_single_group_themes(app, client, auth, ids):
    facilitator = auth.login_as(Role.FACILITATOR)
    # Leave out the staff drug story: drugs become a theme of people on probation only.
    set_reviewed(app, [ids["drugs-3"]], False)
    run_id = run_now(app, facilitator)
    page = client.get(f"/themes/runs/{run_id}").get_data(as_text=True)
    shared = page.split("<h2>Shared by staff and people on probation</h2>")[1].split("<h2>")[0]
    drugs = _theme_with(app, run_id, "drugs-1").label
    housing = _theme_with(app, run_id, "housing-1").label
    assert housing in shared and drugs not in shared
    assert "Only people on probation" in page


def test_seeded_themes_use_the_facilitators_names(app, make_user, ids):
    facilitator = make_user(Role.FACILITATOR)
    run_id = run_now(app, facilitator, "Accommodation: housing, hostel, homeless, landlord\n"
                                       "Employment: job, work, employer")
    groups = partition(app, run_id)
    for name, theme in (("Accommodation", "housing"), ("Employment", "work")):
        assert {THEME_OF[k] for k in groups[name]} == {theme}, groups
        assert len(groups[name]) >= 3 - STRAY, groups


def test_too_few_stories_and_a_second_run_are_refused(app, client, auth, ids):
    auth.login_as(Role.FACILITATOR)
    ready = {ids["housing-1"], ids["work-1"]}
    set_reviewed(app, set(ids.values()) - ready, False)
    page = client.post("/themes/runs", follow_redirects=True).get_data(as_text=True)
    assert "needs at least 3 stories" in page and "2 are ready" in page
    with app.app_context():
        assert db.session.scalars(select(ThemeRun)).all() == []
    set_reviewed(app, [ids["drugs-2"]], True)
    assert client.post("/themes/runs").status_code == 302
    page = client.post("/themes/runs", follow_redirects=True).get_data(as_text=True)
    assert "Run 1 is still working" in page
    with app.app_context():
        assert len(db.session.scalars(select(ThemeRun)).all()) == 1


@pytest.mark.one_database  # the queue's claims on PostgreSQL: test_transcription's kill test
def test_worker_killed_mid_run_finishes_once_on_another(app, make_user, tmp_path):
    """Infrastructure only: a second worker finishes the run and its rows are written once."""
    facilitator = make_user(Role.FACILITATOR)
    with app.app_context():
        run = service.start_run(facilitator)
        db.session.commit()
        run_id, job_id = run.id, run.job_id

    def job():
        with app.app_context():
            found = db.session.get(Job, job_id)
            db.session.expunge(found)
            return found

    first = Worker(app, "doomed", tmp_path)
    try:
        wait_for(lambda: job().progress >= 5, 180, "the first worker to start the run",
                 first.log)
    finally:
        first.kill()
    assert job().status is JobStatus.RUNNING
    second = Worker(app, "rescuer", tmp_path)
    try:
        wait_for(lambda: job().status is JobStatus.DONE, 240,
                 "the second worker to finish the run", second.log)
    finally:
        second.stop()
    assert job().attempts == 2
    with app.app_context():
        run = db.session.get(ThemeRun, run_id)
        assert run.status is RunStatus.DONE
        theme_ids = {t.id for t in run.themes}
        assert theme_ids
        passages = db.session.scalars(select(Passage)).all()
        rows = db.session.scalars(select(ThemePassage).where(
            ThemePassage.run_id == run_id)).all()
        assert len(rows) == len(passages) == len({r.passage_id for r in rows})
        assert {r.theme_id for r in rows} <= theme_ids | {None}


def test_edits_that_cannot_be_done_say_why(app, client, auth):
    facilitator = auth.login_as(Role.FACILITATOR)
    run_id = run_now(app, facilitator)
    with app.app_context():
        run = db.session.get(ThemeRun, run_id)
        theme_id = run.themes[0].id
        labels = [t.label for t in run.themes]
    page = client.post(f"/themes/runs/{run_id}/themes/{theme_id}/rename",
                       data={"label": "   ", "description": ""}, follow_redirects=True)
    assert "Give the theme a name." in page.get_data(as_text=True)
    page = client.post(f"/themes/runs/{run_id}/themes/{theme_id}/merge", data={},
                       follow_redirects=True)
    assert "Choose at least one other theme" in page.get_data(as_text=True)
    page = client.post(f"/themes/runs/{run_id}/themes/{theme_id}/split",
                       data={"parts": "40"}, follow_redirects=True)
    assert "can be split into 2 to" in page.get_data(as_text=True)
    assert client.post(f"/themes/runs/{run_id}/themes/99999/rename",
                       data={"label": "x"}).status_code == 404
    with app.app_context():
        assert [t.label for t in db.session.get(ThemeRun, run_id).themes] == labels


@pytest.mark.engine
class TestFromRealAudio:
    """Real recordings through the real intake, Whisper, review and BERTopic, all on a worker."""

    @pytest.fixture
    def prepared(self):
        return None  # an empty instance: the stories come in through the pages

    def test_themes_from_real_audio(self, app, client, auth, corpus_audio, tmp_path):
        auth.login_as(Role.FACILITATOR)
        keys = [s.key for s in CORPUS]
        for story in CORPUS:
            body, content_type = multipart({
                "title": f"Story {story.key}", "story_type": "snapshot",
                "storyteller_role": story.role, "language": "en",
                "recorded_on": dates.today().isoformat(), "site": "0",
                "consent_transcribe_analyse": "y", "consent_quote_in_packs": "y",
                "consent_method": "spoken", "spoken_at": "0:00",
                "consent_given_on": dates.today().isoformat(),
                "audio": (corpus_audio[story.key].read_bytes(), f"{story.key}.wav")})
            response = client.post("/stories/new", data=body, content_type=content_type)
            assert response.status_code == 302, response.get_data(as_text=True)
        with app.app_context():
            story_ids = {s.title.removeprefix("Story "): s.id
                         for s in db.session.scalars(select(Story))}
        # A new worker warms the theme model up while it transcribes.
        worker = Worker(app, "e2e", tmp_path, STORYHUB_THEME_WARM_UP="1")
        try:
            def transcribed():
                return all(client.get(f"/stories/{i}/status").json["status"] == "transcribed"
                           for i in story_ids.values())

            wait_for(transcribed, 300, "the worker to transcribe 12 stories", worker.log)
            for story_id in story_ids.values():
                response = client.post(f"/stories/{story_id}/transcript/review")
                assert response.status_code in (200, 302)
            assert "12 stories are ready" in client.get("/themes/").get_data(as_text=True)
            assert client.post("/themes/runs").status_code == 302
            progress: list[float] = []

            def finished():
                with app.app_context():
                    data = service.run_status(db.session.scalar(select(ThemeRun)))
                progress.append(data["progress"])
                return data["status"] in ("done", "failed")

            wait_for(finished, 240, "the theme run", worker.log)
            wait_for(lambda: "Theme model warmed up in" in worker.log(), 240,
                     "the worker to warm up the theme model", worker.log)
        finally:
            worker.stop()
        assert "warm-up failed" not in worker.log()
        with app.app_context():
            run = db.session.scalar(select(ThemeRun))
            assert run.status is RunStatus.DONE, run.error
        assert progress == sorted(progress), "progress never goes back"
        assert_known_themes(partition(app, run.id), keys)
        # The model is stored with safetensors, not pickle.
        with app.app_context():
            from storyhub.storage import get_storage

            names = {p.name for p in get_storage().path(run.model_key).iterdir()}
        assert "topic_embeddings.safetensors" in names
        assert not [n for n in names if n.endswith((".pkl", ".pickle", ".bin"))]
        page = client.get(f"/themes/runs/{run.id}").get_data(as_text=True)
        assert re.search(r"hostel|housing|homeless|flat|landlord|council", page, re.I)
        assert re.search(r"heroin|alcohol|drug|rehab|recovery", page, re.I)
