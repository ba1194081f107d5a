"""StoryHub's settings: one typed, checked `Settings`, read once when the app is made.

Each can be set by a `STORYHUB_*` environment variable, in the instance's storyhub.cfg, or by
create_app's test_config; an unknown name or a malformed value stops StoryHub at start.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Config, Flask, current_app

NOT_SETTINGS = frozenset({
    # STORYHUB_* variables that are not settings, so that unknown ones can be refused.
    "STORYHUB_INSTANCE_PATH",  # where storyhub.cfg is: read before the settings (instance_path)
    "STORYHUB_BACKUP_PASSPHRASE",  # `storyhub backup/restore` only (backup/commands.py)
    "STORYHUB_DB_PASSWORD",  # compose.yaml's .env, for the PostgreSQL container
    "STORYHUB_INSTALL_EXTRAS", "STORYHUB_EXTRA_PACKAGES",  # bin/_setup.sh, bin/run, bin/test
    "STORYHUB_TEST_DATABASE_URL", "STORYHUB_TEST_BROKER_URL",  # tests/conftest.py, .ci/run
    "STORYHUB_TEST_RATELIMIT_STORAGE_URI",
    "STORYHUB_REQUIRE_BROWSER", "STORYHUB_CHROMIUM", "STORYHUB_SCREENSHOTS",  # browser tests
})
# Keys of Flask and the extensions StoryHub uses, passed to them as given (typed by their own
# documentation); StoryHub's defaults for some of them are Settings fields below.
FLASK_KEYS = frozenset(Flask.default_config) | {
    "SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "SQLALCHEMY_ECHO",
    "SQLALCHEMY_RECORD_QUERIES", "SQLALCHEMY_BINDS", "SQLALCHEMY_TRACK_MODIFICATIONS",
    "WTF_CSRF_ENABLED", "WTF_CSRF_CHECK_DEFAULT", "WTF_CSRF_SSL_STRICT", "WTF_CSRF_SECRET_KEY",
    "RATELIMIT_ENABLED", "RATELIMIT_DEFAULT", "RATELIMIT_STRATEGY", "RATELIMIT_STORAGE_OPTIONS",
    "REMEMBER_COOKIE_SECURE", "REMEMBER_COOKIE_HTTPONLY", "REMEMBER_COOKIE_SAMESITE",
}
FLASK_DEFAULTS: dict[str, Any] = {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}}
EXTENSION = "storyhub.settings"
DEFAULT_TIME_ZONE = "Europe/London"


class SettingsError(Exception):
    """A setting is unknown or its value is not one StoryHub can use."""


def _setting(default: Any, *, low: float | None = None, high: float | None = None,
             choices: tuple[str, ...] = (), secret: bool = False,
             check: tuple[Callable[[Any], bool], str] | None = None) -> Any:
    """A setting's default and what it accepts; `check` is a test and, in words, what passes."""
    return field(default=default, repr=not secret,
                 metadata={"low": low, "high": high, "choices": choices, "secret": secret,
                           "check": check})


