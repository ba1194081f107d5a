"""Start real Celery worker processes against a test app's database, storage and broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

# Short leases so a killed worker's job is noticed in seconds, not a minute.
FAST_JOBS = {"JOB_LEASE_SECONDS": 3, "JOB_HEARTBEAT_SECONDS": 0.5, "JOB_REAP_SECONDS": 1,
             "JOB_RESEND_SECONDS": 30}


def worker_env(app: Flask, **extra: str) -> dict[str, str]:
    env = {**os.environ,
           "STORYHUB_INSTANCE_PATH": app.instance_path,
           "STORYHUB_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "STORYHUB_SECRET_KEY": app.config["SECRET_KEY"]}
    if app.config.get("BROKER_URL"):
        env["STORYHUB_BROKER_URL"] = app.config["BROKER_URL"]
    for key in FAST_JOBS:
        env[f"STORYHUB_{key}"] = str(app.config[key])
    env.update(extra)
    return env


class Worker:
    """`celery worker` in its own process group, so a test can kill it and its children."""

    def __init__(self, app: Flask, name: str, log_dir: Path, **env: str):
        self.log_path = log_dir / f"worker-{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "storyhub.worker:celery", "worker",
             "--loglevel=INFO", "--concurrency=1", "--pool=prefork",
             "-Q", "default,transcribe,analysis", "--hostname", f"{name}@test",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=worker_env(app, **env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the worker and every process it started, mid-job."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if not self._log.closed:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             logs: Callable[[], str] = lambda: "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()}")
