"""Celery task for theme runs (queue `analysis`, apart from transcription)."""

from celery import shared_task


@shared_task(name="storyhub.analyse", acks_late=True, ignore_result=True)
def analyse(job_id: int) -> str:
    """Run the theme analysis named by job `job_id`."""
    from .service import run_theme_job

    return run_theme_job(job_id)


def start_warm_up(app) -> None:
    """Compile the theme model's numba code in the background of a new worker process."""
    import logging
    import threading

    def run() -> None:
        from .modeling import warm_up

        try:
            logging.getLogger(__name__).info("Theme model warmed up in %.1fs", warm_up())
        except Exception:  # a failed warm-up only means a slower first run
            logging.getLogger(__name__).exception("Theme model warm-up failed")

    if app.config.get("THEME_WARM_UP"):
        threading.Thread(target=run, name="theme-warm-up", daemon=True).start()