def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Settings:
    """Every StoryHub setting, typed and checked when StoryHub starts.

    Each field is set as STORYHUB_<NAME> in the environment, NAME = value in the instance's
    storyhub.cfg, or create_app({"NAME": value}) (tests), where NAME is the field's name in
    capitals; the later of these wins. Any other name is refused, with the closest one offered.
    """

    # Where SQLite, audio and the embedded job broker live unless configured otherwise.
    database_url: str | None = None
    storage_dir: Path | None = None
    broker_url: str | None = None
    # The erasure ledger (storyhub/backup/ledger.py): outside every backup, on another disk
    # than the instance in production. None: erasures.ledger in the instance folder.
    erasure_ledger: Path | None = None
    # The master keys: comma-separated id:key entries (storyhub/keys.py), or a file holding
    # them (master.keys in the instance, if both unset): a secret mounted by systemd's
    # LoadCredential= or a container secret.
    master_keys: str | None = _setting(None, secret=True)
    master_keys_file: Path | None = None
    # The folder of a deployment's own workshop pack templates (packs/render.py; by default
    # workshops in the instance folder).
    workshop_templates: Path | None = None
    # Local names and places redaction also suggests (in the environment a JSON list, or
    # comma-separated).
    redaction_extra_names: tuple[str, ...] = ()
    redaction_extra_places: tuple[str, ...] = ()
    # Flask's and its extensions' own settings, with StoryHub's defaults.
    session_cookie_httponly: bool = True
    session_cookie_samesite: str = _setting("Lax", choices=("Lax", "Strict", "None"))
    session_cookie_secure: bool = True
    session_cookie_name: str = "storyhub_session"
    permanent_session_lifetime: int = _setting(8 * 3600, low=60)
    remember_cookie_duration: int = _setting(0, low=0)
    wtf_csrf_time_limit: int | None = _setting(8 * 3600, low=60)
    ratelimit_storage_uri: str = "memory://"
    ratelimit_headers_enabled: bool = True
    # Sign-in limits (accounts/limits.py): wrong passwords per address for accounts its browsers
    # have not signed in with before; per account, a few free, then a doubling wait.
    login_rate_limit: str = "50 per 15 minutes"
    login_account_free_attempts: int = _setting(5, low=0)
    login_account_delay_seconds: float = _setting(30.0, low=0)
    login_account_max_delay_seconds: float = _setting(15 * 60.0, low=0)
    # How many proxies in front of StoryHub set X-Forwarded-For/-Proto (0: none, trust nothing).
    trusted_proxies: int = _setting(0, low=0, high=10)
    max_upload_mb: int = _setting(500, low=1)
    max_audio_hours: float = _setting(3.0, low=0)
    # Checked from a recording's headers before it is decoded (media/audio.py).
    max_audio_channels: int = _setting(2, low=1)
    max_audio_sample_rate: int = _setting(96_000, low=8000)
    max_audio_samples_per_byte: float = _setting(1000.0, low=0)
    # Background jobs: a worker holds a job by a lease it renews; the reaper re-sends lost jobs.
    job_lease_seconds: float = _setting(60.0, low=0)
    job_heartbeat_seconds: float = _setting(5.0, low=0)
    job_reap_seconds: float = _setting(15.0, low=0)
    job_resend_seconds: float = _setting(300.0, low=0)
    job_max_attempts: int = _setting(3, low=1)
    # Set by `storyhub run` for the worker it starts and watches (supervisor.py), which may
    # then leave at once when told to stop while idle (jobs/queue.py).
    embedded_worker: bool = False
    # Where the service is: the dates people give and read (recorded on, consent given and
    # reviewed, retention's days) are dates there, whatever the server's clock is set to.
    time_zone: str = _setting(DEFAULT_TIME_ZONE, check=(
        _is_time_zone, "a time zone name such as Europe/London (the IANA database's)"))
    # Retention, checked once a day by a job. Days after a transcript is reviewed that the
    # original upload is deleted (the playback copy stays); None keeps it. Days after consent
    # passed its review date, not renewed, that the whole story is erased; None never.
    retention_original_days: int | None = _setting(None, low=0)
    retention_expired_days: int | None = _setting(90, low=0)
    # Transcription. WHISPER_MODEL is a bundled model's name (empty: base; tiny.en, lighter
    # and less accurate; storyhub/bundled_models.py checks their files), a model name or a
    # local path. A GPU worker sets WHISPER_DEVICE=cuda, WHISPER_COMPUTE_TYPE=float16.
    whisper_engine: str = _setting("faster-whisper",
                                   choices=("faster-whisper", "openai-whisper"))
    whisper_model: str = ""
    whisper_device: str = _setting("cpu", choices=("cpu", "cuda", "auto"))
    whisper_compute_type: str = "int8"
    whisper_threads: int = _setting(0, low=0)
    # Beam 2 measured as accurate as 5 on our speech tests (WER +0.004) at 60% of the time.
    whisper_beam_size: int = _setting(2, low=1)
    whisper_language: str = ""
    # Batched decoding of speech chunks: measured faster than sequential on a 2-core CPU too.
    whisper_batch_size: int = _setting(8, low=0)
    whisper_vad: bool = True
    # Themes. THEME_EMBEDDING_MODEL is a bundled model's name (empty: all-MiniLM-L6-v2;
    # all-mpnet-base-v2, from optional-models.txt), or a sentence-transformers name or path.
    # Corpora above THEME_FIT_SAMPLE passages are fitted on a sample of that size and the rest
    # assigned to the nearest theme.
    theme_embedding_model: str = ""
    theme_min_stories: int = _setting(3, low=1)
    theme_random_state: int = 42
    theme_fit_sample: int = _setting(20000, low=2)
    # How close (cosine) a passage must be to a facilitator's expected theme to join it.
    theme_seed_min_similarity: float = _setting(0.3, low=-1, high=1)
    # Each worker process compiles the theme model's numba code when it starts (about 30 s of
    # one core), so a facilitator's first run is not the slow one.
    theme_warm_up: bool = True
    # Meaning search in the staff library lists stories only when one story's closest passage
    # is at least this close (cosine) to the search, and then those at least
    # search.LISTED_SHARE of it as close; when none is, it says no story matches.
    # Calibrated on a labelled query set: benchmarks/library_relevance.py, the cut-off with
    # the best F1 of the stories listed (0.37 and 0.41 chosen on either half of the searches).
    library_meaning_min_score: float = _setting(0.39, low=-1, high=1)
    # Stories this close, but not close enough to list, are offered apart ("may be related"),
    # at most LIBRARY_MEANING_NEARBY of them: the cut-off keeps relevant stories out of the
    # list (benchmarks/library_relevance.py), and staff can still reach them.
    library_meaning_near_score: float = _setting(0.2, low=-1, high=1)
    library_meaning_nearby: int = _setting(5, low=0)

    def as_config(self) -> dict[str, Any]:
        """Return the settings by key (DATABASE_URL…), as Flask's app.config holds them."""
        return {f.name.upper(): getattr(self, f.name) for f in fields(self)}


