"""Story intake: real recordings in every accepted format, refusals that store nothing,
consent scopes enforced by the service layer, and who may see and play a story.

Audio is generated here with espeak-ng, sox and PyAV (once per module) and checked with PyAV;
the shared speech samples are used too when ../shared/data/speech exists.
"""

from __future__ import annotations

import errno
import hashlib
import html
import io
import itertools
import re
import struct
import tempfile
import zipfile
import zlib
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from storyhub.accounts import service as accounts_service
from storyhub.accounts.models import Role, Site, User
from storyhub.audit import AuditEvent
from storyhub.extensions import db
from storyhub.keys import story_key
from storyhub.policy import AccessDenied, Action
from storyhub.policy import require as policy_require
from storyhub.sealed import is_sealed
from storyhub.storage import LocalStorage
from storyhub.stories import service
from storyhub.stories.consent import Scope
from storyhub.stories.models import Consent, Recording, Story, Storyteller, StorytellerIdentity
from tests.support import audio_fixtures as af
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.skipif(bool(af.missing_tools()),
                                reason=f"needs {', '.join(af.missing_tools())} on PATH")

RECORDER = {"X-Requested-With": "storyhub-recorder"}
_users = itertools.count(1)
SHARED_SAMPLES = ("jfk.flac", "hotwords.mp3", "stereo_diarization.wav")
SECRET_BYTES = (b"SECRET-TITLE", b"GPS 51", b"Realname")
STORY_TABLES = (Story, Recording, Consent, Storyteller, StorytellerIdentity)
# May hold rows when nothing was stored.
ACCOUNT_TABLES = {"users", "sites", "audit_events", "sign_in_counters"}

MSG_EMPTY = "The file is empty (0 bytes)"
MSG_UNREADABLE = "This file is not a recording StoryHub can read"
MSG_NOT_ACCEPTED = "This file is not a recording StoryHub accepts"
MSG_VIDEO = "This file is a video with no sound track"
MSG_DAMAGED = "This recording is damaged: StoryHub could not play it through to the end"
MSG_CONSENT = "Record the storyteller's consent before uploading"
MSG_SPOKEN_AT = "Say where on the recording the storyteller gives consent"
MSG_FORM = "Upload a photo or scan of the signed consent form"
MSG_REAL_NAME = "You entered the storyteller's real name, but they have not agreed"
MSG_DUPLICATE = "This recording has already been uploaded"
MSG_FULL = "The server's storage is full"
MSG_TOO_LARGE = "That file is too large"
MSG_NO_FILE = "Choose a recording to upload, or record one."


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch):
    """Signing in is not under test here: cheap argon2 settings save ~0.5 s per user."""
    monkeypatch.setattr(accounts_service, "hasher",
                        PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))


# --- audio made once per module ---------------------------------------------------------------

