"""Helpers for requests through Flask's test client."""

from __future__ import annotations

import io

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart


def multipart(data: dict) -> tuple[bytes, str]:
    """Encode a form as multipart in memory; (content, filename) tuples become files.

    (The test client would spool bodies over 500 kB to a temporary file it never closes.)
    """
    values = {key: FileStorage(io.BytesIO(value[0]), filename=value[1])
              if isinstance(value, tuple) else value for key, value in data.items()}
    boundary, body = encode_multipart(values)
    return body, f'multipart/form-data; boundary="{boundary}"'
