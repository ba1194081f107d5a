"""Default settings; every one can be overridden by a `STORYHUB_*` environment variable."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Where SQLite, audio and the embedded job broker live unless configured otherwise.
    "DATABASE_URL": None,
    "STORAGE_DIR": None,
    "BROKER_URL": None,
    # The erasure ledger (storyhub/backup/ledger.py): outside every backup, on another disk
    # than the instance in production. None: erasures.ledger in the instance folder.
    "ERASURE_LEDGER": None,
    # A file holding the master keys (MASTER_KEYS itself, or master.keys in the instance, if
    # unset): a secret mounted by systemd's LoadCredential= or a container secret.
    "MASTER_KEYS_FILE": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_NAME": "storyhub_session",
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    "REMEMBER_COOKIE_DURATION": 0,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    # Sign-in limits (accounts/limits.py): wrong passwords per address for accounts its browsers
    # have not signed in with before; per account, a few free, then a doubling wait.
    "LOGIN_RATE_LIMIT": "50 per 15 minutes",
    "LOGIN_ACCOUNT_FREE_ATTEMPTS": 5,
    "LOGIN_ACCOUNT_DELAY_SECONDS": 30,
    "LOGIN_ACCOUNT_MAX_DELAY_SECONDS": 15 * 60,
    # How many proxies in front of StoryHub set X-Forwarded-For/-Proto (0: none, trust nothing).
    "TRUSTED_PROXIES": 0,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "MAX_UPLOAD_MB": 500,
    "MAX_AUDIO_HOURS": 3.0,
    # Checked from a recording's headers before it is decoded (media/audio.py).
    "MAX_AUDIO_CHANNELS": 2,
    "MAX_AUDIO_SAMPLE_RATE": 96_000,
    "MAX_AUDIO_SAMPLES_PER_BYTE": 1000,
    # Background jobs: a worker holds a job by a lease it renews; the reaper re-sends lost jobs.
    "JOB_LEASE_SECONDS": 60,
    "JOB_HEARTBEAT_SECONDS": 5,
    "JOB_REAP_SECONDS": 15,
    "JOB_RESEND_SECONDS": 300,
    "JOB_MAX_ATTEMPTS": 3,
    # Retention, checked once a day by a job. Days after a transcript is reviewed that the
    # original upload is deleted (the playback copy stays); None keeps it. Days after consent
    # passed its review date, not renewed, that the whole story is erased; None never.
    "RETENTION_ORIGINAL_DAYS": None,
    "RETENTION_EXPIRED_DAYS": 90,
    # Transcription. WHISPER_MODEL is a bundled model's name (empty: base; tiny.en, lighter
    # and less accurate; storyhub/bundled_models.py checks their files), a model name or a
    # local path. A GPU worker sets WHISPER_DEVICE=cuda, WHISPER_COMPUTE_TYPE=float16.
    "WHISPER_ENGINE": "faster-whisper",
    "WHISPER_MODEL": "",
    "WHISPER_DEVICE": "cpu",
    "WHISPER_COMPUTE_TYPE": "int8",
    "WHISPER_THREADS": 0,
    # Beam 2 measured as accurate as 5 on our speech tests (WER +0.004) at 60% of the time.
    "WHISPER_BEAM_SIZE": 2,
    "WHISPER_LANGUAGE": "",
    # Batched decoding of speech chunks: measured faster than sequential on a 2-core CPU too.
    "WHISPER_BATCH_SIZE": 8,
    "WHISPER_VAD": True,
    # Themes. THEME_EMBEDDING_MODEL is a bundled model's name (empty: all-MiniLM-L6-v2;
    # all-mpnet-base-v2, from optional-models.txt), or a sentence-transformers name or path.
    # Corpora above THEME_FIT_SAMPLE passages are fitted on a sample of that size and the rest
    # assigned to the nearest theme.
    "THEME_EMBEDDING_MODEL": "",
    "THEME_MIN_STORIES": 3,
    "THEME_RANDOM_STATE": 42,
    "THEME_FIT_SAMPLE": 20000,
    # How close (cosine) a passage must be to a facilitator's expected theme to join it.
    "THEME_SEED_MIN_SIMILARITY": 0.3,
    # Each worker process compiles the theme model's numba code when it starts (about 30 s of
    # one core), so a facilitator's first run is not the slow one.
    "THEME_WARM_UP": True,
    # Meaning search in the staff library lists stories only when one story's closest passage
    # is at least this close (cosine) to the search, and then those at least
    # search.LISTED_SHARE of it as close; when none is, it says no story matches.
    # Calibrated on a labelled query set: benchmarks/library_relevance.py.
    "LIBRARY_MEANING_MIN_SCORE": 0.3,
    # Stories this close, but not close enough to list, are offered apart ("may be related"),
    # at most LIBRARY_MEANING_NEARBY of them: the cut-off keeps relevant stories out of the
    # list (benchmarks/library_relevance.py), and staff can still reach them.
    "LIBRARY_MEANING_NEAR_SCORE": 0.2,
    "LIBRARY_MEANING_NEARBY": 5,
}


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
