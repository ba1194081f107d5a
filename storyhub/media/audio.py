"""Check an uploaded file is a real recording, and make the files StoryHub works from.

Everything is judged by content (FFmpeg's own probing, through PyAV), never by the file's name
or declared type.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import struct
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.stream import Disposition

from .decoding import Converter, decoded_chunks, open_recording

if TYPE_CHECKING:
    import numpy as np

    from ..config import Settings
    from ..storage import StoredFile

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS_TEXT = "WAV, MP3, M4A/AAC, OGG/Opus, FLAC or WebM"
# FFmpeg format names we accept, and the muxer to rewrite each one without its metadata.
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
# Defaults for MAX_AUDIO_CHANNELS and MAX_AUDIO_SAMPLE_RATE: phones and recorders make mono or
# stereo at up to 48 kHz (96 kHz on some); more is work for nothing, checked before decoding.
MAX_CHANNELS = 2
MAX_SAMPLE_RATE = 96_000
# Default for MAX_AUDIO_SAMPLES_PER_BYTE: sound (channels x rate x seconds) per byte uploaded.
# Real recordings stay far below it (16-bit WAV 0.5, speech Opus at 6 kbit/s about 64); a
# small file that decodes to hours of sound is made to overload the server.
MAX_SAMPLES_PER_BYTE = 1000
NORMALISED_RATE = 16_000
PLAYBACK_BIT_RATE = 64_000
# No encoder or muxer signature, so no stored file says which FFmpeg made it.
BITEXACT = {"fflags": "+bitexact"}


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


@dataclass(frozen=True)
class Limits:
    """What an upload may hold, all checked from its headers before any decoding."""

    max_seconds: float
    max_channels: int = MAX_CHANNELS
    max_rate: int = MAX_SAMPLE_RATE
    samples_per_byte: float = MAX_SAMPLES_PER_BYTE

    @classmethod
    def from_config(cls, settings: Settings) -> Limits:
        return cls(max_seconds=settings.max_audio_hours * 3600,
                   max_channels=settings.max_audio_channels,
                   max_rate=settings.max_audio_sample_rate,
                   samples_per_byte=settings.max_audio_samples_per_byte)

    def seconds_for(self, info: AudioInfo, size: int) -> float:
        """How many seconds of this file's sound its size allows."""
        return size * self.samples_per_byte / (info.channels * info.sample_rate)


def probe(path: Path, max_seconds: float | Limits) -> AudioInfo:
    """Return what the file holds, or raise AudioRejected with a message for the user.

    Only headers are read: the shape and length of the sound are judged before any decoding.
    """
    limits = max_seconds if isinstance(max_seconds, Limits) else Limits(max_seconds)
    size = path.stat().st_size
    if size == 0:
        raise AudioRejected("The file is empty (0 bytes). Check the recording on your device "
                            "and upload it again.")
    try:
        with open_recording(path) as container:
            info = _describe(container, limits)
    except av.FFmpegError as exc:
        raise AudioRejected(_unreadable()) from exc
    if info.duration is not None and info.duration > limits.seconds_for(info, size):
        raise AudioRejected(_too_much_sound(info.duration, size))
    return info


def _too_much_sound(seconds: float, size: int) -> str:
    return (f"This file says it holds {format_duration(seconds)} of sound in only "
            f"{max(size // 1024, 1)} KB, far more than a real recording of that size. It may be "
            "damaged, or made to overload StoryHub. Upload the recording as it came from the "
            "phone or recorder.")


def _describe(container: InputContainer, limits: Limits) -> AudioInfo:
    max_seconds = limits.max_seconds
    format_name = container.format.name
    accepted = next((n for n in format_name.split(",") if n in CONTAINERS), None)
    audio = list(container.streams.audio)
    video = [s for s in container.streams.video
             if not s.disposition & Disposition.attached_pic]
    if accepted is None:
        raise AudioRejected(f"This file is not a recording StoryHub accepts. Upload a "
                            f"{ACCEPTED_FORMATS_TEXT} recording.")
    if not audio:
        if video:
            raise AudioRejected("This file is a video with no sound track. Upload the audio, "
                                "or a video with sound.")
        raise AudioRejected("This file has no sound in it. Check the recording on your device "
                            "and upload it again.")
    stream = audio[0]
    if stream.codec_context is None:  # no decoder for this kind of sound
        raise AudioRejected(_unreadable())
    channels, rate = stream.codec_context.channels, stream.codec_context.sample_rate
    if not 0 < channels <= limits.max_channels or not 0 < rate <= limits.max_rate:
        raise AudioRejected("This recording's sound is in an unusual shape "
                            f"({channels} channels at {rate} Hz) that StoryHub cannot use: it "
                            f"takes up to {limits.max_channels} channels at up to "
                            f"{limits.max_rate // 1000} kHz. Export it as mono or stereo "
                            f"{ACCEPTED_FORMATS_TEXT} and try again.")
    duration = _duration(container, stream)
    if duration is not None:
        if duration <= 0:
            raise AudioRejected("This recording has no length. Check it plays on your device "
                                "and upload it again.")
        if duration > max_seconds:
            raise AudioRejected(f"This recording is {format_duration(duration)} long; the "
                                f"limit is {format_duration(max_seconds)}. Split it into "
                                "shorter parts and upload each one.")
    return AudioInfo(format_name=format_name, container=accepted, duration=duration,
                     channels=channels, sample_rate=rate,
                     codec=stream.codec_context.codec.canonical_name)


