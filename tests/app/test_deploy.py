"""The deployment files run real StoryHub commands: compose.yaml and the Containerfile (no
container engine here, so they are read, not built) and the commands docs/deploy.md names."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
from importlib import metadata
from pathlib import Path

import click
import pytest
import yaml

from storyhub import create_app
from storyhub.cli import main
from storyhub.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
# The queues jobs go to (storyhub/*/service.py: each handler's `queue`).
QUEUES = {"default", "transcribe", "analysis"}
# Settings read outside config.DEFAULTS: the instance folder (create_app), the secret key
# and master keys (made in the instance when not given).
OTHER_SETTINGS = {"INSTANCE_PATH", "SECRET_KEY", "MASTER_KEYS"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _containerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Containerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _storyhub_parses(args: list[str], app_commands: dict[str, click.Command]) -> None:
    """Check that `storyhub ARGS…` names a command that takes those options."""
    assert args[0] == "storyhub"
    name = args[1]
    command = main.commands.get(name) or app_commands.get(name)
    assert command is not None, f"storyhub has no command {name!r}"
    command.make_context(name, list(args[2:]))  # raises on an unknown option or bad value


def _celery_runs(args: list[str]) -> None:
    assert args[0] == "celery"
    assert metadata.entry_points(group="console_scripts", name="celery"), "celery not installed"
    module, _, attribute = args[args.index("-A") + 1].partition(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{module} is not importable"
    tree = ast.parse(Path(spec.origin).read_text())
    assigned = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert attribute in assigned, f"{module} defines no {attribute}"
    assert args[args.index("-A") + 2] == "worker"
    queues = set(args[args.index("-Q") + 1].split(","))
    assert queues <= QUEUES and queues, f"unknown queues {queues - QUEUES}"


@pytest.fixture(scope="module")
def app_commands(tmp_path_factory) -> dict[str, click.Command]:
    import os

    previous = os.environ.get("STORYHUB_INSTANCE_PATH")
    os.environ["STORYHUB_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("deploy-instance"))
    try:
        app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    finally:
        if previous is None:
            os.environ.pop("STORYHUB_INSTANCE_PATH", None)
        else:
            os.environ["STORYHUB_INSTANCE_PATH"] = previous
    return dict(app.cli.commands)


def test_compose_runs_web_worker_postgres_and_redis_with_real_commands(compose, app_commands):
    services = compose["services"]
    assert set(services) == {"web", "worker", "postgres", "redis"}
    assert services["web"]["build"]["dockerfile"] == "Containerfile"
    assert services["web"]["command"][:2] == ["storyhub", "run"]
    _storyhub_parses(services["web"]["command"], app_commands)
    assert services["worker"]["command"][0] == "celery"
    _celery_runs(services["worker"]["command"])
    assert set(services["worker"]["command"][services["worker"]["command"].index("-Q") + 1]
               .split(",")) == QUEUES  # one worker machine: every queue
    # The worker starts once the site has upgraded the schema; the site once its services are up.
    assert services["worker"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert set(services["web"]["depends_on"]) == {"postgres", "redis"}


def test_compose_settings_are_storyhub_settings_and_keys_come_from_a_secret(compose):
    known = set(DEFAULTS) | OTHER_SETTINGS
    for name in ("web", "worker"):
        service = compose["services"][name]
        environment = service["environment"]
        unknown = {key for key in environment if key.removeprefix("STORYHUB_") not in known}
        assert not unknown, f"{name}: no such setting {unknown}"
        assert "STORYHUB_MASTER_KEYS" not in environment  # never in the environment
        secret = Path(environment["STORYHUB_MASTER_KEYS_FILE"]).name
        assert secret in service["secrets"] and secret in compose["secrets"]
        assert environment["STORYHUB_DATABASE_URL"].startswith("postgresql://")
        assert environment["STORYHUB_BROKER_URL"].startswith("redis://redis:")
        ledger = Path(environment["STORYHUB_ERASURE_LEDGER"]).parent
        assert ledger not in Path(environment["STORYHUB_INSTANCE_PATH"]).parents  # apart
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in compose["volumes"]


def test_the_containerfile_installs_pinned_storyhub_and_serves_the_site(compose, app_commands):
    steps = _containerfile()
    assert steps[0][0] == "FROM" and "python:3.11" in steps[0][1]
    for instruction, arguments in steps:
        if instruction == "COPY":
            for source in shlex.split(arguments)[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    run = " ".join(arguments for instruction, arguments in steps if instruction == "RUN")
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "postgresql-client"):
        assert package in run
    assert "-c constraints.txt" in run
    users = [arguments for instruction, arguments in steps if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    command = json.loads(next(a for i, a in steps if i == "CMD"))
    assert command == compose["services"]["web"]["command"]
    _storyhub_parses(command, app_commands)
    environment = " ".join(a for i, a in steps if i == "ENV")
    for key in re.findall(r"STORYHUB_(\w+)=", environment):
        assert key in set(DEFAULTS) | OTHER_SETTINGS, key


def test_every_command_the_deployment_guide_names_exists(app_commands):
    guide = (ROOT / "docs" / "deploy.md").read_text()
    named = set(re.findall(r"(?:bin/|`|^|exec web )storyhub ([a-z][a-z-]+)", guide,
                           flags=re.MULTILINE))
    assert {"backup", "upgrade", "create-user", "new-master-key", "rewrap-keys"} <= named
    for name in named:
        assert name in app_commands or name in main.commands, f"docs/deploy.md: storyhub {name}"
    for line in re.findall(r"ExecStart=(\S+/(?:storyhub|celery) .+)", guide):
        args = shlex.split(line)
        args[0] = Path(args[0]).name
        if args[0] == "celery":
            _celery_runs(args)
        else:
            _storyhub_parses(args, app_commands)


def test_master_keys_read_from_a_secret_file_leave_none_in_the_instance(tmp_path, monkeypatch):
    from storyhub.sealed import generate_master_key

    entry = generate_master_key()
    secret = tmp_path / "master_keys"
    secret.write_text(entry + "\n")
    instance = tmp_path / "instance"
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("STORYHUB_MASTER_KEYS_FILE", str(secret))
    app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    assert app.extensions["storyhub.master_keys"].current_id == entry.partition(":")[0]
    assert not (instance / "master.keys").exists()