@pytest.fixture(scope="module")
def encodings(tmp_path_factory) -> dict[str, Path]:
    """espeak-ng speech in every accepted format, each file tagged with SECRET_TAGS."""
    return af.make_encodings(tmp_path_factory.mktemp("encodings"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, encodings) -> dict[str, Path]:
    """Files that must be refused, by content whatever their names say."""
    folder = tmp_path_factory.mktemp("bad")
    files = {
        "empty.wav": b"",
        "page.wav": b"<!doctype html>\n<html><head><title>Story</title></head>"
                    b"<body><p>Not audio</p></body></html>\n",
        "script.mp3": b"#!/bin/sh\necho 'not audio'\nexit 0\n",
        "archive.m4a": _zip_bytes(),
        "image.ogg": _png_bytes(),
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


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("story.txt", "not audio " * 200)
    return buffer.getvalue()


def _png_bytes(size: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(b"\x00" + b"\xc0\x30\x30" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest.fixture
def tone(tmp_path):
    """Return a factory of short, distinct sox tones (distinct, so never a duplicate)."""
    made = []

    def factory(seconds: float | None = None) -> Path:
        seconds = seconds if seconds is not None else 1.0 + 0.25 * len(made)
        path = af.sine_wav(tmp_path / f"tone-{len(made)}.wav", seconds)
        made.append(path)
        return path

    return factory


# --- helpers ---------------------------------------------------------------------------------

def story_fields(**overrides) -> dict:
    """The story form as a reporter fills it in; pass None to leave a field out (untick)."""
    today = date.today().isoformat()
    fields = {
        "title": "First week out", "story_type": "snapshot",
        "storyteller_role": "person_on_probation", "storyteller_code": "", "real_name": "",
        "prompt": "What helped you most?", "site": "0", "language": "en",
        "recorded_on": today, "tags": "Housing, first week",
        "consent_transcribe_analyse": "y", "consent_method": "spoken", "spoken_at": "0:01",
        "witnessed_by": "", "consent_given_on": today, "consent_review_on": "",
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def multipart(data: dict) -> tuple[bytes, str]:
    """Encode a form as multipart in memory; (content, filename) tuples become files.

    (The test client would spool bodies over 500 kB to a temporary file it never closes.)
    """
    values = {key: FileStorage(io.BytesIO(value[0]), filename=value[1])
              if isinstance(value, tuple) else value for key, value in data.items()}
    boundary, body = encode_multipart(values)
    return body, f'multipart/form-data; boundary="{boundary}"'


def upload(client, path: Path | None = None, *, filename: str | None = None,
           content: bytes | None = None, recorder: bool = False, **fields):
    """POST /stories/new with `path` (or `content`) as the recording.

    Pass a file field (e.g. consent_form) as (bytes, filename).
    """
    data = story_fields(**fields)
    if path is not None and content is None:
        content = path.read_bytes()
    if content is not None:
        if filename is None:
            filename = path.name if path else "recording.wav"
        data["audio"] = (content, filename)
    body, content_type = multipart(data)
    return client.post("/stories/new", data=body, content_type=content_type,
                       headers=RECORDER if recorder else {})


def message(response) -> str:
    """The message the user sees: the recorder's JSON error, or the page's text."""
    if response.is_json:
        body = response.get_json()
        return body["error"] if "error" in body else str(body)
    return html.unescape(response.get_data(as_text=True))


def assert_refused(response, status: int, text: str) -> None:
    assert response.status_code == status, (response.status_code, message(response)[:2000])
    assert text in message(response)
    if response.is_json:  # "errors": each with the field it is about, from the story form
        assert set(response.get_json()) in ({"error", "link"}, {"error", "link", "errors"})


def story_id_from(response) -> int:
    assert response.status_code in (201, 302), (response.status_code, message(response)[:2000])
    target = (response.get_json()["redirect"] if response.is_json
              else response.headers["Location"])
    match = re.fullmatch(r"/stories/(\d+)", target)
    assert match, target
    return int(match.group(1))


def stored_files(app) -> list[Path]:
    """Every file (not folder) under the storage root, temporary ones included."""
    root = app.extensions["storage"].root
    return sorted(p for p in root.rglob("*") if not p.is_dir())


def assert_nothing_stored(app) -> None:
    """Nothing of a story anywhere: no rows (stories, recordings, consents, storytellers, and
    every other table but accounts and the audit log, so jobs and transcripts too), no audit
    of a story made, no queued job message, no files under storage, an empty tmp folder."""
    with app.app_context():
        for model in STORY_TABLES:
            count = db.session.scalar(select(func.count()).select_from(model))
            assert count == 0, f"{count} row(s) left in {model.__tablename__}"
        for table in db.metadata.sorted_tables:
            if table.name not in ACCOUNT_TABLES:
                count = db.session.scalar(select(func.count()).select_from(table))
                assert count == 0, f"{count} row(s) left in {table.name}"
        made = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(("story.create", "transcription.start")))).all()
        assert made == []
    queue = Path(app.instance_path, "broker", "queue")
    assert not queue.is_dir() or list(queue.iterdir()) == []
    storage = app.extensions["storage"]
    assert stored_files(app) == []
    assert storage.tmp.is_dir()
    assert list(storage.tmp.iterdir()) == []


def login_client(app, make_user, role: Role, **fields):
    """A fresh test client signed in as a new user with `role` (and `fields`)."""
    username = fields.pop("username", None) or f"{role.value}-{next(_users)}"
    make_user(role, username=username, **fields)
    other = app.test_client()
    response = other.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return other


def play(client, story_id: int, byte_range: str | None = None):
    """GET the story's audio, read whole (so the test client closes the file it streams)."""
    headers = {"Range": byte_range} if byte_range else {}
    return client.get(f"/stories/{story_id}/audio", headers=headers, buffered=True)


def _new_story(**fields) -> service.NewStory:
    values = {"title": "Direct", "storyteller_role": "person_on_probation",
              "story_type": "snapshot", "recorded_on": date.today(), **fields}
    return service.NewStory(**values)


def _new_consent(**fields) -> service.NewConsent:
    values = {"scopes": {Scope.TRANSCRIBE_ANALYSE}, "method": "spoken",
              "given_on": date.today(), "spoken_at_seconds": 0.0, **fields}
    return service.NewConsent(**values)


def get_user(user_id: int) -> User:
    return db.session.get(User, user_id)


# --- 1. every accepted format, round-tripped ------------------------------------------------

SAMPLES = [pytest.param(("generated", e.name), id=e.name) for e in af.ENCODINGS] + [
    pytest.param(("shared", name), id=name) for name in SHARED_SAMPLES]


@pytest.fixture
def sample(request) -> tuple[Path, bool]:
    """(path, carries SECRET_TAGS) for one accepted recording."""
    kind, name = request.param
    if kind == "generated":
        return request.getfixturevalue("encodings")[name], True
    path = af.SHARED_SPEECH / name
    if not path.is_file():
        pytest.skip(f"shared speech sample {path} is not present (../shared/data/speech)")
    return path, False


@pytest.mark.parametrize("sample", SAMPLES, indirect=True)
def test_accepted_format_round_trip(app, client, auth, sample, tmp_path):
    path, tagged = sample
    source = af.probe(path)
    # A recorder's live WebM carries no duration: then measure what it decodes to.
    expected = source.length or af.decoded_duration(path)
    if tagged:  # the upload really carries the metadata that must not survive
        assert set(af.SECRET_TAGS.values()) <= set(source.all_tags().values())
    auth.login_as(Role.REPORTER)

    response = upload(client, path, filename=f"phone-upload{path.suffix}")
    story_id = story_id_from(response)
    assert response.headers["Location"] == f"/stories/{story_id}"

    storage = app.extensions["storage"]
    with app.app_context():
        story = db.session.get(Story, story_id)
        rec = story.recording
        assert story.title == "First week out"
        assert story.tags == "first week,housing"
        assert story.consent.transcribe_analyse and not story.consent.publish_external
        assert story.storyteller.code.startswith("ST-")
        assert abs(rec.duration_seconds - expected) < 0.5, (rec.duration_seconds, expected)
        assert rec.channels == source.audio.channels
        assert rec.sample_rate == source.audio.sample_rate
        assert rec.size_bytes == path.stat().st_size
        assert rec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        keys = {"original": rec.original_key, "normalised": rec.normalised_key,
                "playback": rec.playback_key}
        # Stored sealed with the story's key; read back (decrypted) for the checks below.
        data_key = story_key(story)
        plain = {name: storage.file(key, data_key).copy_to(tmp_path / f"stored-{name}")
                 for name, key in keys.items()}
    paths = {name: storage.path(key) for name, key in keys.items()}
    assert all(p.is_file() for p in paths.values()), paths
    for name, path in paths.items():  # the audio's bytes are nowhere on disk
        assert is_sealed(path), name
        audio_bytes = plain[name].read_bytes()
        middle = audio_bytes[len(audio_bytes) // 2:len(audio_bytes) // 2 + 64]
        assert len(middle) == 64 and middle not in path.read_bytes(), name
    # Keys are StoryHub's, never the uploader's filename; nothing else stored, tmp empty.
    assert not any("phone-upload" in key for key in keys.values())
    assert stored_files(app) == sorted(paths.values())

    # The page offers the player; the audio plays whole, as AAC in MP4, never cached.
    page = client.get(f"/stories/{story_id}")
    assert page.status_code == 200
    assert f'src="/stories/{story_id}/audio"' in page.get_data(as_text=True)
    full = play(client, story_id)
    assert full.status_code == 200
    assert full.mimetype == "audio/mp4"
    assert full.headers["Cache-Control"] == "no-store"
    assert full.headers["X-Content-Type-Options"] == "nosniff"
    assert full.headers["Content-Disposition"] == f'inline; filename="story-{story_id}.m4a"'
    assert full.headers["Accept-Ranges"] == "bytes"
    body = full.data
    assert body == plain["playback"].read_bytes()
    played = tmp_path / "played.m4a"
    played.write_bytes(body)

    probed = {"original": af.probe(plain["original"]),
              "normalised": af.probe(plain["normalised"]),
              "playback": af.probe(played)}
    original = probed["original"]
    assert original.audio.codec == source.audio.codec
    assert abs(original.length - expected) < 0.5
    normalised = probed["normalised"]
    assert normalised.format_name == "wav" and normalised.audio.codec == "pcm_s16le"
    assert normalised.audio.sample_rate == 16000 and normalised.audio.channels == 1
    assert abs(normalised.length - expected) < 0.5
    assert abs(af.decoded_duration(plain["normalised"]) - expected) < 0.5
    playback = probed["playback"]
    assert playback.audio.codec == "aac" and playback.audio.channels == 1
    assert [s.kind for s in playback.streams] == ["audio"]
    assert abs(playback.length - expected) < 0.5

    # No metadata from the upload survives in any stored file.
    for name, info in probed.items():
        tags = info.all_tags()
        assert not {"title", "comment", "artist"} & set(tags), (name, tags)
        assert not set(af.SECRET_TAGS.values()) & set(tags.values()), (name, tags)
        data = plain[name].read_bytes() if name in plain else played.read_bytes()
        assert not any(secret in data for secret in SECRET_BYTES), name

    # Ranges: the first 100 bytes, from byte 100 to the end, and the last 50 bytes.
    total = len(body)
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=100-", 100, total - 1),
                               ("bytes=-50", total - 50, total - 1)):
        part = play(client, story_id, header)
        assert part.status_code == 206, header
        assert part.headers["Content-Range"] == f"bytes {start}-{end}/{total}", header
        assert int(part.headers["Content-Length"]) == end - start + 1, header
        assert part.data == body[start:end + 1], header
        assert part.mimetype == "audio/mp4"
        assert part.headers["Cache-Control"] == "no-store"
        if header == "bytes=0-99":
            assert len(part.data) == 100
    assert play(client, story_id, f"bytes={total}-").status_code == 416

    # Each listening is audited once (the whole file, and the range from byte 0), not each
    # later Range request of it; nothing was left in the temporary folder.
    assert _plays(app, story_id) == 2
    assert list(storage.tmp.iterdir()) == []


def test_recorder_upload_answers_in_json(app, client, auth, encodings):
    auth.login_as(Role.REPORTER)
    response = upload(client, encodings["webm-opus"], filename="recording.webm", recorder=True)
    assert response.status_code == 201
    story_id = story_id_from(response)
    assert response.get_json() == {"redirect": f"/stories/{story_id}", "story_id": story_id}
    page = client.get(f"/stories/{story_id}")
    assert "Story saved: “First week out”" in html.unescape(page.get_data(as_text=True))


def test_signed_form_real_name_and_scopes_are_kept(app, client, auth, tone):
    auth.login_as(Role.FACILITATOR)
    review = date.today() + timedelta(days=180)
    response = upload(client, tone(), consent_method="signed_form", spoken_at="",
                      consent_form=(_png_bytes(), "form.png"),
                      consent_quote_in_packs="y", consent_staff_library="y",
                      real_name="Jane Realname", store_real_name="y",
                      witnessed_by="Officer Jones", consent_review_on=review.isoformat(),
                      story_type="dialogue",
                      storyteller_role="peer_mentor")
    story_id = story_id_from(response)
    storage = app.extensions["storage"]
    with app.app_context():
        story = db.session.get(Story, story_id)
        consent = story.consent
        assert {s for s in Scope if getattr(consent, s.value)} == {
            Scope.TRANSCRIBE_ANALYSE, Scope.QUOTE_IN_PACKS, Scope.STAFF_LIBRARY}
        assert consent.method.value == "signed_form" and consent.spoken_at_seconds is None
        assert consent.review_on == review and consent.witnessed_by == "Officer Jones"
        assert consent.store_real_name
        code = story.storyteller.code
        assert story.storyteller.identity.real_name == "Jane Realname"
        assert consent.form_key.startswith("consent-forms/") and consent.form_key.endswith(".png")
        form = storage.file(consent.form_key, story_key(story))
        assert is_sealed(form.path) and _png_bytes() not in form.path.read_bytes()
        assert form.read_bytes() == _png_bytes()
    # The real name is kept apart: not on the story page.
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert code in page and "Jane Realname" not in page


# --- 2. bad inputs: refused with a message, nothing stored ----------------------------------

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


def recording_files(app, story_id: int, folder: Path) -> dict[str, Path]:
    """The stored original, normalised and playback files of a story, decrypted into `folder`
    (each stored file is checked to be sealed, its name keeping the stored suffix)."""
    storage = app.extensions["storage"]
    with app.app_context():
        story = db.session.get(Story, story_id)
        rec, data_key = story.recording, story_key(story)
        out = {}
        for name, key in (("original", rec.original_key), ("normalised", rec.normalised_key),
                          ("playback", rec.playback_key)):
            stored = storage.file(key, data_key)
            assert is_sealed(stored.path), name
            out[name] = stored.copy_to(folder / f"{name}{Path(key).suffix}")
        return out


def assert_sound_only(files: dict[str, Path]) -> None:
    """Each stored file holds one sound stream, and nothing of the upload's tags or pictures."""
    for name, path in files.items():
        probed = af.probe(path)
        assert [s.kind for s in probed.streams] == ["audio"], (name, probed.streams)
        assert not set(af.SECRET_TAGS.values()) & set(probed.all_tags().values()), name
        data = path.read_bytes()
        assert not any(secret in data for secret in (*SECRET_BYTES, b"IHDR")), name


def test_video_with_sound_keeps_only_the_sound(app, client, auth, encodings, tmp_path):
    film = af.video_with_sound(encodings["wav"], tmp_path / "film.mp4", af.SECRET_TAGS)
    assert sorted(s.kind for s in af.probe(film).streams) == ["audio", "video"]
    auth.login_as(Role.REPORTER)
    story_id = story_id_from(upload(client, film))
    files = recording_files(app, story_id, tmp_path)
    assert files["original"].suffix == ".m4a"
    assert_sound_only(files)


def test_cover_picture_is_not_a_video_and_is_not_kept(app, client, auth, encodings, tmp_path):
    song = af.with_cover(encodings["wav"], tmp_path / "song.mp3", _png_bytes(8), 8)
    assert sorted(s.kind for s in af.probe(song).streams) == ["audio", "video"]
    assert b"IHDR" in song.read_bytes()
    auth.login_as(Role.REPORTER)
    story_id = story_id_from(upload(client, song, recorder=True))
    files = recording_files(app, story_id, tmp_path)
    assert files["original"].suffix == ".mp3"
    assert_sound_only(files)


def test_sound_its_container_cannot_hold_is_kept_as_flac(app, client, auth, encodings,
                                                         tmp_path):
    # MP3 sound inside an MP4 (some cameras make these): an M4A cannot hold MP3.
    mp3_in_mp4 = af.Encoding("mp3-in-mp4", "camera.mp4", "mp4", "libmp3lame", "mp3", 64_000)
    upload_path = af.encode(encodings["wav"], tmp_path / "camera.mp4", mp3_in_mp4,
                            af.SECRET_TAGS)
    expected = af.probe(upload_path).length
    auth.login_as(Role.REPORTER)
    story_id = story_id_from(upload(client, upload_path))
    files = recording_files(app, story_id, tmp_path)
    assert files["original"].suffix == ".flac"
    original = af.probe(files["original"])
    assert original.format_name == "flac" and original.audio.codec == "flac"
    assert abs(original.length - expected) < 0.5
    assert_sound_only(files)


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


def test_uploaders_filename_is_never_used(app, client, auth, tone):
    auth.login_as(Role.REPORTER)
    story_id = story_id_from(upload(client, tone(), filename="../../../../etc/cron.d/evil.wav"))
    root = app.extensions["storage"].root
    files = stored_files(app)
    assert len(files) == 3
    assert all(root in f.parents and "evil" not in str(f) and "cron" not in str(f)
               for f in files)
    with app.app_context():
        rec = db.session.get(Story, story_id).recording
        assert {rec.original_key, rec.normalised_key, rec.playback_key} == {
            str(f.relative_to(root)) for f in files}


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
    pytest.param({"consent_review_on": date.today().isoformat()},
                 "The consent review date must be after the date consent was given.",
                 id="review-not-after-given"),
    pytest.param({"recorded_on": (date.today() + timedelta(days=1)).isoformat()},
                 "The date recorded cannot be in the future.", id="recorded-in-future"),
])
def test_consent_problems_are_refused_and_nothing_stored(app, client, auth, encodings,
                                                         fields, expected):
    auth.login_as(Role.REPORTER)
    for recorder in (False, True):
        response = upload(client, encodings["ogg-opus"], recorder=recorder, **fields)
        assert_refused(response, 422, expected)
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


@pytest.mark.parametrize("fail_on_call", [1, 3], ids=["first-file", "last-file"])
def test_disk_full_while_storing_stores_nothing(app, client, auth, encodings, monkeypatch,
                                                 fail_on_call):
    real_put = LocalStorage.put
    calls = []

    def put(self, source, key, data_key=None):
        calls.append(key)
        if len(calls) == fail_on_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_put(self, source, key, data_key)

    monkeypatch.setattr(LocalStorage, "put", put)
    auth.login_as(Role.REPORTER)
    response = upload(client, encodings["flac"])
    assert_refused(response, 507, MSG_FULL)
    assert "Nothing has been stored" in message(response)
    assert len(calls) == fail_on_call
    assert_nothing_stored(app)
    # And the recorder gets the same answer as JSON.
    calls.clear()
    response = upload(client, encodings["flac"], recorder=True)
    assert_refused(response, 507, MSG_FULL)
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


# --- cut-off recordings and full disks ------------------------------------------------------




@pytest.mark.parametrize(("name", "keep"), [pytest.param("wav", 0.3, id="wav-30%"),
                                            pytest.param("flac", 0.65, id="flac-65%")])
def test_cut_off_recording_is_refused_as_damaged(app, client, auth, encodings, tmp_path,
                                                 name, keep):
    source = encodings[name]
    cut = af.truncated(source, tmp_path / f"cut{source.suffix}", keep)
    auth.login_as(Role.REPORTER)
    assert_refused(upload(client, cut, recorder=True), 422, MSG_DAMAGED)
    assert_nothing_stored(app)





@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("suffix", [".orig", ".wav", ".m4a"],
                         ids=["original", "normalised", "playback"])
def test_disk_full_while_converting_says_storage_is_full(app, client, auth, encodings,
                                                         monkeypatch, suffix):
    """One converted file lands on a full disk: /dev/full answers every write with ENOSPC."""
    real_temp_path = LocalStorage.temp_path

    def temp_path(self, suffix_asked: str = "") -> Path:
        path = real_temp_path(self, suffix_asked)
        if suffix_asked == suffix:
            path.unlink()
            path.symlink_to("/dev/full")
        return path

    monkeypatch.setattr(LocalStorage, "temp_path", temp_path)
    auth.login_as(Role.REPORTER)
    response = upload(client, encodings["mp3"], recorder=True)
    assert_nothing_stored(app)
    assert_refused(response, 507, MSG_FULL)


class _FillingUpFile:
    """An upload spool file on a disk that fills up after `room` bytes."""

    def __init__(self, real, room: int):
        self._real = real
        self._room = room

    def write(self, data: bytes) -> int:
        if self._room < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)


