"""The corpus an evaluator receives: a theme run's stories as the exporter may read them.

Only stories whose consent still covers analysis, and that the exporter may analyse
(`policy.decide(actor, story, Action.ANALYSE)`), in the form the policy gives (redacted for
everyone who may export). Each transcript becomes plain text, "Speaker 1: …" a line, with
every word's place in it, so a theme's passages become exact stretches of that text; a
passage whose words are no longer in the transcript (corrected since) is left out.
Stories are named by their story code (S012), never their title or storyteller.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from .. import policy
from ..accounts.models import User
from ..extensions import db
from ..stories.models import Story
from ..themes.models import Theme, ThemeRun
from ..themes.service import run_passages
from ..transcripts.models import Transcript
from ..transcripts.text import tokens, words_between


def story_code(story_id: int) -> str:
    """The code a story goes by outside StoryHub (as workshop packs print it)."""
    return f"S{story_id:03d}"


@dataclass
class Source:
    story_id: int
    code: str
    role: str  # the storyteller role's label
    text: str
    word_spans: dict[int, tuple[int, int]] = field(repr=False)  # word id -> [start, end)


@dataclass
class Segment:
    """A coded stretch of a source: [start, end) in characters."""

    story_id: int
    theme_id: int
    start: int
    end: int


@dataclass
class Corpus:
    run: ThemeRun
    themes: list[Theme]
    sources: dict[int, Source]
    segments: list[Segment]
    left_out: int  # passages whose words are no longer in the transcript

    def passages(self, theme_id: int, story_id: int) -> int:
        return sum(1 for s in self.segments if s.theme_id == theme_id and s.story_id == story_id)


def source_of(story: Story, transcript: Transcript, form: policy.Form) -> Source:
    """The transcript as plain text in `form`, with each word's place in it."""
    names: dict[str, str] = {}
    lines: list[str] = []
    spans: dict[int, tuple[int, int]] = {}
    offset = 0
    for segment in transcript.segments:
        speaker = names.setdefault(segment.speaker, f"Speaker {len(names) + 1}")
        line = f"{speaker}:"
        for token in tokens(segment.words, form):
            line += " "
            start = offset + len(line)
            line += token.text
            for word_id in token.word_ids:
                spans[word_id] = (start, offset + len(line))
        lines.append(line)
        offset += len(line) + 1  # the newline
    return Source(story.id, story_code(story.id), story.storyteller.role.label,
                  "\n".join(lines) + "\n", spans)


def build(run: ThemeRun, actor: User) -> Corpus:
    """The run's shown themes, and its stories `actor` may analyse, as sources and segments."""
    rows = run_passages(run)  # stories whose consent covers analysis, in story order
    stories = {row.passage.story_id: row.passage.story for row in rows}
    allowed = {story_id: decision.form for story_id, story in stories.items()
               if (decision := policy.decide(actor, story, policy.Action.ANALYSE)).allowed}
    transcripts = {t.story_id: t for t in db.session.scalars(
        select(Transcript).where(Transcript.story_id.in_(list(allowed))))}
    sources = {story_id: source_of(stories[story_id], transcripts[story_id], form)
               for story_id, form in allowed.items() if story_id in transcripts}
    shown = {theme.id: theme for theme in run.themes if not theme.hidden}
    segments, left_out = [], 0
    by_theme: dict[int, int] = defaultdict(int)
    for row in rows:
        source = sources.get(row.passage.story_id)
        if row.theme_id not in shown or source is None:
            continue
        passage = row.passage
        words = words_between(transcripts[passage.story_id], passage.speaker, passage.start,
                              passage.end)
        places = [source.word_spans[w.id] for w in words if w.id in source.word_spans]
        if not places:
            left_out += 1
            continue
        segments.append(Segment(passage.story_id, row.theme_id, min(p[0] for p in places),
                                max(p[1] for p in places)))
        by_theme[row.theme_id] += 1
    themes = [theme for theme in run.themes if theme.id in by_theme]
    return Corpus(run, themes, sources, segments, left_out)
