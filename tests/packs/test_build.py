"""Workshop packs from a real theme run: quotes verbatim and consented, every format, versions.

Every test starts from a copy of one prepared instance: the twelve corpus stories (real
intake, transcripts stored in tests/data) and one finished theme run. The run's themes can
differ a little between CPUs, so no test names a theme: they take whatever themes the run
found and check what a facilitator needs of the pack built from them.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import av
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from storyhub import dates
from storyhub.accounts.models import User
from storyhub.extensions import db
from storyhub.packs import exports, outcomes, render, service, shaping
from storyhub.packs.models import Workshop, WorkshopPack, WorkshopQuote
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story, StorytellerIdentity
from storyhub.themes.models import ThemeRun
from storyhub.transcripts.models import Segment, Transcript, Word
from storyhub.transcripts.text import text_between
from tests.support.factories import make_pack, make_workshop, set_scopes, withdraw_consent

pytestmark = pytest.mark.slow


@pytest.fixture
def prepared(themed_instance):
    return themed_instance


@pytest.fixture
def data(themed_instance) -> dict:
    return themed_instance.data


def quoted_story_ids(app, workshop_id: int) -> list[int]:
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        return [q.story_id for t in workshop.themes for q in t.quotes]


def edit_first_quote_transcript(app, workshop_id: int, new: str = "teapot") -> tuple[int, str]:
    """Change a word inside the first quote's transcript; return (story id, the new word)."""
    with app.app_context():
        quote = db.session.get(Workshop, workshop_id).themes[0].quotes[0]
        transcript = db.session.scalar(select(Transcript).where(
            Transcript.story_id == quote.story_id))
        word = next(w for seg in transcript.segments for w in seg.words
                    if quote.start <= (w.start + w.end) / 2 <= quote.end and len(w.text) > 3)
        word.text, word.edited = f" {new}", True
        segment = db.session.get(Segment, word.segment_id)
        segment.text = "".join(w.text for w in segment.words).strip()
        db.session.commit()
        return quote.story_id, new


def test_workshop_from_a_run_quotes_consented_stories_verbatim(app, data):
    unquotable, silent = list(data["ids"].values())[:2]
    set_scopes(app, unquotable, set(Scope) - {Scope.QUOTE_IN_PACKS})
    set_scopes(app, silent, set(Scope) - {Scope.PLAY_IN_WORKSHOPS})
    workshop_id = make_workshop(app, data)
    version, made = make_pack(app, workshop_id, data["facilitator"])
    assert (version, made) == (1, True)
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        assert 1 <= len(workshop.themes) <= service.MAX_THEMES
        quotes = [q for t in workshop.themes for q in t.quotes]
        assert all(len(t.quotes) <= service.MAX_QUOTES for t in workshop.themes)
        assert unquotable not in {q.story_id for q in quotes}
        # One quote per story until every story has had a turn.
        per_story = [q.story_id for q in quotes]
        assert len(set(per_story)) == min(len(per_story), len(data["ids"]) - 1)
        pack = workshop.packs[0]
        for quote in quotes:
            transcript = db.session.scalar(select(Transcript).where(
                Transcript.story_id == quote.story_id))
            assert quote.text == text_between(transcript, quote.speaker, quote.start,
                                              quote.end, service.Form.REDACTED)
            line = (f"story {service.story_code(quote.story_id)} · "
                    f"{render.clock(quote.start)}–{render.clock(quote.end)}")
            assert render.md_escape(quote.text) in pack.markdown
            assert line in pack.markdown
        clips = {q["story_id"]: q["clip"] for t in pack.content["themes"] for q in t["quotes"]}
        assert all(bool(clip) == (story_id != silent) for story_id, clip in clips.items())
        # How the stories were gathered: counts from the run's stories.
        stories = db.session.scalars(select(Story)).all()
        assert f"{len(stories)} stories were recorded by 1 community reporter" in pack.markdown
        for role in {s.storyteller.role for s in stories}:
            count = sum(s.storyteller.role is role for s in stories)
            assert f"| {role.label} | {count} |" in pack.markdown
        assert "Jo (peer mentor)" in pack.markdown  # safeguarding contact
        codes = {s.storyteller.code for s in stories}
        assert not any(code in pack.markdown for code in codes)


