"""Settings are read once, typed and checked at start (issue 23): a bad one stops StoryHub.

Each is set by a STORYHUB_* environment variable, in the instance's storyhub.cfg, or by
create_app's test_config (later wins); an unknown name or a malformed value is refused with a
sentence naming it, the value given and what it should be.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storyhub import create_app
from storyhub.config import DEFAULTS, FLASK_KEYS, NOT_SETTINGS, SettingsError, settings

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


@pytest.fixture
def instance(tmp_path, monkeypatch) -> Path:
    """An instance folder, with no STORYHUB_* variable set but the one naming it."""
    for name in list(os.environ):
        if name.startswith("STORYHUB_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "instance"
    monkeypatch.setenv("STORYHUB_INSTANCE_PATH", str(folder))
    return folder


def _app(**overrides):
    return create_app({"SECRET_KEY": "x", **overrides})


def _refused(**overrides) -> str:
    with pytest.raises(SettingsError) as refused:
        _app(**overrides)
    return str(refused.value)


def test_the_defaults(instance):
    given = settings(_app())
    assert (given.job_max_attempts, given.whisper_beam_size, given.retention_expired_days,
            given.theme_warm_up, given.broker_url, given.redaction_extra_names) == (
        3, 2, 90, True, None, ())
    assert _app().config["MAX_CONTENT_LENGTH"] == 500 * MIB


def test_environment_variables_are_read_typed(instance, monkeypatch):
    monkeypatch.setenv("STORYHUB_JOB_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("STORYHUB_THEME_WARM_UP", "no")
    monkeypatch.setenv("STORYHUB_JOB_LEASE_SECONDS", "2.5")
    monkeypatch.setenv("STORYHUB_RETENTION_ORIGINAL_DAYS", "")
    monkeypatch.setenv("STORYHUB_RETENTION_EXPIRED_DAYS", "null")
    monkeypatch.setenv("STORYHUB_REDACTION_EXTRA_NAMES", "Ada, Brixton ,")
    monkeypatch.setenv("STORYHUB_REDACTION_EXTRA_PLACES", '["Elm Road", "Kew"]')
    monkeypatch.setenv("STORYHUB_STORAGE_DIR", str(instance.parent / "audio"))
    app = _app()
    given = settings(app)
    assert given.job_max_attempts == 5 and app.config["JOB_MAX_ATTEMPTS"] == 5
    assert given.theme_warm_up is False
    assert given.job_lease_seconds == 2.5
    assert given.retention_original_days is None and given.retention_expired_days is None
    assert given.redaction_extra_names == ("Ada", "Brixton")
    assert given.redaction_extra_places == ("Elm Road", "Kew")
    assert given.storage_dir == instance.parent / "audio"


def test_later_sources_win_cfg_then_environment_then_create_app(instance, monkeypatch):
    instance.mkdir()
    (instance / "storyhub.cfg").write_text('MAX_UPLOAD_MB = 10\nWHISPER_LANGUAGE = "cy"\n'
                                           "JOB_MAX_ATTEMPTS = 4\n")
    monkeypatch.setenv("STORYHUB_MAX_UPLOAD_MB", "20")
    monkeypatch.setenv("STORYHUB_JOB_MAX_ATTEMPTS", "6")
    app = _app(MAX_UPLOAD_MB=30)
    given = settings(app)
    assert given.whisper_language == "cy"  # the cfg file's
    assert given.job_max_attempts == 6  # the environment's over the cfg file's
    assert given.max_upload_mb == 30 and app.config["MAX_CONTENT_LENGTH"] == 30 * MIB


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("JOB_MAX_ATTEMPTS", "three", "expected a whole number of at least 1"),
    ("JOB_MAX_ATTEMPTS", "0", "expected a whole number of at least 1"),
    ("THEME_WARM_UP", "maybe", "expected true or false (1/true/yes or 0/false/no)"),
    ("TRUSTED_PROXIES", "-1", "expected a whole number from 0 to 10"),
    ("MAX_AUDIO_HOURS", "lots", "expected a number of at least 0"),
    ("WHISPER_DEVICE", "gpu", "expected one of cpu, cuda, auto"),
    ("TIME_ZONE", "Mars/Olympus_Mons",
     "expected a time zone name such as Europe/London (the IANA database's)"),
    ("TIME_ZONE", "../../etc/passwd",
     "expected a time zone name such as Europe/London (the IANA database's)"),
    ("REDACTION_EXTRA_NAMES", '["Ada", 3]',
     "expected a comma-separated list, or a JSON list of text"),
    ("RETENTION_EXPIRED_DAYS", "soon",
     "expected a whole number of at least 0, or empty or null for none"),
])
def test_a_malformed_environment_value_stops_the_app_naming_it(instance, monkeypatch, name,
                                                                value, expected):
    monkeypatch.setenv(f"STORYHUB_{name}", value)
    assert _refused() == f"STORYHUB_{name} is '{value}': {expected}."


def test_a_malformed_cfg_value_names_the_file(instance):
    instance.mkdir()
    (instance / "storyhub.cfg").write_text('JOB_MAX_ATTEMPTS = "3x"\n')
    assert _refused() == (f"JOB_MAX_ATTEMPTS in {instance / 'storyhub.cfg'} is '3x': "
                          "expected a whole number of at least 1.")


def test_a_malformed_create_app_value(instance):
    message = _refused(WHISPER_VAD="sometimes")
    assert message.startswith("WHISPER_VAD (given to create_app) is 'sometimes': expected true")


def test_an_unknown_environment_variable_is_refused_with_the_closest_setting(instance,
                                                                            monkeypatch):
    monkeypatch.setenv("STORYHUB_JOB_MAX_ATEMPTS", "5")
    message = _refused()
    assert message.startswith("STORYHUB_JOB_MAX_ATEMPTS is not a StoryHub setting. "
                              "Did you mean STORYHUB_JOB_MAX_ATTEMPTS?")
    assert "storyhub/config.py" in message


def test_an_unknown_cfg_key_is_refused(instance):
    instance.mkdir()
    (instance / "storyhub.cfg").write_text('WHISPER_MODLE = "tiny.en"\n')
    assert _refused().startswith(f"WHISPER_MODLE in {instance / 'storyhub.cfg'} is not a "
                                 "StoryHub setting. Did you mean WHISPER_MODEL?")


def test_an_unknown_create_app_key_is_refused(instance):
    assert _refused(JOB_LEASE_SECOND=3).startswith(
        "JOB_LEASE_SECOND (given to create_app) is not a StoryHub setting. "
        "Did you mean JOB_LEASE_SECONDS?")


def test_variables_of_the_scripts_and_flask_keys_are_not_refused(instance, monkeypatch):
    monkeypatch.setenv("STORYHUB_TEST_DATABASE_URL", "sqlite://")
    monkeypatch.setenv("STORYHUB_REQUIRE_BROWSER", "1")
    monkeypatch.setenv("STORYHUB_WTF_CSRF_ENABLED", "false")
    app = _app(TESTING=True)
    assert app.config["WTF_CSRF_ENABLED"] is False and app.testing


@pytest.mark.parametrize("args", [["rewrap-keys"], ["--help"]])
def test_the_command_says_a_bad_setting_in_one_line_and_exits_1(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYHUB_")}
    env.update(STORYHUB_INSTANCE_PATH=str(tmp_path / "instance"),
               STORYHUB_JOB_MAX_ATTEMPTS="three")
    done = subprocess.run([sys.executable, "-m", "storyhub", *args], env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("StoryHub will not start: STORYHUB_JOB_MAX_ATTEMPTS is "
                                   "'three': expected a whole number of at least 1.")


#: Where STORYHUB_* variables are set or read: the code, its tests, scripts and documents.
PLACES = ["storyhub", "tests", "benchmarks", "bin", ".ci", "docs", "workshops", "README.md",
          "compose.yaml", "Containerfile"]


def _files():
    for place in PLACES:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if file.suffix not in {".pyc", ".wav", ".mp3", ".ogg", ".png", ".pdf", ".sqlite"}:
                yield file


def test_every_storyhub_variable_named_anywhere_is_a_setting_or_known():
    known = set(DEFAULTS) | FLASK_KEYS
    unknown = set()
    for file in _files():
        if file == Path(__file__):  # names wrong ones on purpose
            continue
        text = file.read_text(errors="replace")
        for name in re.findall(r"STORYHUB_([A-Z][A-Z0-9_]*[A-Z0-9])", text):
            if name not in known and f"STORYHUB_{name}" not in NOT_SETTINGS:
                unknown.add(f"{file.relative_to(ROOT)}: STORYHUB_{name}")
    assert not unknown


def test_storyhub_reads_its_settings_only_through_the_settings_object():
    # config["KEY"] or .get("KEY") read, not written (restore builds create_app's overrides).
    read = re.compile(r"""(?:config|environ)(?:\.get\(|\[)\s*["'](?:STORYHUB_)?([A-Z_]+)["']"""
                      r"(?!\]\s*=[^=])")
    found = []
    for file in sorted((ROOT / "storyhub").rglob("*.py")):
        if file.name == "config.py" and file.parent.name == "storyhub":
            continue
        for number, line in enumerate(file.read_text().splitlines(), 1):
            found += [f"{file.relative_to(ROOT)}:{number}: {key}"
                      for key in read.findall(line) if key in DEFAULTS]
    assert not found
