"""Units of the theme model that need no database: passage splitting and the adaptive clusterer."""

from __future__ import annotations

import numpy as np
import pytest

from storyhub.themes import modeling
from storyhub.themes.passages import split_passages
from storyhub.transcripts.models import Segment, Transcript, Word


@pytest.mark.slow  # the first UMAP fit in a process compiles numba code (about 40 s)
def test_adaptive_model_on_tiny_and_mid_corpora_is_repeatable():
    """No passage left out on a tiny corpus; at most 5% on a bigger one; same input, same output."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 32))
    for n in (15, 400):
        points = np.concatenate([c + rng.normal(scale=0.6, size=(n // 5, 32)) for c in centres])
        params = modeling.params_for(len(points))
        a = modeling.AdaptiveClusterer(params).fit(
            modeling.AdaptiveReducer(params).fit_transform(points)).labels_
        b = modeling.AdaptiveClusterer(params).fit(
            modeling.AdaptiveReducer(params).fit_transform(points)).labels_
        assert (a == b).all()
        assert (a == -1).mean() <= 0.05
        assert len(set(a.tolist()) - {-1}) >= 5


def _transcript(turns: list[tuple[str, str]]) -> Transcript:
    """Build a transcript in memory: (speaker, text) turns, each word 0.4 s long."""
    transcript = Transcript(speakers={"S1": "Reporter", "S2": "Storyteller"})
    clock = 0.0
    for pos, (speaker, text) in enumerate(turns):
        words = []
        for i, word in enumerate(text.split()):
            words.append(Word(position=i, start=clock, end=clock + 0.3, text=word,
                              probability=0.9))
            clock += 0.4
        transcript.segments.append(Segment(position=pos, start=words[0].start,
                                           end=words[-1].end, speaker=speaker, text=text,
                                           words=words))
    return transcript


SENTENCE = "I waited {} weeks for a flat and the council kept losing my forms again."


def test_passages_keep_to_sentences_speakers_and_length():
    monologue = " ".join(SENTENCE.format(n) for n in range(25))  # 25 sentences of 15 words
    found = split_passages(_transcript([("S2", monologue)]))
    assert all(40 <= p.word_count <= 150 for p in found), [p.word_count for p in found]
    assert all(p.text.endswith(".") for p in found)
    assert " ".join(p.text for p in found) == monologue
    assert found[0].start == 0.0 and found[1].start == pytest.approx(found[0].end + 0.1)

    dialogue = _transcript([
        ("S1", "So tell me what happened when you first came out of prison?"),
        ("S2", " ".join(SENTENCE.format(n) for n in range(5))),
        ("S1", "Yeah."),
        ("S2", " ".join(SENTENCE.format(n) for n in range(5, 8))),
        ("S1", "Mm-hm, right."),
    ])
    found = split_passages(dialogue)
    assert [p.speaker for p in found] == ["Reporter", "Storyteller"]
    # Back-channel ("Yeah.") is skipped and does not break the storyteller's turn.
    assert found[1].word_count == 8 * 15
    assert "Yeah" not in " ".join(p.text for p in found)