def test_same_inputs_give_the_same_pack_and_bytes(app, data):
    workshop_id = make_workshop(app, data)
    assert make_pack(app, workshop_id, data["facilitator"]) == (1, True)
    assert make_pack(app, workshop_id, data["facilitator"]) == (1, False)
    with app.test_request_context():
        pack = db.session.scalar(select(WorkshopPack))
        first = exports.export(pack, "html").data
        again = render.markdown_for("pack", pack.content, version=pack.version)
        assert again == pack.markdown
        assert exports.export(pack, "html").data == first
    other = make_workshop(app, data)  # a second workshop on the same inputs says the same
    make_pack(app, other, data["facilitator"])
    with app.app_context():
        packs = db.session.scalars(select(WorkshopPack).order_by(WorkshopPack.id)).all()
        assert packs[0].digest != packs[1].digest or packs[0].markdown == packs[1].markdown


def test_changed_transcript_stops_generation_naming_the_quote(app, data):
    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    story_id, word = edit_first_quote_transcript(app, workshop_id)
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        state = service.pack_state(workshop)
        assert state.stale
        with pytest.raises(service.PackError) as failed:
            service.generate_pack(workshop_id, data["facilitator"])
        db.session.rollback()
        title = workshop.themes[0].title
        message = str(failed.value)
        assert f"Quote 1 in “{title}” (story {service.story_code(story_id)}" in message
        assert "changed after the quote was chosen" in message
        assert db.session.scalar(select(WorkshopPack.version).order_by(
            WorkshopPack.version.desc())) == 1
        # Taking the new words lets it through, and the new version has them.
        theme = workshop.themes[0]
        shaping.refresh_quote(workshop, theme.id, theme.quotes[0].id)
        db.session.commit()
        pack, made = service.generate_pack(workshop_id, data["facilitator"])
        db.session.commit()
        assert made and pack.version == 2 and word in pack.markdown


def test_withdrawn_story_leaves_packs_and_is_never_quoted_again(app, client, auth, data):
    from storyhub.stories import erasure

    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    story_id = quoted_story_ids(app, workshop_id)[0]
    with app.app_context():
        quote_text = db.session.scalar(select(WorkshopQuote.text).where(
            WorkshopQuote.story_id == story_id))
        erasure.erase_now(db.session.get(Story, story_id), None, data["facilitator"], "test")
        db.session.commit()
    with app.app_context():
        assert db.session.scalar(select(WorkshopPack)) is None  # it printed the story's words
        workshop = db.session.get(Workshop, workshop_id)
        assert "withdrew consent" in workshop.notice
        assert story_id not in quoted_story_ids(app, workshop_id)
        for table in ("workshop_quotes", "workshop_packs"):
            rows = db.session.execute(db.text(f"SELECT * FROM {table}")).all()  # noqa: S608
            assert quote_text not in repr(rows)
    version, _ = make_pack(app, workshop_id, data["facilitator"])
    assert version == 2  # a deleted version's number is not given again
    with app.app_context():
        assert db.session.scalar(select(Workshop.notice)) is None


def test_a_storytellers_name_in_a_quote_stops_generation(app, data):
    workshop_id = make_workshop(app, data)
    with app.app_context():
        quote = db.session.get(Workshop, workshop_id).themes[0].quotes[0]
        word = max(re.findall(r"[A-Za-z]{4,}", quote.text), key=len)
        story = db.session.get(Story, quote.story_id)
        story.storyteller.identity = StorytellerIdentity(real_name=f"Alex {word.title()}")
        db.session.commit()
        with pytest.raises(service.PackError, match="holds the storyteller's name"):
            service.generate_pack(workshop_id, data["facilitator"])


