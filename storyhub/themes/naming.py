"""Names a facilitator would use: key phrases from the theme's own words, and a subtitle.

Candidates are runs of one to three content words (no stop words, spoken fillers or common
verbs), lemmatised by a small rule-based lemmatiser. Each is scored by how particular it is to
the theme (class-based TF-IDF, as BERTopic's) and how close its embedding is to the theme's
centre (KeyBERT-style, same embedding model); the name is the best two, chosen with maximal
marginal relevance so they say different things ("Hostel and council"). The subtitle is the
theme's most representative sentence: of its passages nearest the centre, the sentence nearest.

Once shown, a name stays: when a story's words change or leave, `Said` and `without` take out of
a name only the words its passages no longer say ("Sarah and housing" -> "Housing").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
# A redaction's label ("[NAME]") stands in for words no longer said; it says none itself.
REDACTION_LABEL = re.compile(r"\[[A-Z]+\]")
# Where a name's parts meet: "Hostel and council", "Housing, hostel and landlord".
NAME_PARTS = re.compile(r",\s*|\s+and\s+")
# Words that carry no theme in spoken stories (on top of English stop words).
SPOKEN_FILLER = frozenset("""
    um umm uh uhh er erm ah oh yeah yes yep no nah okay ok like just really know mean
    think thing things stuff kind sort got get gets getting going gonna wanna basically
    actually literally right well lot lots bit sure said say says saying probably maybe
    good bad way time times did does doing done hear heard different tell told ask asked
    want wanted need needed feel felt try tried make made come came went goes use used
    every day days week weeks year years
""".split())
# Words that name no theme in spoken stories (on top of English stop words and fillers).
EXTRA_STOP = frozenset("""
    i'm i've i'd i'll you're you've you'd he's she's it's we're we've they're they've that's
    there's what's don't didn't doesn't can't couldn't wouldn't won't isn't wasn't aren't
    haven't hasn't shouldn't let's honestly mate lad lads fella bloke guy guys thing stuff
    whole lot loads bit one two three four five six seven eight nine ten first second last
    next little big proper actually basically sort kind place people person everybody somebody
    anybody nobody everyone someone anyone something anything everything nothing nearly
    half full real able end start mad funny daft silly stupid lovely decent nice brilliant
    amazing worst best better hard easy long short new old young great massive huge tiny
    small mum dad tonight today tomorrow yesterday morning monday tuesday wednesday thursday
    friday saturday sunday month months minute minutes hour hours night nights man men
    woman women outside inside way
""".split())
# Common verbs in their forms (a name is a thing, not an action).
VERBS = frozenset("""
    be am is are was were been being have has had having do does did done doing go goes went
    gone going get gets got gotten getting make makes made making take takes took taken taking
    come comes came coming give gives gave given giving see sees saw seen seeing know knows knew
    known think thinks thought look looks looked looking want wants wanted tell tells told ask
    asks asked say says said feel feels felt try tries tried leave leaves left put puts let lets
    keep keeps kept begin began start started stop stopped call called ring rang rung turn turned
    move moved find finds found pay paid sit sat stand stood lose lost walk walked run ran bring
    brought buy bought spend spent sleep slept eat ate eaten drink drank drunk wait waited stay
    stayed live lived speak spoke talk talked listen listened hear heard mean meant seem seemed
    happen happened become became change changed sort sorted send sent help helped need needed
    open opened show showed shown cut stuck hold held carry carried mean means twice
    supervise explain explained remember remembered
""".split())
# Words ending in -ing or -ed that are things a theme is about.
KEEP = frozenset("""
    housing meeting training counselling mentoring volunteering funding clothing building
    wellbeing drinking offending sentencing reporting gambling shopping cooking bedding
    bed shed need speed seed weed feed hundred
