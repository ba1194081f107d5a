"""Keys for encryption at rest: master keys from configuration, one data key per story.

Every file StoryHub keeps for a story (recordings, the muted copy, quote clips, the consent
form) is sealed with the story's own data key (storyhub/sealed.py). That key is stored in the
database only wrapped by a master key, and the master keys are never in the database:

- `STORYHUB_MASTER_KEYS`: comma-separated `id:key` entries, the first used for new stories,
  the others still read (to rotate, put a new one first; `storyhub keys new` makes one).
  Production keeps them in its secret store.
- Without it, the embedded default makes one in the instance folder (`master.keys`, readable
  by its owner only), so a copy of the storage folder alone is unreadable.

Erasing a story deletes its wrapped key: every copy of its files, backups included, is then
noise to anyone, whatever keys they hold.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, current_app

from . import sealed
from .config import settings

CONTEXT = "storyhub-story-{}"


def _instance_keys(instance_path: str) -> str:
    path = Path(instance_path) / "master.keys"
    if path.exists():
        return path.read_text().strip()
    entry = sealed.generate_master_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(entry + "\n")
    return entry


def master_keys_text(app: Flask) -> str:
    """The master keys as configured: `MASTER_KEYS`, the file `MASTER_KEYS_FILE` (a secret
    mounted by systemd's LoadCredential or a container secret), or the instance's own file."""
    configured = settings(app)
    if configured.master_keys:
        return configured.master_keys
    if configured.master_keys_file:
        return configured.master_keys_file.read_text().strip()
    return _instance_keys(app.instance_path)


def init_app(app: Flask) -> None:
    """Load the master keys once (a malformed setting stops the start with its reason)."""
    app.extensions["storyhub.master_keys"] = sealed.load_master_keys(master_keys_text(app))


def masters() -> sealed.MasterKeys:
    return current_app.extensions["storyhub.master_keys"]


def story_key(story) -> bytes | None:
    """Return the data key of `story`'s files (None: a story stored before encryption)."""
    if not story.wrapped_key:
        return None
    return sealed.unwrap_key(masters(), story.wrapped_key, CONTEXT.format(story.id))


def new_story_key(story) -> bytes:
    """Give `story` (flushed, so it has an id) a new data key; return it."""
    key = sealed.new_data_key()
    story.wrapped_key = sealed.wrap_key(masters(), key, CONTEXT.format(story.id))
    return key
