"""Real audio for intake tests: speech from espeak-ng, encoded by ffmpeg, inspected by ffprobe.

Plain functions (no fixtures), so test modules choose the fixture scope themselves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_SPEECH = REPO.parent / "shared" / "data" / "speech"
TOOLS = ("ffmpeg", "ffprobe", "espeak-ng", "sox")

SPEECH_TEXT = "The first week out was the hardest, but my probation officer listened."
# Metadata a phone or editor might leave in a file; StoryHub must not keep any of it.
SECRET_TAGS = {"title": "SECRET-TITLE-4711", "comment": "GPS 51.4816 -3.1791",
               "artist": "Jane Realname"}


@dataclass(frozen=True)
class Encoding:
    """One accepted upload format, as a browser or phone would produce it."""

    name: str
    filename: str
    args: tuple[str, ...]
    codec: str


ENCODINGS = (
    Encoding("wav", "speech.wav", ("-c:a", "pcm_s16le", "-f", "wav"), "pcm_s16le"),
    Encoding("mp3", "speech.mp3", ("-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"), "mp3"),
    Encoding("m4a-aac", "speech.m4a", ("-c:a", "aac", "-b:a", "64k", "-f", "ipod"), "aac"),
    Encoding("ogg-opus", "speech.ogg", ("-c:a", "libopus", "-b:a", "32k", "-f", "ogg"),
             "opus"),
    Encoding("ogg-vorbis", "speech.oga", ("-c:a", "libvorbis", "-q:a", "3", "-f", "ogg"),
             "vorbis"),
    Encoding("flac", "speech.flac", ("-c:a", "flac", "-f", "flac"), "flac"),
    Encoding("webm-opus", "speech.webm", ("-c:a", "libopus", "-b:a", "32k", "-f", "webm"),
             "opus"),
    # What browsers' MediaRecorder sends: Chrome/Firefox a live WebM with no duration in it,
    # Safari a fragmented MP4.
    Encoding("webm-recorder", "recorder.webm",
             ("-c:a", "libopus", "-b:a", "32k", "-f", "webm", "-live", "1"), "opus"),
    Encoding("m4a-fragmented", "recorder.m4a",
             ("-c:a", "aac", "-b:a", "64k", "-movflags",
              "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"), "aac"),
)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run(*args: str | Path) -> subprocess.CompletedProcess:
    """Run a tool with a fixed argument list; fail loudly with its stderr."""
    result = subprocess.run([str(a) for a in args], capture_output=True, check=False,
                            timeout=120)
    assert result.returncode == 0, (args, result.stderr.decode(errors="replace")[-2000:])
    return result


def ffprobe(path: Path) -> dict:
    """Return ffprobe's JSON description (format and streams) of `path`."""
    result = run("ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                 "-show_streams", path)
    return json.loads(result.stdout)


def audio_stream(info: dict) -> dict:
    streams = [s for s in info["streams"] if s.get("codec_type") == "audio"]
    assert len(streams) == 1, info["streams"]
    return streams[0]


def duration(info: dict) -> float | None:
    """Seconds, from an ffprobe description; None if the file does not say."""
    for value in (info["format"].get("duration"), audio_stream(info).get("duration")):
        if value not in (None, "N/A"):
            return float(value)
    return None


def decoded_duration(path: Path, scratch: Path) -> float:
    """Seconds of audio `path` really holds: decode it to WAV and ask ffprobe."""
    out = scratch / f"{path.stem}-decoded.wav"
    run("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", path, "-f", "wav", out)
    return duration(ffprobe(out))


def all_tags(info: dict) -> dict[str, str]:
    """Every metadata tag in the container and its streams, keys lower-cased."""
    tags = {k.lower(): v for k, v in info["format"].get("tags", {}).items()}
    for stream in info["streams"]:
        tags.update({k.lower(): v for k, v in stream.get("tags", {}).items()})
    return tags


def speak(out: Path, text: str = SPEECH_TEXT) -> Path:
    """Synthesise `text` with espeak-ng to a WAV file (22.05 kHz mono, a few seconds)."""
    run("espeak-ng", "-s", "190", "-w", out, text)
    return out


def encode(source: Path, out: Path, *args: str, tags: dict[str, str] | None = None,
           extra_input: tuple[str, ...] = ()) -> Path:
    """Encode `source` to `out` with ffmpeg, writing `tags` as metadata."""
    metadata: list[str] = []
    for key, value in (tags or {}).items():
        metadata += ["-metadata", f"{key}={value}"]
    run("ffmpeg", "-nostdin", "-v", "error", "-y", *extra_input, "-i", source, *args,
        *metadata, out)
    return out


def make_encodings(folder: Path) -> dict[str, Path]:
    """Speech in every accepted format, each carrying SECRET_TAGS, keyed by Encoding.name."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = speak(folder / "espeak.wav")
    return {e.name: encode(speech, folder / e.filename, "-ac", "1", *e.args, tags=SECRET_TAGS)
            for e in ENCODINGS}


def sine_wav(out: Path, seconds: float, rate: int = 16000) -> Path:
    """A plain tone made with sox: unique per (seconds, rate), so never a duplicate by accident."""
    run("sox", "-n", "-r", str(rate), "-c", "1", "-b", "16", out, "synth", str(seconds),
        "sine", "440")
    return out


def silent_video(out: Path, seconds: float = 2) -> Path:
    """A test-card video with no sound track at all."""
    run("ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
        f"testsrc=size=160x120:rate=10:duration={seconds}", "-an", "-c:v", "libvpx",
        "-b:v", "100k", "-f", "webm", out)
    return out


def truncated(source: Path, out: Path, keep: float = 0.3) -> Path:
    """The first `keep` of a file whose header still claims the full length (a cut-off upload)."""
    data = source.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out