def _duration(container: InputContainer, stream: AudioStream) -> float | None:
    """Seconds the header states: the container's figure first, then the stream's."""
    if container.duration is not None:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
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
               playback_out: Path, max_seconds: float | Limits) -> tuple[str, float]:
    """Write the metadata-free original, the 16 kHz mono WAV and the playback M4A.

    Returns the original's file extension and the decoded duration in seconds.
    """
    limits = max_seconds if isinstance(max_seconds, Limits) else Limits(max_seconds)
    max_seconds = limits.max_seconds
    size = source.stat().st_size
    allowed = limits.seconds_for(info, size)
    try:
        ext = _remux(source, info, original_out)
        # One decode feeds every output, and stops just past the limits (of length, and of
        # sound for the file's size) so a header that lies or says nothing cannot make it
        # run for ever.
        decoded = _convert(source, normalised_out, playback_out,
                           None if ext else original_out, min(max_seconds + 1, allowed + 1))
    except av.FFmpegError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, "No space left on device") from exc
        logger.warning("Could not decode an upload: %s", exc)
        raise AudioRejected(_damaged()) from exc
    if decoded > allowed:
        raise AudioRejected(_too_much_sound(decoded, size))
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
    return ext or "flac", decoded


def _remux(source: Path, info: AudioInfo, out: Path) -> str | None:
    """Copy the sound, without metadata, into its own container; return the extension.

    Returns None when the stream cannot be copied into its own container: the decode then
    keeps it losslessly as FLAC.
    """
    muxer, ext = CONTAINERS[info.container]
    try:
        with open_recording(source) as inp, \
                av.open(str(out), "w", format=muxer, container_options=BITEXACT) as output:
            # A stream made from a template copies the codec only: no container or stream
            # tags, chapters or cover pictures come along.
            audio = list(inp.streams.audio)
            copies = {s.index: output.add_stream_from_template(s) for s in audio}
            for packet in inp.demux(audio):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copies[packet.stream.index]
                output.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise
        logger.info("Keeping a %s upload as FLAC: %s", info.container, exc)
        return None
    return ext if out.stat().st_size > 0 else None


class _Encoder:
    """Encode chunks into one stream of an output file (the playback M4A, or a FLAC)."""

    def __init__(self, container: OutputContainer, codec: Literal["aac", "flac"],
                 converter: Converter, bit_rate: int = 0) -> None:
        self.container, self.converter = container, converter
        # FFmpeg's "fast" AAC coder encodes speech five times faster than its two-loop search,
        # and measured closer to the source at the playback bit rate (25 dB against 19 dB).
        options = {"aac_coder": "fast"} if codec == "aac" else {}
        self.stream = container.add_stream(codec, rate=converter.rate, layout=converter.layout,
                                           format=converter.sample_format, bit_rate=bit_rate,
                                           options=options)

    def write(self, chunk: AudioFrame | None) -> None:
        """Encode `chunk`; None flushes the converter and the encoder."""
        frames: list[AudioFrame | None] = list(self.converter.convert(chunk))
        if chunk is None:
            frames.append(None)
        for frame in frames:
            self.container.mux(self.stream.encode(frame))


def _convert(source: Path, normalised_out: Path, playback_out: Path, flac_out: Path | None,
             cap: float) -> float:
    """Decode once into the WAV, the M4A (and the FLAC); return the WAV's length in seconds."""
    with contextlib.ExitStack() as stack:
        inp = stack.enter_context(open_recording(source))
        stream = inp.streams.audio[0]
        rate = stream.codec_context.sample_rate
        wav = stack.enter_context(wave.open(str(normalised_out), "wb"))
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(NORMALISED_RATE)
        to_wav = Converter("s16", "mono", NORMALISED_RATE)
        m4a = stack.enter_context(av.open(str(playback_out), "w", format="ipod",
                                          container_options={**BITEXACT,
                                                             "movflags": "+faststart"}))
        aac_rates = av.Codec("aac", "w").audio_rates or (rate,)
        outputs = [_Encoder(m4a, "aac", Converter("fltp", "mono", _nearest(rate, aac_rates)),
                            bit_rate=PLAYBACK_BIT_RATE)]
        if flac_out is not None:
            flac = stack.enter_context(av.open(str(flac_out), "w", format="flac",
                                               container_options=BITEXACT))
            # FLAC holds 16 or 24 bits: keep 24 (in s32) unless the source has no more than 16.
            deep = stream.codec_context.format.bytes > 2
            outputs.append(_Encoder(flac, "flac", Converter(
                "s32" if deep else "s16", f"{stream.codec_context.channels}c", rate)))
        samples = 0
        for chunk in itertools.chain(decoded_chunks(inp, stream, cap), [None]):
            for frame in to_wav.convert(chunk):
                wav.writeframesraw(frame.to_ndarray().tobytes())
                samples += frame.samples
            for output in outputs:
                output.write(chunk)
        return samples / NORMALISED_RATE


