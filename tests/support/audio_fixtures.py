"""Real audio for intake tests: speech from espeak-ng, encoded and inspected with PyAV.

PyAV bundles the FFmpeg libraries, so no ffmpeg program is needed; sox makes tones, and the
one format the bundled FFmpeg cannot write as phones do (mono Vorbis by libvorbis).
Plain functions (no fixtures), so test modules choose the fixture scope themselves.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import OutputContainer
from av.stream import Disposition

REPO = Path(__file__).resolve().parents[2]
SHARED_SPEECH = REPO.parent / "shared" / "data" / "speech"
TOOLS = ("espeak-ng", "sox")

SPEECH_TEXT = "The first week out was the hardest, but my probation officer listened."
# Metadata a phone or editor might leave in a file; StoryHub must not keep any of it.
SECRET_TAGS = {"title": "SECRET-TITLE-4711", "comment": "GPS 51.4816 -3.1791",
               "artist": "Jane Realname"}


@dataclass(frozen=True)
class Encoding:
    """One accepted upload format, as a browser or phone would produce it."""

    name: str
    filename: str
    muxer: str
    encoder: str
    codec: str  # the codec a probe of the file names
    bit_rate: int = 0
    options: dict[str, str] = field(default_factory=dict)  # the muxer's


ENCODINGS = (
    Encoding("wav", "speech.wav", "wav", "pcm_s16le", "pcm_s16le"),
    Encoding("mp3", "speech.mp3", "mp3", "libmp3lame", "mp3", 64_000),
    Encoding("m4a-aac", "speech.m4a", "ipod", "aac", "aac", 64_000),
    Encoding("ogg-opus", "speech.ogg", "ogg", "libopus", "opus", 32_000),
    Encoding("ogg-vorbis", "speech.oga", "ogg", "libvorbis", "vorbis"),
    Encoding("flac", "speech.flac", "flac", "flac", "flac"),
    Encoding("webm-opus", "speech.webm", "webm", "libopus", "opus", 32_000),
    # What browsers' MediaRecorder sends: Chrome/Firefox a live WebM with no duration in it,
    # Safari a fragmented MP4.
    Encoding("webm-recorder", "recorder.webm", "webm", "libopus", "opus", 32_000,
             {"live": "1"}),
    Encoding("m4a-fragmented", "recorder.m4a", "mp4", "aac", "aac", 64_000,
             {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
    # Raw AAC, as some recorder apps save it, with its tags in an ID3 header.
    Encoding("aac-adts", "speech.aac", "adts", "aac", "aac", 64_000, {"write_id3v2": "1"}),
)
ENCODING = {e.name: e for e in ENCODINGS}


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run(*args: str | Path) -> subprocess.CompletedProcess:
    """Run a tool with a fixed argument list; fail loudly with its stderr."""
    result = subprocess.run([str(a) for a in args], capture_output=True, check=False,
                            timeout=120)
    assert result.returncode == 0, (args, result.stderr.decode(errors="replace")[-2000:])
    return result


@dataclass(frozen=True)
class Stream:
    kind: str  # "audio", "video", ...
    codec: str
    channels: int
    sample_rate: int
    duration: float | None
    tags: dict[str, str]


@dataclass(frozen=True)
class Probe:
    """What FFmpeg (through PyAV) finds in a file: its format, streams and tags."""

    format_name: str
    duration: float | None
    streams: tuple[Stream, ...]
    tags: dict[str, str]

    @property
    def audio(self) -> Stream:
        streams = [s for s in self.streams if s.kind == "audio"]
        assert len(streams) == 1, self.streams
        return streams[0]

    @property
    def length(self) -> float | None:
        """Seconds the file says it lasts; None if it does not say."""
        return self.duration if self.duration is not None else self.audio.duration

    def all_tags(self) -> dict[str, str]:
        """Every metadata tag in the container and its streams, keys lower-cased."""
        tags = {k.lower(): v for k, v in self.tags.items()}
        for stream in self.streams:
            tags.update({k.lower(): v for k, v in stream.tags.items()})
        return tags


def probe(path: Path) -> Probe:
    with av.open(str(path), metadata_errors="ignore") as container:
        streams = []
        for s in container.streams:
            context = s.codec_context if s.type == "audio" else None
            streams.append(Stream(
                kind=s.type, codec=s.codec_context.codec.canonical_name if s.codec_context
                else "", channels=context.channels if context else 0,
                sample_rate=context.sample_rate if context else 0,
                duration=float(s.duration * s.time_base) if s.duration is not None and s.time_base
                else None, tags=dict(s.metadata)))
        duration = (container.duration / av.time_base if container.duration is not None
                    else None)
        return Probe(container.format.name, duration, tuple(streams), dict(container.metadata))


def decoded_duration(path: Path) -> float:
    """Seconds of audio `path` really holds, by decoding all of it."""
    with av.open(str(path)) as container:
        return sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))


def speak(out: Path, text: str = SPEECH_TEXT) -> Path:
    """Synthesise `text` with espeak-ng to a WAV file (22.05 kHz mono, a few seconds)."""
    run("espeak-ng", "-s", "190", "-w", out, text)
    return out


def encode(source: Path, out: Path, encoding: Encoding,
           tags: dict[str, str] | None = None) -> Path:
    """Encode `source` to `out` as `encoding`, writing `tags` in the file and its stream."""
    if encoding.encoder == "libvorbis":
        # The bundled FFmpeg has no libvorbis, and its own Vorbis encoder writes only stereo.
        comments = [arg for k, v in (tags or {}).items() for arg in ("--comment", f"{k}={v}")]
        run("sox", source, "-C", "3", *comments, "-t", "vorbis", out)
        return out
    with av.open(str(source)) as inp, \
            av.open(str(out), "w", format=encoding.muxer,
                    container_options=encoding.options) as output:
        rate = inp.streams.audio[0].codec_context.sample_rate
        rates = av.Codec(encoding.encoder, "w").audio_rates
        stream = output.add_stream(encoding.encoder, rate=max(rates) if rates and rate
                                   not in rates else rate, layout="mono",
                                   bit_rate=encoding.bit_rate)
        output.metadata.update(tags or {})
        stream.metadata.update(tags or {})
        for frame in inp.decode(audio=0):
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return out


def make_encodings(folder: Path) -> dict[str, Path]:
    """Speech in every accepted format, each carrying SECRET_TAGS, keyed by Encoding.name."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = speak(folder / "espeak.wav")
    return {e.name: encode(speech, folder / e.filename, e, SECRET_TAGS) for e in ENCODINGS}