@pytest.mark.one_database  # rendering; the pack's rows are covered by the HTTP test
def test_every_format_renders_with_the_quotes(app, data):
    silent = list(data["ids"].values())[0]
    set_scopes(app, silent, set(Scope) - {Scope.PLAY_IN_WORKSHOPS})
    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    with app.test_request_context():
        pack = db.session.scalar(select(WorkshopPack))
        quotes = [q for t in pack.content["themes"] for q in t["quotes"]]
        titles = [t["title"] for t in pack.content["themes"]]

        def pdf_text(fmt):
            reader = PdfReader(io.BytesIO(exports.export(pack, fmt).data))
            return reader, " ".join(" ".join((p.extract_text() or "").split())
                                    for p in reader.pages)

        reader, text = pdf_text("pdf")
        assert round(float(reader.pages[0].mediabox.width)) == 595  # A4
        for title in titles:
            assert title in text
        for quote in quotes:
            assert f"story {quote['code']}" in text
            assert " ".join(quote["text"].split()[:6]) in text
        assert "Action planning" in text and "Your feedback" in text
        assert "How the themes were found" in text
        cards, card_text = pdf_text("cards-a6")
        assert len(cards.pages) >= len(quotes)  # a long quote continues on the next card
        assert round(float(cards.pages[0].mediabox.width)) == 298  # A6
        poster, poster_text = pdf_text("poster")
        assert round(float(poster.pages[0].mediabox.width)) == 1191  # A3 landscape
        assert all(title in poster_text for title in titles)
        html = exports.export(pack, "html").data.decode()
        import html as html_lib

        assert html.count('class="quote-card"') == len(quotes)
        shown = html_lib.unescape(re.sub(r"<[^>]+>", "", html))
        assert all(q["text"] in shown for q in quotes)
        assert "http" not in html.split("</style>")[0]
        buffer = io.BytesIO()
        facilitator = db.session.get(User, data["facilitator"])
        assert exports.write_zip(pack, facilitator, buffer) == []
    with zipfile.ZipFile(buffer) as archive:
        names = archive.namelist()
        clips = [n for n in names if n.startswith("clips/")]
        playable = [q for q in quotes if q["clip"]]
        assert len(clips) == len(playable) == len([q for q in quotes
                                                    if q["story_id"] != silent])
        for quote in playable:
            with av.open(io.BytesIO(archive.read(exports.clip_name(quote)))) as clip:
                seconds = clip.duration / av.time_base
            assert abs(seconds - (quote["end"] - quote["start"])) < 0.35
        assert any(n.endswith(".pdf") for n in names) and any(n.endswith(".md") for n in names)


def test_template_override_from_the_instance(app, data):
    folder = app.instance_path + "/workshops/sections"
    import os

    os.makedirs(folder)
    with open(folder + "/welcome.md", "w") as fh:
        fh.write("## Croeso\n\nOur own welcome for {{ workshop.place }}.\n")
    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    with app.app_context():
        text = db.session.scalar(select(WorkshopPack.markdown))
        assert "## Croeso\n\nOur own welcome for Hope Street hub." in text
        assert "Thank you for coming" not in text


def test_markdown_escapes_what_the_transcript_says():
    assert render.md_escape("<script>*bold* [link](x) & `code`") == (
        r"&lt;script&gt;\*bold\* \[link\](x) &amp; \`code\`")


def test_actions_and_you_said_we_did(app, client, auth, data):
    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        first = workshop.themes[0]
        outcomes.add_action(workshop, data["facilitator"], "Same case manager for six months",
                            "Team manager", date(2027, 3, 1), first.id, "done",
                            "Cases now stay with one officer")
        outcomes.add_action(workshop, data["facilitator"], "Bus fares paid up front")
        db.session.commit()
        quoted = first.quotes[0].story_id
    set_scopes(app, quoted, set(Scope) - {Scope.QUOTE_IN_PACKS})
    with app.test_request_context():
        workshop = db.session.get(Workshop, workshop_id)
        content = outcomes.feedback_content(workshop)
        text = render.markdown_for("feedback", content)
        assert "**Done:** Same case manager for six months — Cases now stay with one officer" \
            in text
        assert "Bus fares paid up front" in text
        quote = db.session.get(Workshop, workshop_id).themes[0].quotes[0]
        assert quote.story_id == quoted and render.md_escape(quote.text) not in text
        reader = PdfReader(io.BytesIO(render.pdf_for("feedback", text, "You said")))
        assert "You said, we did" in reader.pages[0].extract_text()


