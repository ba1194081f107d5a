"""Test files longest first, from the seconds a run measured (tests/durations.json).

Under pytest-xdist (`--dist loadfile --no-loadscope-reorder` in .ci/run) files are handed out in
collection order, so the long ones start first and the short ones fill the gaps at the end,
instead of one worker running the browser tests alone for the last minutes. Only the order
depends on it. `pytest --record-durations` rewrites the file from the run it ends.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FILE = TESTS / "durations.json"


def load(path: Path = FILE) -> dict[str, float]:
    """Seconds per test file (its path under the repository), or nothing if never recorded."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def key(path: Path) -> str:
    """A test file's name in the durations file: its path from the repository root."""
    return Path(path).resolve().relative_to(TESTS.parent).as_posix()


def rank(seconds: dict[str, float]):
    """Return a sort key for test items: longest file first; a file the record does not know
    yet goes first (it may be long, and nothing says otherwise)."""
    unknown = max(seconds.values(), default=0.0) + 1.0

    def sort_key(item) -> float:
        return -seconds.get(key(item.path), unknown)

    return sort_key


class Recorder:
    """Sum each file's setup, call and teardown seconds; write them when the run ends."""

    def __init__(self, path: Path = FILE):
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[key(Path(report.fspath).resolve())] += report.duration

    def pytest_sessionfinish(self, session) -> None:
        if not self.seconds:
            return
        ordered = dict(sorted(((name, round(secs, 1)) for name, secs in self.seconds.items()),
                              key=lambda pair: (-pair[1], pair[0])))
        self.path.write_text(json.dumps(ordered, indent=1) + "\n")
