"""Theme quality on a small written collection: the real passage splitting, embedding and model.

One fit is shared by the module (the same code path a theme run takes: `split_passages`,
`embed`, `params_for`, `fit_themes` with the stories as groups). The corpus is the twelve
stories of tests/support/theme_corpus.py, four known themes, plus one story that tells two of them.
No test asserts an exact model output: they assert how the known themes are grouped.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from storyhub.themes import modeling
from storyhub.themes.naming import candidates, lemma
from storyhub.themes.passages import split_passages
from storyhub.transcripts.models import Segment, Transcript, Word
from tests.support.theme_corpus import CORPUS

pytestmark = pytest.mark.slow  # loads the embedding model (a few seconds, once)

# Told by one storyteller: first about housing, then, at length, about drugs.
TWO_THEMES = ("two-themes", ("housing", "drugs"),
              "When I was released I had nowhere to live. The council put me in a hostel for "
              "six weeks and then I was homeless again, sleeping on a friend's sofa. Without "
              "an address the landlord would not give me a tenancy and the housing list was "
              "two years long. "
              "The other thing was heroin. I had used it every day for years and I was "
              "stealing to pay for it. The drug service put me on methadone and a recovery "
              "group, and my key worker found me a rehab bed. I have been clean for five "
              "months and I stay away from the dealers.")
THEME_OF = {s.key: s.theme for s in CORPUS}


def transcript_of(text: str) -> Transcript:
    """An unsaved one-speaker transcript, one segment a sentence, words 0.35 s apart."""
    transcript = Transcript(speakers={"S1": "Storyteller"})
    clock = 0.0
    for pos, sentence in enumerate(text.replace(". ", ".\n").splitlines()):
        words = []
        for i, word in enumerate(sentence.split()):
            words.append(Word(position=i, start=clock, end=clock + 0.3, text=word,
                              probability=1.0))
            clock += 0.35
        transcript.segments.append(Segment(position=pos, start=words[0].start,
                                           end=words[-1].end, speaker="S1", text=sentence,
                                           words=words))
    return transcript


def stories(change: tuple[str, str, str] | None = None) -> dict[str, str]:
    """Return key -> text; `change` swaps one word (key, old, new) in one story."""
    texts = {s.key: s.text for s in CORPUS} | {TWO_THEMES[0]: TWO_THEMES[2]}
    if change:
        key, old, new = change
        assert old in texts[key]
        texts[key] = texts[key].replace(old, new, 1)
    return texts


def themes(texts: dict[str, str], random_state: int = 42) -> tuple[dict[str, set[int]], int]:
    """Run the theme pipeline; return story key -> its themes, and the number of themes."""
    keys, passages = [], []
    for key, text in texts.items():
        for found in split_passages(transcript_of(text)):
            keys.append(key)
            passages.append(found.text)
    result = modeling.fit_themes(passages, modeling.embed(passages),
                                 modeling.params_for(len(passages), random_state=random_state),
                                 groups=keys)
    placed: dict[str, set[int]] = defaultdict(set)
    for key, topic in zip(keys, result.topics, strict=True):
        placed[key].add(topic)
    return dict(placed), len(result.themes)


@pytest.fixture(scope="module")
def fitted():
    return themes(stories())


def main_theme(placed: dict[str, set[int]], key: str) -> int:
    return min(placed[key])


def test_stories_of_one_known_theme_share_a_theme(fitted):
    placed, _count = fitted
    by_known: dict[str, list[int]] = defaultdict(list)
    for key, theme in THEME_OF.items():
        by_known[theme].append(main_theme(placed, key) if len(placed[key]) == 1 else -2)
    for known, found in by_known.items():
        assert all(len(placed[k]) == 1 for k in THEME_OF if THEME_OF[k] == known), placed
        assert len(set(found)) == 1, f"{known} is split: {placed}"
    assert len({found[0] for found in by_known.values()}) == 4, f"themes mixed: {placed}"


def test_a_two_theme_story_is_listed_under_both(fitted):
    placed, _count = fitted
    theme_of_known = {THEME_OF[k]: main_theme(placed, k) for k in THEME_OF}
    both = {theme_of_known[t] for t in TWO_THEMES[1]}
    assert placed[TWO_THEMES[0]] == both, placed


def test_the_same_input_gives_the_same_result(fitted):
    assert themes(stories()) == fitted


def test_one_word_in_one_transcript_does_not_change_the_number_of_themes(fitted):
    _placed, count = fitted
    for change in (("work-3", "kitchen", "cafe"), ("officer-2", "honest", "open")):
        assert themes(stories(change))[1] == count, change


def test_names_are_made_of_things_not_stray_verbs():
    said = candidates("I finished the course and went to the hostels, the council said no")
    assert "hostel" in said and "council" in said and "course" in said
    assert not {"finished", "went", "said", "finish"} & set(said)
    assert lemma("stories") == "story" and lemma("landlords") == "landlord"