def test_a_facilitator_builds_shapes_and_downloads_a_pack_over_http(app, client, auth, data):
    from tests.support.factories import PASSWORD

    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    page = client.get("/packs/")
    assert page.status_code == 200 and "Build a workshop" in page.get_data(as_text=True)
    form = client.get(f"/packs/new?run_id={data['run']}")
    assert form.status_code == 200
    made = client.post("/packs/new", data={"run_id": data["run"], "title": "Hub workshop",
                                           "held_on": "2026-12-10", "audience": "mixed",
                                           "place": "", "facilitators": "Sam and Jo",
                                           "safeguarding_contact": ""})
    assert made.status_code == 302
    url = made.headers["Location"].split("#")[0]
    with app.app_context():
        workshop = db.session.scalar(select(Workshop))
        themes = [(t.id, t.title) for t in workshop.themes]
        quote = workshop.themes[0].quotes[0]
    assert len(themes) >= 2
    shown = client.get(url).get_data(as_text=True)
    assert all(title in shown for _id, title in themes)
    # Move the second theme up: it becomes the first.
    client.post(f"{url}/themes/{themes[1][0]}/move", data={"direction": "up"})
    with app.app_context():
        assert db.session.scalar(select(Workshop)).themes[0].id == themes[1][0]
    # Swap the first theme's first quote for another passage of the same theme.
    swap = client.get(f"{url}/themes/{themes[0][0]}/quotes?replace={quote.id}")
    assert swap.status_code == 200
    options = re.findall(r'name="passage_id" value="(\d+)"', swap.get_data(as_text=True))
    if options:
        # A swap whose quote is not a number is refused, not taken as "add another quote".
        with app.app_context():
            count = len(db.session.get(Workshop, workshop.id).themes[1].quotes)
        bad = client.post(f"{url}/themes/{themes[0][0]}/quotes",
                          data={"passage_id": options[0], "replace": "first"})
        assert bad.status_code == 400
        with app.app_context():
            assert len(db.session.get(Workshop, workshop.id).themes[1].quotes) == count
        client.post(f"{url}/themes/{themes[0][0]}/quotes",
                    data={"passage_id": options[0], "replace": quote.id})
        with app.app_context():
            ids = [q.passage_id for q in db.session.get(Workshop, workshop.id).themes[1].quotes]
            assert int(options[0]) in ids and quote.passage_id not in ids
    done = client.post(f"{url}/generate", follow_redirects=True)
    assert "Pack version 1 generated." in done.get_data(as_text=True)
    kinds = {"md": "text/markdown", "html": "text/html", "pdf": "application/pdf",
             "cards": "application/pdf", "poster": "application/pdf",
             "zip": "application/zip"}
    for fmt, kind in kinds.items():
        response = client.get(f"{url}/packs/1/{fmt}")
        assert response.status_code == 200 and response.mimetype == kind, fmt
        if kind.startswith("text/"):  # one charset, as a browser or proxy expects
            assert response.headers["Content-Type"] == f"{kind}; charset=utf-8", fmt
        assert response.headers["Cache-Control"] == "no-store"
        assert "attachment" in response.headers["Content-Disposition"]
    assert client.get(f"{url}/packs/2/pdf").status_code == 404
    assert client.get(f"{url}/packs/1/exe").status_code == 404
    added = client.post(f"{url}/actions", data={"what": "Fares paid before the appointment",
                                                "who": "Office manager", "status": "agreed",
                                                "workshop_theme_id": str(themes[0][0])},
                        follow_redirects=True)
    assert "Action recorded." in added.get_data(as_text=True)
    assert "Fares paid before the appointment" in client.get("/packs/actions").get_data(
        as_text=True)
    # An edit to a quoted transcript marks the pack out of date, in the list and on its page.
    assert "Out of date" not in client.get("/packs/").get_data(as_text=True)
    edit_first_quote_transcript(app, workshop.id)
    assert "Out of date" in client.get("/packs/").get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    assert "Out of date" in page and "Use the new words" in page
    refused = client.post(f"{url}/actions", data={"what": "", "status": "agreed"},
                          follow_redirects=True)
    assert "This field is required." in refused.get_data(as_text=True)
    with app.app_context():
        from storyhub.audit import AuditEvent

        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert {"workshop.create", "pack.generate", "pack.download"} <= actions


