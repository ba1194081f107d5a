"""Decode recordings with PyAV, in chunks, for every part of StoryHub that needs the sound.

PyAV bundles the FFmpeg libraries, so no ffmpeg program is needed. Python touches each chunk
of about CHUNK_SAMPLES, not each codec frame, so PyAV's per-call cost stays small next to the
work, and a long recording is never held whole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, cast

import av
from av.audio.fifo import AudioFifo
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer

if TYPE_CHECKING:
    from ..storage import StoredFile

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 1 << 16


@contextlib.contextmanager
def open_recording(source: Path | StoredFile) -> Iterator[InputContainer]:
    """Open a recording (a path, or a stored file decrypted as it is read) for decoding.

    Tags in a broken text encoding are skipped, not fatal.
    """
    if isinstance(source, (str, os.PathLike)):
        with cast(InputContainer, av.open(str(source), metadata_errors="ignore")) as container:
            yield container
        return
    with source.open() as fh, cast(InputContainer, av.open(fh, metadata_errors="ignore")) as c:
        yield c


def decoded_chunks(container: InputContainer, stream: AudioStream,
                   max_seconds: float = math.inf) -> Iterator[AudioFrame]:
    """Yield the stream's sound in chunks of about CHUNK_SAMPLES, stamped so time runs on.

    Packets that do not decode are skipped, and unreadable data ends the stream, as the ffmpeg
    program does: what is left is judged by its length. Stops once past `max_seconds`.
    """
    fifo = AudioFifo()
    shape: tuple[str, str, int] | None = None
    decoded = 0.0
    clock = _Clock()
    for frame in _frames(container, stream):
        if _shape(frame) != shape:
            # The sound changed shape midway (rate or channels): a FIFO holds one shape.
            yield from clock.drain(fifo)
            fifo, shape = AudioFifo(), _shape(frame)
        frame.pts = None  # the FIFO checks timestamps run on; the clock restamps them
        fifo.write(frame)
        decoded += frame.samples / frame.sample_rate
        if fifo.samples >= CHUNK_SAMPLES:
            yield from clock.drain(fifo)
        if decoded > max_seconds:
            break
    yield from clock.drain(fifo)


def _shape(frame: AudioFrame) -> tuple[str, str, int]:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _frames(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.InvalidDataError:
            return  # the rest of the file cannot be read
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            logger.debug("Skipped a damaged packet: %s", exc)
            continue
        yield from frames


class _Clock:
    """Timestamps that run on from one chunk to the next, whatever the source said."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def stamp(self, chunk: AudioFrame) -> AudioFrame:
        chunk.time_base = Fraction(1, chunk.sample_rate)
        chunk.pts = round(self.seconds * chunk.sample_rate)
        self.seconds += chunk.samples / chunk.sample_rate
        return chunk

    def drain(self, fifo: AudioFifo) -> Iterator[AudioFrame]:
        """Yield all that `fifo` holds as one stamped chunk (nothing if it is empty)."""
        chunk = fifo.read()
        if chunk is not None:
            yield self.stamp(_labelled(chunk))


def _labelled(chunk: AudioFrame) -> AudioFrame:
    """Return `chunk` with the usual channel layout for its count if its own is unnamed.

    WAV files often leave the channel order unspecified ("1 channels"); FFmpeg then assumes the
    usual one (mono, stereo, 5.1...), and so do we. Done here, on a copy, because a resampler
    that only renames the layout leaves the chunk unusable for the next output.
    """
    count = chunk.layout.nb_channels
    if chunk.layout.name != f"{count} channels":
        return chunk
    named = AudioFrame.from_ndarray(chunk.to_ndarray(), format=chunk.format.name,
                                    layout=f"{count}c")
    named.sample_rate = chunk.sample_rate
    return named


class Converter:
    """Convert chunks to one format, channel layout and rate, even if the source changes."""

    def __init__(self, sample_format: str, layout: str, rate: int) -> None:
        self.sample_format, self.layout, self.rate = sample_format, layout, rate
        self._resampler: AudioResampler | None = None
        self._shape: tuple[str, str, int] | None = None
        self._clock = _Clock()

    def convert(self, chunk: AudioFrame | None) -> list[AudioFrame]:
        """Return `chunk` converted; pass None at the end to flush what is held back."""
        out: list[AudioFrame] = []
        if chunk is not None:
            if _shape(chunk) != self._shape:
                out = self.convert(None)
                self._resampler = AudioResampler(self.sample_format, self.layout, self.rate)
                self._shape = _shape(chunk)
        if self._resampler is not None:
            out += self._resampler.resample(chunk)
        return [self._clock.stamp(frame) for frame in out]
