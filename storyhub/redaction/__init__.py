"""Find personal details in a transcript's words, for the reporter to confirm and redact.

`suggest` works offline on the words as transcribed (Whisper's capitals and punctuation kept):
patterns for contact details and reference numbers (phone, email, postcode, National
Insurance, prison and PNC numbers), street addresses, word lists for given names and places
(gazetteer.py), titles ("Mr Patel"), cue phrases ("my name is …", "my officer …"), and a
capitalised word in the middle of a sentence that is not an everyday English word
(frequency.py).

Each suggestion says how sure it is (`confidence`). Patterns, titles, cues and listed names
and places are sure enough to be ticked in advance (`preticked`); a rare capitalised word is
only offered, unticked, below them: Whisper writes long monologues with few full stops and a
capital after any pause, so a capital alone is weak evidence. Everyday words ("So", "Now",
"People", "He") are never suggested, and names that are everyday words too ("Will", "Grace",
"Hope") only after a cue.

A suggestion is never applied by itself: the reporter accepts it (the words get the label,
e.g. "[NAME]") or says it is not personal (it is not suggested again for that transcript).
"""

from __future__ import annotations

from . import frequency  # noqa: F401  (part of the package's interface: benchmarks read it)
from .finding import SpanFinder, bare, suggest
from .suggestions import (
    ADDRESS,
    CUED,
    DATE,
    EMAIL,
    EVERYDAY,
    GUESS,
    ID,
    LABELS,
    LISTED,
    NAME,
    PATTERN,
    PHONE,
    PLACE,
    PRETICK,
    Suggestion,
    ranked,
)

__all__ = [
    "ADDRESS",
    "CUED",
    "DATE",
    "EMAIL",
    "EVERYDAY",
    "GUESS",
    "ID",
    "LABELS",
    "LISTED",
    "NAME",
    "PATTERN",
    "PHONE",
    "PLACE",
    "PRETICK",
    "SpanFinder",
    "Suggestion",
    "bare",
    "ranked",
    "suggest",
]