def _make_a_quoted_word_unsure(app, workshop_id: int) -> tuple[int, int, str]:
    """Give a word inside the first quote a low probability, nobody having checked it;
    return (story id, word id, the word)."""
    with app.app_context():
        quote = db.session.get(Workshop, workshop_id).themes[0].quotes[0]
        transcript = db.session.scalar(select(Transcript).where(
            Transcript.story_id == quote.story_id))
        word = next(w for seg in transcript.segments for w in seg.words
                    if quote.start <= (w.start + w.end) / 2 <= quote.end and len(w.text) > 3)
        word.probability, word.checked, word.edited = 0.2, False, False
        db.session.commit()
        return quote.story_id, word.id, word.text.strip()


def test_a_quote_with_unchecked_unsure_words_waits_until_checked_or_kept(app, client, auth,
                                                                          data):
    from storyhub.transcripts import unsure
    from tests.support.factories import PASSWORD

    workshop_id = make_workshop(app, data)
    with app.app_context():  # every word checked, as a reporter who listened to them all
        for word in db.session.scalars(select(Word)):
            word.checked = True
        db.session.commit()
    story_id, word_id, word = _make_a_quoted_word_unsure(app, workshop_id)
    with app.app_context():
        with pytest.raises(service.PackError) as failed:
            service.generate_pack(workshop_id, data["facilitator"])
        db.session.rollback()
        message = str(failed.value)
        assert f"story {service.story_code(story_id)}" in message
        assert f"1 word in it the speech recogniser was unsure of (“{word}”)" in message
    url = f"/packs/{workshop_id}"
    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Keep it as it is" in page and f"/stories/{story_id}/transcript#unsure" in page
    # The reporter checks the word: the quote may be printed.
    with app.app_context():
        story = db.session.get(Story, story_id)
        assert unsure.confirm_word(story, word_id, story.reporter) == 1
        db.session.commit()
    assert make_pack(app, workshop_id, data["facilitator"]) == (1, True)
    # Another unchecked word: the facilitator keeps the quote as it is, explicitly.
    _make_a_quoted_word_unsure(app, workshop_id)
    with app.app_context():
        theme = db.session.get(Workshop, workshop_id).themes[0]
        theme_id, quote_id = theme.id, theme.quotes[0].id
    kept = client.post(f"{url}/themes/{theme_id}/quotes/{quote_id}/keep", follow_redirects=True)
    assert "printed as it is" in kept.get_data(as_text=True)
    done = client.post(f"{url}/generate", follow_redirects=True)
    assert "Pack version 2 generated." in done.get_data(as_text=True)
    assert client.get(f"{url}/packs/2/md").status_code == 200


