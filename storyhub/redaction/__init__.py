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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import frequency
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

# How sure a suggestion is, from 0 to 1. The editor ticks it in advance from PRETICK up.
PATTERN = 1.0  # contact details, reference numbers, dates, numbered street addresses
CUED = 0.9  # after a title or a cue ("my name is", "my officer", "moved to"); a street name
LISTED = 0.8  # a given name or place from the word lists, written as a name
PRETICK = 0.75
# A name or place that is an everyday word too, where only its capital or a cue in text
# without capitals says so ("in Reading", "my officer hope").
EVERYDAY = 0.6
GUESS = 0.5  # at most: a capitalised rare word (the rarer, the surer)
# Rarer than this, a word is in no everyday English list (mostly names, places and misheard
# words): offered, unticked, even where its capital says nothing (a sentence's first word, or
# text without capitals).
UNKNOWN = 2.5
# A word after a name or title is a surname if it is capitalised and rarer than this
# ("Wright" 4.2, "Smith" 4.4), not an everyday word Whisper capitalised ("At", "Came").
SURNAME = 4.8
# Words this common are function words, pronouns and the like ("No", "This", "Same").
_FUNCTION_WORD = 5.8
# A punctuated transcript has a sentence end every this many words or fewer.
_WORDS_PER_SENTENCE = 40

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
# Cues before a name: words that name ("a lad called Will") and people ("my officer Will").
_NAMING_CUES = (("my", "name", "is"), ("i'm", "called"), ("called",), ("named",), ("name's",))
_NAME_CUES = (*_NAMING_CUES, *((word,) for word in (
    "officer", "mate", "worker", "mentor", "friend", "sister", "brother", "son", "daughter",
    "partner", "wife", "husband", "girlfriend", "boyfriend", "cousin", "uncle", "auntie",
    "keyworker", "caseworker", "counsellor", "nurse")))
_SENTENCE_END = re.compile(r"[.?!…]['\")\]]*$")
_WORDLIKE = re.compile(r"^[^\W\d_]+(['’-][^\W\d_]+)*$")
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


def bare(word: str) -> str:
    """Return `word` without the punctuation Whisper attaches to it."""
    return _EDGE.sub("", _EDGE.sub("", word.strip()))


def _capitalised(word: str) -> bool:
    """Return True for "Patel" or "PATEL", not for "NHS" or "I" (short capitals)."""
    return word[:1].isupper() and not (word.isupper() and len(word) <= 3)


def _stem(word: str) -> str:
    """Return a lower-case word without a possessive ("Sandra's" -> "sandra")."""
    word = word.lower().replace("’", "'")
    return word[:-2] if word.endswith("'s") and len(word) > 3 else word


def _sentence_starts(words: Sequence[str]) -> set[int]:
    starts = {0}
    for i, word in enumerate(words[:-1]):
        if _SENTENCE_END.search(word.strip()):
            starts.add(i + 1)
    return starts


