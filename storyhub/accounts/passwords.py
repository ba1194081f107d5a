"""How guessable a new password is, judged the way a guesser works (in the style of zxcvbn).

A guesser tries common passwords first, with capitals, digits and symbols around them and
"l33t" spellings; then runs of keys (qwerty, 12345, 1q2w3e), a character or short pattern
repeated, years, and the person's own username and name. Every character of the password
that one of these explains is "guessable"; a password needs at least UNGUESSABLE_NEEDED
characters that none of them explains. Long passphrases of ordinary words pass.
"""

from __future__ import annotations

import difflib
import functools
import re
from importlib import resources

MIN_LENGTH = 10
UNGUESSABLE_NEEDED = 4

# Keyboard rows and columns, alphabet and digits in order, and the usual zig-zag walks;
# each is also read backwards.
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm",
    "qwertzuiop", "azertyuiop", "qsdfghjklm", "wxcvbn", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp", "zaq1xsw2cde3vfr4bgt5nhy6mju7ki8lo9p0", "1q2w3e4r5t6y7u8i9o0p",
    "q1w2e3r4t5y6u7i8o9p0", "a1s2d3f4g5h6j7k8l9", "789456123", "147258369", "741852963",
    "963852741", "159753", "357951", "1a2s3d4f5g6h7j8k9l", "!@#$%^&*()",
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "9": "g", "@": "a", "$": "s", "!": "i", "+": "t", "|": "l", "€": "e"})
_YEAR = re.compile(r"(19|20)\d\d")
_MIN_RUN = 3
_MIN_WORD = 4

_WHY = {
    "name": "mostly your username or name",
    "repeat": "one character or a short pattern repeated (like “aaaa” or “abcabc”)",
    "walk": "keys or letters in order (like “qwerty” or “12345”)",
    "common": "mostly a common password, which is guessed first",
    "year": "a year",
}
_ORDER = ("name", "repeat", "walk", "common", "year")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common passwords shipped with StoryHub (data/common-passwords.txt)."""
    text = resources.files(__package__).joinpath("data/common-passwords.txt").read_text(
        encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


@functools.cache
def _words_by_length() -> dict[int, frozenset[str]]:
    words: dict[int, set[str]] = {}
    for word in common_passwords():
        if len(word) >= _MIN_WORD:
            words.setdefault(len(word), set()).add(word)
    return {length: frozenset(found) for length, found in words.items()}


def _mark(covered: list[bool], start: int, end: int) -> None:
    covered[start:end] = [True] * (end - start)


def _mark_words(text: str, covered: list[bool]) -> None:
    for length, words in _words_by_length().items():
        for start in range(len(text) - length + 1):
            if text[start:start + length] in words:
                _mark(covered, start, start + length)


def _mark_runs(text: str, covered: list[bool]) -> None:
    steps: dict[str, set[str]] = {}
    for sequence in _SEQUENCES:
        for line in (sequence, sequence[::-1]):
            for a, b in zip(line, line[1:], strict=False):
                steps.setdefault(a, set()).add(b)
    start = 0
    for i in range(1, len(text) + 1):
        if i < len(text) and text[i] in steps.get(text[i - 1], ()):
            continue
        if i - start >= _MIN_RUN:
            _mark(covered, start, i)
        start = i


def _mark_repeats(text: str, covered: list[bool]) -> None:
    for unit in range(1, 5):
        start = 0
        while start + 2 * unit <= len(text):
            end = start + unit
            while end + unit <= len(text) and text[end:end + unit] == text[start:start + unit]:
                end += unit
            repeats = (end - start) // unit
            if repeats >= 2 and end - start >= 3:
                _mark(covered, start, end)
                start = end
            else:
                start += 1


def _mark_names(text: str, covered: list[bool], names: list[str]) -> None:
    for name in names:
        for start in range(len(text) - len(name) + 1):
            if text[start:start + len(name)] == name:
                _mark(covered, start, start + len(name))


def _name_parts(username: str, display_name: str) -> list[str]:
    parts = {username.lower(), display_name.lower().replace(" ", "")}
    parts.update(re.split(r"[^a-z0-9]+", f"{username} {display_name}".lower()))
    return [p for p in parts if len(p) >= 3]


def weakness(password: str, username: str = "", display_name: str = "") -> str | None:
    """Return why `password` is too easy to guess, as a sentence, or None if it is not."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters for the password."
    if password.strip() != password:
        return "The password cannot start or end with a space."
    plain = "".join(password.lower().split())
    names = _name_parts(username, display_name)
    for name in names:
        if difflib.SequenceMatcher(None, plain, name).ratio() >= 0.75:
            return ("The password is too close to your username or name. Choose something "
                    "others would not guess from it.")
    covered = {kind: [False] * len(plain) for kind in _ORDER}
    if plain in common_passwords() or plain.translate(_LEET) in common_passwords():
        covered["common"] = [True] * len(plain)
    for text in (plain, plain.translate(_LEET)):
        _mark_names(text, covered["name"], names)
        _mark_words(text, covered["common"])
    _mark_runs(plain, covered["walk"])
    _mark_repeats(plain, covered["repeat"])
    for match in _YEAR.finditer(plain):
        _mark(covered["year"], match.start(), match.end())

    def free(kinds) -> int:
        return sum(1 for i, c in enumerate(plain)
                   if c.isalnum() and not any(covered[kind][i] for kind in kinds))

    if free(_ORDER) >= UNGUESSABLE_NEEDED:
        return None
    # Say why in the fewest words: each kind that explains more than a character or so.
    kinds: list[str] = []
    for kind in _ORDER:
        if free(kinds) - free([*kinds, kind]) >= 2:
            kinds.append(kind)
    reasons = " and ".join(_WHY[kind] for kind in kinds)
    return (f"This password is too easy to guess: it is {reasons}. A few ordinary words "
            "together, such as a short sentence, are easy to remember and hard to guess.")