""".split())
IRREGULAR = {"people": "people", "children": "child", "men": "man", "women": "woman",
             "lives": "life", "wives": "wife", "knives": "knife", "feet": "foot",
             "teeth": "tooth", "mice": "mouse", "stories": "story", "clothes": "clothes",
             "benefits": "benefit", "premises": "premises", "kids": "kid", "services": "service",
             "chaos": "chaos", "bus": "bus", "alcohol": "alcohol"}


def lemma(word: str) -> str:
    """Return the word's dictionary form by simple rules (plurals; enough for naming)."""
    w = word.lower().strip("'")
    if w in IRREGULAR:
        return IRREGULAR[w]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("sses", "ches", "shes", "xes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "'s")):
        return w[:-1]
    return w.removesuffix("'s")


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS | SPOKEN_FILLER | EXTRA_STOP)


def _content(word: str, stop: frozenset[str]) -> bool:
    if "'" in word or len(word) < 3 or {word, lemma(word)} & (stop | VERBS):
        return False
    if word in KEEP:
        return True
    return not word.endswith(("ed", "ing", "ly"))


def candidates(text: str, stop: frozenset[str] | None = None) -> list[str]:
    """Return the lemmatised runs of 1-3 content words in `text` ("council housing")."""
    stop = stop or _stop_words()
    found: list[str] = []
    run: list[str] = []
    for token in [*WORD.findall(text.lower()), ""]:
        if token and _content(token, stop):
            run.append(lemma(token))
            continue
        for size in (1, 2, 3):
            found.extend(" ".join(run[i:i + size]) for i in range(len(run) - size + 1))
        run = []
    return found


def words(text: str) -> list[str]:
    """Return the words of `text` in their dictionary form, redaction labels left out."""
    return [lemma(w) for w in WORD.findall(REDACTION_LABEL.sub(" ", text).lower())]


class Said:
    """What some passages say, to ask whether a key phrase or a name's word is among it.

    Compared in dictionary form, as key phrases are made ("kids" says "kid"), and never across
    two passages.
    """

    def __init__(self, texts: Iterable[str]):
        self._said = " " + " | ".join(" ".join(words(text)) for text in texts) + " "

    def __contains__(self, phrase: object) -> bool:
        found = words(phrase) if isinstance(phrase, str) else []
        return bool(found) and f" {' '.join(found)} " in self._said


def name_words(name: str) -> list[str]:
    """Return the words of a theme's name, without the "and"s and commas between its parts."""
    return [word for part in NAME_PARTS.split(name.strip()) for word in part.split()]


def without(name: str, gone: Callable[[str], bool]) -> str:
    """Return `name` without its words that are `gone`, and otherwise as it was.

    "Sarah and housing" without "Sarah" is "Housing"; a name left with no word is "Theme".
    """
    if not any(gone(word) for word in name_words(name)):
        return name
    kept = [" ".join(w for w in part.split() if not gone(w))
            for part in NAME_PARTS.split(name.strip())]
    kept = [part for part in kept if part]
    if not kept:
        return "Theme"
    text = kept[0] if len(kept) == 1 else ", ".join(kept[:-1]) + " and " + kept[-1]
    return text[:1].upper() + text[1:]


def _phrase_label(phrases: Sequence[str]) -> str:
    if not phrases:
        return "Theme"
    text = phrases[0] if len(phrases) == 1 else " and ".join(phrases[:2])
    return text[:1].upper() + text[1:]


