"""Sealed files: audio and consent forms encrypted at rest, streamed and seeked."""

from __future__ import annotations

import base64
import io
import random
import shutil
import struct

import pytest
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from storyhub import sealed
from storyhub.sealed import (
    CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    KeyDestroyed,
    MasterKeyError,
    SealedFileError,
    SealedReader,
    generate_master_key,
    is_sealed,
    load_master_keys,
    new_data_key,
    open_sealed,
    rewrap_key,
    seal_file,
    unseal_to,
    unwrap_key,
    wrap_key,
)

pytestmark = pytest.mark.no_database

FILE_ID = "story:42:audio"


def wav_like(size: int) -> bytes:
    """A WAV header and a repeating 16-bit sine-ish pattern: what recordings look like."""
    header = b"RIFF" + struct.pack("<I", size) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", size)
    period = b"".join(struct.pack("<h", int(8000 * ((i % 40) - 20) / 20)) for i in range(40))
    body = period * (size // len(period) + 1)
    return (header + body)[:size]


def seal_bytes(tmp_path, data: bytes, key: bytes, file_id: str = FILE_ID, name: str = "a"):
    src = tmp_path / f"{name}.plain"
    src.write_bytes(data)
    out = tmp_path / f"{name}.sealed"
    seal_file(src, out, key, file_id)
    return out


def read_all(path, key, file_id=FILE_ID) -> bytes:
    with open_sealed(path, key, file_id) as reader:
        return reader.read()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1_000_000])
def test_round_trip(tmp_path, size):
    data = random.Random(size).randbytes(size)  # noqa: S311 - test data, not secrets
    key = new_data_key()
    out = seal_bytes(tmp_path, data, key)
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert out.stat().st_size == HEADER_SIZE + size + chunks * TAG_SIZE
    assert is_sealed(out)
    assert not is_sealed(tmp_path / "a.plain")
    with open_sealed(out, key, FILE_ID) as reader:
        assert reader.size == size
        assert reader.readable() and reader.seekable() and not reader.writable()
        assert reader.read() == data
        assert reader.read() == b""
    with io.BufferedReader(open_sealed(out, key, FILE_ID)) as buffered:
        assert buffered.read() == data
    plain = tmp_path / "unsealed"
    unseal_to(out, plain, key, FILE_ID)
    assert plain.read_bytes() == data
    assert plain.stat().st_mode & 0o777 == 0o600


def test_sealed_file_is_private_and_written_atomically(tmp_path):
    key = new_data_key()
    out = seal_bytes(tmp_path, b"consent form", key)
    assert out.stat().st_mode & 0o777 == 0o600
    # Sealing over an existing file replaces it; no temporary files are left behind.
    seal_bytes(tmp_path, b"consent form, signed", key)
    assert read_all(out, key) == b"consent form, signed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.plain", "a.sealed"]
    # A failed seal leaves neither the output nor a temporary file.
    with pytest.raises(FileNotFoundError):
        seal_file(tmp_path / "missing", tmp_path / "b.sealed", key, FILE_ID)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.plain", "a.sealed"]


def test_sealing_twice_gives_different_ciphertext(tmp_path):
    key = new_data_key()
    data = wav_like(3 * CHUNK_SIZE)
    first = seal_bytes(tmp_path, data, key, name="one").read_bytes()
    second = seal_bytes(tmp_path, data, key, name="two").read_bytes()
    assert first[HEADER_SIZE:HEADER_SIZE + 64] != second[HEADER_SIZE:HEADER_SIZE + 64]


def test_random_seeks_and_reads_match_the_plaintext(tmp_path):
    rng = random.Random(20240611)  # noqa: S311 - repeatable test data, not secrets
    size = 5 * CHUNK_SIZE + 12345
    data = rng.randbytes(size)
    key = new_data_key()
    out = seal_bytes(tmp_path, data, key)
    with open_sealed(out, key, FILE_ID) as reader:
        for _ in range(500):
            whence = rng.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
            target = rng.randrange(0, size + 100)
            if whence == io.SEEK_SET:
                offset = target
            elif whence == io.SEEK_CUR:
                offset = target - reader.tell()
            else:
                offset = target - size
            assert reader.seek(offset, whence) == target
            assert reader.tell() == target
            n = rng.choice([0, 1, 7, 4096, CHUNK_SIZE, CHUNK_SIZE + 3, 3 * CHUNK_SIZE])
            got = reader.read(n)
            assert got == data[target:target + n]
            assert reader.tell() == target + len(got)
        with pytest.raises(ValueError):
            reader.seek(-1)
        with pytest.raises(ValueError):
            reader.seek(0, 3)
    with io.BufferedReader(open_sealed(out, key, FILE_ID), buffer_size=8192) as buffered:
        for _ in range(300):
            target = rng.randrange(0, size)
            buffered.seek(target)
            n = rng.randrange(0, 3 * CHUNK_SIZE)
            assert buffered.read(n) == data[target:target + n]
            assert buffered.tell() == min(size, target + n)


