"""Prepared instances: a database and storage folder built once per session, copied per test.

Building an instance with stories in it means real intake (decoding, converting, storing) for
every story; doing that once and copying the result makes a test that needs twelve stories
start in a fraction of a second. SQLite files are copied with SQLite's backup API; on
PostgreSQL each copy is `CREATE DATABASE … TEMPLATE`, which copies the files server-side.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy.engine import make_url

from storyhub import create_app
from storyhub.database import upgrade_schema
from storyhub.extensions import db

_copies = itertools.count(1)


def _admin_engine(url: str) -> sa.Engine:
    """An autocommit connection to the server's maintenance database (for CREATE DATABASE)."""
    return sa.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_database(url: str, template: str | None = None) -> None:
    name = make_url(url).database
    engine = _admin_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
    engine.dispose()


def drop_database(url: str) -> None:
    engine = _admin_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


@dataclass
class PreparedInstance:
    """A database and an instance folder (storage, secret key) to copy for each test."""

    name: str
    database_url: str
    folder: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def copy_to(self, folder: Path) -> str:
        """Copy the instance folder into `folder` and the database; return the copy's URL."""
        shutil.copytree(self.folder, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("storyhub.sqlite*"))
        if self.is_sqlite:
            target = folder / "storyhub.sqlite"
            source = sqlite3.connect(make_url(self.database_url).database)
            copy = sqlite3.connect(target)
            with copy:
                source.backup(copy)
            source.close()
            copy.close()
            return f"sqlite:///{target}"
        base = make_url(self.database_url)
        url = base.set(database=f"{base.database}_c{os.getpid()}_{next(_copies)}")
        rendered = url.render_as_string(hide_password=False)
        create_database(rendered, template=base.database)
        return rendered

    def discard_copy(self, url: str) -> None:
        if not url.startswith("sqlite"):
            drop_database(url)

    def save(self, manifest: Path) -> None:
        """Write where this instance is, for another process to `load`."""
        manifest.write_text(json.dumps({"url": self.database_url, "folder": str(self.folder),
                                        "data": self.data}))

    @classmethod
    def load(cls, manifest: Path) -> PreparedInstance:
        saved = json.loads(manifest.read_text())
        return cls(manifest.stem, saved["url"], Path(saved["folder"]), saved["data"])

    def remove(self) -> None:
        if not self.is_sqlite:
            drop_database(self.database_url)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def instance_app(url: str, folder: Path) -> Iterator[Any]:
    """Yield an app on `url` with `folder` as its instance folder; close its connections after."""
    previous = os.environ.get("STORYHUB_INSTANCE_PATH")
    os.environ["STORYHUB_INSTANCE_PATH"] = str(folder)
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                          "SECRET_KEY": "test-secret", "BROKER_URL": ""})
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if previous is None:
            os.environ.pop("STORYHUB_INSTANCE_PATH", None)
        else:
            os.environ["STORYHUB_INSTANCE_PATH"] = previous


def prepare_instance(name: str, base_url: str, folder: Path,
                     fill: Callable[[Any], dict[str, Any]]) -> PreparedInstance:
    """Build an instance through the real migrations, then `fill(app)` it; keep what it returns."""
    folder.mkdir(parents=True, exist_ok=True)
    if base_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'storyhub.sqlite'}"
    else:
        base = make_url(base_url)
        url = base.set(database=f"{base.database}_{name}_{uuid.uuid4().hex[:6]}").render_as_string(
            hide_password=False)
        create_database(url)
    with instance_app(url, folder) as app:
        upgrade_schema(app)
        data = fill(app)
    # The copies get their own embedded queue: leave no message from the filling behind.
    shutil.rmtree(folder / "broker", ignore_errors=True)
    return PreparedInstance(name, url, folder, data)


SHARED = "prepared"  # under the run's base folder, which the xdist workers' folders are in


def _shared_folder(tmp_path_factory) -> Path | None:
    """The folder every pytest-xdist worker of this run shares (None without xdist)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    folder = tmp_path_factory.getbasetemp().parent / SHARED
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def shared_instance(name: str, base_url: str, tmp_path_factory,
                    fill: Callable[[Any], dict[str, Any]]) -> Iterator[PreparedInstance]:
    """`prepare_instance`, built once per test run however many pytest-xdist workers use it.

    The first worker to ask builds it under a lock; the others wait and read where it is. Each
    test still works on a copy. Shared instances are removed by `remove_shared` when the whole
    run ends, because a worker cannot know when the others are done with them.
    """
    shared = _shared_folder(tmp_path_factory)
    if shared is None:
        instance = prepare_instance(name, base_url, tmp_path_factory.mktemp(name), fill)
        yield instance
        instance.remove()
        return
    manifest = shared / f"{name}.json"
    with FileLock(str(shared / f"{name}.lock")):
        if manifest.exists():
            instance = PreparedInstance.load(manifest)
        else:
            instance = prepare_instance(name, base_url, shared / name, fill)
            instance.save(manifest)
    yield instance


def remove_shared(base_temp: Path) -> None:
    """Remove the instances the workers of a finished run shared (see `shared_instance`)."""
    for manifest in (base_temp / SHARED).glob("*.json"):
        PreparedInstance.load(manifest).remove()
