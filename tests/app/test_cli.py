"""The storyhub command line."""

from __future__ import annotations

from sqlalchemy import select

from storyhub.accounts.models import Role, User
from storyhub.extensions import db


def test_create_user(app, runner):
    result = runner.invoke(args=["create-user", "ada", "--role", "admin", "--name", "Ada",
                                 "--password-stdin"], input="a long passphrase\n")
    assert result.exit_code == 0, result.output
    assert "Created admin “ada”" in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "ada"))
        assert user.role is Role.ADMIN and user.display_name == "Ada"


def test_create_user_refuses_weak_password_and_stores_nothing(app, runner):
    result = runner.invoke(args=["create-user", "bob", "--role", "staff", "--password-stdin"],
                           input="short\n")
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output
    assert "Nothing was created" in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "bob")) is None


def test_schema_matches_models(app):
    """The migrations build exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storyhub.database import include_name

    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(
            conn, opts={"include_name": include_name}), db.metadata)
    assert diff == []


def test_create_user_on_a_new_instance_makes_the_database_first(tmp_path):
    """The README's alternative to the set-up link works before `storyhub run` ever ran."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "STORYHUB_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("STORYHUB_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "storyhub", "create-user", "ada", "--role", "admin",
         "--password-stdin"], input="a long passphrase\n", env=env, capture_output=True,
        text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Created admin “ada”" in result.stdout
    assert result.stderr == "", "nothing but the answer on the console"
    assert (tmp_path / "instance" / "storyhub.sqlite").exists()


def test_migrations_go_down_to_nothing_and_up_again(database_url, tmp_path, monkeypatch):
    """Every migration can be undone (on a scratch database of the same kind)."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade

    from storyhub import create_app
    from tests.support.instances import create_database, drop_database

    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'scratch.sqlite'}"
    else:
        url = sa.engine.make_url(database_url).set(
            database=sa.engine.make_url(database_url).database + "_scratch").render_as_string(
            hide_password=False)
        create_database(url)
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "BROKER_URL": ""})
    try:
        with app.app_context():
            upgrade()
            downgrade(revision="base")
            assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
            upgrade()
            assert "jobs" in sa.inspect(db.engine).get_table_names()
            db.engine.dispose()
    finally:
        if not url.startswith("sqlite"):
            drop_database(url)
