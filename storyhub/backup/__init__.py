"""Backup and restore that keep encryption and erasure: `storyhub backup`, `storyhub restore`.

- making.py: a point-in-time backup of a running instance (database snapshot, the sealed
  files it refers to, a manifest of checksums; master keys only sealed with a passphrase);
- restoring.py: rebuild an instance from one, checking every checksum and every sealed file;
- ledger.py: the erasure ledger, outside every backup, that a restore applies so a story
  erased after a backup stays erased;
- commands.py: the commands, with progress bars.
"""

from __future__ import annotations

from flask import Flask

from .. import signals
from .ledger import note_erasure


def init_app(app: Flask) -> None:
    """Write every erasure to the ledger, as it is asked for and as it is done."""
    signals.story_erasure_requested.connect(note_erasure)
    signals.story_erasing.connect(note_erasure)
