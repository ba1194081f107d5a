"""Benchmark StoryHub's transcription pipeline against openai-whisper on the same weights.

    .venv/bin/python benchmarks/transcribe.py [--minutes 5] [--short 36] [--threads 2]
    .venv/bin/python benchmarks/transcribe.py --quick
    .venv/bin/python benchmarks/transcribe.py --model base   # the bundled Whisper base

--model: a bundled model's name (base, StoryHub's default, or tiny.en;
storyhub/bundled_models.py) or a CTranslate2 model folder; both sides get its weights.

--quick (CI, a test runs it): both sides on one 11 s clip, JFK's sentence (spoken by espeak-ng
when ../shared is absent); the same pipeline and the same RESULT line, in about half a minute.

Corpus: JFK's speech (from ../shared), one long generated recording (--minutes), and --short
recordings as reporters make them: 15-60 s stories in nine espeak-ng voices at 130-190 words a
minute, as WAV, MP3, M4A, OGG (Opus) and WebM (benchmarks/short_stories.py).
StoryHub side: the whole pipeline a worker runs — claim the job, decode, faster-whisper with
word timestamps and StoryHub's default settings (batched, beam 2, coverage check), store
segments and words, mark done — on stories stored through the real intake. Reference side:
openai-whisper with the same weights (rebuilt from the bundled CTranslate2 file), same
audio, same thread count, and the options a user would pick for long audio: beam 5,
condition_on_previous_text=False, word timestamps.
Prints a line per file, the load on the machine, and last a RESULT line to compare run to run:
rtf and wer over the whole corpus (wer weighted by audio length), worst_wer the worst file's,
lost the files that lost more than half their words (fewer than half the reference's words
found, in order, in the transcript), ref_* the same for openai-whisper, speedup = ref_rtf / rtf.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.short_stories import render, short_stories  # noqa: E402
from storyhub import dates  # noqa: E402
from storyhub.transcripts.engines import DEFAULT_WHISPER_MODEL  # noqa: E402
from tests.support.speech import JFK_REFERENCE, PARAGRAPHS, jfk, normalise, wer  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "speech"


def make_corpus(folder: Path, minutes: float, short: int) -> list[tuple[Path, str]]:
    """Return (audio, reference) pairs: shared real speech, long and short generated speech."""
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
    corpus.extend((render(story, folder), story.text) for story in short_stories(short))
    return corpus


def model_folder(model: str) -> Path:
    """Return the CTranslate2 folder of `model`: a bundled model's name, or a folder."""
    from storyhub import bundled_models

    return bundled_models.folder(model) if model in bundled_models.MODELS else Path(model)


def storyhub_side(corpus, threads: int, workdir: Path, model: str = ""):
    os.environ["STORYHUB_INSTANCE_PATH"] = str(workdir / "instance")
    from sqlalchemy import select

    from storyhub import create_app
    from storyhub.accounts.models import User
    from storyhub.accounts.service import create_user
    from storyhub.config import settings
    from storyhub.database import upgrade_schema
    from storyhub.extensions import db
    from storyhub.jobs.models import Job
    from storyhub.jobs.runner import run_job
    from storyhub.stories import service as stories
    from storyhub.stories.consent import Scope
    from storyhub.stories.models import Story
    from storyhub.transcripts.engines import EngineSettings, get_engine
    from storyhub.transcripts.service import get_transcript

    app = create_app({"WHISPER_THREADS": threads, "JOB_HEARTBEAT_SECONDS": 1,
                      "WHISPER_MODEL": model})
    upgrade_schema(app)
    results = []
    with app.app_context():
        get_engine(EngineSettings.from_config(settings()))  # load the model before timing
        user_id = create_user("bench", "Bench", "reporter", "quiet lantern orchard 42").id
        db.session.commit()
        for audio, reference in corpus:
            story = stories.create_story(
                stories.NewStory(audio.stem, "staff", "monologue", dates.today()),
                stories.NewConsent({Scope.TRANSCRIBE_ANALYSE}, "spoken", dates.today(), 0.0),
                audio, db.session.get(User, user_id))
            db.session.commit()
            story_id, duration = story.id, story.recording.duration_seconds
            job_id = db.session.scalar(select(Job.id).where(Job.story_id == story_id))
            started = time.perf_counter()
            outcome = run_job(job_id)
            seconds = time.perf_counter() - started
            assert outcome == "done", outcome
            transcript = get_transcript(db.session.get(Story, story_id))
            words = sum(len(s.words) for s in transcript.segments)
            text = " ".join(s.text for s in transcript.segments)
            checking = bool(getattr(transcript, "needs_checking", False))
            results.append((audio.name, duration, seconds, wer(reference, text), words,
                            found_share(reference, text), checking))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results, rss_mb


