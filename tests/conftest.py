"""Shared fixtures: a real database (SQLite, or PostgreSQL when configured), app, client, users."""

from __future__ import annotations

import itertools
import os
import re

import pytest
import sqlalchemy as sa

from storyhub import create_app
from storyhub.accounts import service
from storyhub.accounts.models import Role
from storyhub.extensions import db, limiter
from tests.support import durations
from tests.support.factories import PASSWORD

# Workers and servers the tests start skip the theme model's warm-up (about 30 s of a core
# each), which would only slow the tests that run beside it; tests/themes/test_analysis.py
# covers it.
os.environ.setdefault("STORYHUB_THEME_WARM_UP", "0")
# Tests transcribe with tiny.en, the light bundled model: half base's time (base, the default,
# is measured by benchmarks/transcribe.py and loaded in tests/app/test_models.py), and the unsure-
# word and coverage thresholds the tests check were measured on it.
os.environ.setdefault("STORYHUB_WHISPER_MODEL", "tiny.en")


def pytest_addoption(parser):
    parser.addoption("--record-durations", action="store_true",
                     help="rewrite tests/durations.json (seconds per test file, which orders "
                          "the files longest first) from this run")


def pytest_configure(config):
    # Under pytest-xdist only the controller records: the workers' reports reach it.
    if config.getoption("record_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(durations.Recorder(), "storyhub-durations")


def pytest_collection_modifyitems(config, items):
    """Longest files first; browser tests are slow; tests without the app fixture never touch
    the database."""
    items.sort(key=durations.rank(durations.load()))  # stable: a file keeps its order
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
        fixtures = getattr(item, "fixturenames", ())
        if "app" not in fixtures and "database_url" not in fixtures:
            item.add_marker(pytest.mark.no_database)
_counter = itertools.count(1)


def _reset_database(url: str) -> None:
    """Start the test run from an empty database."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """The database for this run: STORYHUB_TEST_DATABASE_URL, or a fresh SQLite file."""
    from storyhub.config import database_uri

    url = os.environ.get("STORYHUB_TEST_DATABASE_URL")
    if url:
        url = database_uri(url, "")
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker:  # each pytest-xdist worker gets a database of its own on the server
            from sqlalchemy.engine import make_url

            from tests.support.instances import create_database

            base = make_url(url)
            url = base.set(database=f"{base.database}_{worker}").render_as_string(
                hide_password=False)
            create_database(url)
        _reset_database(url)
        return url
    return database_uri(None, str(tmp_path_factory.mktemp("db")))


@pytest.fixture(scope="session")
def migrated(database_url, tmp_path_factory) -> str:
    """Build the schema once, through the real migrations."""
    from storyhub.database import upgrade_schema

    os.environ["STORYHUB_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    upgrade_schema(app)
    with app.app_context():
        db.engine.dispose()
    return database_url


@pytest.fixture
def config_overrides() -> dict:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def prepared():
    """Override in a test module with a PreparedInstance to start each test from a copy of it."""
    return None


def _per_worker(url: str) -> str:
    """Give each pytest-xdist worker its own Redis database (gw1 two below gw0's, and so on)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    found = re.match(r"^(redis://[^/]+/)(\d+)$", url)
    if not found or worker == "gw0":
        return url
    number = int(found.group(2)) - 2 * int(worker.removeprefix("gw"))
    if number < 0:
        raise RuntimeError(f"too many pytest-xdist workers for Redis database {url}")
    return f"{found.group(1)}{number}"


@pytest.fixture
def app(migrated, tmp_path, monkeypatch, config_overrides, prepared):
    """A StoryHub app on the shared test database, emptied before each test.

    Where the module names a prepared instance, the app runs on a copy of it instead.
    """
    instance = tmp_path / "instance"
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(instance))
    database = prepared.copy_to(instance) if prepared is not None else migrated
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "RATELIMIT_STORAGE_URI": _per_worker(os.environ.get(
            "STORYHUB_TEST_RATELIMIT_STORAGE_URI", "memory://")),
        # Empty: the embedded queue in this test's instance folder.
        "BROKER_URL": _per_worker(os.environ.get("STORYHUB_TEST_BROKER_URL", "")),
    }
    config.update(config_overrides)
    app = create_app(config)
    with app.app_context():
        limiter.reset()  # Redis keeps sign-in counts between tests
        if prepared is None:
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if prepared is not None:
        prepared.discard_copy(database)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """Return a factory: make_user(role, username=None, password=PASSWORD, **fields) -> user id."""

    def factory(role: Role | str = Role.REPORTER, username: str | None = None,
                password: str = PASSWORD, **fields) -> int:
        role = Role(role)
        username = username or f"{role.value}{next(_counter)}"
        with app.app_context():
            user = service.create_user(username, fields.pop("display_name", username.title()),
                                       role, password)
            for key, value in fields.items():
                setattr(user, key, value)
            db.session.commit()
            return user.id

    return factory