def _nearest(rate: int, rates: Iterable[int]) -> int:
    """The supported rate closest to `rate` (the encoder's own rate when it is supported)."""
    return min(rates, key=lambda r: abs(r - rate))


def _unreadable() -> str:
    return ("This file is not a recording StoryHub can read. It may be damaged, or not audio at "
            f"all. Upload a {ACCEPTED_FORMATS_TEXT} recording.")


def _damaged() -> str:
    return ("This recording is damaged: StoryHub could not play it through to the end. Check it "
            "plays on your device, then upload it again.")


def _decode_mono(source: Path | StoredFile, start: float = 0.0,
                 end: float | None = None) -> tuple[np.ndarray, int]:
    """Return `source` from `start` to `end` (seconds; None: to the end) as mono, and its rate."""
    import numpy as np

    with open_recording(source) as inp:
        stream = inp.streams.audio[0]
        rate = stream.codec_context.sample_rate
        to_float = Converter("flt", "mono", rate)
        first = int(max(start, 0.0) * rate)
        last = None if end is None else int(max(end, start) * rate)
        kept: list[np.ndarray] = []
        seen = 0
        until = math.inf if end is None else end + 1
        for chunk in itertools.chain(decoded_chunks(inp, stream, until), [None]):
            for frame in to_float.convert(chunk):
                samples = frame.to_ndarray().reshape(-1)
                lo = max(first - seen, 0)
                hi = len(samples) if last is None else min(last - seen, len(samples))
                if lo < hi:
                    kept.append(samples[lo:hi])
                seen += len(samples)
    return (np.concatenate(kept) if kept else np.zeros(0, dtype=np.float32)), rate


def _write_m4a(audio: np.ndarray, rate: int, out: Path) -> None:
    """Encode mono float `audio` to `out` as the playback copy's AAC in M4A."""
    aac_rates = av.Codec("aac", "w").audio_rates or (rate,)
    with av.open(str(out), "w", format="ipod",
                 container_options={**BITEXACT, "movflags": "+faststart"}) as output:
        encoder = _Encoder(output, "aac", Converter("fltp", "mono", _nearest(rate, aac_rates)),
                           bit_rate=PLAYBACK_BIT_RATE)
        if len(audio):
            frame = AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = None
            encoder.write(frame)
        encoder.write(None)


def cut_clip(source: Path | StoredFile, out: Path, start: float, end: float,
             fade: float = 0.02) -> float:
    """Write the stretch `start`-`end` (seconds) of `source` to `out` as a mono M4A.

    For a quote played in a workshop: only that stretch leaves the server. A short fade at each
    end avoids a click. Returns the clip's length in seconds.
    """
    import numpy as np

    audio, rate = _decode_mono(source, start, end)
    ramp = min(int(fade * rate), len(audio) // 2)
    if ramp:
        audio[:ramp] *= np.linspace(0, 1, ramp, dtype=np.float32)
        audio[-ramp:] *= np.linspace(1, 0, ramp, dtype=np.float32)
    _write_m4a(audio, rate, out)
    return len(audio) / rate


def mute_spans(source: Path | StoredFile, out: Path, spans: list[tuple[float, float]],
               fade: float = 0.01) -> float:
    """Write `source` to `out` (mono M4A) with every stretch in `spans` (seconds) silent.

    For the redacted playback copy: a redacted name is not heard, only a short silence. The
    audio fades out and in around each stretch so the cut does not click. Returns the length.
    """
    import numpy as np

    audio, rate = _decode_mono(source)
    ramp = max(int(fade * rate), 1)
    for start, end in spans:
        lo, hi = max(int(start * rate), 0), min(int(end * rate), len(audio))
        if lo >= hi:
            continue
        audio[lo:hi] = 0.0
        before = audio[max(lo - ramp, 0):lo]
        before *= np.linspace(1, 0, len(before), dtype=np.float32)
        after = audio[hi:hi + ramp]
        after *= np.linspace(0, 1, len(after), dtype=np.float32)
    _write_m4a(audio, rate, out)
    return len(audio) / rate
