"""Find personal details in a transcript's words, for the reporter to confirm and redact.

`suggest` works offline on the words as transcribed (Whisper's capitals and punctuation kept):
patterns for contact details and reference numbers (phone, email, postcode, National
Insurance, prison and PNC numbers), street addresses, word lists for given names and places
(gazetteer.py), titles ("Mr Patel"), cue phrases ("my name is …", "called …"), and a
capitalised word in the middle of a sentence that is not a known ordinary word.

A suggestion is never applied by itself: the reporter accepts it (the words get the label,
e.g. "[NAME]") or says it is not personal (it is not suggested again for that transcript).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .gazetteer import (
    AMBIGUOUS,
    FIRST_NAMES,
    FUNCTION_WORDS,
    NOT_PERSONAL,
    PLACE_CUES,
    PLACES,
    STREET_WORDS,
    TITLES,
)

NAME, PLACE, ADDRESS, PHONE, EMAIL, ID, DATE = ("[NAME]", "[PLACE]", "[ADDRESS]", "[PHONE]",
                                                "[EMAIL]", "[ID]", "[DATE]")
LABELS = {NAME: "Name", PLACE: "Place", ADDRESS: "Address", PHONE: "Phone number",
          EMAIL: "Email address", ID: "Reference number", DATE: "Date of birth"}

_EDGE = re.compile(r"^[\"'“‘(\[]+|[\"'”’)\].,;:?!…]+$")
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_DIGITS = re.compile(r"^\+?[\d-]+$")
_ID_PATTERNS = (
    re.compile(r"^[A-Z]{2}\d{6}[A-D]$", re.I),  # National Insurance number
    re.compile(r"^[A-Z]\d{4}[A-Z]{2}$", re.I),  # prison number
    re.compile(r"^\d{2,4}/\d{5,7}[A-Z]$", re.I),  # PNC number
    re.compile(r"^[A-Z]\d{6}$", re.I),  # case reference (CRN)
)
_POSTCODE_OUT = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?$")
_POSTCODE_IN = re.compile(r"^\d[A-Z]{2}$")
_POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}$")
_CUES = (("my", "name", "is"), ("i'm", "called"), ("called",), ("named",), ("name's",),
         *((word,) for word in ("officer", "mate", "worker", "mentor", "friend", "sister",
                                "brother", "son", "daughter", "partner", "wife", "husband",
                                "girlfriend", "boyfriend", "cousin", "uncle", "auntie",
                                "keyworker", "caseworker", "counsellor", "nurse")))
_SENTENCE_END = re.compile(r"[.?!…]['\")\]]*$")
_NUMERIC_DATE = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-](\d{2}|\d{4})$")
_BIRTH_CUES = (("born", "on"), ("date", "of", "birth"), ("dob",), ("birthday", "is"))
_DATE_WORDS = frozenset("""january february march april may june july august september october
november december jan feb mar apr jun jul aug sep sept oct nov dec the of st nd rd th
is was""".split())


@dataclass(frozen=True)
class Suggestion:
    """Words `first`..`last` (positions in the list given) that look like `label`."""

    first: int
    last: int
    label: str
    text: str
    why: str

    @property
    def key(self) -> str:
        """What a rejection remembers: the label and the words, any case."""
        return f"{self.label}:{self.text.lower()}"


def bare(word: str) -> str:
    """Return `word` without the punctuation Whisper attaches to it."""
    return _EDGE.sub("", _EDGE.sub("", word.strip()))


def _capitalised(word: str) -> bool:
    """Return True for "Patel" or "PATEL", not for "NHS" or "I" (short capitals)."""
    return word[:1].isupper() and not (word.isupper() and len(word) <= 3)


def _sentence_starts(words: Sequence[str]) -> set[int]:
    starts = {0}
    for i, word in enumerate(words[:-1]):
        if _SENTENCE_END.search(word.strip()):
            starts.add(i + 1)
    return starts


def suggest(words: Sequence[str], rejected: Iterable[str] = (),
            extra_names: Iterable[str] = (), extra_places: Iterable[str] = ()) -> list[Suggestion]:
    """Return suggested redactions over `words` (one entry per transcribed word), in order.

    Text with capitals (Whisper's usual output) is read by its capitals; text without any
    (some engines, or typed notes) by word lists and cues, with everyday words left out.
    """
    names = FIRST_NAMES | {n.lower() for n in extra_names}
    places = PLACES | {p.lower() for p in extra_places}
    skip = set(rejected)
    plain = [bare(w) for w in words]
    lower = [w.lower() for w in plain]
    cased = any(w[:1].isupper() for w in plain)
    starts = _sentence_starts(words) if cased else {0}
    found: list[Suggestion] = []
    taken: set[int] = set()
    n_words = len(words)

    def proper(i: int) -> bool:
        """Could word `i` be (part of) a name or place?"""
        if i >= n_words or not plain[i] or lower[i] in NOT_PERSONAL:
            return False
        if cased:
            return _capitalised(plain[i])
        return plain[i].isalpha() and lower[i] not in FUNCTION_WORDS

    def run_from(i: int) -> int:
        """Return the last position of the name starting at `i` (a surname after it)."""
        last = i
        while (last + 1 < n_words and last + 1 not in starts and proper(last + 1)
               and not _SENTENCE_END.search(words[last].strip())
               and (cased or last == i)):
            last += 1
        return last

    def listed(i: int, wordlist: frozenset[str]) -> bool:
        if lower[i] not in wordlist:
            return False
        return _capitalised(plain[i]) if cased else lower[i] not in AMBIGUOUS

    def cue_at(i: int, cues) -> int | None:
        for cue in cues:
            after = i + len(cue)
            if tuple(lower[i:after]) == cue and proper(after):
                return after
        return None

    def cue_at_any(i: int, cues) -> int | None:
        """Return where the words after a cue start (whatever they are), or None."""
        for cue in cues:
            if tuple(lower[i:i + len(cue)]) == cue and i + len(cue) < n_words:
                return i + len(cue)
        return None

    def add(first: int, last: int, label: str, why: str) -> None:
        if any(i in taken for i in range(first, last + 1)):
            return
        text = " ".join(plain[first:last + 1])
        suggestion = Suggestion(first, last, label, text, why)
        if suggestion.key in skip:
            return
        found.append(suggestion)
        taken.update(range(first, last + 1))

    i = 0
    while i < n_words:
        word, low = plain[i], lower[i]
        if not word:
            i += 1
            continue
        if _NUMERIC_DATE.match(word):
            add(i, i, DATE, "looks like a date")
        elif (after := cue_at_any(i, _BIRTH_CUES)) is not None:
            last = after - 1
            while last + 1 < n_words and last - after < 6 and (
                    lower[last + 1] in _DATE_WORDS or re.match(r"^\d{1,4}(st|nd|rd|th)?$",
                                                               lower[last + 1])):
                last += 1
            while last >= after and lower[last] in ("the", "of", "is", "was"):
                last -= 1
            while after <= last and lower[after] in ("the", "of", "is", "was"):
                after += 1
            if last >= after:
                add(after, last, DATE, f"follows “{' '.join(plain[i:after])}”")
            i = max(i, last)
        elif _EMAIL.match(word):
            add(i, i, EMAIL, "looks like an email address")
        elif any(p.match(word) for p in _ID_PATTERNS):
            add(i, i, ID, "looks like a reference number")
        elif _POSTCODE.match(word.upper()) and any(c.isdigit() for c in word) and len(word) > 4:
            add(i, i, ADDRESS, "looks like a postcode")
        elif (_POSTCODE_OUT.match(word.upper()) and i + 1 < n_words
              and _POSTCODE_IN.match(plain[i + 1].upper()) and word[0].isalpha()):
            add(i, i + 1, ADDRESS, "looks like a postcode")
        elif _DIGITS.match(word):
            last, digits = i, sum(c.isdigit() for c in word)
            while last + 1 < n_words and _DIGITS.match(plain[last + 1] or "x"):
                last += 1
                digits += sum(c.isdigit() for c in plain[last])
            if digits >= 10:
                add(i, last, PHONE, "looks like a phone number")
            elif digits <= 4 and proper(last + 1):
                end = last + 1
                while end + 1 < n_words and proper(end + 1) and lower[end] not in STREET_WORDS:
                    end += 1
                if lower[end] in STREET_WORDS:
                    add(i, end, ADDRESS, "looks like a street address")
            i = last
        elif low in TITLES and proper(i + 1):
            add(i + 1, run_from(i + 1), NAME, f"follows “{word}”")
        elif proper(i) and i + 1 < n_words and lower[i + 1] in STREET_WORDS:
            add(i, i + 1, ADDRESS, "looks like a street name")
        elif listed(i, names):
            add(i, run_from(i), NAME, "a given name")
        elif listed(i, places):
            add(i, i, PLACE, "a place name")
        elif (after := cue_at(i, PLACE_CUES)) is not None:
            add(after, after, PLACE, f"follows “{' '.join(plain[i:after])}”")
            i = after
        elif (after := cue_at(i, _CUES)) is not None:
            add(after, run_from(after), NAME, f"follows “{' '.join(plain[i:after])}”")
            i = after
        elif cased and proper(i) and i not in starts and word.isalpha() and len(word) > 1:
            add(i, run_from(i), NAME, "a capitalised word in the middle of a sentence")
        i += 1
    return sorted(found, key=lambda s: s.first)
