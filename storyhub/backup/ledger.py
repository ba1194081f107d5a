"""The erasure ledger: which stories were erased, kept outside every backup.

A backup is a copy of the past. A story erased after it was taken (consent withdrawn, an
admin's erasure, retention) is still whole in it, with its key, so restoring that backup
would bring the story back. The ledger stops that: every erasure asked for appends a line
(the story's id and the id of its data key, never its words) to a file that is not in any
backup, and `storyhub restore` erases again every story of the ledger it finds in the
restored instance before it finishes.

The key id is a digest of the story's data key, not the key: it says which story it was even
if a story id is used again (SQLite reuses the highest id once its row has gone), and it stays
the same when the key is wrapped again under a new master key.

Lines are appended with O_APPEND and fsync'd before the asking transaction commits, so the
ledger never misses an erasure the database shows. It errs towards erasure: an erasure whose
transaction then failed is in the ledger too, and a restore would erase that story.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app

from .. import keys
from ..config import settings
from ..extensions import db
from ..sealed import SealedFileError
from ..stories.models import Story

logger = logging.getLogger(__name__)

FILENAME = "erasures.ledger"


@dataclass(frozen=True)
class Entry:
    """One erasure: a story id, its data key's id (None: a story stored before encryption),
    the consent scopes erased (None: the whole story) and when it was asked for."""

    story_id: int
    key_id: str | None
    scopes: tuple[str, ...] | None
    at: str

    def to_line(self) -> str:
        return json.dumps({"story": self.story_id, "key": self.key_id,
                           "scopes": None if self.scopes is None else list(self.scopes),
                           "at": self.at}, sort_keys=True) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Entry:
        data = json.loads(line)
        scopes = data.get("scopes")
        return cls(int(data["story"]), data.get("key"),
                   None if scopes is None else tuple(scopes), str(data.get("at", "")))


def key_id(data_key: bytes) -> str:
    """Return the id of a story's data key: a digest that names it and reveals nothing of it."""
    return hashlib.sha256(b"storyhub-key-id\0" + bytes(data_key)).hexdigest()[:32]


def ledger_path(app: Flask) -> Path:
    """The ledger file of `app`: `ERASURE_LEDGER`, or `erasures.ledger` in the instance."""
    return settings(app).erasure_ledger or Path(app.instance_path) / FILENAME


def append(path: Path, entries: Iterable[Entry]) -> None:
    """Append `entries` to the ledger at `path` (made owner-only), on disk before returning."""
    data = "".join(entry.to_line() for entry in entries).encode("utf-8")
    if not data:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[Entry]:
    """Return the entries of the ledger at `path` ([] if there is none).

    A last line cut short (the machine stopped while writing it) is skipped; any other line
    that cannot be read stops with ValueError, naming the line.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(Entry.from_line(line))
        except (ValueError, KeyError, TypeError):
            if number == len(lines) and not line.endswith("\n"):
                logger.warning("The last line of the erasure ledger %s is cut short; skipped",
                               path)
                continue
            raise ValueError(f"line {number} of the erasure ledger {path} cannot be read") \
                from None
    return entries


def entry_for(story, scopes: Iterable[str] | None) -> Entry:
    """Return the ledger entry for erasing `story` (whole when `scopes` is None)."""
    data_key = None
    with contextlib.suppress(SealedFileError):
        data_key = keys.story_key(story)
    return Entry(story.id, key_id(data_key) if data_key else None,
                 None if scopes is None else tuple(sorted(scopes)),
                 datetime.now(UTC).replace(microsecond=0).isoformat())


def note_erasure(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    """Signal receiver: write an erasure to the ledger as it is asked for, and as it is done.

    A ledger that cannot be written never stops an erasure: it is logged as an error, since a
    restore from an older backup would then bring the story back.
    """
    story = db.session.get(Story, story_id)
    if story is None:
        return []
    path = ledger_path(current_app)
    try:
        append(path, [entry_for(story, scopes)])
    except OSError as exc:
        logger.error("Could not write story %s to the erasure ledger %s (%s): a restore from "
                     "a backup taken before now would bring it back", story_id, path,
                     exc.strerror or exc)
    return []
