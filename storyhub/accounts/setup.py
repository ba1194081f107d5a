"""The one-time link that lets whoever started StoryHub create the first admin."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

LINK_FILE = "first_admin_token"


def read_token(instance_path: str) -> str | None:
    path = Path(instance_path) / LINK_FILE
    return path.read_text().strip() if path.exists() else None


def issue_token(instance_path: str) -> str:
    """Return the current set-up token, creating one if none exists."""
    existing = read_token(instance_path)
    if existing:
        return existing
    token = secrets.token_urlsafe(24)
    fd = os.open(Path(instance_path) / LINK_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def remove_token(instance_path: str) -> None:
    (Path(instance_path) / LINK_FILE).unlink(missing_ok=True)