def test_reader_decrypts_only_the_chunks_it_needs(tmp_path, monkeypatch):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(10 * CHUNK_SIZE), key)
    decrypted = []
    real = SealedReader._chunk

    def counting(self, index):
        if index != self._cached_index:
            decrypted.append(index)
        return real(self, index)

    monkeypatch.setattr(SealedReader, "_chunk", counting)
    with open_sealed(out, key, FILE_ID) as reader:
        reader.seek(7 * CHUNK_SIZE + 10)
        reader.read(100)
        reader.read(100)
        reader.seek(-5, io.SEEK_END)
        reader.read()
    assert decrypted == [0, 7, 9]


def test_encrypted_files_do_not_contain_the_audio_bytes(tmp_path):
    data = wav_like(300_000)
    key = new_data_key()
    ciphertext = seal_bytes(tmp_path, data, key).read_bytes()
    windows = {data[i:i + 32] for i in range(len(data) - 31)}
    assert not any(ciphertext[i:i + 32] in windows for i in range(len(ciphertext) - 31))
    assert b"RIFF" not in ciphertext and b"WAVE" not in ciphertext


def test_wrong_key_or_file_id_is_refused(tmp_path):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(100_000), key)
    with pytest.raises(SealedFileError, match="authentication"):
        read_all(out, new_data_key())
    # The same file moved onto another story (or slot) does not open there.
    with pytest.raises(SealedFileError):
        read_all(out, key, "story:43:audio")
    with pytest.raises(SealedFileError):
        read_all(out, key, "story:42:consent")
    assert not issubclass(SealedFileError, OSError)


@pytest.mark.parametrize("where", [0, 9, 12, 20, HEADER_SIZE, HEADER_SIZE + 70_000, -1])
def test_a_flipped_byte_is_detected(tmp_path, where):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(150_000), key)
    raw = bytearray(out.read_bytes())
    raw[where] ^= 0x01
    out.write_bytes(bytes(raw))
    with pytest.raises(SealedFileError):
        read_all(out, key)


def test_a_flipped_byte_fails_only_when_its_chunk_is_read(tmp_path):
    key = new_data_key()
    data = wav_like(4 * CHUNK_SIZE)
    out = seal_bytes(tmp_path, data, key)
    raw = bytearray(out.read_bytes())
    raw[HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE) + 5] ^= 0x80
    out.write_bytes(bytes(raw))
    with open_sealed(out, key, FILE_ID) as reader:
        assert reader.read(CHUNK_SIZE) == data[:CHUNK_SIZE]
        reader.seek(3 * CHUNK_SIZE)
        assert reader.read() == data[3 * CHUNK_SIZE:]
        reader.seek(2 * CHUNK_SIZE)
        with pytest.raises(SealedFileError):
            reader.read(1)


@pytest.mark.parametrize("cut", [1, TAG_SIZE, CHUNK_SIZE + TAG_SIZE, "header"])
def test_a_truncated_file_is_detected(tmp_path, cut):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(3 * CHUNK_SIZE + 500), key)
    raw = out.read_bytes()
    out.write_bytes(raw[:10] if cut == "header" else raw[:-cut])
    with pytest.raises(SealedFileError):
        read_all(out, key)


def test_truncation_at_a_chunk_boundary_with_a_rewritten_length_is_detected(tmp_path):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(3 * CHUNK_SIZE), key)
    raw = out.read_bytes()
    magic, chunk_size, _, prefix = struct.unpack(">8sIQ8s", raw[:HEADER_SIZE])
    header = struct.pack(">8sIQ8s", magic, chunk_size, 2 * CHUNK_SIZE, prefix)
    out.write_bytes(header + raw[HEADER_SIZE:HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE)])
    with pytest.raises(SealedFileError):
        read_all(out, key)


def test_extra_bytes_are_detected(tmp_path):
    key = new_data_key()
    out = seal_bytes(tmp_path, b"x" * 1000, key)
    out.write_bytes(out.read_bytes() + b"\0")
    with pytest.raises(SealedFileError, match="truncated or extended"):
        read_all(out, key)


def test_swapped_chunks_are_detected(tmp_path):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(3 * CHUNK_SIZE), key)
    raw = out.read_bytes()
    step = CHUNK_SIZE + TAG_SIZE
    header, body = raw[:HEADER_SIZE], raw[HEADER_SIZE:]
    c0, c1, c2 = body[:step], body[step:2 * step], body[2 * step:]
    out.write_bytes(header + c1 + c0 + c2)
    with pytest.raises(SealedFileError):
        read_all(out, key)
    # The last (full) chunk moved forward fails too: the last-chunk flag is authenticated.
    out.write_bytes(header + c2 + c1 + c0)
    with pytest.raises(SealedFileError):
        read_all(out, key)