def test_a_quote_waits_for_the_reporters_redaction_decisions(app, client, auth, data):
    from storyhub.redaction import service as redaction
    from tests.support.factories import PASSWORD

    workshop_id = make_workshop(app, data)
    # A name the reporter has neither redacted nor dismissed.
    story_id, _name = edit_first_quote_transcript(app, workshop_id, "Sarah")
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        shaping.refresh_quote(workshop, workshop.themes[0].id, workshop.themes[0].quotes[0].id)
        db.session.commit()
        with pytest.raises(service.PackError) as failed:
            service.generate_pack(workshop_id, data["facilitator"])
        db.session.rollback()
    message = str(failed.value)
    assert f"(story {service.story_code(story_id)}" in message
    assert "StoryHub suggests redacting 1 word in it" in message and "Sarah" not in message
    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    page = client.get(f"/packs/{workshop_id}").get_data(as_text=True)
    assert "Sarah" not in page, "the facilitator is not shown the words waiting"
    assert f"/stories/{story_id}/transcript#redaction" in page
    with app.app_context():  # the reporter redacts it: the quote's words change
        story = db.session.get(Story, story_id)
        offers = [o.value for o in redaction.offers(story, story.reporter)
                  if o.suggestion.text == "Sarah"]
        assert redaction.accept(story, story.reporter, offers) == 1
        db.session.commit()
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        shaping.refresh_quote(workshop, workshop.themes[0].id, workshop.themes[0].quotes[0].id)
        db.session.commit()
        pack, made = service.generate_pack(workshop_id, data["facilitator"])
        db.session.commit()
        assert made and "Sarah" not in pack.markdown and "\\[NAME\\]" in pack.markdown


def test_the_facilitator_chooses_the_themes_and_sees_those_left_out(app, client, auth, data):
    from tests.support.factories import PASSWORD

    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    with app.app_context():
        choices = service.theme_choices(db.session.get(ThemeRun, data["run"]))
        names = [c.theme.label for c in choices]
        ids = [c.theme.id for c in choices]
    assert len(ids) >= 2
    form = client.get(f"/packs/new?run_id={data['run']}").get_data(as_text=True)
    assert all(f'name="theme" value="{i}"' in form for i in ids)
    assert form.count("checked>") >= min(len(ids), service.MAX_THEMES)
    fields = {"run_id": data["run"], "title": "Chosen themes", "audience": "mixed",
              "themes_shown": "1"}
    none = client.post("/packs/new", data=fields, follow_redirects=True)
    assert "Choose at least one theme" in none.get_data(as_text=True)
    made = client.post("/packs/new", data={**fields, "theme": [str(ids[-1])]})
    assert made.status_code == 302
    url = made.headers["Location"].split("#")[0]
    page = client.get(url).get_data(as_text=True)
    assert f"Themes not in this workshop ({len(ids) - 1})" in page
    left_out = page.split('id="left-out"')[1].split("</section>")[0]
    assert all(name in left_out for name in names[:-1]) and names[-1] not in left_out
    client.post(f"{url}/themes", data={"theme_id": str(ids[0])})
    with app.app_context():
        workshop = db.session.scalar(select(Workshop).where(Workshop.title == "Chosen themes"))
        assert [t.theme_id for t in workshop.themes] == [ids[-1], ids[0]]


def test_a_theme_told_by_several_roles_is_quoted_from_more_than_one(app, data):
    with app.app_context():
        run = db.session.get(ThemeRun, data["run"])
        for choice in service.theme_choices(run):
            candidates = service.quote_candidates(run, choice.theme.id)
            roles = {r.passage.story.storyteller.role for r in candidates}
            if len(roles) < 2 or len(candidates) < 3:
                continue
            picked = service.choose_quotes([candidates], 3)[0]
            assert len({r.passage.story.storyteller.role for r in picked}) >= 2, choice.roles
            return
        pytest.skip("no theme in this run is told by more than one role")


def test_a_theme_name_holding_a_word_redacted_since_is_not_printed(app, data):
    from storyhub.redaction import service as redaction

    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        redacted = 0
        for word in sorted(workshop.themes[0].title.split(), key=len, reverse=True):
            for story in db.session.scalars(select(Story)):  # a story that says it, as named
                try:
                    redacted = redaction.redact_phrase(story, story.reporter, word, "[NAME]")
                except redaction.TranscriptError:
                    continue
                break
            if redacted:
                break
        assert redacted, "a word of a theme's name is said in its stories"
        db.session.commit()
    with app.app_context():
        facilitator = db.session.get(User, data["facilitator"])
        state = service.pack_state(db.session.get(Workshop, workshop_id), facilitator)
        assert any(p.startswith("Theme 1's name") for p in state.problems)
        pack = db.session.scalar(select(WorkshopPack))
        assert any(p.startswith("Theme 1's name") for p in service.version_problems(
            pack, facilitator))
        workshop = db.session.get(Workshop, workshop_id)
        shaping.edit_theme(workshop, workshop.themes[0].id, "Somewhere to live", "", "")
        db.session.commit()
        state = service.pack_state(db.session.get(Workshop, workshop_id), facilitator)
        assert not any(p.startswith("Theme 1's name") for p in state.problems)


