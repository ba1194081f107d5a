"""Subject access: everything StoryHub holds about one storyteller, as one ZIP.

For a storyteller who asks what is held about them (UK GDPR article 15). The ZIP holds, per
story: its details and consent record, the signed consent form, the original recording and
the playback copy, the whole transcript (unredacted: it is their own words) as text and as JSON
with word timings, the passages used in theme runs with their themes, and the audit log of who
opened, played, downloaded or changed it. Their stored real name is included when there is one.
Only admins make it, and making it is audited.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

from sqlalchemy import select

from .. import audit, dates, policy, signals
from ..accounts.models import User
from ..audit import AuditEvent
from ..extensions import db
from ..keys import story_key
from ..storage import get_storage
from .models import Story, Storyteller

README = """What StoryHub holds about storyteller {code}
=============================================

This archive was made on {made} for a subject access request. It holds every story this
storyteller told, with:

  story.json         the story's details and the consent they gave (and when it was changed)
  consent-form.*     the signed consent form, where consent was given on a form
  original.*         the recording as it was uploaded (unless deleted under the retention rules)
  playback.m4a       the copy StoryHub plays back
  transcript.txt     what was said, as written down (with any corrections)
  transcript.json    the same with the time of every word
  themes.json        the passages of the story used to find themes, and the themes they are in
  access-log.csv     who opened, played, downloaded or changed the story, when and from where

{name_line}Nothing else about this storyteller is held.
"""


def _story_record(story: Story) -> dict:
    consent = story.consent
    return {
        "story": {"id": story.id, "title": story.title, "type": story.story_type.value,
                  "storyteller_role": story.storyteller.role.value,
                  "recorded_on": story.recorded_on.isoformat(), "prompt": story.prompt,
                  "language": story.language, "tags": story.tag_list,
                  "site": story.site.name if story.site else None,
                  "added_on": story.created_at.isoformat(timespec="seconds")},
        "consent": None if consent is None else {
            "transcribe_analyse": consent.transcribe_analyse,
            "quote_in_packs": consent.quote_in_packs,
            "play_in_workshops": consent.play_in_workshops,
            "staff_library": consent.staff_library,
            "publish_external": consent.publish_external,
            "store_real_name": consent.store_real_name, "method": consent.method.value,
            "spoken_at_seconds": consent.spoken_at_seconds,
            "witnessed_by": consent.witnessed_by, "given_on": consent.given_on.isoformat(),
            "review_on": consent.review_on.isoformat() if consent.review_on else None,
            "withdrawn_at": consent.withdrawn_at.isoformat(timespec="seconds")
            if consent.withdrawn_at else None},
    }


def _access_log(story_id: int) -> str:
    names = {row.id: row.username for row in db.session.execute(select(User.id, User.username))}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["when_utc", "who", "action", "detail", "from"])
    for event in db.session.scalars(select(AuditEvent).where(
            AuditEvent.target_type == "story", AuditEvent.target_id == story_id)
            .order_by(AuditEvent.id)):
        writer.writerow([event.at.isoformat(timespec="seconds"),
                         names.get(event.actor_id, "StoryHub" if event.actor_id is None
                                   else "(removed account)"),
                         event.action, event.detail or "", event.ip or ""])
    return out.getvalue()


def build(storyteller: Storyteller, actor: User, out: Path) -> int:
    """Write the ZIP for `storyteller` to `out`; return how many stories it holds."""
    stories = list(db.session.scalars(select(Story).where(
        Story.storyteller_id == storyteller.id).order_by(Story.id)))
    for story in stories:
        policy.require(actor, story, policy.Action.SUBJECT_ACCESS)
    storage = get_storage()
    identity = storyteller.identity
    name_line = (f"Their real name is stored, kept apart from the stories: {identity.real_name}"
                 "\n\n" if identity is not None else "")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README.format(code=storyteller.code, made=dates.today(),
                                                     name_line=name_line))
        for story in stories:
            folder = f"story-{story.id}/"
            archive.writestr(folder + "story.json",
                             json.dumps(_story_record(story), indent=2))
            data_key = story_key(story)

            def add(key: str | None, name: str, data_key: bytes | None = data_key) -> None:
                stored = storage.file(key, data_key) if key else None
                if stored is not None and stored.exists():
                    with stored.open() as src, archive.open(name, "w") as dst:
                        shutil.copyfileobj(src, dst, 1024 * 1024)

            if story.consent is not None and story.consent.form_key:
                key = story.consent.form_key
                add(key, folder + "consent-form" + Path(key).suffix)
            recording = story.recording
            if recording is not None:
                add(recording.original_key,
                    folder + "original" + Path(recording.original_key or "x").suffix)
                add(recording.playback_key, folder + "playback.m4a")
            # The transcript and the theme passages: each feature adds what it made.
            for _receiver, parts in signals.subject_access_parts.send(story):
                for name, text in (parts or {}).items():
                    archive.writestr(folder + name, text)
            archive.writestr(folder + "access-log.csv", _access_log(story.id))
    for story in stories:
        audit.record("subject_access.export", actor.id, "story", story.id,
                     detail=f"storyteller {storyteller.code}")
    return len(stories)