_FIELDS = {f.name.upper(): f for f in fields(Settings)}
_TYPES = get_type_hints(Settings)
# Every setting's default by key, with Flask's that StoryHub changes.
DEFAULTS: dict[str, Any] = {**FLASK_DEFAULTS, **Settings().as_config()}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _kind(key: str) -> tuple[Any, bool]:
    """Return setting `key`'s type, and whether it may be None."""
    kind = _TYPES[_FIELDS[key].name]
    if type(None) in get_args(kind):
        return next(t for t in get_args(kind) if t is not type(None)), True
    return kind, False


def _expected(key: str) -> str:
    """Say in words what values `key` takes."""
    meta = _FIELDS[key].metadata
    kind, optional = _kind(key)
    words = {bool: "true or false (1/true/yes or 0/false/no)", int: "a whole number",
             float: "a number", str: "text", Path: "a path"}
    base = words.get(kind, "a comma-separated list, or a JSON list of text")
    if meta.get("choices"):
        base = "one of " + ", ".join(meta["choices"])
    if meta.get("check"):
        base = meta["check"][1]
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        base += f" from {low:g} to {high:g}"
    elif low is not None:
        base += f" of at least {low:g}"
    if optional:
        base += ", or empty or null for none"
    return base


def _cast(key: str, value: Any, where: str) -> Any:
    """Return `value` as setting `key`'s type, or raise SettingsError saying what it expects."""
    meta = _FIELDS[key].metadata
    base, optional = _kind(key)
    # "null" as the README has always said (the environment was read as JSON before).
    if optional and (value is None or str(value).strip().lower() in ("", "null", "none")):
        return None
    text = value.strip() if isinstance(value, str) else value
    result: Any = None
    if base is bool:
        if isinstance(text, bool):
            result = text
        elif isinstance(text, str) and text.lower() in _TRUE + _FALSE:
            result = text.lower() in _TRUE
        elif isinstance(text, int) and text in (0, 1):
            result = bool(text)
    elif base is int and not isinstance(text, bool):
        if isinstance(text, int) or (isinstance(text, str) and re.fullmatch(r"[+-]?\d+", text)):
            result = int(text)
    elif base is float and not isinstance(text, bool):
        try:
            result = float(text) if isinstance(text, int | float | str) else None
        except ValueError:
            result = None
        if result is not None and not math.isfinite(result):
            result = None
    elif base is str:
        result = value if isinstance(value, str) else None
    elif base is Path:
        result = Path(text).expanduser() if isinstance(text, str | os.PathLike) else None
    elif isinstance(text, str) and not text.startswith("["):  # a list, comma-separated
        result = tuple(item.strip() for item in text.split(",") if item.strip())
    else:  # a list, as JSON or in storyhub.cfg
        items = _json(text) if isinstance(text, str) else text
        if isinstance(items, list | tuple) and all(isinstance(item, str) for item in items):
            result = tuple(items)
    low, high = meta.get("low"), meta.get("high")
    if (result is None or (low is not None and result < low)
            or (high is not None and result > high)
            or (meta.get("choices") and result not in meta["choices"])
            or (meta.get("check") and not meta["check"][0](result))):
        shown = "(hidden)" if meta.get("secret") else repr(value)
        raise SettingsError(f"{where} is {shown}: expected {_expected(key)}.")
    return result


