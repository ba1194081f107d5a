"""Theme analysis: spoken stories with known themes, through real Whisper, BERTopic, the queue."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest
from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story
from storyhub.themes import modeling, service
from storyhub.themes.models import Passage, RunStatus, Theme, ThemePassage, ThemeRun
from storyhub.themes.passages import split_passages
from storyhub.transcripts.models import Segment, Transcript, Word

from .theme_corpus import ALL_SCOPES, CORPUS, seed_stories, transcribe_corpus
from .workers import FAST_JOBS, Worker, wait_for

pytestmark = pytest.mark.slow
THEME_OF = {s.key: s.theme for s in CORPUS}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Every corpus story spoken and transcribed once by the real model."""
    return transcribe_corpus(tmp_path_factory.mktemp("theme-corpus"))


@pytest.fixture
def config_overrides():
    return dict(FAST_JOBS)


def run_now(app, actor_id: int, seeds: str = "") -> int:
    """Queue a run and do it here, as a worker would; return the run id."""
    with app.app_context():
        run = service.start_run(actor_id, seeds)
        db.session.commit()
        assert service.run_theme_job(run.job_id) == "done"
        return run.id


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


def test_known_themes_come_out_one_each_through_the_worker(app, client, auth, corpus,
                                                           tmp_path):
    facilitator = auth.login_as(Role.FACILITATOR)
    ids = seed_stories(app, corpus, facilitator)
    page = client.get("/themes/")
    assert "12 stories are ready" in page.get_data(as_text=True)
    response = client.post("/themes/runs", data={"seeds": ""})
    assert response.status_code == 302
    worker = Worker(app, "themes", tmp_path)
    try:
        seen = []

        def finished():
            with app.app_context():
                run = db.session.scalar(select(ThemeRun))
                data = service.run_status(run)
                seen.append(data["progress"])
                return data["status"] in ("done", "failed")

        wait_for(finished, 240, "the theme run", worker.log)
    finally:
        worker.stop()
    with app.app_context():
        run = db.session.scalar(select(ThemeRun))
        assert run.status is RunStatus.DONE, run.error
    assert seen == sorted(seen), "progress never goes back"
    groups = partition(app, run.id)
    assert "(none)" not in groups, "every story is placed"
    assert len(groups) == 4, groups
    for keys in groups.values():
        assert len({THEME_OF[k] for k in keys}) == 1, groups
    assert {k for keys in groups.values() for k in keys} == set(ids)
    # The model is stored with safetensors, not pickle.
    with app.app_context():
        from storyhub.storage import get_storage

        folder = get_storage().path(run.model_key)
        names = {p.name for p in folder.iterdir()}
        assert "topic_embeddings.safetensors" in names
        assert not [n for n in names if n.endswith((".pkl", ".pickle", ".bin"))]
    # Readable labels from the words of the stories.
    page = client.get(f"/themes/runs/{run.id}").get_data(as_text=True)
    assert re.search(r"hostel|housing|homeless|flat|landlord", page, re.I)
    assert re.search(r"heroin|alcohol|drug|rehab|recovery", page, re.I)


def test_same_input_gives_same_themes(app, make_user, corpus):
    facilitator = make_user(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator)
    first = run_now(app, facilitator)
    second = run_now(app, facilitator)
    assert partition(app, first) == partition(app, second)


def test_re_run_embeds_only_new_passages(app, make_user, corpus):
    facilitator = make_user(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator, keys=[s.key for s in CORPUS[:9]])
    run_now(app, facilitator)
    with app.app_context():
        cached = {p.id: p.embedding for p in db.session.scalars(select(Passage))}
    seed_stories(app, corpus, facilitator, keys=[s.key for s in CORPUS[9:]])
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


