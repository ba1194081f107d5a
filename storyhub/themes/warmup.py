"""Compile the theme model's numba code in each new worker process, before anyone waits on it."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_process_init
from flask import Flask

from ..config import settings
from .modeling import warm_up

logger = logging.getLogger(__name__)


def start_warm_up(app: Flask) -> None:
    """Compile the theme model's numba code in the background of a new worker process."""

    def run() -> None:
        try:
            logger.info("Theme model warmed up in %.1fs", warm_up())
        except Exception:  # a failed warm-up only means a slower first run
            logger.exception("Theme model warm-up failed")

    if settings(app).theme_warm_up:
        threading.Thread(target=run, name="theme-warm-up", daemon=True).start()


def init_app(app: Flask) -> None:
    """Warm up in every worker process this app's Celery starts (not in web processes)."""

    @worker_process_init.connect(weak=False)
    def _warm_up(**_kwargs):
        start_warm_up(app)