def test_chunks_from_another_file_with_the_same_key_are_detected(tmp_path):
    key = new_data_key()
    one = seal_bytes(tmp_path, wav_like(2 * CHUNK_SIZE), key, name="one").read_bytes()
    two_path = seal_bytes(tmp_path, wav_like(2 * CHUNK_SIZE), key, name="two")
    two = two_path.read_bytes()
    two_path.write_bytes(two[:HEADER_SIZE] + one[HEADER_SIZE:])
    with pytest.raises(SealedFileError):
        read_all(two_path, key)


def test_unsealing_a_damaged_file_leaves_nothing_behind(tmp_path):
    key = new_data_key()
    out = seal_bytes(tmp_path, wav_like(3 * CHUNK_SIZE), key)
    raw = bytearray(out.read_bytes())
    raw[-1] ^= 0x01
    out.write_bytes(bytes(raw))
    with pytest.raises(SealedFileError):
        unseal_to(out, tmp_path / "plain.wav", key, FILE_ID)
    assert not (tmp_path / "plain.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.plain", "a.sealed"]


def test_a_plain_file_is_not_sealed(tmp_path):
    plain = tmp_path / "plain.wav"
    plain.write_bytes(wav_like(1000))
    assert not is_sealed(plain)
    with pytest.raises(SealedFileError, match="not a sealed file"):
        open_sealed(plain, new_data_key(), FILE_ID)
    (tmp_path / "empty").write_bytes(b"")
    assert not is_sealed(tmp_path / "empty")


def test_data_keys_must_be_32_bytes(tmp_path):
    (tmp_path / "src").write_bytes(b"x")
    with pytest.raises(ValueError):
        seal_file(tmp_path / "src", tmp_path / "out", b"short", FILE_ID)
    assert len(new_data_key()) == 32
    assert new_data_key() != new_data_key()


# --- keys ----------------------------------------------------------------------------------


def test_wrap_and_unwrap(tmp_path):
    masters = load_master_keys(generate_master_key())
    key = new_data_key()
    token = wrap_key(masters, key, "story:42")
    assert isinstance(token, str)
    assert token.startswith(masters.current_id + ":")
    assert unwrap_key(masters, token, "story:42") == key
    assert wrap_key(masters, key, "story:42") != token  # a fresh nonce every time
    # A token copied onto another story does not unwrap there.
    with pytest.raises(SealedFileError):
        unwrap_key(masters, token, "story:43")
    # Nor under another master key with the same id.
    other = load_master_keys(f"{masters.current_id}:{generate_master_key().split(':')[1]}")
    with pytest.raises(SealedFileError):
        unwrap_key(other, token, "story:42")
    # Nor with a master key that is not configured.
    with pytest.raises(SealedFileError, match="unknown master key"):
        unwrap_key(load_master_keys(generate_master_key()), token, "story:42")
    # A damaged token is refused, not half-decoded.
    for bad in [token[:-4], token + "AAAA", token.replace(":", ""), "x:!!!!"]:
        with pytest.raises(SealedFileError):
            unwrap_key(masters, bad, "story:42")


def test_a_destroyed_key_cannot_be_unwrapped_and_its_files_cannot_be_read(tmp_path):
    masters = load_master_keys(generate_master_key())
    key = new_data_key()
    token: str | None = wrap_key(masters, key, "story:7")
    out = seal_bytes(tmp_path, wav_like(100_000), key)
    backup = tmp_path / "backup.sealed"
    shutil.copy(out, backup)
    assert read_all(backup, unwrap_key(masters, token, "story:7")) == wav_like(100_000)

    del key
    token = None  # the story's key column is erased
    for destroyed in (None, ""):
        with pytest.raises(KeyDestroyed):
            unwrap_key(masters, destroyed, "story:7")
    with pytest.raises(KeyDestroyed):
        rewrap_key(masters, token, "story:7")
    assert issubclass(KeyDestroyed, SealedFileError)
    # Without the data key the copy is just noise: no other key opens it.
    for _ in range(3):
        with pytest.raises(SealedFileError):
            read_all(backup, new_data_key())


