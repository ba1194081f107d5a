"""Fixtures of the story tests: recordings in every accepted format (made once per run with
espeak-ng, sox and PyAV, and only read), short distinct tones, a story uploaded by a facilitator.

The shared speech samples are used too when ../shared/data/speech exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from storyhub.accounts import service as accounts_service
from storyhub.accounts.models import Role
from tests.support import audio_fixtures as af
from tests.support.uploads import story_id_from, upload


@pytest.fixture
def quick_password_hashing(monkeypatch):
    """Signing in is not under test here: cheap argon2 settings save ~0.5 s per user."""
    monkeypatch.setattr(accounts_service, "hasher",
                        PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))


@pytest.fixture(scope="session")
def encodings(tmp_path_factory) -> dict[str, Path]:
    """espeak-ng speech in every accepted format, each file tagged with SECRET_TAGS."""
    return af.make_encodings(tmp_path_factory.mktemp("encodings"))


@pytest.fixture
def tone(tmp_path):
    """Return a factory of short, distinct sox tones (distinct, so never a duplicate)."""
    made = []

    def factory(seconds: float | None = None) -> Path:
        seconds = seconds if seconds is not None else 1.0 + 0.25 * len(made)
        path = af.sine_wav(tmp_path / f"tone-{len(made)}.wav", seconds)
        made.append(path)
        return path

    return factory


@pytest.fixture
def add_story(app, client, auth, tone):
    """Upload a story (as a signed-in facilitator) and return its id."""
    auth.login_as(Role.FACILITATOR, username="fiona")

    def factory(**fields) -> int:
        return story_id_from(upload(client, tone(), **fields))

    return factory
