"""What a backup holds besides the database: which stored files, and whose key opens each.

Every file StoryHub keeps is sealed under a data key of its owner (storyhub/sealed.py) and
bound to its storage key, which is its path under the storage folder:

- a story's recordings (original, 16 kHz copy, playback copy, muted copy) and consent form,
  named by its `recordings` and `consents` rows, and its quote clips (`clips/story-N/`, cut
  again when missing);
- a theme run's saved model (`themes/run-N/`), under the run's own key.

Read from the database snapshot the backup is of, with plain SQL, so the same query serves a
SQLite copy, a PostgreSQL snapshot and a restored database at any schema since encryption.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

CLIPS = "clips/story-{}"


@dataclass(frozen=True)
class Owner:
    """Whose key seals a file: `kind` "story" or "run", and its id."""

    kind: str
    id: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text_: str) -> Owner:
        kind, _, number = text_.partition(":")
        if kind not in ("story", "run") or not number.isdigit():
            raise ValueError(f"unknown file owner {text_!r}")
        return cls(kind, int(number))


@dataclass(frozen=True)
class Snapshot:
    """What a database snapshot refers to: stored files by key, and the wrapped keys."""

    files: dict[str, Owner]  # storage key -> owner (folders of theme models listed apart)
    model_folders: dict[str, Owner]  # storage key of a run's model folder -> its run
    story_keys: dict[int, str | None]  # story id -> wrapped data key
    run_keys: dict[int, str | None]  # run id -> wrapped model key

    def master_key_ids(self) -> list[str]:
        """The master keys that wrap the keys of this snapshot (ids only)."""
        tokens = [*self.story_keys.values(), *self.run_keys.values()]
        return sorted({token.partition(":")[0] for token in tokens if token})


def read_snapshot(conn: Connection) -> Snapshot:
    """Return what the database behind `conn` refers to, at the point in time it shows."""
    files: dict[str, Owner] = {}
    story_keys = {row[0]: row[1] for row in conn.execute(
        text("SELECT id, wrapped_key FROM stories"))}
    for story_id, *keys in conn.execute(text(
            "SELECT story_id, original_key, normalised_key, playback_key, "
            "redacted_playback_key FROM recordings")):
        for key in keys:
            if key:
                files[key] = Owner("story", story_id)
    for story_id, key in conn.execute(text(
            "SELECT story_id, form_key FROM consents WHERE form_key IS NOT NULL")):
        if key:
            files[key] = Owner("story", story_id)
    run_keys: dict[int, str | None] = {}
    folders: dict[str, Owner] = {}
    for run_id, model_key, wrapped in conn.execute(text(
            "SELECT id, model_key, model_wrapped_key FROM theme_runs")):
        run_keys[run_id] = wrapped
        if model_key:
            folders[model_key] = Owner("run", run_id)
    return Snapshot(files, folders, story_keys, run_keys)


def stored_files(storage_root: Path, snapshot: Snapshot) -> Iterator[tuple[str, Owner, bool]]:
    """Yield (storage key, owner, required) for every file the snapshot holds in storage.

    Required files are named by a row; clips and a model folder's files are found on disk.
    A required file may be missing when it was deleted after the snapshot was taken.
    """
    for key, owner in sorted(snapshot.files.items()):
        yield key, owner, True
    for folder, owner in sorted(snapshot.model_folders.items()):
        path = storage_root / folder
        names = sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []
        if not names:
            yield folder + "/config.json", owner, True  # reported missing
        for name in names:
            yield f"{folder}/{name}", owner, True
    for story_id in sorted(snapshot.story_keys):
        clips = storage_root / CLIPS.format(story_id)
        if clips.is_dir():
            for path in sorted(clips.iterdir()):
                if path.is_file():
                    yield f"{CLIPS.format(story_id)}/{path.name}", Owner("story", story_id), \
                        False
