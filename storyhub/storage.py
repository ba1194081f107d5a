"""Where audio and documents live: one small interface, a local (or shared-mount) folder today.

Files are written under a temporary name and renamed into place, so a reader never sees half a
file. Keys are chosen by StoryHub, never taken from a user's filename. A story's files are
sealed with its own data key as they go in (`put(..., data_key=)`), and read back through
`file(key, data_key)`, which decrypts as it reads (storyhub/sealed.py).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from . import sealed
from .config import settings
from .extensions import db

_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9/_.-]{0,200}$")


def private_folder(path: str | os.PathLike[str]) -> Path:
    """Make `path` (and any missing parents) a folder only its owner can enter; return it.

    A folder that already exists is tightened too, when this user owns it.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def private_file(path: str | os.PathLike[str]) -> None:
    """Make the file `path` (if it exists) readable by its owner only."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)


class StorageFull(OSError):
    """The storage has no room left."""


class StoredFile:
    """A stored file to read: sealed with a data key, or plain (stored before encryption)."""

    def __init__(self, path: Path, key: str, data_key: bytes | None):
        self.path, self.key, self.data_key = path, key, data_key

    @functools.cached_property
    def sealed(self) -> bool:
        """Whether the file on disk is sealed (its header is read once)."""
        return sealed.is_sealed(self.path)

    def exists(self) -> bool:
        return self.path.is_file()

    def open(self) -> BinaryIO:
        """Return the file's content as a seekable binary stream (decrypted as it is read)."""
        if not self.sealed:
            return self.path.open("rb")
        if self.data_key is None:
            raise sealed.KeyDestroyed("This file's key is gone: it cannot be read.")
        return io.BufferedReader(sealed.open_sealed(self.path, self.data_key, self.key),
                                 buffer_size=256 * 1024)

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def copy_to(self, out: Path) -> Path:
        with self.open() as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        return out


class LocalStorage:
    """Files in a folder: the instance folder by default, or a mount shared with workers."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = private_folder(root)
        self.tmp = private_folder(self.root / "tmp")

    def _path(self, key: str) -> Path:
        if not _KEY_RE.match(key) or ".." in key:
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    def new_key(self, prefix: str, filename: str) -> str:
        return f"{prefix}/{uuid.uuid4().hex}/{filename}"

    def temp_path(self, suffix: str = "") -> Path:
        """Return a new empty temporary file on the same filesystem as the stored files."""
        with tempfile.NamedTemporaryFile(dir=self.tmp, suffix=suffix, delete=False) as fh:
            return Path(fh.name)

    def temp_folder(self) -> Path:
        """Return a new empty temporary folder on the same filesystem as the stored files."""
        return Path(tempfile.mkdtemp(dir=self.tmp))

    def put_folder(self, source: Path, key: str) -> None:
        """Move the folder `source` (in this storage's tmp) into place as `key`, replacing it."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=self.tmp))
            os.replace(target, old / "replaced")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(source, target)

    def put(self, source: Path, key: str, data_key: bytes | None = None) -> None:
        """Move `source` (a temp file in this storage) into place as `key`, sealed with
        `data_key` when given (the plain temp file is removed)."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if data_key is None:
            os.replace(source, target)
            return
        sealed.seal_file(source, target, data_key, key)
        source.unlink(missing_ok=True)

    def file(self, key: str, data_key: bytes | None) -> StoredFile:
        """Return the stored file `key`, to be read with `data_key` if it is sealed."""
        return StoredFile(self._path(key), key, data_key)

    def path(self, key: str) -> Path:
        """Return a local path to read `key` from."""
        return self._path(key)

    def delete_folder(self, key: str) -> None:
        """Delete the folder `key` and everything in it (nothing happens if it is not there)."""
        shutil.rmtree(self._path(key), ignore_errors=True)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Remove the now-empty per-object folder.
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def init_app(app: Flask) -> None:
    """Set up the app's storage and stream uploads straight into it."""
    root = settings(app).storage_dir or os.path.join(app.instance_path, "storage")
    storage = LocalStorage(root)
    app.extensions["storage"] = storage

    class StreamingRequest(app.request_class):  # type: ignore[name-defined,misc]
        def _get_file_stream(self, total_content_length, content_type, filename=None,
                             content_length=None):
            # Uploads go to disk next to the stored files, never whole into memory; the
            # temporary file disappears when the request ends.
            return tempfile.NamedTemporaryFile(dir=storage.tmp, suffix=".upload")  # noqa: SIM115

    app.request_class = StreamingRequest
    listen_for_transactions(app)


def get_storage() -> LocalStorage:
    return current_app.extensions["storage"]


# Files put into storage during a database transaction are removed again if it does not commit,
# so no file is ever left without its row (and, as files go in last, no row without its file).
_PENDING = "storyhub_new_files"


def track_new_file(session, key: str) -> None:
    session.info.setdefault(_PENDING, []).append(key)


def _forget(session, *_args) -> None:
    session.info.pop(_PENDING, None)


def _remove_uncommitted(session, *_args) -> None:
    keys = session.info.pop(_PENDING, None)
    if keys:
        storage = get_storage()
        for key in keys:
            storage.delete(key)


def listen_for_transactions(app: Flask) -> None:
    if not event.contains(Session, "after_commit", _forget):
        event.listen(Session, "after_commit", _forget)
        event.listen(Session, "after_soft_rollback", _remove_uncommitted)

    @app.teardown_appcontext
    def _cleanup(_exc):
        _remove_uncommitted(db.session())
