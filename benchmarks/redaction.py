"""How many personal details the redaction suggestions find, and how many are false alarms.

A labelled set of probation-story sentences is made from templates (seeded, so every run is the
same): names, places, addresses and numbers are slotted in, half of the names and places from
outside StoryHub's word lists (so the capitalisation and cue rules are measured too), and
sentences with only ordinary capitalised words (services, days, months) test false alarms.
Whisper writes sentences like these with capitals and punctuation; each is also scored as an
engine without them would write it (lower case, no punctuation).

    .venv/bin/python benchmarks/redaction.py [--stories 300]

The peer measured in the same run is the word lists alone (no patterns, cues or capitals).
Last line: RESULT spans=… recall_ids=… recall_names=… recall_places=… precision=… …
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    suggest,
)
from storyhub.redaction.gazetteer import FIRST_NAMES, PLACES  # noqa: E402

KNOWN_NAMES = ["Darren", "Sandra", "Kelly", "Mohammed", "Gary", "Claire", "Jamie", "Tracey"]
OTHER_NAMES = ["Kwabena", "Siobhan", "Dariusz", "Oluwaseun", "Bronwen", "Tadhg", "Marek",
               "Precious"]
SURNAMES = ["Hollis", "Okafor", "Nowak", "Pritchard", "Begum", "McAllister", "Osei", "Wright"]
KNOWN_PLACES = ["Leeds", "Bradford", "Luton", "Swindon", "Hull", "Croydon", "Wigan", "Derby"]
OTHER_PLACES = ["Ferncliffe", "Abergele", "Thornaby", "Kirkby", "Pontefract", "Ashington"]
PRISONS = ["Belmarsh", "Wandsworth", "Altcourse", "Risley", "Hewell", "Ranby"]
STREETS = ["Acacia Road", "Mill Lane", "Station Street", "Elm Grove", "Victoria Avenue"]

TEMPLATES = [
    ("My name is {first} {last} and I have been on probation for a year.", ()),
    ("My probation officer {first} really listened to me.", ()),
    ("When I got out of HMP {prison} I had nowhere to go.", ()),
    ("I moved to {place} to be near my kids.", ()),
    ("The hostel in {place} was the first place I felt safe.", ()),
    ("I live at {number} {street} now, with my sister.", ()),
    ("You can call me on {phone} if anything changes.", ()),
    ("Mrs {last} at the Jobcentre sorted my Universal Credit.", ()),
    ("My prison number was {prison_no} and they still use it.", ()),
    ("My mate {first} came with me to the appointment.", ()),
    ("Send it to {email} and I will read it.", ()),
    ("My National Insurance number is {nino} if you need it.", ()),
    ("I was born in {place} but grew up all over.", ()),
    ("{first} from the recovery group rang me every Monday.", ()),
    ("I was born on the {dob} and I am still here.", ()),
    ("My date of birth is {dob_num} on the form.", ()),
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


def _phone(rng: random.Random) -> str:
    return f"07{rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)}"


def make_set(n: int, seed: int = 7) -> list[tuple[list[str], list[tuple[int, int, str]]]]:
    """Return (words, gold spans (first, last, label)) for `n` sentences."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable test set, not a secret
    out = []
    for i in range(n):
        if i % 4 == 3:
            out.append((rng.choice(ORDINARY).split(), []))
            continue
        template, _ = rng.choice(TEMPLATES)
        slots = {
            "first": (rng.choice(KNOWN_NAMES if rng.random() < 0.5 else OTHER_NAMES), NAME),
            "last": (rng.choice(SURNAMES), NAME),
            "place": (rng.choice(KNOWN_PLACES if rng.random() < 0.5 else OTHER_PLACES), PLACE),
            "prison": (rng.choice(PRISONS), PLACE),
            "street": (rng.choice(STREETS), ADDRESS),
            "number": (str(rng.randint(1, 140)), ADDRESS),
            "phone": (_phone(rng), PHONE),
            "prison_no": (f"A{rng.randint(1000, 9999)}B{rng.choice('CDEFG')}", ID),
            "email": (f"{rng.choice(['dj', 'k.w', 'sam88'])}@example.com", EMAIL),
            "nino": (f"QQ{rng.randint(100000, 999999)}C", ID),
            "dob": (f"{rng.randint(1, 28)}th of {rng.choice(['May', 'June', 'March'])} "
                    f"{rng.randint(1960, 2005)}", DATE),
            "dob_num": (f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/"
                        f"{rng.randint(1960, 2005)}", DATE),
        }
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
        out.append((words, gold))
    return out


def without_capitals(data):
    """The same sentences as an engine without capitals or punctuation would write them."""
    return [([bare(w).lower() for w in words], gold) for words, gold in data]


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
    suggested = good = 0
    for words, gold in data:
        found = finder(words)
        covered = {i: s.label for s in found for i in range(s.first, s.last + 1)}
        for first, last, label in gold:
            group = next(g for g, labels in groups.items() if label in labels)
            total[group] += 1
            # Found: every word of it is redacted (any label: a reporter keeps the suggestion).
            if all(i in covered for i in range(first, last + 1)):
                hit[group] += 1
        gold_words = {i for first, last, _ in gold for i in range(first, last + 1)}
        for s in found:
            suggested += 1
            good += any(i in gold_words for i in range(s.first, s.last + 1))
    result = {f"recall_{g}": hit[g] / total[g] if total[g] else 1.0 for g in groups}
    result["precision"] = good / suggested if suggested else 1.0
    result["spans"] = sum(total.values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=400, help="sentences to make")
    args = parser.parse_args()
    clean = make_set(args.stories)
    lower = without_capitals(clean)
    data = clean + lower
    ours = score(data, suggest)
    peer = score(data, wordlists_only)
    for name, figures in (("word lists only", peer), ("StoryHub, clean", score(clean, suggest)),
                          ("StoryHub, lower", score(lower, suggest)), ("StoryHub, all", ours)):
        print(f"{name:>16}: " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else
                                         f"{k}={v}" for k, v in figures.items()))
    print(f"RESULT spans={ours['spans']} recall_ids={ours['recall_ids']:.3f} "
          f"recall_names={ours['recall_names']:.3f} recall_places={ours['recall_places']:.3f} "
          f"recall_addresses={ours['recall_addresses']:.3f} precision={ours['precision']:.3f} "
          f"peer_recall_names={peer['recall_names']:.3f} "
          f"peer_precision={peer['precision']:.3f}")


if __name__ == "__main__":
    main()
