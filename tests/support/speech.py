"""Speech for transcription tests: real recordings from ../shared, and espeak-ng speech."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech"
JFK_REFERENCE = ("And so my fellow Americans, ask not what your country can do for you, ask "
                 "what you can do for your country.")
PARAGRAPHS = [
    "When I came out of prison I had nowhere to live. The council said I was not a priority, "
    "so I slept on a friend's sofa for three weeks.",
    "My case manager changed four times in a year. Every time I had to tell my story again, "
    "and that made it hard to trust anyone.",
    "The peer mentor was different. He had been through it himself, and he came with me to "
    "the job centre and the doctor.",
    "What helped most was small things: a bus pass, some food, a phone call to remind me of "
    "my appointment.",
]


def shared_speech(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared test data sits beside the repository)")
    return path


def jfk(folder: Path) -> Path:
    """Return jfk.flac from the shared data, or the same sentence spoken by espeak-ng.

    A fresh clone has no ../shared: the tests that use this still run on real speech audio.
    """
    path = SHARED / "jfk.flac"
    if path.exists():
        return path
    return espeak(folder / "jfk-espeak.wav", JFK_REFERENCE, rate=140)


LEFT_REFERENCE = ("He began a confused complaint against the wizard, who had vanished behind "
                  "the curtain on the left.")
RIGHT_REFERENCE = "The horizon seems extremely distant."


def stereo_dialogue(folder: Path) -> Path:
    """Return stereo_diarization.wav, or a stereo file made of two espeak voices."""
    path = SHARED / "stereo_diarization.wav"
    if path.exists():
        return path
    left = espeak(folder / "left.wav", LEFT_REFERENCE)
    right = espeak(folder / "right.wav", RIGHT_REFERENCE)
    out = folder / "dialogue.wav"
    subprocess.run(["sox", "-M", str(left), str(right), str(out)], check=True)
    return out


def normalise(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(len(ref), 1)


def espeak(path: Path, text: str, rate: int = 150) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-s", str(rate), "-w", str(path), text], check=True)
    return path


def long_speech(folder: Path, repeats: int = 4) -> Path:
    """Return a WAV of the paragraphs spoken `repeats` times over (about 40 s a round)."""
    parts = [espeak(folder / f"part{i}.wav", text) for i, text in enumerate(PARAGRAPHS)]
    out = folder / "long.wav"
    subprocess.run(["sox", *map(str, parts * repeats), str(out)], check=True)
    return out
