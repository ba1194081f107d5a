"""Decode recordings for the engines, and tell when a stereo file holds one voice per side."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ..media.decoding import Converter, decoded_chunks, open_recording
from ..storage import StoredFile
from .engines import SAMPLE_RATE


def decode(path: Path | StoredFile, channels: int = 1) -> np.ndarray:
    """Return the audio at 16 kHz as float32, shaped (samples,) or (samples, channels)."""
    to_engine = Converter("flt", "mono" if channels == 1 else "stereo", SAMPLE_RATE)
    samples = bytearray()
    with open_recording(path) as container:
        for chunk in itertools.chain(decoded_chunks(container, container.streams.audio[0]),
                                     [None]):
            for frame in to_engine.convert(chunk):
                # Packed float: one plane of interleaved samples (the plane may be padded).
                samples += memoryview(frame.planes[0])[:frame.samples * channels * 4]
    audio = np.frombuffer(samples, dtype=np.float32)
    return audio if channels == 1 else audio.reshape(-1, channels)


def voices_on_separate_channels(stereo: np.ndarray) -> bool:
    """Return True when each side carries its own voice (e.g. two lapel mics), not one mix.

    Two separate voices are almost uncorrelated sample by sample; a mono recording saved as
    stereo, or one room heard by a stereo mic, is strongly correlated.
    """
    if len(stereo) < SAMPLE_RATE // 2:
        return False
    left, right = stereo[:, 0].astype(np.float64), stereo[:, 1].astype(np.float64)
    power_l, power_r = float(np.mean(left**2)), float(np.mean(right**2))
    if min(power_l, power_r) < 1e-7 or min(power_l, power_r) < 0.01 * max(power_l, power_r):
        return False  # one side is (nearly) silent: nothing to split
    correlation = float(np.mean(left * right) / np.sqrt(power_l * power_r))
    return abs(correlation) < 0.3
