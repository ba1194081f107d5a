"""Audio and consent forms encrypted at rest: streaming, seekable and authenticated.

Keys come in two layers:

* **Master keys** live in configuration, never in the database: a comma-separated list of
  ``id:base64key`` entries (32-byte keys, urlsafe base64). The first entry is *current* and
  wraps new data keys; the others can still unwrap, so a master key is rotated by putting the
  new one in front, rewrapping every stored token (:func:`rewrap_key`) and then dropping the old.
* **Data keys** are 32 random bytes per story (:func:`new_data_key`). They are stored only
  wrapped (:func:`wrap_key`), as a text token ``<master id>:<base64(nonce || AES-GCM(key))>``,
  with a context string (e.g. ``"story:42"``) as associated data, so a token copied onto
  another story does not unwrap. Deleting the token destroys the story's files for good
  (crypto-shredding): every copy, backups included, becomes unreadable.

A sealed file is::

    header  = b"SHSEAL1\\0" | chunk size (u32) | plaintext length (u64) | nonce prefix (8 bytes)
    chunk i = AES-256-GCM(data key, nonce = prefix | i (u32), chunk plaintext) -> ciphertext+tag

all integers big-endian. Every chunk but the last holds exactly ``chunk size`` bytes of
plaintext; an empty file still has one (empty) chunk. Each chunk's associated data is the whole
header, the chunk index, a last-chunk flag and the file id, so a changed header, a truncated or
extended file, reordered chunks, or a file moved from one story (or slot) to another all fail
authentication (:class:`SealedFileError`). The random prefix gives every sealing of a file its
own nonces, so one data key can safely seal many files.

:func:`open_sealed` returns a seekable raw stream that decrypts only the chunks a read touches,
so audio can be served with HTTP Range requests (``werkzeug.wsgi.wrap_file``) without ever
writing the plaintext to disk; :func:`unseal_to` writes a plain copy for tools that need one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import re
import secrets
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"SHSEAL1\0"
CHUNK_SIZE = 64 * 1024
KEY_SIZE = 32
TAG_SIZE = 16
PREFIX_SIZE = 8
WRAP_NONCE_SIZE = 12

_HEADER = struct.Struct(">8sIQ8s")
HEADER_SIZE = _HEADER.size
_CHUNK_AD = struct.Struct(">IB")
# Largest chunk size a reader accepts: the header is checked before any chunk is authenticated.
_MAX_CHUNK_SIZE = 16 * 1024 * 1024
_MAX_CHUNKS = 2**32

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_B64_RE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class SealedFileError(Exception):
    """A sealed file or key token is not what it should be: wrong key, tampered, or damaged."""


class KeyDestroyed(SealedFileError):
    """The data key was destroyed (its token erased): the files it sealed cannot be read."""


class MasterKeyError(ValueError):
    """The configured master keys are malformed."""


# --- master keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class MasterKeys:
    """Master keys by id; the first is current (wraps), all of them unwrap."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise MasterKeyError("no master keys configured")

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    def get(self, key_id: str) -> bytes | None:
        for candidate, key in self.keys:
            if candidate == key_id:
                return key
        return None

    def __repr__(self) -> str:
        return f"MasterKeys(ids={self.ids!r})"


def _b64decode(text: str) -> bytes:
    """Strict urlsafe base64 (padding optional); raises ValueError."""
    if not _B64_RE.match(text):
        raise ValueError("not urlsafe base64")
    text = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not urlsafe base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def load_master_keys(text: str) -> MasterKeys:
    """Parse ``id:base64key[,id:base64key...]``; the first entry is the current key.

    Error messages name the entry (by position and id) but never include key material.
    """
    if text is None or not text.strip():
        raise MasterKeyError("no master keys configured (expected 'id:base64key[,...]')")
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(text.strip().split(","), start=1):
        entry = entry.strip()
        if not entry:
            raise MasterKeyError(f"master key entry {number} is empty (stray comma?)")
        key_id, sep, encoded = entry.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not sep:
            raise MasterKeyError(
                f"master key entry {number} has no ':' (expected 'id:base64key')")
        if not _ID_RE.match(key_id):
            raise MasterKeyError(
                f"master key entry {number} has an invalid id (1-64 of A-Z a-z 0-9 _ -)")
        try:
            key = _b64decode(encoded)
        except ValueError:
            raise MasterKeyError(
                f"master key {key_id!r} (entry {number}) is not urlsafe base64") from None
        if len(key) != KEY_SIZE:
            raise MasterKeyError(
                f"master key {key_id!r} (entry {number}) is {len(key)} bytes, "
                f"expected {KEY_SIZE}")
        if any(key_id == seen for seen, _ in keys):
            raise MasterKeyError(f"master key id {key_id!r} appears more than once")
        keys.append((key_id, key))
    return MasterKeys(tuple(keys))


