"""A full disk while an upload is received, converted or stored: the reporter is told the
server's storage is full and nothing of the story is left behind.
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from storyhub.accounts.models import Role
from storyhub.storage import LocalStorage
from tests.support.uploads import (
    MSG_FULL,
    NEEDS_AUDIO_TOOLS,
    assert_nothing_stored,
    assert_refused,
    message,
    upload,
)

pytestmark = [NEEDS_AUDIO_TOOLS, pytest.mark.usefixtures("quick_password_hashing")]


@pytest.mark.parametrize("fail_on_call", [1, 3], ids=["first-file", "last-file"])
def test_disk_full_while_storing_stores_nothing(app, client, auth, encodings, monkeypatch,
                                                 fail_on_call):
    real_put = LocalStorage.put
    calls = []

    def put(self, source, key, data_key=None):
        calls.append(key)
        if len(calls) == fail_on_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_put(self, source, key, data_key)

    monkeypatch.setattr(LocalStorage, "put", put)
    auth.login_as(Role.REPORTER)
    response = upload(client, encodings["flac"])
    assert_refused(response, 507, MSG_FULL)
    assert "Nothing has been stored" in message(response)
    assert len(calls) == fail_on_call
    assert_nothing_stored(app)
    # And the recorder gets the same answer as JSON.
    calls.clear()
    response = upload(client, encodings["flac"], recorder=True)
    assert_refused(response, 507, MSG_FULL)
    assert_nothing_stored(app)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("suffix", [".orig", ".wav", ".m4a"],
                         ids=["original", "normalised", "playback"])
def test_disk_full_while_converting_says_storage_is_full(app, client, auth, encodings,
                                                         monkeypatch, suffix):
    """One converted file lands on a full disk: /dev/full answers every write with ENOSPC."""
    real_temp_path = LocalStorage.temp_path

    def temp_path(self, suffix_asked: str = "") -> Path:
        path = real_temp_path(self, suffix_asked)
        if suffix_asked == suffix:
            path.unlink()
            path.symlink_to("/dev/full")
        return path

    monkeypatch.setattr(LocalStorage, "temp_path", temp_path)
    auth.login_as(Role.REPORTER)
    response = upload(client, encodings["mp3"], recorder=True)
    assert_nothing_stored(app)
    assert_refused(response, 507, MSG_FULL)


class _FillingUpFile:
    """An upload spool file on a disk that fills up after `room` bytes."""

    def __init__(self, real, room: int):
        self._real = real
        self._room = room

    def write(self, data: bytes) -> int:
        if self._room < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)


class TestDiskFullWhileReceiving:
    @pytest.fixture
    def config_overrides(self):
        return {"PROPAGATE_EXCEPTIONS": False}  # answer as in production, not raise


    def test_disk_full_while_receiving_says_storage_is_full(self, app, client, auth,
                                                            encodings, monkeypatch):
        import storyhub.storage

        real = tempfile.NamedTemporaryFile
        spools = []

        def named_temporary_file(*args, **kwargs):
            spool = real(*args, **kwargs)
            if kwargs.get("suffix") == ".upload":
                spools.append(spool)
                return _FillingUpFile(spool, room=8 * 1024)
            return spool

        monkeypatch.setattr(storyhub.storage, "tempfile",
                            SimpleNamespace(NamedTemporaryFile=named_temporary_file))
        auth.login_as(Role.REPORTER)
        response = upload(client, encodings["wav"], recorder=True)
        assert len(spools) == 1
        # Werkzeug drops the half-written spool without closing it (it would go at garbage
        # collection): close it here so the test does not depend on when that happens.
        spools[0].close()
        assert_nothing_stored(app)
        assert_refused(response, 507, MSG_FULL)
