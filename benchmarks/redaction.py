"""How many personal details the redaction suggestions find, and how many are false alarms.

Three labelled sets, made from templates (seeded, so every run is the same), with names,
places, addresses and numbers slotted in, half of the names and places from outside
StoryHub's word lists (so the capital and cue rules are measured too):

- clean: one sentence at a time, with capitals and punctuation, as Whisper writes a short
  answer; sentences with only ordinary capitalised words (services, days, months) test false
  alarms;
- whisper: long monologues as Whisper writes them: no full stops, a capital after a pause on
  any word, sentence-initial words ("So", "Now", "People", "Will I…") capitalised mid-run.
  Between the labelled sentences are sentences of benchmarks/data/stories/pilot.yaml and
  benchmarks/short_stories.py (those naming nobody) and sentences that use names which are
  everyday words ("Hope", "Grace", "Reading") as everyday words;
- lower: both as an engine without capitals or punctuation writes them.

Precision counts every suggestion; `preticked_precision` only those the editor ticks in
advance, which one click redacts. Recall counts every suggestion, ticked or not. The peer,
measured in the same run, is the word lists alone (no patterns, cues, capitals or frequencies).

    .venv/bin/python benchmarks/redaction.py [--stories 400] [--monologues 40] [--quick]

Last line: RESULT spans=… recall_ids=… recall_names=… recall_places=… precision=…
preticked_precision=… peer_recall_names=… peer_precision=…
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.short_stories import STORIES as SHORT_STORIES  # noqa: E402
from storyhub.redaction import (  # noqa: E402
    ADDRESS,
    DATE,
    EMAIL,
    ID,
    NAME,
    PHONE,
    PLACE,
    Suggestion,
    bare,
    frequency,
    suggest,
)
from storyhub.redaction.gazetteer import (  # noqa: E402
    FIRST_NAMES,
    NOT_PERSONAL,
    PLACES,
    TITLES,
)

PILOT = Path(__file__).resolve().parent / "data" / "stories" / "pilot.yaml"

KNOWN_NAMES = ["Darren", "Sandra", "Kelly", "Mohammed", "Gary", "Claire", "Jamie", "Tracey"]
OTHER_NAMES = ["Kwabena", "Siobhan", "Dariusz", "Oluwaseun", "Bronwen", "Tadhg", "Marek",
               "Precious", "Tariq", "Tyrone", "Aisha", "Niamh"]
# Given names that are everyday words: a name only where the sentence says so.
EVERYDAY_NAMES = ["Will", "Grace", "Hope", "Mark", "Bill", "Joy"]
SURNAMES = ["Hollis", "Okafor", "Nowak", "Pritchard", "Begum", "McAllister", "Osei", "Wright",
            "Hussain", "Doherty", "Patel", "Reilly"]
KNOWN_PLACES = ["Leeds", "Bradford", "Luton", "Swindon", "Hull", "Croydon", "Wigan", "Derby"]
OTHER_PLACES = ["Ferncliffe", "Abergele", "Thornaby", "Kirkby", "Pontefract", "Ashington"]
PRISONS = ["Belmarsh", "Wandsworth", "Altcourse", "Risley", "Hewell", "Ranby"]
STREETS = ["Acacia Road", "Mill Lane", "Station Street", "Elm Grove", "Victoria Avenue"]

TEMPLATES = [
    "My name is {first} {last} and I have been on probation for a year.",
    "My probation officer {first} really listened to me.",
    "When I got out of HMP {prison} I had nowhere to go.",
    "I moved to {place} to be near my kids.",
    "The hostel in {place} was the first place I felt safe.",
    "I live at {number} {street} now, with my sister.",
    "You can call me on {phone} if anything changes.",
    "Mrs {last} at the Jobcentre sorted my Universal Credit.",
    "My prison number was {prison_no} and they still use it.",
    "My mate {first} came with me to the appointment.",
    "Send it to {email} and I will read it.",
    "My National Insurance number is {nino} if you need it.",
    "I was born in {place} but grew up all over.",
    "{first} from the recovery group rang me every Monday.",
    "I was born on the {dob} and I am still here.",
    "My date of birth is {dob_num} on the form.",
]
# More of what a long monologue says: names with no cue before them, names that are everyday
# words after a cue, places with no cue, case numbers and postcodes.
MONOLOGUE_TEMPLATES = [
    "Last month a young lad called {first} got a room in shared housing.",
    "I told {first} about it and she just listened.",
    "Me and {first} {last} grew up on the same estate.",
    "My officer {everyday} rang me the first night to check I was alright.",
    "There was a worker called {everyday} at the hostel who never gave up on me.",
    "I ended up sleeping rough in {place} for a month.",
    "My case number is {crn} and it is on every letter.",
    "The postcode was {postcode} but the post never came.",
    "Mr {last} the magistrate gave me one more chance.",
    "I went to see {first} at the council about my flat.",
    "{first} {last} from the drug service still texts me.",
    "I heard {last} got recalled last week and it shook me.",
]
ORDINARY = [
    "Probation helped me more than I expected.",
    "I went to the Jobcentre on Monday and Universal Credit paid in March.",
    "The NHS and my GP were fine about it.",
    "Christmas was the hardest time, I'm OK now.",
    "The Approved Premises had a curfew at nine.",
    "I started the course in September and finished it in December.",
    "AA meetings on a Tuesday kept me going.",
    "Court was in the morning and I was terrified.",
]
# Everyday words that are names or places elsewhere, said as everyday words.
EVERYDAY = [
    "Will I ever get my kids back, I don't know.",
    "Hope is what keeps me going most days.",
    "Mark my words, I won't go back inside.",
    "Bill after bill came through the door and I couldn't open them.",
    "Grace is the word the chaplain used, I just call it luck.",
    "Frank conversations are what I need from my officer.",
    "Reading was the one thing that got me through my sentence.",
    "Precious little help came from anyone at the start.",
    "Faith in the system is hard to find when you've been let down.",
    "Joy is not a word I used much back then.",
    "Summer was the worst because everyone was out drinking.",
    "Dawn is when the hostel finally goes quiet.",
]
I_WORDS = {"i", "i'm", "i've", "i'll", "i'd"}
# Capitalised words the benchmark stories say that name nobody and nowhere.
ORDINARY_CAPITALS = set("""monday tuesday wednesday thursday friday saturday sunday mondays
tuesdays wednesdays thursdays fridays saturdays sundays january february march april june
july august september october november december christmas universal credit""".split())


def _phone(rng: random.Random) -> str:
    return f"07{rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)}"


def _slots(rng: random.Random) -> dict[str, tuple[str, str]]:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return {
        "first": (rng.choice(KNOWN_NAMES if rng.random() < 0.5 else OTHER_NAMES), NAME),
        "last": (rng.choice(SURNAMES), NAME),
        "everyday": (rng.choice(EVERYDAY_NAMES), NAME),
        "place": (rng.choice(KNOWN_PLACES if rng.random() < 0.5 else OTHER_PLACES), PLACE),
        "prison": (rng.choice(PRISONS), PLACE),
        "street": (rng.choice(STREETS), ADDRESS),
        "number": (str(rng.randint(1, 140)), ADDRESS),
        "phone": (_phone(rng), PHONE),
        "prison_no": (f"A{rng.randint(1000, 9999)}B{rng.choice('CDEFG')}", ID),
        "email": (f"{rng.choice(['dj', 'k.w', 'sam88'])}@example.com", EMAIL),
        "nino": (f"QQ{rng.randint(100000, 999999)}C", ID),
        "crn": (f"{rng.choice(letters)}{rng.randint(100000, 999999)}", ID),
        "postcode": (f"{rng.choice(['LS', 'BD', 'M', 'S', 'HU', 'WN'])}{rng.randint(1, 20)} "
                     f"{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}", ADDRESS),
        "dob": (f"{rng.randint(1, 28)}th of {rng.choice(['May', 'June', 'March'])} "
                f"{rng.randint(1960, 2005)}", DATE),
        "dob_num": (f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/"
                    f"{rng.randint(1960, 2005)}", DATE),
    }


def fill(template: str, rng: random.Random) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Return the words of `template` with its slots filled, and the gold spans."""
    slots = _slots(rng)
    words: list[str] = []
    gold: list[tuple[int, int, str]] = []
    for piece in template.split():
        core = bare(piece)
        if core.startswith("{") and core.strip("{}") in slots:
            value, label = slots[core.strip("{}")]
            parts = value.split()
            first = len(words)
            suffix = piece[piece.index("}") + 1:]
            words.extend(parts[:-1] + [parts[-1] + suffix])
            if gold and gold[-1][2] == label and gold[-1][1] == first - 1:
                gold[-1] = (gold[-1][0], len(words) - 1, label)  # "first last", "14 Road"
            else:
                gold.append((first, len(words) - 1, label))
        else:
            words.append(piece)
    return words, gold