def name_themes(texts: Sequence[str], topics: Sequence[int], vectors: np.ndarray,
                embed: Callable[[list[str]], np.ndarray], top: int = 8,
                diversity: float = 0.6) -> dict[int, tuple[str, list[str]]]:
    """Return theme -> (name, key phrases) for the texts grouped by `topics`."""
    stop = _stop_words()
    numbers = sorted(set(topics) - {-1})
    counts: dict[int, Counter[str]] = {t: Counter() for t in numbers}
    seen_in: dict[int, Counter[str]] = {t: Counter() for t in numbers}
    for text, topic in zip(texts, topics, strict=True):
        if topic in counts:
            found = candidates(text, stop)
            counts[topic].update(found)
            seen_in[topic].update(set(found))
    total: Counter[str] = Counter()
    for c in counts.values():
        total.update(c)
    words_per_theme = sum(total.values()) / max(len(numbers), 1)
    shortlist: dict[int, list[tuple[str, float]]] = {}
    for t in numbers:
        # Class-based TF-IDF; a phrase said in only one passage of a bigger theme is a detail.
        members = sum(1 for x in topics if x == t)
        scored = [(p, n * math.log(1 + words_per_theme / total[p]))
                  for p, n in counts[t].items() if seen_in[t][p] >= 2 or members < 3]
        if len(scored) < 2:  # a theme of passages that share no phrase: take them all
            scored = [(p, n * math.log(1 + words_per_theme / total[p]))
                      for p, n in counts[t].items()]
        shortlist[t] = sorted(scored, key=lambda kv: (-kv[1], kv[0]))[:25]
    phrases = sorted({p for items in shortlist.values() for p, _s in items})
    if not phrases:
        return {t: ("Theme", []) for t in numbers}
    unit = _unit(np.asarray(embed(phrases), dtype=np.float64))
    where = {p: i for i, p in enumerate(phrases)}
    V = _unit(np.asarray(vectors, dtype=np.float64))
    out: dict[int, tuple[str, list[str]]] = {}
    for t in numbers:
        items = shortlist[t]
        if not items:
            out[t] = ("Theme", [])
            continue
        centre = _unit(V[[x == t for x in topics]].mean(0, keepdims=True))[0]
        tfidf = np.array([s for _p, s in items])
        near = np.array([unit[where[p]] @ centre for p, _s in items])
        score = 0.5 * tfidf / tfidf.max() + 0.5 * near
        chosen: list[int] = []
        while len(chosen) < min(top, len(items)):
            best, best_value = -1, -np.inf
            for i in range(len(items)):
                if i in chosen or any(set(items[i][0].split()) & set(items[j][0].split())
                                      for j in chosen):
                    continue
                overlap = max((unit[where[items[i][0]]] @ unit[where[items[j][0]]]
                               for j in chosen), default=0.0)
                value = (1 - diversity) * score[i] - diversity * overlap if chosen \
                    else score[i]
                if value > best_value:
                    best, best_value = i, value
            if best < 0:
                break
            chosen.append(best)
        keywords = [items[i][0] for i in chosen]
        out[t] = (_phrase_label(keywords), keywords)
    return out


def subtitles(texts: Sequence[str], topics: Sequence[int], vectors: np.ndarray,
              keywords: dict[int, list[str]], nearest: int = 3) -> dict[int, str]:
    """Return theme -> its most representative sentence (6 to 35 words).

    Of the sentences in the passages nearest the theme's centre, the one that says most of
    the theme's key phrases (per word), nearest passage first on a tie; no extra embedding.
    """
    stop = _stop_words()
    V = _unit(np.asarray(vectors, dtype=np.float64))
    out = {}
    for t in sorted(set(topics) - {-1}):
        idx = [i for i, x in enumerate(topics) if x == t]
        centre = _unit(V[idx].mean(0, keepdims=True))[0]
        best = sorted(idx, key=lambda i: -(V[i] @ centre))[:nearest]
        weight = {k: len(keywords.get(t, [])) - r for r, k in enumerate(keywords.get(t, []))}
        options = []
        for rank, i in enumerate(best):
            for sentence in re.split(r"(?<=[.?!])\s+", texts[i]):
                words = sentence.split()
                if 6 <= len(words) <= 35:
                    said = set(candidates(sentence, stop))
                    value = sum(w for k, w in weight.items() if k in said) / math.sqrt(len(words))
                    options.append((-value, rank, sentence.strip()))
        out[t] = min(options)[2] if options else " ".join(texts[best[0]].split()[:30])
    return out


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
