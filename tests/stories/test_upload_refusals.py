"""Uploads StoryHub refuses: files that are not a recording it can play, recordings too long,
too large, cut off or already uploaded, consent not recorded as it must be, a request cut
halfway. Each says why in a sentence, on the form or as the recorder's JSON, and stores nothing.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storyhub import config, dates
from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.stories.models import Story
from tests.support import audio_fixtures as af
from tests.support.http import multipart
from tests.support.uploads import (
    MSG_CONSENT,
    MSG_DAMAGED,
    MSG_DUPLICATE,
    MSG_EMPTY,
    MSG_FORM,
    MSG_NO_FILE,
    MSG_NOT_ACCEPTED,
    MSG_REAL_NAME,
    MSG_SPOKEN_AT,
    MSG_TOO_LARGE,
    MSG_UNREADABLE,
    MSG_VIDEO,
    NEEDS_AUDIO_TOOLS,
    RECORDER,
    STORY_TABLES,
    assert_nothing_stored,
    assert_refused,
    message,
    png_bytes,
    stored_files,
    story_fields,
    story_id_from,
    upload,
    zip_bytes,
)

pytestmark = [NEEDS_AUDIO_TOOLS, pytest.mark.usefixtures("quick_password_hashing")]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, encodings) -> dict[str, Path]:
    """Files that must be refused, by content whatever their names say."""
    folder = tmp_path_factory.mktemp("bad")
    files = {
        "empty.wav": b"",
        "page.wav": b"<!doctype html>\n<html><head><title>Story</title></head>"
                    b"<body><p>Not audio</p></body></html>\n",
        "script.mp3": b"#!/bin/sh\necho 'not audio'\nexit 0\n",
        "archive.m4a": zip_bytes(),
        "image.ogg": png_bytes(),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(content)
    paths["silent.webm"] = af.silent_video(folder / "silent.webm", "webm", "libvpx")
    paths["silent.mp4"] = af.silent_video(folder / "silent.mp4", "mp4", "mpeg4")
    # A cut-off upload: FLAC's header still claims the full number of samples.
    paths["cut-off.flac"] = af.truncated(encodings["flac"], folder / "cut-off.flac", 0.3)
    # A real MP3 frame header followed by noise that only looks like more MP3.
    mp3 = encodings["mp3"].read_bytes()
    paths["garbled.mp3"] = folder / "garbled.mp3"
    noise = hashlib.shake_256(b"not an mp3 frame").digest(40_000)  # the same every run
    paths["garbled.mp3"].write_bytes(mp3[:2000] + noise)
    return paths


BAD_INPUTS = [
    pytest.param("empty.wav", MSG_EMPTY, id="zero-byte-wav"),
    pytest.param("page.wav", MSG_UNREADABLE, id="html-named-wav"),
    pytest.param("script.mp3", MSG_UNREADABLE, id="shell-script-named-mp3"),
    pytest.param("archive.m4a", MSG_UNREADABLE, id="zip-named-m4a"),
    pytest.param("image.ogg", MSG_NOT_ACCEPTED, id="png-named-ogg"),
    pytest.param("silent.webm", MSG_VIDEO, id="video-without-sound-webm"),
    pytest.param("silent.mp4", MSG_VIDEO, id="video-without-sound-mp4"),
    pytest.param("cut-off.flac", MSG_DAMAGED, id="truncated-flac"),
    pytest.param("garbled.mp3", MSG_DAMAGED, id="mp3-header-then-noise"),
]


@pytest.mark.parametrize(("name", "expected"), BAD_INPUTS)
def test_bad_recording_is_refused_and_nothing_stored(app, client, auth, bad_files, name,
                                                     expected):
    auth.login_as(Role.REPORTER)
    # The upload form: the page comes back with the message and what was typed kept.
    response = upload(client, bad_files[name])
    assert_refused(response, 422, expected)
    page = response.get_data(as_text=True)
    assert "<h1>Add a story</h1>" in page and 'value="First week out"' in page
    assert_nothing_stored(app)
    # The in-browser recorder: the same message as JSON.
    assert_refused(upload(client, bad_files[name], recorder=True), 422, expected)
    assert_nothing_stored(app)


@pytest.mark.parametrize(("name", "keep"), [pytest.param("wav", 0.3, id="wav-30%"),
                                            pytest.param("flac", 0.65, id="flac-65%")])
def test_cut_off_recording_is_refused_as_damaged(app, client, auth, encodings, tmp_path,
                                                 name, keep):
    source = encodings[name]
    cut = af.truncated(source, tmp_path / f"cut{source.suffix}", keep)
    auth.login_as(Role.REPORTER)
    assert_refused(upload(client, cut, recorder=True), 422, MSG_DAMAGED)
    assert_nothing_stored(app)


@pytest.mark.parametrize(("channels", "rate"), [pytest.param(9, 16_000, id="9-channels"),
                                                pytest.param(1, 400_000, id="400-kHz")])
def test_unusual_shape_is_refused(app, client, auth, tmp_path, channels, rate):
    odd = af.sine_wav(tmp_path / "odd.wav", 1, rate=rate, channels=channels)
    auth.login_as(Role.REPORTER)
    assert_refused(upload(client, odd, recorder=True), 422,
                   f"This recording's sound is in an unusual shape ({channels} channels at "
                   f"{rate} Hz)")
    assert_nothing_stored(app)


def test_upload_without_a_file_is_refused(app, client, auth):
    auth.login_as(Role.REPORTER)
    assert_refused(upload(client), 400, MSG_NO_FILE)
    assert_refused(upload(client, recorder=True), 400, MSG_NO_FILE)
    # What a browser sends when no file was chosen: an empty part with an empty filename.
    assert_refused(upload(client, content=b"", filename=""), 400, MSG_NO_FILE)
    assert_nothing_stored(app)


# --- limits ----------------------------------------------------------------------------------

class TestRecordingLimit:
    @pytest.fixture
    def config_overrides(self):
        return {"MAX_AUDIO_HOURS": 0.001}  # 3.6 seconds

    def test_recording_longer_than_limit_is_refused(self, app, client, auth, tone):
        auth.login_as(Role.REPORTER)
        response = upload(client, tone(10))
        assert_refused(response, 422, "This recording is 10 s long; the limit is 4 s.")
        assert "Split it into shorter parts" in message(response)
        assert_nothing_stored(app)

    def test_recording_without_stated_length_is_stopped_at_limit(self, app, client, auth,
                                                                 tone, tmp_path):
        # A live WebM (as MediaRecorder makes) says nothing of its length: the decode is
        # capped, and the recording refused once it runs past the limit.
        live = af.encode(tone(10), tmp_path / "long.webm", af.ENCODING["webm-recorder"])
        assert af.probe(live).length is None
        auth.login_as(Role.REPORTER)
        response = upload(client, live, recorder=True)
        assert_refused(response, 422, "This recording is longer than the limit of 4 s.")
        assert_nothing_stored(app)

    def test_recording_within_limit_is_accepted(self, app, client, auth, tone):
        auth.login_as(Role.REPORTER)
        story_id_from(upload(client, tone(2)))


class TestUploadSizeLimit:
    @pytest.fixture
    def config_overrides(self):
        return {"MAX_UPLOAD_MB": 1}

    def test_over_size_upload_is_refused(self, app, client, auth, tone):
        auth.login_as(Role.REPORTER)
        big = tone(66)  # 16 kHz 16-bit mono: about 2.1 MB
        assert big.stat().st_size > 2 * 1024 * 1024
        for recorder in (False, True):
            response = upload(client, big, recorder=recorder)
            assert response.status_code == 413
            assert MSG_TOO_LARGE in message(response)
            assert_nothing_stored(app)


# --- the same recording twice, the form's problems, a request cut halfway --------------------

def test_duplicate_upload_is_refused_with_link(app, client, auth, encodings):
    auth.login_as(Role.REPORTER)
    first = story_id_from(upload(client, encodings["mp3"]))
    files_before = stored_files(app)
    assert len(files_before) == 3
    # Judged by content: another name and title make no difference.
    response = upload(client, encodings["mp3"], filename="same-story-again.mp3",
                      title="Another title")
    assert_refused(response, 409, MSG_DUPLICATE)
    assert f'<a href="/stories/{first}">story already holding this recording</a>' in \
        response.get_data(as_text=True)
    response = upload(client, encodings["mp3"], filename="recording.mp3", recorder=True)
    assert_refused(response, 409, MSG_DUPLICATE)
    assert response.get_json()["link"] == f"/stories/{first}"
    with app.app_context():
        for model in STORY_TABLES[:4]:
            assert db.session.scalar(select(func.count()).select_from(model)) == 1, model
        assert db.session.scalar(select(Story.title)) == "First week out"
    assert stored_files(app) == files_before
    assert client.get(f"/stories/{first}").status_code == 200


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param({"consent_transcribe_analyse": None}, MSG_CONSENT, id="no-scope-ticked"),
    pytest.param({"spoken_at": ""}, MSG_SPOKEN_AT, id="spoken-without-time"),
    pytest.param({"consent_method": "signed_form", "spoken_at": ""}, MSG_FORM,
                 id="signed-form-without-file"),
    pytest.param({"consent_method": "signed_form",
                  "consent_form": (b"<html>form</html>", "form.pdf")},
                 "The consent form must be a PDF, JPEG or PNG file.",
                 id="signed-form-not-a-document"),
    pytest.param({"real_name": "Jane Realname"}, MSG_REAL_NAME,
                 id="real-name-without-agreement"),
    pytest.param({"spoken_at": "9:59"}, "The consent time is after the end of the recording",
                 id="consent-time-after-end"),
    # Dates are worked out when the test runs, not when it is collected: a run that crosses
    # midnight would otherwise send "tomorrow" as today.
    pytest.param({"consent_review_on": lambda: dates.today().isoformat()},
                 "The consent review date must be after the date consent was given.",
                 id="review-not-after-given"),
    pytest.param({"recorded_on": lambda: (dates.today() + timedelta(days=1)).isoformat()},
                 "The date recorded cannot be in the future.", id="recorded-in-future"),
])
def test_consent_problems_are_refused_and_nothing_stored(app, client, auth, encodings,
                                                         fields, expected):
    auth.login_as(Role.REPORTER)
    fields = {name: value() if callable(value) else value for name, value in fields.items()}
    for recorder in (False, True):
        response = upload(client, encodings["ogg-opus"], recorder=recorder, **fields)
        assert_refused(response, 422, expected)
        assert_nothing_stored(app)


# Half past midnight in London on a summer night: 23:30 the day before on a UTC clock.
SUMMER_NIGHT = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "accepted"), [("Europe/London", True), ("UTC", False)])
def test_dates_are_those_where_the_service_is_not_the_servers(app, client, auth, encodings,
                                                              monkeypatch, zone, accepted):
    """A story a reporter records just after midnight is recorded "today" where they are;
    a server on UTC must not call that date the future, and the form offers it."""
    config.override(app, {"TIME_ZONE": zone})
    monkeypatch.setattr(dates, "now", lambda: SUMMER_NIGHT)
    auth.login_as(Role.REPORTER)
    local = "2026-07-02" if accepted else "2026-07-01"
    form = client.get("/stories/new").get_data(as_text=True)
    assert re.search(rf'id="recorded_on"[^>]*value="{local}"', form) or re.search(
        rf'value="{local}"[^>]*id="recorded_on"', form), form
    response = upload(client, encodings["ogg-opus"], recorded_on="2026-07-02",
                      consent_given_on="2026-07-02")
    if accepted:
        assert response.status_code == 302, message(response)[:2000]
        assert_refused(upload(client, encodings["wav"], recorded_on="2026-07-03"), 422,
                       "The date recorded cannot be in the future.")
    else:
        assert_refused(response, 422, "The date recorded cannot be in the future.")
        assert_nothing_stored(app)


def test_a_refused_story_says_what_is_wrong_at_the_top_linking_each_field(app, client, auth,
                                                                         encodings):
    """GOV.UK's error summary: every problem at the top of the (long, phone) form, each a link
    to its field, and the field marked; the recorder's script gets the same as JSON."""
    auth.login_as(Role.REPORTER)
    page = upload(client, encodings["wav"], title="", recorded_on="")
    assert page.status_code == 400
    text = html.unescape(page.get_data(as_text=True))
    summary = re.search(r'<div class="error-summary".*?</div>', text, re.DOTALL)
    assert summary and text.index(summary.group()) < text.index("1. The recording")
    assert re.findall(r'<a href="#([a-z_]+)">([^<]+)</a>', summary.group()) == [
        ("title", "Enter a title for the story."),
        ("recorded_on", "Enter the date the story was recorded.")]
    for name in ("title", "recorded_on"):
        marked = re.search(rf'<div class="field has-error">(?:(?!</div>).)*id="{name}"',
                           text, re.DOTALL)
        assert marked and 'aria-invalid="true"' in marked.group(), name
        assert f'aria-describedby="{name}-error"' in marked.group() or (
            f'{name}-error"' in marked.group()), name
    answer = upload(client, encodings["wav"], title="", recorder=True).get_json()
    assert answer["errors"] == [{"field": "title", "message": "Enter a title for the story."}]
    # What the service refuses is linked to its field too, or stands alone in the summary.
    answer = upload(client, encodings["wav"], consent_transcribe_analyse=None,
                    recorder=True).get_json()
    assert [e["field"] for e in answer["errors"]] == ["consent_transcribe_analyse"]
    assert answer["errors"][0]["message"].startswith(MSG_CONSENT)
    page = html.unescape(upload(client, encodings["wav"], consent_transcribe_analyse=None
                                ).get_data(as_text=True))
    assert f'<a href="#consent_transcribe_analyse">{MSG_CONSENT}' in page
    assert_nothing_stored(app)


def test_client_disconnecting_midway_stores_nothing(app, client, auth, encodings):
    auth.login_as(Role.REPORTER)
    body, content_type = multipart({**story_fields(),
                                    "audio": (encodings["wav"].read_bytes(), "story.wav")})
    sent = body[: len(body) // 2]
    response = client.post("/stories/new", input_stream=io.BytesIO(sent),
                           content_length=len(body), content_type=content_type)
    # The cut-off body is discarded whole (fields too), so the form is refused as incomplete.
    assert response.status_code == 400
    text = message(response)
    assert "<h1>Add a story</h1>" in text and "Enter a title for the story." in text
    assert "Story saved" not in text
    assert_nothing_stored(app)
    response = client.post("/stories/new", input_stream=io.BytesIO(sent), headers=RECORDER,
                           content_length=len(body), content_type=content_type)
    assert response.status_code == 400 and "Enter a title for the story." in message(response)
    assert_nothing_stored(app)
    # The same request sent whole is stored: the cut, not the content, was refused.
    story_id_from(client.post("/stories/new", input_stream=io.BytesIO(body),
                              content_length=len(body), content_type=content_type))
