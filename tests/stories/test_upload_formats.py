"""Every accepted recording format, round-tripped: stored sealed as an original, a 16 kHz WAV
and an AAC playback copy with no metadata of the upload's; played whole and by ranges; the
sound kept from a video, never its pictures; the uploader's filename never used.
"""

from __future__ import annotations

import hashlib
import html
from datetime import timedelta
from pathlib import Path

import pytest

from storyhub import dates
from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.keys import story_key
from storyhub.sealed import is_sealed
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story
from tests.support import audio_fixtures as af
from tests.support.uploads import (
    NEEDS_AUDIO_TOOLS,
    SECRET_BYTES,
    play,
    plays,
    png_bytes,
    stored_files,
    story_id_from,
    upload,
)

pytestmark = [NEEDS_AUDIO_TOOLS, pytest.mark.usefixtures("quick_password_hashing")]


SHARED_SAMPLES = ("jfk.flac", "hotwords.mp3", "stereo_diarization.wav")
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
    assert plays(app, story_id) == 2
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
    review = dates.today() + timedelta(days=180)
    response = upload(client, tone(), consent_method="signed_form", spoken_at="",
                      consent_form=(png_bytes(), "form.png"),
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
        assert is_sealed(form.path) and png_bytes() not in form.path.read_bytes()
        assert form.read_bytes() == png_bytes()
    # The real name is kept apart: not on the story page.
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert code in page and "Jane Realname" not in page


# --- sound from videos and odd containers ----------------------------------------------------

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
    song = af.with_cover(encodings["wav"], tmp_path / "song.mp3", png_bytes(8), 8)
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
