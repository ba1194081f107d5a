"""Speak the demo stories with espeak-ng into small Ogg Opus files (run by a developer, once).

    .venv/bin/python -m storyhub.demo.make_audio [--only KEY ...]

Reads `stories.json` beside this file and writes `audio/<key>.ogg`: Opus at 16 kHz, mono at
20 kbps (a dialogue is stereo, one voice on each side, as two lapel microphones would record
it, so StoryHub splits it into two speakers). Needs `espeak-ng` and `ffmpeg` on the PATH; it is
never run by StoryHub itself, which ships the files it made. Run it again only after changing a
story's words or voice, and commit the audio with the text.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GAP_SECONDS = 0.45  # between a dialogue's turns
LEAD_SECONDS = 0.3  # silence before and after each recording


def speak(text: str, voice: dict, path: Path) -> tuple[np.ndarray, int]:
    """Speak `text` with an espeak-ng `voice` ({name, speed, pitch}); return samples, rate."""
    subprocess.run(  # noqa: S603  (fixed program, arguments from our own stories.json)
        ["espeak-ng", "-v", voice["name"], "-s", str(voice.get("speed", 150)),  # noqa: S607
         "-p", str(voice.get("pitch", 50)), "-w", str(path), text], check=True)
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return samples, rate


def _silence(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    return np.zeros(shape, dtype=np.int16)


def render(story: dict, work: Path) -> tuple[np.ndarray, int]:
    """Return the story's samples (mono, or stereo for a dialogue's two voices) and rate."""
    if "turns" not in story:
        samples, rate = speak(story["text"], story["voice"], work / "speech.wav")
        return np.concatenate([_silence(LEAD_SECONDS, rate), samples,
                               _silence(LEAD_SECONDS, rate)]), rate
    sides = {speaker: i for i, speaker in enumerate(sorted(story["voices"]))}
    if len(sides) != 2:
        raise SystemExit(f"{story['key']}: a dialogue needs exactly two voices")
    parts = []
    rate = 0
    for n, (speaker, text) in enumerate(story["turns"]):
        samples, rate = speak(text, story["voices"][speaker], work / f"turn{n}.wav")
        turn = np.zeros((len(samples), 2), dtype=np.int16)
        turn[:, sides[speaker]] = samples
        parts += [turn, _silence(GAP_SECONDS, rate, 2)]
    lead = _silence(LEAD_SECONDS, rate, 2)
    return np.concatenate([lead, *parts, lead]), rate


def encode(samples: np.ndarray, rate: int, out: Path, serial: int) -> None:
    """Write `samples` as Ogg Opus at 16 kHz, without metadata, the same bytes every time."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        with wave.open(tmp.name, "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(samples.tobytes())
        subprocess.run(  # noqa: S603  (fixed program and arguments)
            ["ffmpeg", "-v", "error", "-y", "-i", tmp.name, "-ac", str(channels),  # noqa: S607
             "-ar", "16000", "-c:a", "libopus", "-b:a", "20k" if channels == 1 else "32k",
             "-application", "voip", "-map_metadata", "-1", "-fflags", "+bitexact",
             "-flags:a", "+bitexact", "-serial_offset", str(serial), str(out)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="story keys to make again (default: all)")
    args = parser.parse_args(argv)
    for program in ("espeak-ng", "ffmpeg"):
        if shutil.which(program) is None:
            print(f"{program} is needed: sudo apt-get install espeak-ng ffmpeg", file=sys.stderr)
            return 1
    stories = json.loads((HERE / "stories.json").read_text(encoding="utf-8"))["stories"]
    folder = HERE / "audio"
    folder.mkdir(exist_ok=True)
    total = 0.0
    for serial, story in enumerate(stories, 1):
        if args.only and story["key"] not in args.only:
            continue
        with tempfile.TemporaryDirectory() as work:
            samples, rate = render(story, Path(work))
        out = folder / story["audio"]
        encode(samples, rate, out, serial)
        seconds = len(samples) / rate
        total += seconds
        print(f"{out.name:<28} {seconds:5.1f} s  {out.stat().st_size / 1024:6.1f} KiB")
    size = sum(p.stat().st_size for p in folder.glob("*.ogg"))
    print(f"{total:.0f} s of speech made; audio folder {size / 1024 / 1024:.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