def test_a_workshop_follows_a_theme_renamed_on_the_board_unless_it_renamed_it(app, data):
    from storyhub.themes import facilitator_edits as editing

    workshop_id = make_workshop(app, data)
    with app.app_context():
        workshop = db.session.get(Workshop, workshop_id)
        first, second = workshop.themes[0], workshop.themes[1]
        shaping.edit_theme(workshop, second.id, "Our own name", "", "")
        run = db.session.get(ThemeRun, data["run"])
        editing.rename(run, first.theme_id, "Somewhere to live", "", data["facilitator"])
        editing.rename(run, second.theme_id, "Work after prison", "", data["facilitator"])
        db.session.commit()
        workshop = db.session.get(Workshop, workshop_id)
        assert [t.title for t in workshop.themes[:2]] == ["Somewhere to live", "Our own name"]


def test_quotes_are_chosen_from_passages_without_unchecked_words_first(app, data):
    with app.app_context():
        run = db.session.get(ThemeRun, data["run"])
        theme = next(t for t in run.themes if len(service.quote_candidates(run, t.id)) >= 3)
        first = service.quote_candidates(run, theme.id)[0]
        for word in db.session.scalars(select(Word).join(Segment).join(Transcript).where(
                Transcript.story_id == first.passage.story_id)):
            if first.passage.start <= (word.start + word.end) / 2 <= first.passage.end:
                word.probability, word.checked = 0.2, False
        db.session.flush()
        order = service.quote_candidates(run, theme.id)
        assert not first.pinned and order[-1].passage_id == first.passage_id
        assert service.unchecked_passages(order) == {first.passage_id}


def test_a_version_printed_with_unchecked_words_is_held_back(app, data):
    workshop_id = make_workshop(app, data)
    with app.app_context():
        for word in db.session.scalars(select(Word)):
            word.checked = True
        db.session.commit()
    make_pack(app, workshop_id, data["facilitator"])
    _make_a_quoted_word_unsure(app, workshop_id)  # as a version made before words were checked
    with app.app_context():
        pack = db.session.scalar(select(WorkshopPack))
        problems = service.version_problems(pack, db.session.get(User, data["facilitator"]))
        assert len(problems) == 1 and "unsure of" in problems[0]


FORMATS = ("md", "html", "pdf", "cards", "poster", "zip")


def _overdue(app, story_id: int) -> None:
    from datetime import timedelta

    with app.app_context():
        db.session.get(Story, story_id).consent.review_on = dates.today() - timedelta(days=1)
        db.session.commit()


def _redact_a_quoted_word(app, story_id: int, quote_text: str) -> str:
    """Redact, as the story's reporter, a word the quote says; return the word."""
    from storyhub.redaction import service as redaction

    word = max(re.findall(r"[A-Za-z]{5,}", quote_text), key=len)
    with app.app_context():
        story = db.session.get(Story, story_id)
        redaction.redact_phrase(story, story.reporter, word, "[NAME]")
        db.session.commit()
    return word


