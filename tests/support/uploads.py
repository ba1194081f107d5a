"""Uploading stories through the site as a reporter's phone or the in-browser recorder does,
and checking what the site answered and what it stored (tests/stories/, tests/app/)."""

from __future__ import annotations

import html
import io
import itertools
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storyhub import dates
from storyhub.accounts.models import Role, User
from storyhub.audit import AuditEvent
from storyhub.extensions import db
from storyhub.stories.models import Consent, Recording, Story, Storyteller, StorytellerIdentity
from tests.support import audio_fixtures as af
from tests.support.factories import PASSWORD
from tests.support.http import multipart

#: The audio tools the generated recordings need; tests that upload them skip without them.
NEEDS_AUDIO_TOOLS = pytest.mark.skipif(bool(af.missing_tools()),
                                       reason=f"needs {', '.join(af.missing_tools())} on PATH")

RECORDER = {"X-Requested-With": "storyhub-recorder"}
_users = itertools.count(1)
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


def zip_bytes() -> bytes:
    """A small ZIP archive: not a recording, whatever its name says."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("story.txt", "not audio " * 200)
    return buffer.getvalue()


def png_bytes(size: int = 8) -> bytes:
    """A tiny PNG picture: a consent form's scan, or a cover picture."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(b"\x00" + b"\xc0\x30\x30" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def story_fields(**overrides) -> dict:
    """The story form as a reporter fills it in; pass None to leave a field out (untick)."""
    today = dates.today().isoformat()
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


def plays(app, story_id: int) -> int:
    """How many listenings of the story were audited."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "story.play", AuditEvent.target_id == story_id))


def get_user(user_id: int) -> User:
    """The user with this id (inside an app context)."""
    return db.session.get(User, user_id)
