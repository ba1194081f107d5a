"""What a suggested redaction is, what it would be labelled, and how sure StoryHub is of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NAME, PLACE, ADDRESS, PHONE, EMAIL, ID, DATE = ("[NAME]", "[PLACE]", "[ADDRESS]", "[PHONE]",
                                                "[EMAIL]", "[ID]", "[DATE]")
LABELS = {NAME: "Name", PLACE: "Place", ADDRESS: "Address", PHONE: "Phone number",
          EMAIL: "Email address", ID: "Reference number", DATE: "Date of birth"}

# How sure a suggestion is, from 0 to 1. The editor ticks it in advance from PRETICK up.
PATTERN = 1.0  # contact details, reference numbers, dates, numbered street addresses
CUED = 0.9  # after a title or a cue ("my name is", "my officer", "moved to"); a street name
LISTED = 0.8  # a given name or place from the word lists, written as a name
PRETICK = 0.75
# A name or place that is an everyday word too, where only its capital or a cue in text
# without capitals says so ("in Reading", "my officer hope").
EVERYDAY = 0.6
GUESS = 0.5  # at most: a capitalised rare word (the rarer, the surer)


@dataclass(frozen=True)
class Suggestion:
    """Words `first`..`last` (positions in the list given) that look like `label`."""

    first: int
    last: int
    label: str
    text: str
    why: str
    confidence: float = PATTERN

    @property
    def key(self) -> str:
        """What a rejection remembers: the label and the words, any case."""
        return f"{self.label}:{self.text.lower()}"

    @property
    def preticked(self) -> bool:
        """True if StoryHub is sure enough to tick it for the reporter in advance."""
        return self.confidence >= PRETICK


def ranked(suggestions: Iterable[Suggestion]) -> list[Suggestion]:
    """Return `suggestions` surest first, in the order the words are said within a level."""
    return sorted(suggestions, key=lambda s: (-s.confidence, s.first))

