"""Celery task for theme runs (queue `analysis`, apart from transcription)."""

from celery import shared_task


@shared_task(name="storyhub.analyse", acks_late=True, ignore_result=True)
def analyse(job_id: int) -> str:
    """Run the theme analysis named by job `job_id`."""
    from .service import run_theme_job

    return run_theme_job(job_id)