def generate_master_key() -> str:
    """A new master key entry ``id:base64key`` (id = 8 hex characters) for configuration."""
    return f"{secrets.token_hex(4)}:{_b64encode(secrets.token_bytes(KEY_SIZE))}"


# --- data keys ---------------------------------------------------------------------------


def new_data_key() -> bytes:
    """A fresh random 32-byte data key (for one story)."""
    return secrets.token_bytes(KEY_SIZE)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise ValueError(f"a data key is {KEY_SIZE} bytes")


def wrap_key(masters: MasterKeys, data_key: bytes, context: str) -> str:
    """Encrypt ``data_key`` under the current master key, bound to ``context``.

    Returns ``<master id>:<urlsafe base64(12-byte nonce || ciphertext || tag)>``.
    """
    _check_key(data_key)
    key_id = masters.current_id
    master = masters.get(key_id)
    assert master is not None  # noqa: S101 - current_id always names a key
    nonce = secrets.token_bytes(WRAP_NONCE_SIZE)
    sealed = AESGCM(master).encrypt(nonce, bytes(data_key), context.encode("utf-8"))
    return f"{key_id}:{_b64encode(nonce + sealed)}"


def unwrap_key(masters: MasterKeys, token: str | None, context: str) -> bytes:
    """The data key inside ``token``; :class:`KeyDestroyed` if the token was erased."""
    if not token:
        raise KeyDestroyed("the data key was destroyed; its files cannot be read")
    key_id, sep, encoded = token.partition(":")
    if not sep:
        raise SealedFileError("malformed key token")
    master = masters.get(key_id)
    if master is None:
        raise SealedFileError(f"key token wrapped by unknown master key {key_id!r}")
    try:
        raw = _b64decode(encoded)
    except ValueError:
        raise SealedFileError("malformed key token") from None
    if len(raw) != WRAP_NONCE_SIZE + KEY_SIZE + TAG_SIZE:
        raise SealedFileError("malformed key token")
    try:
        return AESGCM(master).decrypt(
            raw[:WRAP_NONCE_SIZE], raw[WRAP_NONCE_SIZE:], context.encode("utf-8"))
    except InvalidTag:
        raise SealedFileError(
            "key token failed authentication (wrong master key or context)") from None


def rewrap_key(masters: MasterKeys, token: str | None, context: str) -> str:
    """``token`` wrapped again under the current master key (for master key rotation)."""
    return wrap_key(masters, unwrap_key(masters, token, context), context)


# --- files -------------------------------------------------------------------------------


