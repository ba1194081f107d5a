"""Helpers for real-browser tests: a live StoryHub server and Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("STORYHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("STORYHUB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LiveServer:
    """`storyhub run` in a subprocess, with its own instance folder and database."""

    def __init__(self, instance: Path, env: dict[str, str] | None = None,
                 worker: bool = False, run_args: tuple[str, ...] = ()):
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STORYHUB_INSTANCE_PATH": str(instance), **(env or {})}
        self.worker = worker
        self.run_args = list(run_args)
        self.log = instance / "server.log"
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "storyhub", *args], env=self.env,
                              input=input, capture_output=True, text=True, timeout=120,
                              check=True)

    def start(self) -> LiveServer:
        self.instance.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "storyhub", "run", "--port", str(self.port),
                *self.run_args]
        if not self.worker:
            args.append("--no-worker")
        if self._log_file:
            self._log_file.close()
        self._log_file = self.log.open("a")
        # Ctrl-C as at a terminal: a shell running these tests in the background (`cmd &`)
        # makes its children ignore SIGINT, and the site would inherit that.
        self.proc = subprocess.Popen(args, env=self.env, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, preexec_fn=_default_sigint)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log.read_text())
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("server did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file:
            self._log_file.close()


def launch_chromium(playwright, extra_args: list[str] | None = None):
    return playwright.chromium.launch(executable_path=CHROMIUM,
                                      args=CHROMIUM_ARGS + (extra_args or []))


def live_server(tmp_path: Path, role: str, username: str, password: str, display_name: str,
                worker: bool = False, env: dict[str, str] | None = None) -> LiveServer:
    """Start `storyhub run` with a fresh database holding one account."""
    require_chromium()
    live = LiveServer(tmp_path / "instance", env=env, worker=worker)
    # create-user makes the database first on a new instance (tested in tests/app/test_cli.py).
    live.cli("create-user", username, "--role", role, "--name", display_name,
             "--password-stdin", input=password + "\n")
    return live.start()
