"""Find the words of a transcript that look personal: `suggest`, by way of a `SpanFinder`.

The rules are described in the package's docstring (storyhub/redaction/__init__.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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
from .suggestions import (
    ADDRESS,
    CUED,
    DATE,
    EMAIL,
    EVERYDAY,
    GUESS,
    ID,
    LISTED,
    NAME,
    PATTERN,
    PHONE,
    PLACE,
    Suggestion,
)

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



class SpanFinder:
    """The spans of one list of words that look personal: one `find` per list of words."""

    def __init__(self, words: Sequence[str], rejected: Iterable[str] = (),
                 extra_names: Iterable[str] = (), extra_places: Iterable[str] = ()) -> None:
        self.words = words
        self.names = FIRST_NAMES | {n.lower() for n in extra_names}
        self.places = PLACES | {p.lower() for p in extra_places}
        # Names and places that are everyday words too ("Will", "Reading", a colleague called
        # "Brown"): suggested only after a cue or a title.
        self.everyday = AMBIGUOUS | {w for w in (self.names - FIRST_NAMES) | (self.places - PLACES)
                                     if frequency.common(w)}
        self.skip = set(rejected)
        self.plain = [bare(w) for w in words]
        self.lower = [w.lower() for w in self.plain]
        self.stem = [_stem(w) for w in self.plain]
        self.n_words = len(self.words)
        self.cased = any(w[:1].isupper() for w in self.plain)
        self.starts = _sentence_starts(self.words) if self.cased else {0}
        # Whisper writes a long monologue with few full stops: there a capital only says that the
        # speaker paused, and a "sentence start" may be anywhere.
        self.punctuated = self.cased and len(self.starts) * _WORDS_PER_SENTENCE >= self.n_words
        self.found: list[Suggestion] = []
        self.taken: set[int] = set()

    def proper(self, i: int) -> bool:
        """Could word `i` be (part of) a name or place, by its form?"""
        if i >= self.n_words or not self.plain[i] or self.stem[i] in NOT_PERSONAL:
            return False
        if self.cased:
            return _capitalised(self.plain[i])
        return self.plain[i].isalpha() and self.lower[i] not in FUNCTION_WORDS

    def namelike(self, i: int, rarer_than: float | None = None) -> bool:
        """Could word `i`, after a cue or a title, be a name?"""
        if not self.proper(i):
            return False
        if self.stem[i] in self.names or self.stem[i] in AMBIGUOUS:
            # "my mate Will", not "my mate will"
            return self.cased or self.stem[i] not in self.everyday
        limit = rarer_than if rarer_than is not None else frequency.COMMON
        return frequency.zipf(self.stem[i]) < limit

    def sure(self, i: int, naming: bool = False) -> bool:
        """Is word `i`, after a cue, a name by more than a capital Whisper may have given it?"""
        if naming or self.stem[i] in self.names and self.stem[i] not in self.everyday:
            return True  # "a lad called Will", "my mate Sandra"
        if self.stem[i] in self.everyday:  # "my sister Mark my words": a capital after a pause?
            return self.punctuated
        # "my mate Tyrone" but not, in text without capitals, "my officer apologised"
        return frequency.zipf(self.stem[i]) < (frequency.COMMON if self.cased else UNKNOWN)

    def everyday_name(self, i: int) -> bool:
        """Could word `i`, after a cue in text without capitals, be a name like "hope"?"""
        return (self.proper(i) and self.stem[i] in self.everyday and self.stem[i] not in self.places
                and frequency.zipf(self.stem[i]) < _FUNCTION_WORD)  # not "my mate will come"

    def placelike(self, i: int) -> bool:
        """Could word `i`, after a place cue ("moved to"), be a place?"""
        if not self.proper(i):
            return False
        return self.stem[i] in self.places or not frequency.common(self.stem[i])

    def run_back(self, i: int) -> int:
        """Return the first position of the name whose surname is at `i` ("Precious Osei")."""
        first = i
        while (self.cased and first - 1 >= 0 and first not in self.starts
               and first - 1 not in self.taken
               and not _SENTENCE_END.search(self.words[first - 1].strip())
               and self.namelike(first - 1, SURNAME)):
            first -= 1
        return first

    def run_from(self, i: int) -> int:
        """Return the last position of the name starting at `i` (a surname after it)."""
        last = i
        while (last + 1 < self.n_words and last + 1 not in self.starts
               and not _SENTENCE_END.search(self.words[last].strip())
               and (self.cased or last == i) and self.stem[last + 1] not in self.everyday
               and self.namelike(last + 1, SURNAME)):
            last += 1
        return last

    def listed(self, i: int, wordlist: frozenset[str]) -> bool:
        """Is word `i` a listed name or place, written as one, and no everyday word?"""
        if self.stem[i] not in wordlist or self.stem[i] in self.everyday:
            return False
        return _capitalised(self.plain[i]) if self.cased else True

    def street_name(self, i: int) -> bool:
        """Does a street name ("Acacia Road") start at word `i`?"""
        if i + 1 >= self.n_words or self.lower[i + 1] not in STREET_WORDS or not self.proper(i):
            return False
        if self.cased:  # both capitalised, and not "No Way" or "He'd Walk"
            return (_capitalised(self.plain[i + 1]) and self.plain[i].isalpha()
                    and frequency.zipf(self.stem[i]) < _FUNCTION_WORD)
        return not frequency.common(self.stem[i])

    def cue_at(self, i: int, cues: tuple[tuple[str, ...], ...]) -> int | None:
        """Return where the words after a cue starting at `i` start, or None."""
        for cue in cues:
            if self.lower[i] == cue[0] and tuple(self.lower[i:i + len(cue)]) == cue:
                return i + len(cue) if i + len(cue) < self.n_words else None
        return None

    def add(self, first: int, last: int, label: str, why: str, confidence: float) -> None:
        if any(i in self.taken for i in range(first, last + 1)):
            return
        text = " ".join(self.plain[first:last + 1])
        suggestion = Suggestion(first, last, label, text, why, round(confidence, 3))
        if suggestion.key in self.skip:
            return
        self.found.append(suggestion)
        self.taken.update(range(first, last + 1))

    def find(self) -> list[Suggestion]:
        """Return the suggestions over the words, in order."""
        i = 0
        while i < self.n_words:
            word, low = self.plain[i], self.lower[i]
            if not word:
                i += 1
                continue
            if _NUMERIC_DATE.match(word):
                self.add(i, i, DATE, "looks like a date", PATTERN)
            elif (after := self.cue_at(i, _BIRTH_CUES)) is not None:
                last = after - 1
                while last + 1 < self.n_words and last - after < 6 and (
                        self.lower[last + 1] in _DATE_WORDS or re.match(r"^\d{1,4}(st|nd|rd|th)?$",
                                                                   self.lower[last + 1])):
                    last += 1
                while last >= after and self.lower[last] in ("the", "of", "is", "was"):
                    last -= 1
                while after <= last and self.lower[after] in ("the", "of", "is", "was"):
                    after += 1
                if last >= after:
                    self.add(after, last, DATE, f"follows “{' '.join(self.plain[i:after])}”",
                             PATTERN)
                i = max(i, last)
            elif _EMAIL.match(word):
                self.add(i, i, EMAIL, "looks like an email address", PATTERN)
            elif any(p.match(word) for p in _ID_PATTERNS):
                self.add(i, i, ID, "looks like a reference number", PATTERN)
            elif _POSTCODE.match(word.upper()) and any(c.isdigit() for c in word) and len(word) > 4:
                self.add(i, i, ADDRESS, "looks like a postcode", PATTERN)
            elif (_POSTCODE_OUT.match(word.upper()) and i + 1 < self.n_words
                  and _POSTCODE_IN.match(self.plain[i + 1].upper()) and word[0].isalpha()):
                self.add(i, i + 1, ADDRESS, "looks like a postcode", PATTERN)
            elif _DIGITS.match(word):
                last, digits = i, sum(c.isdigit() for c in word)
                while last + 1 < self.n_words and _DIGITS.match(self.plain[last + 1] or "x"):
                    last += 1
                    digits += sum(c.isdigit() for c in self.plain[last])
                if digits >= 10:
                    self.add(i, last, PHONE, "looks like a phone number", PATTERN)
                elif digits <= 4 and self.proper(last + 1):
                    end = last + 1
                    while (end + 1 < self.n_words and end - last < 4 and self.proper(end + 1)
                           and self.lower[end] not in STREET_WORDS):
                        end += 1
                    if self.lower[end] in STREET_WORDS:
                        self.add(i, end, ADDRESS, "looks like a street address", PATTERN)
                i = last
            elif (low in TITLES and (word[0].isupper() or not self.cased)
                  and self.namelike(i + 1, SURNAME)):
                # "Mrs Wright"; but in text without capitals "miss seeing them" is no title.
                self.add(i + 1, self.run_from(i + 1), NAME, f"follows “{word}”",
                    CUED if self.cased or self.sure(i + 1) else EVERYDAY)
            elif self.street_name(i):
                self.add(i, i + 1, ADDRESS, "looks like a street name",
                    CUED if self.punctuated or not frequency.common(self.stem[i]) else EVERYDAY)
            elif self.listed(i, self.names):
                self.add(i, self.run_from(i), NAME, "a given name", LISTED)
            elif self.listed(i, self.places):
                self.add(i, i, PLACE, "a place name", LISTED)
            elif (after := self.cue_at(i, PLACE_CUES)) is not None and self.placelike(after):
                self.add(after, after, PLACE, f"follows “{' '.join(self.plain[i:after])}”", CUED)
                i = after
            elif ((after := self.cue_at(i, _NAME_CUES)) is not None
                  and self.namelike(after, SURNAME if self.cased else None)):
                naming = tuple(self.lower[i:after]) in _NAMING_CUES
                self.add(after, self.run_from(after), NAME,
                         f"follows “{' '.join(self.plain[i:after])}”",
                         CUED if self.sure(after, naming) else EVERYDAY)
                i = after
            elif (after := self.cue_at(i, _NAME_CUES)) is not None and self.everyday_name(after):
                self.add(after, after, NAME, f"follows “{' '.join(self.plain[i:after])}”", EVERYDAY)
                i = after
            elif (self.punctuated and i not in self.starts and self.stem[i] in self.places
                  and _capitalised(word)):
                self.add(i, i, PLACE, "a place name, and an everyday word", EVERYDAY)
            elif (self.proper(i) and _WORDLIKE.match(word) and len(word) > 1
                  and self.stem[i] not in self.everyday
                  and frequency.zipf(self.stem[i]) < (
                      frequency.COMMON if self.cased and i not in self.starts else UNKNOWN)):
                self.add(self.run_back(i), self.run_from(i), NAME, "not an everyday English word",
                    GUESS - frequency.zipf(self.stem[i]) / 20)
            i += 1
        return sorted(self.found, key=lambda s: s.first)


def suggest(words: Sequence[str], rejected: Iterable[str] = (),
            extra_names: Iterable[str] = (), extra_places: Iterable[str] = ()) -> list[Suggestion]:
    """Return suggested redactions over `words` (one entry per transcribed word), in order.

    Text with capitals (Whisper's usual output) is read by its capitals as well as its word
    lists, cues and patterns; text without any (some engines, or typed notes) by word lists
    and cues alone. Everyday English words are left out either way.
    """
    return SpanFinder(words, rejected, extra_names, extra_places).find()