def _chunk_count(length: int, chunk_size: int) -> int:
    return max(1, -(-length // chunk_size))


def _chunk_ad(header: bytes, index: int, last: bool, file_id: bytes) -> bytes:
    return header + _CHUNK_AD.pack(index, 1 if last else 0) + file_id


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


@contextlib.contextmanager
def _atomic_output(out: Path) -> Iterator[io.BufferedWriter]:
    """A 0o600 temporary file in ``out``'s folder, renamed onto ``out`` only on success."""
    out = Path(out)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def seal_file(src: Path, out: Path, key: bytes, file_id: str) -> None:
    """Encrypt ``src`` into ``out`` (atomically, mode 0o600), bound to ``file_id``.

    ``file_id`` names the file's place (e.g. ``"story:42:audio"``); opening needs the same id.
    """
    _check_key(key)
    aead = AESGCM(bytes(key))
    fid = file_id.encode("utf-8")
    with open(src, "rb") as plain:
        length = os.fstat(plain.fileno()).st_size
        count = _chunk_count(length, CHUNK_SIZE)
        if count > _MAX_CHUNKS:
            raise ValueError("file too large to seal")
        prefix = secrets.token_bytes(PREFIX_SIZE)
        header = _HEADER.pack(MAGIC, CHUNK_SIZE, length, prefix)
        with _atomic_output(Path(out)) as sealed:
            sealed.write(header)
            for index in range(count):
                last = index == count - 1
                want = length - index * CHUNK_SIZE if last else CHUNK_SIZE
                data = plain.read(want)
                if len(data) != want:
                    raise SealedFileError(f"{src} changed while it was being sealed")
                sealed.write(aead.encrypt(_nonce(prefix, index), data,
                                          _chunk_ad(header, index, last, fid)))
            if plain.read(1):
                raise SealedFileError(f"{src} changed while it was being sealed")


def is_sealed(path: Path) -> bool:
    """Whether ``path`` starts with the sealed-file magic."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


class SealedReader(io.RawIOBase):
    """A readable, seekable raw stream of a sealed file's plaintext.

    Only the chunks a read touches are decrypted (and authenticated); the current chunk is
    cached. ``size`` is the plaintext length. Wrap it in :class:`io.BufferedReader` or hand it
    to ``werkzeug.wsgi.wrap_file``. It has no ``fileno()``, so a server cannot ``sendfile`` the
    ciphertext by mistake.
    """

    def __init__(self, path: Path, key: bytes, file_id: str):
        super().__init__()
        _check_key(key)
        self.name = str(path)
        self._aead = AESGCM(bytes(key))
        self._fid = file_id.encode("utf-8")
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        try:
            header = self._file.read(HEADER_SIZE)
            if len(header) != HEADER_SIZE:
                raise SealedFileError(f"{path} is not a sealed file (too short)")
            magic, chunk_size, length, prefix = _HEADER.unpack(header)
            if magic != MAGIC:
                raise SealedFileError(f"{path} is not a sealed file")
            if not 0 < chunk_size <= _MAX_CHUNK_SIZE:
                raise SealedFileError(f"{path} has a damaged header")
            count = _chunk_count(length, chunk_size)
            if count > _MAX_CHUNKS:
                raise SealedFileError(f"{path} has a damaged header")
            expected = HEADER_SIZE + length + count * TAG_SIZE
            actual = os.fstat(self._file.fileno()).st_size
            if actual != expected:
                raise SealedFileError(
                    f"{path} is {actual} bytes, expected {expected}: truncated or extended")
            self._header = header
            self._chunk_size = chunk_size
            self._prefix = prefix
            self._count = count
            self.size: int = length
            self._pos = 0
            self._cached_index = -1
            self._cached = b""
            # Authenticate the first chunk now: a wrong key or file id fails at open, before
            # (say) an HTTP response has started.
            self._chunk(0)
        except BaseException:
            self._file.close()
            raise

    def _chunk(self, index: int) -> bytes:
        if index == self._cached_index:
            return self._cached
        last = index == self._count - 1
        plain_len = self.size - index * self._chunk_size if last else self._chunk_size
        offset = HEADER_SIZE + index * (self._chunk_size + TAG_SIZE)
        self._file.seek(offset)
        want = plain_len + TAG_SIZE
        data = self._file.read(want)
        while data is not None and len(data) < want:
            more = self._file.read(want - len(data))
            if not more:
                break
            data += more
        if data is None or len(data) != want:
            raise SealedFileError(f"{self.name}: chunk {index} is truncated")
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, index), data,
                                       _chunk_ad(self._header, index, last, self._fid))
        except InvalidTag:
            raise SealedFileError(
                f"{self.name}: chunk {index} failed authentication "
                "(wrong key or file id, or the file was altered)") from None
        self._cached_index, self._cached = index, plain
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence!r})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        self._checkClosed()  # type: ignore[attr-defined]
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._pos < self.size:
            index, start = divmod(self._pos, self._chunk_size)
            chunk = self._chunk(index)
            n = min(len(chunk) - start, len(view) - filled)
            view[filled:filled + n] = chunk[start:start + n]
            filled += n
            self._pos += n
        return filled

    def readall(self) -> bytes:
        remaining = max(0, self.size - self.tell())
        buffer = bytearray(remaining)
        n = self.readinto(buffer)
        del buffer[n:]
        return bytes(buffer)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self._cached = b""
            self._cached_index = -1
        super().close()


def open_sealed(path: Path, key: bytes, file_id: str) -> SealedReader:
    """Open a sealed file for reading; :class:`SealedFileError` if it does not authenticate."""
    return SealedReader(path, key, file_id)


def unseal_to(path: Path, out: Path, key: bytes, file_id: str) -> None:
    """Write the plaintext of ``path`` to ``out`` (atomically, mode 0o600).

    Every chunk is authenticated before ``out`` appears; on failure nothing is left behind.
    """
    with open_sealed(path, key, file_id) as reader, _atomic_output(Path(out)) as plain:
        buffer = bytearray(CHUNK_SIZE * 16)
        while n := reader.readinto(buffer):
            plain.write(memoryview(buffer)[:n])