class TestDiskFullWhileReceiving:
    @pytest.fixture
    def config_overrides(self):
        return {"PROPAGATE_EXCEPTIONS": False}  # answer as in production, not raise


    def test_disk_full_while_receiving_says_storage_is_full(self, app, client, auth,
                                                            encodings, monkeypatch):
        import storyhub.storage

        real = tempfile.NamedTemporaryFile
        spools = []

        def named_temporary_file(*args, **kwargs):
            spool = real(*args, **kwargs)
            if kwargs.get("suffix") == ".upload":
                spools.append(spool)
                return _FillingUpFile(spool, room=8 * 1024)
            return spool

        monkeypatch.setattr(storyhub.storage, "tempfile",
                            SimpleNamespace(NamedTemporaryFile=named_temporary_file))
        auth.login_as(Role.REPORTER)
        response = upload(client, encodings["wav"], recorder=True)
        assert len(spools) == 1
        # Werkzeug drops the half-written spool without closing it (it would go at garbage
        # collection): close it here so the test does not depend on when that happens.
        spools[0].close()
        assert_nothing_stored(app)
        assert_refused(response, 507, MSG_FULL)


# --- 3. consent scopes, enforced by the service layer ---------------------------------------

@pytest.fixture
def add_story(app, client, auth, tone):
    """Upload a story (as a signed-in facilitator) and return its id."""
    auth.login_as(Role.FACILITATOR, username="fiona")

    def factory(**fields) -> int:
        return story_id_from(upload(client, tone(), **fields))

    return factory