def sine_wav(out: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    """A plain tone made with sox: unique per (seconds, rate), so never a duplicate by accident."""
    run("sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", out, "synth",
        str(seconds), "sine", "440")
    return out


def silent_video(out: Path, muxer: str, encoder: str, seconds: float = 2) -> Path:
    """A moving test card with no sound track at all."""
    with av.open(str(out), "w", format=muxer) as output:
        _film_test_card(output, encoder, seconds)
    return out


def video_with_sound(source: Path, out: Path, tags: dict[str, str]) -> Path:
    """An MP4 film of a moving test card with `source` as its sound track, tagged."""
    with av.open(str(source)) as inp, av.open(str(out), "w", format="mp4") as output:
        sound = output.add_stream("aac", rate=inp.streams.audio[0].codec_context.sample_rate,
                                  layout="mono", bit_rate=64_000)
        output.metadata.update(tags)
        _film_test_card(output, "mpeg4", seconds=3)
        for frame in inp.decode(audio=0):
            output.mux(sound.encode(frame))
        output.mux(sound.encode(None))
    return out


def _film_test_card(output: OutputContainer, encoder: str, seconds: float) -> None:
    fps = 10
    stream = output.add_stream(encoder, rate=fps, width=160, height=120, bit_rate=100_000,
                               time_base=Fraction(1, fps))
    for i in range(int(seconds * fps)):
        card = np.zeros((120, 160, 3), np.uint8)
        card[:, (i * 8) % 160:(i * 8) % 160 + 16] = (200, 60, 60)
        frame = av.VideoFrame.from_ndarray(card, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        output.mux(stream.encode(frame))
    output.mux(stream.encode(None))


def with_cover(source: Path, out: Path, png: bytes, size: int) -> Path:
    """An MP3 of `source` with `png` (size x size) attached as its cover, as music apps do."""
    with av.open(str(source)) as inp, av.open(str(out), "w", format="mp3") as output:
        sound = output.add_stream("libmp3lame", rate=inp.streams.audio[0].codec_context
                                  .sample_rate, layout="mono", bit_rate=64_000)
        cover = output.add_stream("png", width=size, height=size, pix_fmt="rgb24")
        cover.disposition = Disposition.attached_pic
        picture = av.Packet(png)
        picture.stream, picture.pts, picture.dts = cover, 0, 0
        output.mux(picture)
        for frame in inp.decode(audio=0):
            output.mux(sound.encode(frame))
        output.mux(sound.encode(None))
    return out


def truncated(source: Path, out: Path, keep: float = 0.3) -> Path:
    """The first `keep` of a file whose header still claims the full length (a cut-off upload)."""
    data = source.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out
