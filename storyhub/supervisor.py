"""The worker `storyhub run` starts beside the site, kept running until the site stops.

If the worker dies (a crash, the out-of-memory killer, `kill -9`), it is started again after a
pause that doubles with each quick failure, and the new worker's reaper takes back the job the
old one held. Its output goes to a log file in the instance folder, not the console.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)
QUEUES = "default,transcribe,analysis"
# A worker that ran this long before dying was healthy: restart it at once next time.
HEALTHY_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 60.0


class EmbeddedWorker:
    """One Celery worker process (solo pool: one job at a time), restarted if it dies."""

    def __init__(self, instance_path: str, log_path: Path,
                 announce: Callable[[str], None] = print):
        self.instance_path = instance_path
        self.log_path = log_path
        self.announce = announce
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = self.log_path.open("ab")
        try:
            return subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
                [sys.executable, "-m", "celery", "-A", "storyhub.worker:celery", "worker",
                 "--loglevel=INFO", "--pool=solo", "-Q", QUEUES,
                 "--hostname", f"embedded-{os.getpid()}@{os.uname().nodename}",
                 "--without-gossip", "--without-mingle"],
                env={**os.environ, "STORYHUB_INSTANCE_PATH": self.instance_path,
                     "STORYHUB_EMBEDDED_WORKER": "1"},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C reaches `storyhub run`, which stops it.
                process_group=0)
        finally:
            log.close()

    def start(self) -> None:
        self.proc = self._spawn()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        backoff = 1.0
        proc = self.proc
        while proc is not None and not self._stopping.is_set():
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_SECONDS:
                backoff = 1.0
            self.announce(f"  Worker     stopped unexpectedly (exit code {code}); starting it "
                          f"again in {backoff:.0f} s. Its log: {self.log_path}")
            logger.warning("Embedded worker exited with %s; restarting in %.0fs", code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            self.restarts += 1
            self.proc = proc = self._spawn()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the worker within seconds; a job it was doing goes back on the queue."""
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        # A warm shutdown: the job in hand is handed back at its next progress report.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("The worker did not stop in %.0fs; killing it", timeout)
            proc.kill()
            proc.wait()
