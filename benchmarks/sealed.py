"""How fast sealed (encrypted at rest) audio is written and read back, and how much memory it takes.

A file of random bytes (64 MB by default, written in 1 MiB blocks so it never sits in memory)
is sealed, then read sequentially through ``io.BufferedReader(open_sealed(...))`` in 64 KiB
reads. The peer measured in the same run is reading the plain file the same way. Both reads
come from the page cache, so the ratio is the cost of decryption itself. The plaintext read
back is checked against the original (outside the timings).

    .venv/bin/python benchmarks/sealed.py [--mb 64] [--quick]

--quick (CI, a test runs it) seals and reads 4 MB, best of two runs.

Last line: RESULT seal_mb_s=… read_mb_s=… plain_read_mb_s=… read_ratio=… peak_mb=…
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storyhub.sealed import new_data_key, open_sealed, seal_file  # noqa: E402

BLOCK = 64 * 1024
FILE_ID = "story:1:audio"


def _read(stream: io.BufferedIOBase) -> int:
    total = 0
    while chunk := stream.read(BLOCK):
        total += len(chunk)
    return total


def _digest(stream: io.BufferedIOBase) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


def _best(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="file size in MB (default 64)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--quick", action="store_true",
                        help="4 MB, best of two: the same code in a second (for CI)")
    args = parser.parse_args()
    if args.quick:
        args.mb, args.runs = 4, 2
    size = args.mb * 1_000_000

    with tempfile.TemporaryDirectory() as tmp:
        plain, sealed = Path(tmp) / "plain.wav", Path(tmp) / "plain.wav.sealed"
        with open(plain, "wb") as fh:
            left = size
            while left:
                n = min(left, 1024 * 1024)
                fh.write(os.urandom(n))
                left -= n
        key = new_data_key()

        seal_s = _best(args.runs, lambda: seal_file(plain, sealed, key, FILE_ID))

        def read_sealed() -> None:
            with io.BufferedReader(open_sealed(sealed, key, FILE_ID)) as stream:
                assert _read(stream) == size

        def read_plain() -> None:
            with open(plain, "rb") as stream:
                assert _read(stream) == size

        read_plain()  # warm the page cache for both
        read_s = _best(args.runs, read_sealed)
        plain_s = _best(args.runs, read_plain)

        with io.BufferedReader(open_sealed(sealed, key, FILE_ID)) as stream:
            got = _digest(stream)
        with open(plain, "rb") as stream:
            assert got == _digest(stream), "sealed file did not read back as the original"
        overhead = sealed.stat().st_size - size

    mb = size / 1_000_000
    seal_mb_s, read_mb_s, plain_mb_s = mb / seal_s, mb / read_s, mb / plain_s
    ratio = read_mb_s / plain_mb_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"file: {mb:.0f} MB, sealed overhead {overhead} bytes")
    print(f"seal:       {seal_mb_s:8.1f} MB/s")
    print(f"read:       {read_mb_s:8.1f} MB/s (BufferedReader over open_sealed)")
    print(f"plain read: {plain_mb_s:8.1f} MB/s (peer: the plain file)")
    print(f"peak RSS:   {peak_mb:8.1f} MB")
    print(f"RESULT seal_mb_s={seal_mb_s:.1f} read_mb_s={read_mb_s:.1f} "
          f"plain_read_mb_s={plain_mb_s:.1f} read_ratio={ratio:.3f} peak_mb={peak_mb:.1f}")


if __name__ == "__main__":
    main()
