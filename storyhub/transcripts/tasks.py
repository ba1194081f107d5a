"""Celery tasks for transcription (queue `transcribe`, so GPU workers can take only these)."""

from celery import shared_task


@shared_task(name="storyhub.transcribe", acks_late=True, ignore_result=True)
def transcribe(job_id: int) -> str:
    """Transcribe the recording named by job `job_id`."""
    from .service import run_transcription_job

    return run_transcription_job(job_id)
