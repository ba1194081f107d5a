"""Benchmark StoryHub's transcription pipeline against openai-whisper on the same weights.

    .venv/bin/python benchmarks/transcribe.py [--minutes 5] [--threads 2]

StoryHub side: the whole pipeline a worker runs — claim the job, decode, faster-whisper with
word timestamps and StoryHub's default settings (batched, beam 2), store segments and words,
mark done — on stories stored through the real intake. Reference side: openai-whisper with the
same tiny.en weights (rebuilt from the bundled CTranslate2 file), same audio, same thread count,
beam 5, word timestamps.
Prints a line per file and, last, a RESULT line to compare run to run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.speech import JFK_REFERENCE, PARAGRAPHS, wer  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "speech"


def make_corpus(folder: Path, minutes: float) -> list[tuple[Path, str]]:
    """Return (audio, reference) pairs: shared real speech plus long generated speech."""
    corpus = []
    if (SHARED / "jfk.flac").exists():
        corpus.append((SHARED / "jfk.flac", JFK_REFERENCE))
    parts = []
    for i, text in enumerate(PARAGRAPHS):
        path = folder / f"p{i}.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
        parts.append(path)
    one_round = sum(float(subprocess.run(["soxi", "-D", str(p)], capture_output=True,
                                         text=True, check=True).stdout) for p in parts)
    rounds = max(1, round(minutes * 60 / one_round))
    long = folder / "long.wav"
    subprocess.run(["sox", *map(str, parts * rounds), str(long)], check=True)
    corpus.append((long, " ".join(PARAGRAPHS * rounds)))
    return corpus


def storyhub_side(corpus, threads: int, workdir: Path):
    os.environ["STORYHUB_INSTANCE_PATH"] = str(workdir / "instance")
    from sqlalchemy import select

    from storyhub import create_app
    from storyhub.accounts.service import create_user
    from storyhub.database import upgrade_schema
    from storyhub.extensions import db
    from storyhub.jobs.models import Job
    from storyhub.stories import service as stories
    from storyhub.stories.consent import Scope
    from storyhub.transcripts.engines import EngineSettings, get_engine
    from storyhub.transcripts.service import get_transcript, run_transcription_job

    app = create_app({"WHISPER_THREADS": threads, "JOB_HEARTBEAT_SECONDS": 1})
    upgrade_schema(app)
    results = []
    with app.app_context():
        get_engine(EngineSettings.from_config(app.config))  # load the model before timing
        user = create_user("bench", "Bench", "reporter", "benchmark password")
        db.session.commit()
        for audio, reference in corpus:
            story = stories.create_story(
                stories.NewStory(audio.stem, "staff", "monologue", date.today()),
                stories.NewConsent({Scope.TRANSCRIBE_ANALYSE}, "spoken", date.today(), 0.0),
                audio, user)
            db.session.commit()
            duration = story.recording.duration_seconds
            job_id = db.session.scalar(select(Job.id).where(Job.story_id == story.id))
            started = time.perf_counter()
            outcome = run_transcription_job(job_id)
            seconds = time.perf_counter() - started
            assert outcome == "done", outcome
            transcript = get_transcript(story)
            words = sum(len(s.words) for s in transcript.segments)
            text = " ".join(s.text for s in transcript.segments)
            results.append((audio.name, duration, seconds, wer(reference, text), words))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results, rss_mb


def reference_side(corpus, threads: int, workdir: Path):
    import torch
    import whisper

    from storyhub.transcripts.ct2_checkpoint import build_openai_checkpoint, read_alignment_heads
    from storyhub.transcripts.engines import bundled_model_path

    torch.set_num_threads(threads)
    checkpoint = build_openai_checkpoint(bundled_model_path(), workdir / "tiny.en.pt")
    model = whisper.load_model(str(checkpoint), device="cpu")
    model.set_alignment_heads(read_alignment_heads(checkpoint))
    results = []
    for audio_path, reference in corpus:
        audio = whisper.load_audio(str(audio_path))
        duration = len(audio) / 16000
        started = time.perf_counter()
        out = model.transcribe(audio, language="en", beam_size=5, best_of=5,
                               word_timestamps=True, fp16=False, verbose=None)
        seconds = time.perf_counter() - started
        results.append((audio_path.name, duration, seconds, wer(reference, out["text"]), 0))
    return results


def summarise(results):
    audio = sum(r[1] for r in results)
    seconds = sum(r[2] for r in results)
    # WER over the corpus, weighted by each file's audio length.
    weighted = sum(r[3] * r[1] for r in results) / audio
    return seconds / audio, weighted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="length of the generated long recording")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = make_corpus(work, args.minutes)
        ours, rss_mb = storyhub_side(corpus, args.threads, work)
        theirs = reference_side(corpus, args.threads, work)
    for label, rows in (("storyhub", ours), ("openai-whisper", theirs)):
        for name, duration, seconds, error, words in rows:
            print(f"{label:15s} {name:16s} audio={duration:7.1f}s time={seconds:6.2f}s "
                  f"rtf={seconds / duration:.3f} wer={error:.3f}"
                  + (f" words_stored={words}" if words else ""))
    rtf, error = summarise(ours)
    ref_rtf, ref_error = summarise(theirs)
    print(f"RESULT rtf={rtf:.3f} wer={error:.3f} ref_rtf={ref_rtf:.3f} ref_wer={ref_error:.3f} "
          f"speedup={ref_rtf / rtf:.2f} rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()