def _unknown(key: str, where: str, prefix: str = "") -> SettingsError:
    known = sorted(set(_FIELDS) | FLASK_KEYS)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean {prefix}{close[0]}?" if close else ""
    return SettingsError(f"{where} is not a StoryHub setting.{hint} Every setting is listed, "
                         "with what it does, in storyhub/config.py (class Settings).")


def _json(text: str) -> Any:
    """Read `text` as JSON (as Flask's from_prefixed_env does), or keep it as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def instance_path() -> str | None:
    """Return the instance folder STORYHUB_INSTANCE_PATH names, if any (Flask's otherwise)."""
    return os.environ.get("STORYHUB_INSTANCE_PATH") or None


def load(instance_path: str, overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> tuple[Settings, dict[str, Any]]:
    """Read and check every setting; return them and the Flask keys given.

    Later sources win: defaults, the instance's storyhub.cfg, STORYHUB_* environment
    variables, then `overrides` (create_app's test_config). Raise SettingsError on an unknown
    key or a value StoryHub cannot use, naming it.
    """
    environ = os.environ if environ is None else environ
    given: dict[str, tuple[Any, str]] = {}
    flask: dict[str, Any] = dict(FLASK_DEFAULTS)
    cfg = Config(instance_path)
    cfg_path = os.path.join(instance_path, "storyhub.cfg")
    cfg.from_pyfile(cfg_path, silent=True)
    layers = [
        [(key, value, f"{key} in {cfg_path}") for key, value in cfg.items()],
        [(name.removeprefix("STORYHUB_"), value, name) for name, value in sorted(environ.items())
         if name.startswith("STORYHUB_") and name not in NOT_SETTINGS],
        [(key, value, f"{key} (given to create_app)") for key, value in (overrides or {}).items()],
    ]
    for number, layer in enumerate(layers):
        for key, value, where in layer:
            if key in _FIELDS:
                given[key] = (value, where)
            elif key in FLASK_KEYS:
                flask[key] = _json(value) if number == 1 else value
            else:
                raise _unknown(key, where, "STORYHUB_" if number == 1 else "")
    values = {_FIELDS[key].name: _cast(key, value, where) for key, (value, where) in given.items()}
    return Settings(**values), flask


def override(app: Flask, changes: Mapping[str, Any]) -> Settings:
    """Change some settings of an app already made (tests), checked as at start."""
    for key in changes:
        if key not in _FIELDS:
            raise _unknown(key, key)
    new = dataclasses.replace(settings(app), **{
        _FIELDS[key].name: _cast(key, value, key) for key, value in changes.items()})
    app.extensions[EXTENSION] = new
    app.config.update(new.as_config())
    return new


def init_app(app: Flask, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Check the settings and keep them on `app`: typed, and in app.config for Flask."""
    found, flask = load(app.instance_path, overrides)
    app.config.update(flask)
    app.config.update(found.as_config())
    app.extensions[EXTENSION] = found
    return found


def settings(app: Flask | None = None) -> Settings:
    """Return the settings of `app`, or of the current app."""
    return (app or current_app).extensions[EXTENSION]


def database_uri(url: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URI for `url`, or the embedded SQLite file in the instance folder."""
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "storyhub.sqlite")
    # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_secret_key(instance_path: str) -> str:
    """Return the instance's secret key, creating it (readable by the owner only) on first use."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