def make_set(n: int, seed: int = 7) -> list[tuple[list[str], list[tuple[int, int, str]]]]:
    """Return (words, gold spans (first, last, label)) for `n` sentences."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable test set, not a secret
    out = []
    for i in range(n):
        if i % 4 == 3:
            out.append((rng.choice(ORDINARY).split(), []))
        else:
            out.append(fill(rng.choice(TEMPLATES), rng))
    return out


def without_capitals(data):
    """The same sentences as an engine without capitals or punctuation would write them."""
    return [([bare(w).lower() for w in words], gold) for words, gold in data]


def story_sentences() -> list[str]:
    """Return the sentences of the benchmark stories that name nobody and nowhere."""
    texts = [story["text"] for story in yaml.safe_load(PILOT.read_text())["stories"]]
    sentences = [s for text in [*texts, *SHORT_STORIES]
                 for s in re.split(r"(?<=[.?!])\s+", text.strip())]
    kept = []
    for sentence in sentences:
        words = [bare(w) for w in sentence.split()]
        if len(words) < 3 or words[0].lower() in FIRST_NAMES:
            continue
        if any(w[:1].isupper() and w.lower() not in ORDINARY_CAPITALS | I_WORDS
               for w in words[1:]):
            continue  # names someone ("My officer, Dave, …") or somewhere
        kept.append(sentence)
    return kept


def as_whisper(words: list[str], gold_words: set[int], rng: random.Random) -> list[str]:
    """Write one sentence as Whisper writes it inside a long monologue."""
    out = []
    for i, word in enumerate(words):
        core = bare(word)
        if i in gold_words:
            pass  # names, places and numbers keep their form
        elif i == 0:
            # The sentence's first word: capitalised half the time, mid-run.
            if core.lower() not in I_WORDS | TITLES:
                core = core.capitalize() if rng.random() < 0.5 else core.lower()
        elif core.lower() not in I_WORDS and core.lower() not in NOT_PERSONAL:
            core = core.lower()
            if rng.random() < 0.06:
                core = core.capitalize()  # a capital after a pause
        trailing = word[len(word.rstrip(",.?!")):]
        if "," in trailing and rng.random() < 0.3:
            core += ","
        out.append(core)
    if rng.random() < 0.05:
        out[-1] += "."  # now and then a full stop
    return out


def monologue_set(n: int, seed: int = 11, labelled: int = 8, filler: int = 64):
    """Return `n` long monologues (words, gold spans), each of many sentences run together."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable test set, not a secret
    fillers = [s.split() for s in story_sentences()] + [s.split() for s in EVERYDAY]
    templates = TEMPLATES + MONOLOGUE_TEMPLATES * 2
    out = []
    for _ in range(n):
        sentences = [fill(rng.choice(templates), rng) for _ in range(labelled)]
        sentences += [(rng.choice(fillers), []) for _ in range(filler)]
        rng.shuffle(sentences)
        words: list[str] = []
        gold: list[tuple[int, int, str]] = []
        for sentence, spans in sentences:
            inside = {i for first, last, _ in spans for i in range(first, last + 1)}
            gold += [(first + len(words), last + len(words), label)
                     for first, last, label in spans]
            words += as_whisper(sentence, inside, rng)
        out.append((words, gold))
    return out


