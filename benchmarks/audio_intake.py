"""Benchmark StoryHub's audio intake (PyAV) against the ffmpeg/ffprobe programs it replaced.

    .venv/bin/python benchmarks/audio_intake.py [--seconds 10,120,1200] [--formats wav,mp3,m4a,webm]
    .venv/bin/python benchmarks/audio_intake.py --quick

--quick (CI, a test runs it): 5 s of speech as WAV and WebM (Opus), one run per side.

For each length of espeak-ng speech (44.1 kHz mono; Opus at 48 kHz) in each format, both sides
run probe + make_files (the metadata-free original, the 16 kHz WAV and the 64 kb/s M4A), and
then the transcription decode (16 kHz float32). The ffmpeg side is the code StoryHub ran before,
kept below as the peer. Each run is a fresh child process, so its peak memory is its own
(for the ffmpeg side, that of the ffmpeg programs it started). Each case keeps the best of
--repeats runs (--long-repeats from 10 minutes up). Needs espeak-ng and sox, and
ffmpeg/ffprobe for the peer. Intake time and CPU time are both shown: on a shared machine the
clock also measures the neighbours.
Prints a line per case and, last, `RESULT pyav_s=… ffmpeg_s=… ratio=…` (intake time, summed).
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storyhub.media import audio  # noqa: E402
from storyhub.media.audio import (  # noqa: E402
    CONTAINERS,
    EXACT_LENGTH,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    NORMALISED_RATE,
    AudioInfo,
    AudioRejected,
    wav_declared_seconds,
)
from storyhub.transcripts import engine_audio  # noqa: E402
from tests.support import audio_fixtures as af  # noqa: E402
from tests.support.speech import PARAGRAPHS  # noqa: E402

FORMATS = {
    "wav": af.Encoding("wav", "speech.wav", "wav", "pcm_s16le", "pcm_s16le"),
    "mp3": af.Encoding("mp3", "speech.mp3", "mp3", "libmp3lame", "mp3", 96_000),
    "m4a": af.Encoding("m4a", "speech.m4a", "ipod", "aac", "aac", 96_000),
    "webm": af.Encoding("webm", "speech.webm", "webm", "libopus", "opus", 32_000),
}
LIMIT_SECONDS = 3 * 3600


# --- the peer: StoryHub's audio code before PyAV, as it was -----------------------------------

def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0 and b"No space left on device" in (result.stderr or b""):
        raise OSError(errno.ENOSPC, "No space left on device")
    return result


def cli_probe(path: Path, max_seconds: float) -> AudioInfo:
    if path.stat().st_size == 0:
        raise AudioRejected("empty")
    result = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                   "-show_streams", str(path)], timeout=60)
    if result.returncode != 0:
        raise AudioRejected("unreadable")
    data = json.loads(result.stdout or b"{}")
    fmt = data.get("format", {})
    names = fmt.get("format_name", "").split(",")
    container = next((n for n in names if n in CONTAINERS), None)
    streams = data.get("streams", [])
    sound = [s for s in streams if s.get("codec_type") == "audio"]
    if container is None or not sound:
        raise AudioRejected("not accepted, or no sound")
    stream = sound[0]
    count = int(stream.get("channels") or 0)
    rate = int(stream.get("sample_rate") or 0)
    if not 0 < count <= MAX_CHANNELS or not 0 < rate <= MAX_SAMPLE_RATE:
        raise AudioRejected("unusual shape")
    duration = None
    for value in (fmt.get("duration"), stream.get("duration")):
        if value not in (None, "N/A"):
            duration = float(value)
            break
    if duration is not None and not 0 < duration <= max_seconds:
        raise AudioRejected("no length, or too long")
    return AudioInfo(format_name=fmt.get("format_name", ""), container=container,
                     duration=duration, channels=count, sample_rate=rate,
                     codec=str(stream.get("codec_name", "")))


def cli_make_files(source: Path, info: AudioInfo, original_out: Path, normalised_out: Path,
                   playback_out: Path, max_seconds: float) -> tuple[str, float]:
    muxer, ext = CONTAINERS[info.container]
    remux = _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:a",
                  "-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1",
                  "-fflags", "+bitexact", "-f", muxer, str(original_out)], timeout=600)
    if remux.returncode != 0 or original_out.stat().st_size == 0:
        ext = "flac"
        remux = _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map",
                      "0:a:0", "-c:a", "flac", "-map_metadata", "-1", "-f", "flac",
                      str(original_out)], timeout=3600)
        if remux.returncode != 0:
            raise AudioRejected("damaged")
    cap = str(max_seconds + 1)
    result = _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
                   "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(NORMALISED_RATE),
                   "-c:a", "pcm_s16le", "-map_metadata", "-1", "-fflags", "+bitexact",
                   "-t", cap, "-f", "wav", str(normalised_out),
                   "-map", "0:a:0", "-vn", "-ac", "1", "-c:a", "aac", "-b:a", "64k",
                   "-map_metadata", "-1", "-movflags", "+faststart", "-fflags", "+bitexact",
                   "-t", cap, "-f", "ipod", str(playback_out)], timeout=3 * 3600)
    if result.returncode != 0:
        raise AudioRejected("damaged")
    decoded = max(normalised_out.stat().st_size - 44, 0) / (2 * NORMALISED_RATE)
    if decoded > max_seconds:
        raise AudioRejected("too long")
    promised = info.duration
    if info.container == "wav":
        promised = wav_declared_seconds(source) or promised
    share = 0.9 if info.container in EXACT_LENGTH else 0.5
    if decoded < 0.1 or (promised and decoded < share * promised):
        raise AudioRejected("damaged")
    return ext, decoded


def cli_decode(path: Path, count: int = 1) -> np.ndarray:
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
         "-ac", str(count), "-ar", str(NORMALISED_RATE), "-f", "f32le", "-"],
        capture_output=True, check=True, timeout=3600)
    decoded = np.frombuffer(result.stdout, dtype=np.float32)
    return decoded if count == 1 else decoded.reshape(-1, count)


SIDES = {
    "pyav": (audio.probe, audio.make_files, engine_audio.decode),
    "ffmpeg": (cli_probe, cli_make_files, cli_decode),
}


# --- one measured run, in a child process -----------------------------------------------------

def child(side: str, source: Path, workdir: Path) -> None:
    """Time one side on `source`; print its figures as JSON."""
    probe, make_files, decode = SIDES[side]
    outputs = [workdir / f"{side}-{name}" for name in ("original", "normalised.wav",
                                                        "playback.m4a")]
    started, cpu = time.perf_counter(), _cpu_seconds()
    info = probe(source, LIMIT_SECONDS)
    ext, decoded = make_files(source, info, *outputs, LIMIT_SECONDS)
    intake, intake_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    # The ffmpeg programs' peak is their own; ours is this process's, before the decode below
    # builds its whole-recording array (as the engines need it).
    peak = resource.getrusage(resource.RUSAGE_SELF if side == "pyav"
                              else resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    samples = len(decode(source))
    decode_seconds = time.perf_counter() - started
    print(json.dumps({"intake": intake, "intake_cpu": intake_cpu, "decode": decode_seconds,
                      "decoded": decoded, "samples": samples, "ext": ext,
                      "peak_mb": peak / 1024, "sizes": [p.stat().st_size for p in outputs]}))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: steadier than the clock when
    other work shares the machine."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(side: str, source: Path, workdir: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--_child", side, str(source),
                             str(workdir)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{side} failed on {source.name}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the corpus -------------------------------------------------------------------------------

def make_speech(folder: Path, seconds: float) -> Path:
    """Return `seconds` of espeak-ng speech as a 44.1 kHz mono WAV."""
    one_round = folder / "round.wav"
    if not one_round.exists():
        parts = []
        for i, text in enumerate(PARAGRAPHS):
            parts.append(folder / f"part{i}.wav")
            af.run("espeak-ng", "-s", "150", "-w", parts[-1], text)
        af.run("sox", *parts, one_round)
    with wave.open(str(one_round), "rb") as wav:
        round_seconds = wav.getnframes() / wav.getframerate()
    out = folder / f"speech-{seconds:g}s.wav"
    repeats = int(seconds // round_seconds)  # sox plays the input once, then repeats it
    af.run("sox", one_round, out, "repeat", str(repeats), "trim", "0", f"{seconds:g}",
           "rate", "44100")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", default="10,120,1200",
                        help="lengths of speech, comma-separated")
    parser.add_argument("--formats", default=",".join(FORMATS), help="of: " + ", ".join(FORMATS))
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per side for cases under 10 minutes (best is kept)")
    parser.add_argument("--long-repeats", type=int, default=2,
                        help="runs per side for longer cases (best is kept)")
    parser.add_argument("--quick", action="store_true",
                        help="5 s as WAV and WebM, one run each: the same code in seconds (CI)")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        side, source, workdir = args._child
        child(side, Path(source), Path(workdir))
        return
    if args.quick:
        args.seconds, args.formats, args.repeats, args.long_repeats = "5", "wav,webm", 1, 1
    missing = [t for t in ("espeak-ng", "sox", "ffmpeg", "ffprobe") if shutil.which(t) is None]
    if missing:
        sys.exit(f"This benchmark needs {', '.join(missing)} (espeak-ng and sox make the "
                 "speech, the ffmpeg programs are the peer): apt-get install espeak-ng sox ffmpeg")

    totals = {side: {"intake": 0.0, "intake_cpu": 0.0, "decode": 0.0} for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="storyhub-audio-bench-") as tmp:
        folder = Path(tmp)
        print(f"{'case':<14} {'pyav s':>8} {'ffmpeg s':>9} {'ratio':>6}   {'cpu ratio':>9}   "
              f"{'decode pyav/ffmpeg s':>21}   {'intake peak MB pyav/ffmpeg':>26}")
        for seconds in (float(s) for s in args.seconds.split(",")):
            speech = make_speech(folder, seconds)
            for name in args.formats.split(","):
                source = af.encode(speech, folder / f"{seconds:g}s-{FORMATS[name].filename}",
                                   FORMATS[name])
                runs = args.repeats if seconds < 600 else args.long_repeats
                best: dict[str, dict] = {}
                for _ in range(runs):
                    for side in SIDES:  # alternate, so neither side always runs on a warm cache
                        got = measure(side, source, folder)
                        if side not in best or got["intake"] < best[side]["intake"]:
                            best[side] = got
                py, cli = best["pyav"], best["ffmpeg"]
                assert abs(py["decoded"] - cli["decoded"]) < 0.2, (py, cli)
                assert abs(py["samples"] - cli["samples"]) < NORMALISED_RATE // 10, (py, cli)
                for side in SIDES:
                    for key in totals[side]:
                        totals[side][key] += best[side][key]
                print(f"{f'{seconds:g}s {name}':<14} {py['intake']:8.2f} {cli['intake']:9.2f} "
                      f"{py['intake'] / cli['intake']:6.2f}   "
                      f"{py['intake_cpu'] / cli['intake_cpu']:9.2f}   "
                      f"{py['decode']:10.2f}/{cli['decode']:<10.2f}   "
                      f"{py['peak_mb']:13.0f}/{cli['peak_mb']:<12.0f}", flush=True)
    py, cli = totals["pyav"], totals["ffmpeg"]
    print(f"DECODE pyav_s={py['decode']:.2f} ffmpeg_s={cli['decode']:.2f} "
          f"ratio={py['decode'] / cli['decode']:.3f}")
    print(f"CPU pyav_s={py['intake_cpu']:.2f} ffmpeg_s={cli['intake_cpu']:.2f} "
          f"ratio={py['intake_cpu'] / cli['intake_cpu']:.3f}")
    print(f"RESULT pyav_s={py['intake']:.2f} ffmpeg_s={cli['intake']:.2f} "
          f"ratio={py['intake'] / cli['intake']:.3f}")


if __name__ == "__main__":
    main()
