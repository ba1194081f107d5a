"""A backup's manifest (what it holds, with checksums) and its optional sealed master keys.

A backup folder::

    manifest.json          written last: a backup without it was interrupted
    database.sqlite        SQLite's online backup of the database, or
    database.pgdump        pg_dump's custom format, taken in one snapshot
    storage/...            the stored files the snapshot refers to, still sealed
    config/...             the instance's storyhub.cfg and workshop templates, if any
    master-keys.sealed     only with --include-master-keys: sealed with a passphrase

The master keys never go into a backup in the clear: with them and the backup, anyone could
read every story. Kept apart (in the secret store), a stolen backup is noise. When they are
included, they are encrypted with AES-256-GCM under a key derived from a passphrase by scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "storyhub-backup"
VERSION = 1
MANIFEST = "manifest.json"
INCOMPLETE = "BACKUP-INCOMPLETE"
SEALED_KEYS = "master-keys.sealed"
STORAGE = "storage"
CONFIG = "config"
MIN_PASSPHRASE = 12
# scrypt as OWASP recommends for keys from passwords (128 MiB, about half a second).
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_KEYS_AD = b"storyhub-backup-master-keys-v1"


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and what to do."""


@dataclass
class FileEntry:
    path: str  # relative to the backup folder
    size: int
    sha256: str
    owner: str | None = None  # "story:N" or "run:N" for stored files


@dataclass
class Manifest:
    created_at: str
    storyhub_version: str
    schema_revision: str | None
    engine: str  # "sqlite" or "postgresql"
    database: FileEntry
    files: list[FileEntry] = field(default_factory=list)
    master_key_ids: list[str] = field(default_factory=list)
    master_keys_included: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION

    def write(self, folder: Path) -> None:
        """Write the manifest into `folder` atomically: it is there whole, or not at all."""
        data = json.dumps(asdict(self), indent=1, sort_keys=True).encode("utf-8")
        tmp = folder / (MANIFEST + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / MANIFEST)
        fsync_folder(folder)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Read the manifest of the backup in `folder`; BackupError, saying why, if it is not
        a whole StoryHub backup."""
        if not folder.is_dir():
            raise BackupError(f"{folder} is not a folder: give the folder a backup was made in.")
        if (folder / INCOMPLETE).exists() or not (folder / MANIFEST).exists():
            raise BackupError(
                f"The backup in {folder} is incomplete: it was interrupted before it finished "
                f"(it has no {MANIFEST}), so it cannot be trusted and nothing was restored. "
                "Restore an earlier backup, and make a new one.")
        try:
            data: dict[str, Any] = json.loads((folder / MANIFEST).read_text("utf-8"))
            if data.get("format") != FORMAT:
                raise BackupError(f"{folder} does not hold a StoryHub backup.")
            if int(data.get("version", 0)) > VERSION:
                raise BackupError(
                    f"The backup in {folder} was made by a newer StoryHub (backup format "
                    f"{data['version']}): restore it with that version.")
            data["database"] = FileEntry(**data["database"])
            data["files"] = [FileEntry(**entry) for entry in data["files"]]
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"The manifest of the backup in {folder} is damaged ({exc}); "
                              "nothing was restored.") from None


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _derive(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    return Scrypt(salt=salt, length=32, **params).derive(passphrase.encode("utf-8"))


def seal_master_keys(master_keys_text: str, passphrase: str, out: Path) -> None:
    """Write the master keys to `out`, encrypted under a key derived from `passphrase`."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"The passphrase must be at least {MIN_PASSPHRASE} characters: "
                          "a few ordinary words make a good one.")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    sealed = AESGCM(_derive(passphrase, salt, _SCRYPT)).encrypt(
        nonce, master_keys_text.strip().encode("utf-8"), _KEYS_AD)
    record = {"kdf": "scrypt", **_SCRYPT, "cipher": "AES-256-GCM",
              "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode(),
              "data": base64.b64encode(sealed).decode()}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)


def open_master_keys(path: Path, passphrase: str) -> str:
    """Return the master keys sealed in `path`; BackupError if the passphrase is wrong."""
    record = json.loads(path.read_text())
    params = {name: int(record[name]) for name in ("n", "r", "p")}
    try:
        key = _derive(passphrase, base64.b64decode(record["salt"]), params)
        return AESGCM(key).decrypt(base64.b64decode(record["nonce"]),
                                   base64.b64decode(record["data"]), _KEYS_AD).decode("utf-8")
    except InvalidTag:
        raise BackupError("That passphrase does not open the master keys in this backup. "
                          "Nothing was restored.") from None
