"""Check an uploaded file is a real recording, and make the files StoryHub works from.

Everything is judged by content (ffprobe), never by the file's name or declared type.
"""

from __future__ import annotations

import errno
import json
import logging
import struct
import subprocess  # noqa: S404  (fixed argument lists, never a shell)
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS_TEXT = "WAV, MP3, M4A/AAC, OGG/Opus, FLAC or WebM"
# ffprobe format names we accept, and the muxer to rewrite each one without its metadata.
CONTAINERS = {
    "wav": ("wav", "wav"),
    "mp3": ("mp3", "mp3"),
    "mov": ("ipod", "m4a"), "mp4": ("ipod", "m4a"), "m4a": ("ipod", "m4a"),
    "3gp": ("ipod", "m4a"),
    "ogg": ("ogg", "ogg"),
    "flac": ("flac", "flac"),
    "matroska": ("matroska", "mka"), "webm": ("webm", "webm"),
    "aac": ("adts", "aac"),
}
# Containers whose header states the length exactly: a file that decodes to much less was cut
# off. (MP3 and raw AAC lengths are estimates from the bit rate, so allow more slack there.)
EXACT_LENGTH = {"wav", "flac", "mov", "mp4", "m4a", "3gp"}
MAX_CHANNELS = 8
MAX_SAMPLE_RATE = 384_000
NORMALISED_RATE = 16_000


class AudioRejected(ValueError):
    """The file is not a recording StoryHub can accept; the message says why and what to do."""


@dataclass(frozen=True)
class AudioInfo:
    format_name: str
    container: str
    duration: float | None
    channels: int
    sample_rate: int
    codec: str


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    if result.returncode != 0 and b"No space left on device" in (result.stderr or b""):
        raise OSError(errno.ENOSPC, "No space left on device")
    return result


def wav_declared_seconds(path: Path) -> float | None:
    """Return the length a WAV file's header promises, or None if it does not say."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if kind == b"fmt ":
                fmt = fh.read(size + (size & 1))
                byte_rate = struct.unpack("<I", fmt[8:12])[0] if len(fmt) >= 12 else None
            elif kind == b"data":
                # Streamed WAVs leave the size as 0 or 0xFFFFFFFF: no promise made.
                if not byte_rate or size in (0, 0xFFFFFFFF):
                    return None
                return size / byte_rate
            else:
                fh.seek(size + (size & 1), 1)


def probe(path: Path, max_seconds: float) -> AudioInfo:
    """Return what the file holds, or raise AudioRejected with a message for the user."""
    if path.stat().st_size == 0:
        raise AudioRejected("The file is empty (0 bytes). Check the recording on your device "
                            "and upload it again.")
    result = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                   "-show_streams", str(path)], timeout=60)
    if result.returncode != 0:
        raise AudioRejected("This file is not a recording StoryHub can read. It may be damaged, "
                            f"or not audio at all. Upload a {ACCEPTED_FORMATS_TEXT} recording.")
    data = json.loads(result.stdout or b"{}")
    fmt = data.get("format", {})
    names = fmt.get("format_name", "").split(",")
    container = next((n for n in names if n in CONTAINERS), None)
    streams = data.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    if container is None:
        raise AudioRejected(f"This file is not a recording StoryHub accepts. Upload a "
                            f"{ACCEPTED_FORMATS_TEXT} recording.")
    if not audio:
        if video:
            raise AudioRejected("This file is a video with no sound track. Upload the audio, "
                                "or a video with sound.")
        raise AudioRejected("This file has no sound in it. Check the recording on your device "
                            "and upload it again.")
    stream = audio[0]
    channels = int(stream.get("channels") or 0)
    rate = int(stream.get("sample_rate") or 0)
    if not 0 < channels <= MAX_CHANNELS or not 0 < rate <= MAX_SAMPLE_RATE:
        raise AudioRejected("This recording's sound is in an unusual shape "
                            f"({channels} channels at {rate} Hz) that StoryHub cannot use. "
                            f"Export it as {ACCEPTED_FORMATS_TEXT} and try again.")
    duration = _duration(fmt, stream)
    if duration is not None:
        if duration <= 0:
            raise AudioRejected("This recording has no length. Check it plays on your device "
                                "and upload it again.")
        if duration > max_seconds:
            raise AudioRejected(f"This recording is {format_duration(duration)} long; the "
                                f"limit is {format_duration(max_seconds)}. Split it into "
                                "shorter parts and upload each one.")
    return AudioInfo(format_name=fmt.get("format_name", ""), container=container,
                     duration=duration, channels=channels, sample_rate=rate,
                     codec=str(stream.get("codec_name", "")))


def _duration(fmt: dict, stream: dict) -> float | None:
    for value in (fmt.get("duration"), stream.get("duration")):
        try:
            if value not in (None, "N/A"):
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def make_files(source: Path, info: AudioInfo, original_out: Path, normalised_out: Path,
               playback_out: Path, max_seconds: float) -> tuple[str, float]:
    """Write the metadata-free original, the 16 kHz mono WAV and the playback M4A.

    Returns the original's file extension and the decoded duration in seconds.
    """
    muxer, ext = CONTAINERS[info.container]
    remux = _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:a",
                  "-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1",
                  "-fflags", "+bitexact", "-f", muxer, str(original_out)], timeout=600)
    if remux.returncode != 0 or original_out.stat().st_size == 0:
        # Some streams cannot be copied into their own container: keep them losslessly as FLAC.
        ext = "flac"
        remux = _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map",
                      "0:a:0", "-c:a", "flac", "-map_metadata", "-1", "-f", "flac",
                      str(original_out)], timeout=3600)
        if remux.returncode != 0:
            raise AudioRejected(_damaged())
    # Decode once, stopping just past the limit so a lying header cannot make it run for ever.
    cap = str(max_seconds + 1)
    result = _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
                   "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(NORMALISED_RATE),
                   "-c:a", "pcm_s16le", "-map_metadata", "-1", "-fflags", "+bitexact",
                   "-t", cap, "-f", "wav", str(normalised_out),
                   "-map", "0:a:0", "-vn", "-ac", "1", "-c:a", "aac", "-b:a", "64k",
                   "-map_metadata", "-1", "-movflags", "+faststart", "-fflags", "+bitexact",
                   "-t", cap, "-f", "ipod", str(playback_out)], timeout=3 * 3600)
    if result.returncode != 0:
        logger.warning("ffmpeg could not decode an upload: %s",
                       result.stderr.decode(errors="replace")[-300:])
        raise AudioRejected(_damaged())
    decoded = max(normalised_out.stat().st_size - 44, 0) / (2 * NORMALISED_RATE)
    if decoded > max_seconds:
        raise AudioRejected(f"This recording is longer than the limit of "
                            f"{format_duration(max_seconds)}. Split it into shorter parts and "
                            "upload each one.")
    promised = info.duration
    if info.container == "wav":
        promised = wav_declared_seconds(source) or promised
    share = 0.9 if info.container in EXACT_LENGTH else 0.5
    if decoded < 0.1 or (promised and decoded < share * promised):
        raise AudioRejected(_damaged())
    return ext, decoded


def _damaged() -> str:
    return ("This recording is damaged: StoryHub could not play it through to the end. Check it "
            "plays on your device, then upload it again.")