def test_master_key_rotation():
    old_entry, new_entry = generate_master_key(), generate_master_key()
    old = load_master_keys(old_entry)
    key = new_data_key()
    token = wrap_key(old, key, "story:1")

    rotated = load_master_keys(f"{new_entry}, {old_entry}")
    new_id, old_id = new_entry.split(":")[0], old_entry.split(":")[0]
    assert rotated.current_id == new_id
    assert rotated.ids == (new_id, old_id)
    assert unwrap_key(rotated, token, "story:1") == key

    fresh = rewrap_key(rotated, token, "story:1")
    assert fresh.split(":")[0] == new_id
    assert unwrap_key(rotated, fresh, "story:1") == key
    # Once every token is rewrapped, the old key can go.
    assert unwrap_key(load_master_keys(new_entry), fresh, "story:1") == key
    with pytest.raises(SealedFileError):
        unwrap_key(load_master_keys(new_entry), token, "story:1")


def test_generated_master_keys():
    entry = generate_master_key()
    key_id, encoded = entry.split(":")
    assert len(key_id) == 8 and int(key_id, 16) >= 0
    masters = load_master_keys(entry)
    assert masters.ids == (key_id,)
    assert len(masters.get(key_id) or b"") == 32
    assert encoded not in repr(masters)
    assert generate_master_key() != entry


def test_master_keys_without_padding_or_with_whitespace_load():
    entry = generate_master_key()
    key_id, encoded = entry.split(":")
    masters = load_master_keys(f"  {key_id}:{encoded.rstrip('=')}\n")
    assert masters.get(key_id) == load_master_keys(entry).get(key_id)


# Fixed, not generated: pytest-xdist workers must collect the same test ids.
GOOD_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
GOOD = f"k0:{GOOD_KEY}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no master keys configured"),
        ("   ", "no master keys configured"),
        ("abcd1234", "has no ':'"),
        (f":{GOOD_KEY}", "invalid id"),
        (f"a b:{GOOD_KEY}", "invalid id"),
        ("k1:not base64!", "not urlsafe base64"),
        ("k1:" + "A" * 43 + "=+", "not urlsafe base64"),
        ("k1:" + "5a" * 16, "is 24 bytes, expected 32"),
        ("k1:", "not urlsafe base64"),
        (f"k1:{GOOD_KEY},", "entry 2 is empty"),
        (f"k1:{GOOD_KEY},k1:{GOOD_KEY}", "appears more than once"),
    ],
)
def test_malformed_master_keys(text, message):
    with pytest.raises(MasterKeyError, match=message) as excinfo:
        load_master_keys(text)
    assert GOOD_KEY not in str(excinfo.value)
    assert issubclass(MasterKeyError, ValueError)


# --- HTTP ----------------------------------------------------------------------------------


def range_response(reader, range_header: str):
    environ = EnvironBuilder(headers={"Range": range_header}).get_environ()
    response = Response(wrap_file(environ, reader), mimetype="audio/wav",
                        direct_passthrough=True)
    response.make_conditional(environ, accept_ranges=True, complete_length=reader.size)
    return response


def test_range_response_over_a_sealed_file(tmp_path):
    data = wav_like(3 * CHUNK_SIZE + 77)
    key = new_data_key()
    out = seal_bytes(tmp_path, data, key)

    with open_sealed(out, key, FILE_ID) as reader:
        response = range_response(reader, "bytes=100-199")
        assert response.status_code == 206
        assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        assert response.headers["Content-Length"] == "100"
        assert response.headers["Accept-Ranges"] == "bytes"
        assert b"".join(response.response) == data[100:200]

    # Across a chunk boundary, and the last bytes.
    with open_sealed(out, key, FILE_ID) as reader:
        start = CHUNK_SIZE - 10
        response = range_response(reader, f"bytes={start}-{start + 2 * CHUNK_SIZE}")
        assert response.status_code == 206
        assert b"".join(response.response) == data[start:start + 2 * CHUNK_SIZE + 1]
    with open_sealed(out, key, FILE_ID) as reader:
        response = range_response(reader, "bytes=-50")
        assert response.status_code == 206
        assert b"".join(response.response) == data[-50:]
    with open_sealed(out, key, FILE_ID) as reader, pytest.raises(RequestedRangeNotSatisfiable):
        range_response(reader, f"bytes={len(data) + 10}-")


def test_whole_file_response_over_a_sealed_file(tmp_path):
    data = wav_like(2 * CHUNK_SIZE + 3)
    key = new_data_key()
    out = seal_bytes(tmp_path, data, key)
    with open_sealed(out, key, FILE_ID) as reader:
        environ = EnvironBuilder().get_environ()
        response = Response(wrap_file(environ, reader, buffer_size=8192),
                            mimetype="audio/wav", direct_passthrough=True)
        response.make_conditional(environ, accept_ranges=True, complete_length=reader.size)
        assert response.status_code == 200
        assert b"".join(response.response) == data


def test_module_docstring_describes_the_format():
    assert "SHSEAL1" in (sealed.__doc__ or "")
