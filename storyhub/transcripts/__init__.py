"""Transcription: engines, jobs, transcripts and the transcript editor."""
