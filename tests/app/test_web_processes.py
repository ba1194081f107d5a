"""`storyhub run --processes 2`: two web processes on one port, stopped together."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request

import pytest

from tests.support.browser import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.one_database]


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                           check=False)
    return [int(p) for p in found.stdout.split()]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["terminate", "ctrl-c"])
def test_two_web_processes_answer_on_one_port_and_stop_together(tmp_path, stop):
    live = LiveServer(tmp_path / "instance", run_args=("--processes", "2")).start()
    try:
        [child] = _children(live.proc.pid)
        assert "(2 web processes)" in live.log.read_text()
        for _ in range(20):  # each a new connection, taken by either process
            with urllib.request.urlopen(live.url + "/login", timeout=10) as page:  # noqa: S310
                assert page.status == 200 and b"Sign in" in page.read()
        live.proc.send_signal(stop)
        assert live.proc.wait(timeout=30) == 0, live.log.read_text()
        assert not os.path.exists(f"/proc/{child}"), "the second web process stopped too"
        assert "Stopped." in live.log.read_text()
    finally:
        live.stop()