def test_edits_persist_and_survive_a_re_run(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    ids = seed_stories(app, corpus, facilitator)
    run_id = run_now(app, facilitator)
    housing = _theme_with(app, run_id, "housing-1")
    work = _theme_with(app, run_id, "work-1")
    drugs = _theme_with(app, run_id, "drugs-1")
    officer = _theme_with(app, run_id, "officer-1")

    # Rename and describe, through the page.
    client.post(f"/themes/runs/{run_id}/themes/{housing.id}/rename",
                data={"label": "A safe place to live", "description": "Housing after prison"})
    # Merge work into drugs (a facilitator's choice), hide the result.
    client.post(f"/themes/runs/{run_id}/themes/{drugs.id}/merge",
                data={"sources": str(work.id)})
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
            labels = {t.label for t in run.themes}
            officer_parts = [t for t in run.themes if t.split_of is not None
                             or any(x.split_of == t.id for x in run.themes)]
            moved_row = db.session.get(ThemePassage, (run_id, moved_id))
            pinned_row = db.session.get(ThemePassage, (run_id, pinned_id))
            return {"labels": labels, "themes": len(run.themes),
                    "split_parts": len(officer_parts),
                    "moved_to": moved_row.theme.label if moved_row.theme else None,
                    "pinned": pinned_row.pinned,
                    "description": next(t.description for t in run.themes
                                        if t.label == "A safe place to live")}

    before = state(run_id)
    assert {"A safe place to live", "Work and recovery"} <= before["labels"]
    assert before["themes"] == 4  # 4 found, one merged away, one split into two
    assert before["split_parts"] == 2
    assert before["moved_to"] == "A safe place to live"
    assert before["pinned"] is True
    assert before["description"] == "Housing after prison"

    # A re-run over the same stories finds the same themes again and takes the edits over.
    after = state(run_now(app, facilitator))
    assert after == before
    # The merged theme holds the work and drugs stories.
    groups = partition(app, latest_run_id(app))
    assert groups["Work and recovery"] == {k for k in ids if THEME_OF[k] in ("work", "drugs")
                                           and k != "drugs-3"}


def latest_run_id(app) -> int:
    with app.app_context():
        return max(r.id for r in db.session.scalars(select(ThemeRun)))


def test_hidden_theme_stays_off_the_board_and_map(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator)
    run_id = run_now(app, facilitator)
    drugs = _theme_with(app, run_id, "drugs-2")
    client.post(f"/themes/runs/{run_id}/themes/{drugs.id}/hide", data={"hidden": "1"})
    board = client.get(f"/themes/runs/{run_id}/board").get_data(as_text=True)
    assert drugs.label not in board
    names = {t["name"] for t in client.get(f"/themes/runs/{run_id}/map.json").json["traces"]}
    assert drugs.label not in names and len(names) == 3
    # A re-run keeps it hidden.
    run2 = run_now(app, facilitator)
    assert _theme_with(app, run2, "drugs-2").hidden


def test_story_without_analysis_consent_never_appears(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    no_analysis = ALL_SCOPES - {Scope.TRANSCRIBE_ANALYSE}
    ids = seed_stories(app, corpus, facilitator, scopes={"housing-3": no_analysis})
    page = client.get("/themes/").get_data(as_text=True)
    assert "11 stories are ready" in page
    assert "1 is left out because consent does not cover analysis" in page
    run_id = run_now(app, facilitator)
    with app.app_context():
        assert db.session.scalars(select(Passage).where(
            Passage.story_id == ids["housing-3"])).all() == []
    secret = "deposit and a guarantor"
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
    # ...and a run started before the withdrawal leaves it out in the worker.
    with app.app_context():
        run = service.start_run(facilitator)
        db.session.commit()
        assert ids["housing-1"] not in run.inputs["stories"]


def test_board_has_quotes_and_working_audio_spans(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    no_play = ALL_SCOPES - {Scope.PLAY_IN_WORKSHOPS}
    no_quote = ALL_SCOPES - {Scope.QUOTE_IN_PACKS}
    ids = seed_stories(app, corpus, facilitator,
                       scopes={"work-2": no_play, "drugs-3": no_quote})
    run_id = run_now(app, facilitator)
    page = client.get(f"/themes/runs/{run_id}/board").get_data(as_text=True)
    cards = page.count('class="board-card"')
    assert cards == 4
    quotes = re.findall(r'<li class="quote">', page)
    assert 2 * cards <= len(quotes) <= 4 * cards
    # Quoting needs consent; the staff story about drug treatment must not be quoted.
    assert "fast referral to treatment" not in page and "referral to treatment" not in page
    buttons = re.findall(r'data-src="([^"]+)" data-start="([\d.]+)" data-end="([\d.]+)"', page)
    assert buttons, "quotes with consent to play have a play button"
    assert f"/themes/stories/{ids['work-2']}/audio" not in page
    with app.app_context():
        durations = {s.id: s.recording.duration_seconds for s in db.session.scalars(select(Story))}
    for src, start, end in buttons:
        story_id = int(src.split("/")[-2])
        assert 0 <= float(start) < float(end) <= durations[story_id] + 0.5
        response = client.get(src, headers={"Range": "bytes=0-99"})
        assert response.status_code == 206
        assert response.headers["Content-Type"] == "audio/mp4"
        response.close()
    refused = client.get(f"/themes/stories/{ids['work-2']}/audio")
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


def test_perspectives_show_shared_and_single_group_themes(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    # Leave out the staff drug story: drugs become a theme of people on probation only.
    seed_stories(app, corpus, facilitator, keys=[s.key for s in CORPUS if s.key != "drugs-3"])
    run_id = run_now(app, facilitator)
    page = client.get(f"/themes/runs/{run_id}").get_data(as_text=True)
    shared = page.split("<h2>Shared by staff and people on probation</h2>")[1].split("<h2>")[0]
    drugs = _theme_with(app, run_id, "drugs-1").label
    housing = _theme_with(app, run_id, "housing-1").label
    assert housing in shared and drugs not in shared
    assert "Only people on probation" in page


def test_seeded_themes_use_the_facilitators_names(app, make_user, corpus):
    facilitator = make_user(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator)
    run_id = run_now(app, facilitator, "Accommodation: housing, hostel, homeless, landlord\n"
                                       "Employment: job, work, employer")
    groups = partition(app, run_id)
    assert {THEME_OF[k] for k in groups["Accommodation"]} == {"housing"}
    assert {THEME_OF[k] for k in groups["Employment"]} == {"work"}


def test_too_few_stories_and_a_second_run_are_refused(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator, keys=["housing-1", "work-1"])
    seed_stories(app, corpus, facilitator, keys=["drugs-1"], reviewed=False)
    page = client.post("/themes/runs", follow_redirects=True).get_data(as_text=True)
    assert "needs at least 3 stories" in page and "2 are ready" in page
    with app.app_context():
        assert db.session.scalars(select(ThemeRun)).all() == []
    seed_stories(app, corpus, facilitator, keys=["drugs-2"])
    assert client.post("/themes/runs").status_code == 302
    page = client.post("/themes/runs", follow_redirects=True).get_data(as_text=True)
    assert "Run 1 is still working" in page
    with app.app_context():
        assert len(db.session.scalars(select(ThemeRun)).all()) == 1


def test_adaptive_model_on_tiny_and_mid_corpora_is_repeatable():
    """No passage left out on a tiny corpus; at most 5% on a bigger one; same input, same output."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 32))
    for n in (12, 400):
        points = np.concatenate([c + rng.normal(scale=0.6, size=(n // 5, 32)) for c in centres])
        params = modeling.params_for(len(points))
        a = modeling.AdaptiveClusterer(params).fit(
            modeling.AdaptiveReducer(params).fit_transform(points)).labels_
        b = modeling.AdaptiveClusterer(params).fit(
            modeling.AdaptiveReducer(params).fit_transform(points)).labels_
        assert (a == b).all()
        assert (a == -1).mean() <= 0.05
        assert len(set(a.tolist()) - {-1}) >= 5


def _transcript(turns: list[tuple[str, str]]) -> Transcript:
    """Build a transcript in memory: (speaker, text) turns, each word 0.4 s long."""
    transcript = Transcript(speakers={"S1": "Reporter", "S2": "Storyteller"})
    clock = 0.0
    for pos, (speaker, text) in enumerate(turns):
        words = []
        for i, word in enumerate(text.split()):
            words.append(Word(position=i, start=clock, end=clock + 0.3, text=word,
                              probability=0.9))
            clock += 0.4
        transcript.segments.append(Segment(position=pos, start=words[0].start,
                                           end=words[-1].end, speaker=speaker, text=text,
                                           words=words))
    return transcript


SENTENCE = "I waited {} weeks for a flat and the council kept losing my forms again."


def test_passages_keep_to_sentences_speakers_and_length():
    monologue = " ".join(SENTENCE.format(n) for n in range(25))  # 25 sentences of 15 words
    found = split_passages(_transcript([("S2", monologue)]))
    assert all(40 <= p.word_count <= 150 for p in found), [p.word_count for p in found]
    assert all(p.text.endswith(".") for p in found)
    assert " ".join(p.text for p in found) == monologue
    assert found[0].start == 0.0 and found[1].start == pytest.approx(found[0].end + 0.1)

    dialogue = _transcript([
        ("S1", "So tell me what happened when you first came out of prison?"),
        ("S2", " ".join(SENTENCE.format(n) for n in range(5))),
        ("S1", "Yeah."),
        ("S2", " ".join(SENTENCE.format(n) for n in range(5, 8))),
        ("S1", "Mm-hm, right."),
    ])
    found = split_passages(dialogue)
    assert [p.speaker for p in found] == ["Reporter", "Storyteller"]
    # Back-channel ("Yeah.") is skipped and does not break the storyteller's turn.
    assert found[1].word_count == 8 * 15
    assert "Yeah" not in " ".join(p.text for p in found)


def test_worker_killed_mid_run_finishes_once_on_another(app, make_user, corpus, tmp_path):
    facilitator = make_user(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator)
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
        assert len(run.themes) == 4
        passages = db.session.scalars(select(Passage)).all()
        rows = db.session.scalars(select(ThemePassage).where(
            ThemePassage.run_id == run_id)).all()
        assert len(rows) == len(passages) == 12


def test_edits_that_cannot_be_done_say_why(app, client, auth, corpus):
    facilitator = auth.login_as(Role.FACILITATOR)
    seed_stories(app, corpus, facilitator, keys=[s.key for s in CORPUS[:6]])
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


def test_worker_warms_up_the_theme_model(app, tmp_path):
    """A new worker process compiles the model's code in the background and says so."""
    worker = Worker(app, "warm", tmp_path, STORYHUB_THEME_WARM_UP="1")
    try:
        wait_for(lambda: "Theme model warmed up in" in worker.log(), 240,
                 "the worker to warm up the theme model", worker.log)
    finally:
        worker.stop()
    assert "warm-up failed" not in worker.log()
