"""Where StoryHub's own messages go when it runs: a log file in the instance folder.

The console is kept for what a person starting StoryHub needs to read; warnings and errors
also appear there. Messages never hold story text or personal data (see each logger's calls).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from .storage import private_file, private_folder

FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def log_folder(instance_path: str) -> Path:
    return private_folder(Path(instance_path) / "logs")


def configure(instance_path: str, console_level: int = logging.WARNING) -> Path:
    """Send INFO and above to instance/logs/storyhub.log, warnings to the console; return it."""
    path = log_folder(instance_path) / "storyhub.log"
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=10 * 1024 * 1024,
                                                        backupCount=5, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(FORMAT))
    private_file(path)
    console = logging.StreamHandler()
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(file_handler)
    root.addHandler(console)
    # Waitress reports each queue build-up as a warning; the file is the place for those.
    logging.getLogger("waitress.queue").propagate = False
    logging.getLogger("waitress.queue").addHandler(file_handler)
    return path