def wordlists_only(words: list[str]) -> list[Suggestion]:
    """The peer: suggest only words on the given-name and place lists."""
    found = []
    for i, word in enumerate(words):
        low = bare(word).lower()
        if low in FIRST_NAMES:
            found.append(Suggestion(i, i, NAME, bare(word), "list"))
        elif low in PLACES:
            found.append(Suggestion(i, i, PLACE, bare(word), "list"))
    return found


def score(data, finder) -> dict[str, float]:
    groups = {"ids": {PHONE, EMAIL, ID, DATE}, "names": {NAME}, "places": {PLACE},
              "addresses": {ADDRESS}}
    hit = {g: 0 for g in groups}
    total = {g: 0 for g in groups}
    suggested = good = ticked = ticked_good = ticked_hit = 0
    for words, gold in data:
        found = finder(words)
        covered = {i: s.label for s in found for i in range(s.first, s.last + 1)}
        ticked_words = {i for s in found if s.preticked for i in range(s.first, s.last + 1)}
        for first, last, label in gold:
            group = next(g for g, labels in groups.items() if label in labels)
            total[group] += 1
            # Found: every word of it is suggested (any label: a reporter keeps the suggestion).
            if all(i in covered for i in range(first, last + 1)):
                hit[group] += 1
                ticked_hit += all(i in ticked_words for i in range(first, last + 1))
        gold_words = {i for first, last, _ in gold for i in range(first, last + 1)}
        for s in found:
            right = any(i in gold_words for i in range(s.first, s.last + 1))
            suggested += 1
            good += right
            if s.preticked:
                ticked += 1
                ticked_good += right
    result: dict[str, float] = {f"recall_{g}": hit[g] / total[g] if total[g] else 1.0
                                for g in groups}
    result["precision"] = good / suggested if suggested else 1.0
    result["preticked_precision"] = ticked_good / ticked if ticked else 1.0
    result["preticked_recall"] = ticked_hit / sum(total.values()) if any(total.values()) else 1.0
    result["spans"] = sum(total.values())
    result["suggested"] = suggested
    result["preticked"] = ticked
    return result