@pytest.mark.parametrize("change", ["withdrawn", "overdue", "redacted"])
def test_a_stored_version_is_checked_again_at_every_download(app, client, auth, data, change):
    from storyhub.audit import AuditEvent
    from tests.support.factories import PASSWORD

    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    url = f"/packs/{workshop_id}"
    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    assert client.get(f"{url}/packs/1/md").status_code == 200
    with app.app_context():
        quote = db.session.get(Workshop, workshop_id).themes[0].quotes[0]
        story_id, quote_text = quote.story_id, quote.text
    word = None
    if change == "withdrawn":
        withdraw_consent(app, story_id)
    elif change == "overdue":
        _overdue(app, story_id)
    else:
        word = _redact_a_quoted_word(app, story_id, quote_text)
    for fmt in FORMATS:
        response = client.get(f"{url}/packs/1/{fmt}")
        body = response.get_data(as_text=True)
        assert response.status_code == 409, fmt
        assert "Version 1 can no longer be downloaded" in body
        assert f"story {service.story_code(story_id)}" in body
        assert f'action="{url}/generate"' in body  # offers to generate it again
        assert quote_text not in body and (word is None or word not in body)
        assert "attachment" not in response.headers.get("Content-Disposition", "")
    page = client.get(url).get_data(as_text=True)
    assert "Can no longer be downloaded" in page
    assert f"{url}/packs/1/pdf" not in page
    assert render.md_escape(quote_text) not in page and quote_text not in page
    if word is not None:
        assert word not in page and "The transcript now says:" in page
    with app.app_context():
        refused = db.session.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "pack.download_refused")).all()
        assert len(refused) == len(FORMATS)
        assert all(quote_text not in (detail or "") for detail in refused)


def test_a_version_made_before_an_unrelated_change_still_downloads(app, client, auth, data):
    from tests.support.factories import PASSWORD

    workshop_id = make_workshop(app, data)
    other = quoted_story_ids(app, workshop_id)[-1]
    with app.app_context():  # the facilitator takes out every quote of one story
        workshop = db.session.get(Workshop, workshop_id)
        for theme in workshop.themes:
            for quote in [q for q in theme.quotes if q.story_id == other]:
                shaping.remove_quote(workshop, theme.id, quote.id)
        db.session.commit()
    make_pack(app, workshop_id, data["facilitator"])
    withdraw_consent(app, other)
    assert auth.login("lead-facilitator", PASSWORD).status_code == 302
    assert client.get(f"/packs/{workshop_id}/packs/1/md").status_code == 200


@pytest.mark.parametrize("role, allowed", [("reporter", False), ("staff", False),
                                           ("facilitator", True), ("admin", True)])
def test_who_may_open_workshops(app, client, auth, data, role, allowed):
    workshop_id = make_workshop(app, data)
    make_pack(app, workshop_id, data["facilitator"])
    auth.login_as(role)
    for url in ("/packs/", f"/packs/{workshop_id}", f"/packs/{workshop_id}/packs/1/pdf",
                "/packs/actions", f"/packs/new?run_id={data['run']}"):
        response = client.get(url)
        assert (response.status_code in (200, 302)) == allowed, (url, response.status_code)
    assert (client.post(f"/packs/{workshop_id}/generate").status_code == 302) == allowed
    # "You said, we did" goes back to staff too.
    feedback = client.get(f"/packs/{workshop_id}/you-said-we-did")
    assert (feedback.status_code == 200) == (role != "reporter")


def test_pdfs_fetch_only_storyhubs_own_static_files(app):
    fetcher = render.StaticOnlyFetcher()
    font = (render.STATIC / "fonts" / "DejaVuSans.ttf").as_uri()
    assert fetcher(font).read().startswith(b"\x00\x01\x00\x00")
    for url in ("http://127.0.0.1:9/x.png", "https://example.org/font.ttf",
                "file:///etc/passwd", (render.STATIC / ".." / "__init__.py").as_uri()):
        with pytest.raises(ValueError, match="only use StoryHub's own files"):
            fetcher(url)
    # A template that asks for an outside image still renders; the image is refused.
    source = "# Pack\n\n<img src=\"http://127.0.0.1:9/tracker.png\" alt=\"\">\n\nWords.\n"
    with app.test_request_context():
        reader = PdfReader(io.BytesIO(render.pdf_for("pack", source, "Pack")))
    assert "Words." in reader.pages[0].extract_text()