def reference_side(corpus, threads: int, workdir: Path, model: str):
    import torch
    import whisper

    from storyhub.transcripts import engine_audio
    from storyhub.transcripts.ct2_checkpoint import build_openai_checkpoint, read_alignment_heads

    torch.set_num_threads(threads)
    checkpoint = build_openai_checkpoint(model_folder(model), workdir / "model.pt")
    model = whisper.load_model(str(checkpoint), device="cpu")
    model.set_alignment_heads(read_alignment_heads(checkpoint))
    results = []
    for audio_path, reference in corpus:
        # The same 16 kHz samples StoryHub decodes (whisper.load_audio needs the ffmpeg program).
        audio = engine_audio.decode(audio_path)
        duration = len(audio) / 16000
        started = time.perf_counter()
        out = model.transcribe(audio, language="en", beam_size=5, best_of=5,
                               condition_on_previous_text=False, word_timestamps=True,
                               fp16=False, verbose=None)
        seconds = time.perf_counter() - started
        results.append((audio_path.name, duration, seconds, wer(reference, out["text"]), 0,
                        found_share(reference, out["text"]), False))
    return results


def found_share(reference: str, hypothesis: str) -> float:
    """Return the share of the reference's words found, in order, in the hypothesis (LCS)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = [0] * (len(hyp) + 1)
    for r in ref:
        diagonal = 0
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], diagonal + 1 if r == h else max(row[j], row[j - 1])
    return row[len(hyp)] / max(len(ref), 1)


def summarise(results):
    """Return rtf, wer (weighted by audio length), the worst file's wer, files mostly lost."""
    audio = sum(r[1] for r in results)
    seconds = sum(r[2] for r in results)
    weighted = sum(r[3] * r[1] for r in results) / audio
    lost = sum(1 for r in results if r[5] < 0.5)
    return seconds / audio, weighted, max(r[3] for r in results), lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="length of the generated long recording")
    parser.add_argument("--short", type=int, default=36,
                        help="how many short recordings (15-60 s each)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--model", default=DEFAULT_WHISPER_MODEL,
                        help="bundled model name (base, the default; tiny.en) or CTranslate2 "
                             "folder")
    parser.add_argument("--no-reference", action="store_true",
                        help="measure StoryHub's side only (no RESULT line)")
    parser.add_argument("--quick", action="store_true",
                        help="one short clip, both sides: the same code in seconds (for CI)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = ([(jfk(work), JFK_REFERENCE)] if args.quick
                  else make_corpus(work, args.minutes, args.short))
        ours, rss_mb = storyhub_side(corpus, args.threads, work, args.model)
        if args.no_reference:  # to try StoryHub's settings quickly; no RESULT line
            for row in ours:
                print(f"storyhub {row[0]:32s} wer={row[3]:.3f} found={row[5]:.2f}")
            print("storyhub rtf={:.3f} wer={:.3f} worst_wer={:.2f} lost={}".format(
                *summarise(ours)))
            return
        theirs = reference_side(corpus, args.threads, work, args.model)
    for label, rows in (("storyhub", ours), ("openai-whisper", theirs)):
        for name, duration, seconds, error, words, found, checking in rows:
            print(f"{label:15s} {name:32s} audio={duration:7.1f}s time={seconds:6.2f}s "
                  f"rtf={seconds / duration:.3f} wer={error:.3f} found={found:.2f}"
                  + (f" words_stored={words}" if words else "")
                  + (" needs_checking" if checking else ""))
    print(f"load average (1 min) {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after, "
          f"on {os.cpu_count()} cores")
    rtf, error, worst, lost = summarise(ours)
    ref_rtf, ref_error, ref_worst, ref_lost = summarise(theirs)
    print(f"storyhub needs_checking={sum(1 for r in ours if r[6])} of {len(ours)}; "
          f"reference worst_wer={ref_worst:.2f} lost={ref_lost}")
    print(f"RESULT rtf={rtf:.3f} wer={error:.3f} worst_wer={worst:.2f} lost={lost} "
          f"ref_rtf={ref_rtf:.3f} ref_wer={ref_error:.3f} speedup={ref_rtf / rtf:.1f} "
          f"rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()