class AuthActions:
    def __init__(self, client, make_user):
        self._client = client
        self._make_user = make_user

    def login(self, username: str, password: str = PASSWORD):
        return self._client.post("/login", data={"username": username, "password": password})

    def login_as(self, role: Role | str, **fields) -> int:
        """Create a user with `role`, sign them in, and return their id."""
        username = fields.pop("username", None) or f"{Role(role).value}{next(_counter)}"
        user_id = self._make_user(role, username=username, **fields)
        response = self.login(username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user_id

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client, make_user) -> AuthActions:
    return AuthActions(client, make_user)


@pytest.fixture(scope="session")
def corpus_audio(tmp_path_factory) -> dict:
    """The twelve corpus stories spoken by espeak-ng: key -> WAV path."""
    from tests.support.speech import espeak
    from tests.support.theme_corpus import CORPUS

    folder = tmp_path_factory.mktemp("corpus-audio")
    return {s.key: espeak(folder / f"{s.key}.wav", s.text) for s in CORPUS}


@pytest.fixture(scope="session")
def corpus_instance(database_url, migrated, tmp_path_factory):
    """An instance holding the twelve corpus stories with reviewed transcripts, all consent."""
    from tests.support.instances import shared_instance
    from tests.support.theme_corpus import CORPUS, filler, stored_corpus

    def fill(app) -> dict:
        corpus = stored_corpus(tmp_path_factory.mktemp("corpus-speech"), CORPUS)
        return filler(corpus)(app)

    with shared_instance("corpus", database_url, tmp_path_factory, fill) as instance:
        yield instance


@pytest.fixture(scope="session")
def themed_instance(database_url, migrated, tmp_path_factory):
    """The corpus instance with one finished theme run, started by a facilitator."""
    from tests.support.instances import shared_instance
    from tests.support.theme_corpus import CORPUS, filler, stored_corpus

    def fill(app) -> dict:
        from storyhub.jobs.runner import run_job
        from storyhub.themes import service as themes

        corpus = stored_corpus(tmp_path_factory.mktemp("themed-speech"), CORPUS)
        data = filler(corpus)(app)
        with app.app_context():
            facilitator = service.create_user("lead-facilitator", "Lead Facilitator",
                                              Role.FACILITATOR, PASSWORD)
            db.session.flush()
            run = themes.start_run(facilitator.id)
            db.session.commit()
            data |= {"facilitator": facilitator.id, "run": run.id}
            job_id = run.job_id
        with app.app_context():
            if run_job(job_id) != "done":
                raise RuntimeError("the prepared theme run failed")
        return data

    with shared_instance("themed", database_url, tmp_path_factory, fill) as instance:
        yield instance


def pytest_sessionfinish(session):
    """After the last pytest-xdist worker: remove the instances the workers shared."""
    if not hasattr(session.config, "workerinput"):  # the controller, or a run without xdist
        from tests.support.instances import remove_shared

        remove_shared(session.config._tmp_path_factory.getbasetemp())
