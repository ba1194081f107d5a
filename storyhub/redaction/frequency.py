"""How common a word is in English, from wordfreq's list (read once per process, offline).

A capital letter says little in a long Whisper monologue: it writes few full stops and
capitalises whatever follows a pause ("So", "Now", "People"). What does say something is how
common the word is: names and places that no word list knows are rare words, and every
function word, pronoun and everyday word is common. wordfreq (Apache-2.0 code, CC BY-SA 4.0
data) ships its frequencies inside the package, so nothing is fetched.

Frequencies are on the Zipf scale: log10 of occurrences per billion words ("the" 7.7,
"people" 6.3, "hostel" 3.4, "Hollis" 3.1, "Okafor" 2.6).
"""

from __future__ import annotations

from functools import cache

import wordfreq

# Words at or above this are common English: never suggested on their capital alone. Measured
# with benchmarks/redaction.py: common enough to hold "hostel" and "curfew" back, rare enough
# to let most surnames and places no list knows through ("Hollis" 3.1, "Okafor" 2.6).
COMMON = 3.5
# Below this wordfreq's English list says nothing useful; the table keeps only words above it
# (about 96,000 of its 321,000, a few MB instead of thirty).
_FLOOR = 2.0


@cache
def _table() -> dict[str, float]:
    """Return word -> Zipf frequency for every English word from the floor up."""
    # read_cBpack rather than get_frequency_list: the latter keeps all 321,000 words cached.
    buckets = wordfreq.read_cBpack(wordfreq.available_languages("best")["en"])
    table: dict[str, float] = {}
    for centibels, words in enumerate(buckets):
        zipf = 9 - centibels / 100
        if zipf < _FLOOR:
            break
        for word in words:
            table[word] = round(zipf, 2)
    return table


def zipf(word: str) -> float:
    """Return how common `word` is (0 for a word rarer than the floor or unknown).

    A possessive or plural counts as its word: "Mum's" as "mum", "Mondays" as "monday".
    """
    key = word.lower().replace("’", "'")
    if key.endswith("'s"):
        key = key[:-2]
    table = _table()
    found = table.get(key, 0.0)
    if key.endswith("s") and len(key) > 3:
        found = max(found, table.get(key[:-1], 0.0))
    return found


def common(word: str) -> bool:
    """Return True for an everyday English word, a function word or a pronoun."""
    return zipf(word) >= COMMON


def load() -> None:
    """Read the word list now (a process that will suggest redactions can call it at start)."""
    _table()