def _change_consent(app, story_id: int, **values) -> None:
    with app.app_context():
        consent = db.session.get(Story, story_id).consent
        for key, value in values.items():
            setattr(consent, key, value)
        db.session.commit()


def _plays(app, story_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "story.play", AuditEvent.target_id == story_id))


WITHDRAWN = datetime(2024, 3, 5, 14, 30)
OVERDUE = date.today() - timedelta(days=1)
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
    assert _plays(app, story_id) == (1 if gatherer_plays else 0)
    auth.logout()
    auth.login_as(Role.ADMIN)
    response = play(client, story_id)
    assert response.status_code == 403
    assert response.get_json() == {"error": expected}
    page = client.get(f"/stories/{story_id}")
    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert expected in text and f"/stories/{story_id}/audio" not in text
    assert _plays(app, story_id) == (1 if gatherer_plays else 0)


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
    story_id = add_story(consent_given_on=(date.today() - timedelta(days=30)).isoformat(),
                         consent_review_on=date.today().isoformat())
    admin_id = make_user(Role.ADMIN)
    with app.app_context():
        stored = service.playback_file(db.session.get(Story, story_id), get_user(admin_id))
        assert stored.exists()
        db.session.commit()
    assert play(client, story_id).status_code == 200
    assert _plays(app, story_id) == 1  # heard through the site, not the service call


# --- 4. who may see and play a story --------------------------------------------------------

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
    assert _plays(app, site_b_story) == 0
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