def suggest(words: Sequence[str], rejected: Iterable[str] = (),
            extra_names: Iterable[str] = (), extra_places: Iterable[str] = ()) -> list[Suggestion]:
    """Return suggested redactions over `words` (one entry per transcribed word), in order.

    Text with capitals (Whisper's usual output) is read by its capitals as well as its word
    lists, cues and patterns; text without any (some engines, or typed notes) by word lists
    and cues alone. Everyday English words are left out either way.
    """
    names = FIRST_NAMES | {n.lower() for n in extra_names}
    places = PLACES | {p.lower() for p in extra_places}
    # Names and places that are everyday words too ("Will", "Reading", a colleague called
    # "Brown"): suggested only after a cue or a title.
    everyday = AMBIGUOUS | {w for w in (names - FIRST_NAMES) | (places - PLACES)
                            if frequency.common(w)}
    skip = set(rejected)
    plain = [bare(w) for w in words]
    lower = [w.lower() for w in plain]
    stem = [_stem(w) for w in plain]
    n_words = len(words)
    cased = any(w[:1].isupper() for w in plain)
    starts = _sentence_starts(words) if cased else {0}
    # Whisper writes a long monologue with few full stops: there a capital only says that the
    # speaker paused, and a "sentence start" may be anywhere.
    punctuated = cased and len(starts) * _WORDS_PER_SENTENCE >= n_words
    found: list[Suggestion] = []
    taken: set[int] = set()

    def proper(i: int) -> bool:
        """Could word `i` be (part of) a name or place, by its form?"""
        if i >= n_words or not plain[i] or stem[i] in NOT_PERSONAL:
            return False
        if cased:
            return _capitalised(plain[i])
        return plain[i].isalpha() and lower[i] not in FUNCTION_WORDS

    def namelike(i: int, rarer_than: float | None = None) -> bool:
        """Could word `i`, after a cue or a title, be a name?"""
        if not proper(i):
            return False
        if stem[i] in names or stem[i] in AMBIGUOUS:
            return cased or stem[i] not in everyday  # "my mate Will", not "my mate will"
        limit = rarer_than if rarer_than is not None else frequency.COMMON
        return frequency.zipf(stem[i]) < limit

    def sure(i: int, naming: bool = False) -> bool:
        """Is word `i`, after a cue, a name by more than a capital Whisper may have given it?"""
        if naming or stem[i] in names and stem[i] not in everyday:
            return True  # "a lad called Will", "my mate Sandra"
        if stem[i] in everyday:  # "my sister Mark my words": a capital after a pause?
            return punctuated
        # "my mate Tyrone" but not, in text without capitals, "my officer apologised"
        return frequency.zipf(stem[i]) < (frequency.COMMON if cased else UNKNOWN)

    def everyday_name(i: int) -> bool:
        """Could word `i`, after a cue in text without capitals, be a name like "hope"?"""
        return (proper(i) and stem[i] in everyday and stem[i] not in places
                and frequency.zipf(stem[i]) < _FUNCTION_WORD)  # not "my mate will come"

    def placelike(i: int) -> bool:
        """Could word `i`, after a place cue ("moved to"), be a place?"""
        if not proper(i):
            return False
        return stem[i] in places or not frequency.common(stem[i])

    def run_back(i: int) -> int:
        """Return the first position of the name whose surname is at `i` ("Precious Osei")."""
        first = i
        while (cased and first - 1 >= 0 and first not in starts and first - 1 not in taken
               and not _SENTENCE_END.search(words[first - 1].strip())
               and namelike(first - 1, SURNAME)):
            first -= 1
        return first

    def run_from(i: int) -> int:
        """Return the last position of the name starting at `i` (a surname after it)."""
        last = i
        while (last + 1 < n_words and last + 1 not in starts
               and not _SENTENCE_END.search(words[last].strip())
               and (cased or last == i) and stem[last + 1] not in everyday
               and namelike(last + 1, SURNAME)):
            last += 1
        return last

    def listed(i: int, wordlist: frozenset[str]) -> bool:
        """Is word `i` a listed name or place, written as one, and no everyday word?"""
        if stem[i] not in wordlist or stem[i] in everyday:
            return False
        return _capitalised(plain[i]) if cased else True

    def street_name(i: int) -> bool:
        """Does a street name ("Acacia Road") start at word `i`?"""
        if i + 1 >= n_words or lower[i + 1] not in STREET_WORDS or not proper(i):
            return False
        if cased:  # both capitalised, and not "No Way" or "He'd Walk"
            return (_capitalised(plain[i + 1]) and plain[i].isalpha()
                    and frequency.zipf(stem[i]) < _FUNCTION_WORD)
        return not frequency.common(stem[i])

    def cue_at(i: int, cues: tuple[tuple[str, ...], ...]) -> int | None:
        """Return where the words after a cue starting at `i` start, or None."""
        for cue in cues:
            if lower[i] == cue[0] and tuple(lower[i:i + len(cue)]) == cue:
                return i + len(cue) if i + len(cue) < n_words else None
        return None

    def add(first: int, last: int, label: str, why: str, confidence: float) -> None:
        if any(i in taken for i in range(first, last + 1)):
            return
        text = " ".join(plain[first:last + 1])
        suggestion = Suggestion(first, last, label, text, why, round(confidence, 3))
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
            add(i, i, DATE, "looks like a date", PATTERN)
        elif (after := cue_at(i, _BIRTH_CUES)) is not None:
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
                add(after, last, DATE, f"follows “{' '.join(plain[i:after])}”", PATTERN)
            i = max(i, last)
        elif _EMAIL.match(word):
            add(i, i, EMAIL, "looks like an email address", PATTERN)
        elif any(p.match(word) for p in _ID_PATTERNS):
            add(i, i, ID, "looks like a reference number", PATTERN)
        elif _POSTCODE.match(word.upper()) and any(c.isdigit() for c in word) and len(word) > 4:
            add(i, i, ADDRESS, "looks like a postcode", PATTERN)
        elif (_POSTCODE_OUT.match(word.upper()) and i + 1 < n_words
              and _POSTCODE_IN.match(plain[i + 1].upper()) and word[0].isalpha()):
            add(i, i + 1, ADDRESS, "looks like a postcode", PATTERN)
        elif _DIGITS.match(word):
            last, digits = i, sum(c.isdigit() for c in word)
            while last + 1 < n_words and _DIGITS.match(plain[last + 1] or "x"):
                last += 1
                digits += sum(c.isdigit() for c in plain[last])
            if digits >= 10:
                add(i, last, PHONE, "looks like a phone number", PATTERN)
            elif digits <= 4 and proper(last + 1):
                end = last + 1
                while (end + 1 < n_words and end - last < 4 and proper(end + 1)
                       and lower[end] not in STREET_WORDS):
                    end += 1
                if lower[end] in STREET_WORDS:
                    add(i, end, ADDRESS, "looks like a street address", PATTERN)
            i = last
        elif low in TITLES and (word[0].isupper() or not cased) and namelike(i + 1, SURNAME):
            # "Mrs Wright"; but in text without capitals "miss seeing them" is no title.
            add(i + 1, run_from(i + 1), NAME, f"follows “{word}”",
                CUED if cased or sure(i + 1) else EVERYDAY)
        elif street_name(i):
            add(i, i + 1, ADDRESS, "looks like a street name",
                CUED if punctuated or not frequency.common(stem[i]) else EVERYDAY)
        elif listed(i, names):
            add(i, run_from(i), NAME, "a given name", LISTED)
        elif listed(i, places):
            add(i, i, PLACE, "a place name", LISTED)
        elif (after := cue_at(i, PLACE_CUES)) is not None and placelike(after):
            add(after, after, PLACE, f"follows “{' '.join(plain[i:after])}”", CUED)
            i = after
        elif ((after := cue_at(i, _NAME_CUES)) is not None
              and namelike(after, SURNAME if cased else None)):
            naming = tuple(lower[i:after]) in _NAMING_CUES
            add(after, run_from(after), NAME, f"follows “{' '.join(plain[i:after])}”",
                CUED if sure(after, naming) else EVERYDAY)
            i = after
        elif (after := cue_at(i, _NAME_CUES)) is not None and everyday_name(after):
            add(after, after, NAME, f"follows “{' '.join(plain[i:after])}”", EVERYDAY)
            i = after
        elif punctuated and i not in starts and stem[i] in places and _capitalised(word):
            add(i, i, PLACE, "a place name, and an everyday word", EVERYDAY)
        elif (proper(i) and _WORDLIKE.match(word) and len(word) > 1 and stem[i] not in everyday
              and frequency.zipf(stem[i]) < (frequency.COMMON if cased and i not in starts
                                             else UNKNOWN)):
            add(run_back(i), run_from(i), NAME, "not an everyday English word",
                GUESS - frequency.zipf(stem[i]) / 20)
        i += 1
    return sorted(found, key=lambda s: s.first)