def speed(monologues, words_wanted: int = 9000) -> tuple[float, float, int]:
    """Return (seconds to read the word list, best seconds to suggest, words) for a transcript
    of about an hour (9,000 words), made of monologues run together."""
    started = time.perf_counter()
    frequency.load()
    load = time.perf_counter() - started
    words: list[str] = []
    while len(words) < words_wanted:
        for sentence, _ in monologues:
            words += sentence
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        suggest(words)
        best = min(best, time.perf_counter() - started)
    return load, best, len(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=400, help="sentences to make")
    parser.add_argument("--monologues", type=int, default=40,
                        help="Whisper-style monologues to make (about 1,000 words and 9 "
                             "details each)")
    parser.add_argument("--quick", action="store_true",
                        help="a small run of a few seconds (CI): 40 sentences, 4 monologues")
    args = parser.parse_args()
    if args.quick:
        args.stories, args.monologues = 40, 4
    load, seconds, n_words = speed(monologue_set(4))
    clean = make_set(args.stories)
    whisper = monologue_set(args.monologues)
    lower = without_capitals(clean + whisper)
    data = clean + lower + whisper
    ours = score(data, suggest)
    peer = score(data, wordlists_only)
    for name, figures in (("word lists only", peer), ("StoryHub, clean", score(clean, suggest)),
                          ("StoryHub, lower", score(lower, suggest)),
                          ("StoryHub, whisper", score(whisper, suggest)),
                          ("StoryHub, all", ours)):
        print(f"{name:>17}: " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else
                                          f"{k}={v}" for k, v in figures.items()))
    print(f"{'speed':>17}: word list read in {load:.2f} s; {n_words} words (about an hour) "
          f"in {seconds * 1000:.0f} ms")
    print(f"RESULT spans={ours['spans']} recall_ids={ours['recall_ids']:.3f} "
          f"recall_names={ours['recall_names']:.3f} recall_places={ours['recall_places']:.3f} "
          f"precision={ours['precision']:.3f} "
          f"preticked_precision={ours['preticked_precision']:.3f} "
          f"peer_recall_names={peer['recall_names']:.3f} "
          f"peer_precision={peer['precision']:.3f}")


if __name__ == "__main__":
    main()
