"""What a run says, read for people: themes with perspectives by role, the board, the map."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from .. import policy
from ..stories.models import StorytellerRole
from .models import Theme, ThemePassage, ThemeRun
from .naming import subtitles
from .service import run_passages

PROBATION = StorytellerRole.PERSON_ON_PROBATION
STAFF = StorytellerRole.STAFF
# Storytellers of each role, as a theme's badge names them.
WHO = {PROBATION: "people on probation", STAFF: "staff",
       StorytellerRole.PEER_MENTOR: "peer mentors", StorytellerRole.FAMILY: "family members",
       StorytellerRole.PARTNER_AGENCY: "partner agencies"}


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass
class Quote:
    passage_id: int
    story_id: int
    text: str
    role: str
    start: float
    end: float
    pinned: bool
    playable: bool


@dataclass
class ThemeView:
    theme: Theme
    passages: int = 0
    stories: set[int] = field(default_factory=set)
    passages_by_role: Counter = field(default_factory=Counter)
    stories_by_role: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    quotes: list[Quote] = field(default_factory=list)
    # The theme's most representative sentence, from passages that may be quoted.
    subtitle: str = ""

    def roles(self) -> list[StorytellerRole]:
        """Return the roles of the theme's storytellers, most stories first."""
        order = list(StorytellerRole)
        return sorted((StorytellerRole(role) for role, ids in self.stories_by_role.items()
                       if ids),
                      key=lambda role: (-len(self.stories_by_role[role]), order.index(role)))

    @property
    def shared_by(self) -> str:
        """Say whose theme this is: shared by staff and people on probation (with others or
        not), only one of those groups', or any other mix ("others")."""
        roles = set(self.roles())
        if {STAFF, PROBATION} <= roles:
            return "shared"
        if roles == {PROBATION}:
            return "probation"
        if roles == {STAFF}:
            return "staff"
        return "others"

    @property
    def shared_label(self) -> str:
        """Say who told the theme's stories, naming every storyteller role among them."""
        roles = self.roles()
        if not roles:
            return "No stories"
        if len(roles) == 1:
            return f"Only {WHO[roles[0]]}"
        if self.shared_by == "shared":  # the two groups a workshop brings together, first
            roles = [STAFF, PROBATION] + [r for r in roles if r not in (STAFF, PROBATION)]
            return f"Shared by {_listed([WHO[r] for r in roles])}"
        return f"Told by {_listed([WHO[r] for r in roles])}"

    def role_counts(self) -> list[tuple[str, int, int]]:
        """Return (role label, stories, passages) for each role present, in a fixed order."""
        return [(role.label, len(self.stories_by_role[role]), self.passages_by_role[role])
                for role in StorytellerRole if self.passages_by_role.get(role)]


def theme_views(run: ThemeRun, include_hidden: bool = True, quotes: int = 0,
                rows: list[ThemePassage] | None = None,
                ) -> tuple[list[ThemeView], list[ThemePassage]]:
    """Return a view per theme (with perspectives) and the passages left without a theme.

    `rows` are the run's `run_passages` when the caller has loaded them already.
    """
    views = {t.id: ThemeView(t) for t in run.themes if include_hidden or not t.hidden}
    unassigned: list[ThemePassage] = []
    members: dict[int, list[ThemePassage]] = defaultdict(list)
    for row in run_passages(run) if rows is None else rows:
        if row.theme_id is None:
            unassigned.append(row)
            continue
        view = views.get(row.theme_id)
        if view is None:
            continue
        role = row.passage.story.storyteller.role
        view.passages += 1
        view.stories.add(row.passage.story_id)
        view.passages_by_role[role] += 1
        view.stories_by_role[role].add(row.passage.story_id)
        members[row.theme_id].append(row)
    for theme_id, rows in members.items():
        views[theme_id].subtitle = subtitle(views[theme_id].theme, rows)
    if quotes:
        for theme_id, rows in members.items():
            views[theme_id].quotes = pick_quotes(rows, quotes)
    ordered = sorted(views.values(), key=lambda v: (v.theme.hidden, -v.passages,
                                                    v.theme.position))
    return [v for v in ordered if v.passages or v.theme.edited], unassigned


def quote_order(rows: list[ThemePassage]) -> list[ThemePassage]:
    """Return the passages that may be quoted, pinned first, then nearest the theme's centre.

    Only stories whose consent covers quoting in workshop materials are quoted.
    """
    quotable = [r for r in rows
                if policy.decide(None, r.passage.story, policy.Action.QUOTE).allowed]
    if not quotable:
        return []
    vectors = np.stack([np.frombuffer(r.passage.embedding, dtype=np.float32)  # type: ignore
                        for r in quotable])
    centre = vectors.mean(0)
    closeness = vectors @ centre / np.maximum(np.linalg.norm(vectors, axis=1)
                                              * np.linalg.norm(centre), 1e-12)
    order = sorted(range(len(quotable)), key=lambda i: (not quotable[i].pinned, -closeness[i]))
    return [quotable[i] for i in order]


def subtitle(theme: Theme, rows: list[ThemePassage]) -> str:
    """Return the theme's most representative sentence among passages that may be quoted.

    Worked out on every read, never stored: a sentence whose storyteller narrows consent or
    whose words are redacted later must leave the page with them.
    """
    quotable = [r for r in rows if r.passage.embedding
                and policy.decide(None, r.passage.story, policy.Action.QUOTE).allowed]
    if not quotable:
        return ""
    vectors = np.stack([np.frombuffer(r.passage.embedding, dtype=np.float32)  # type: ignore
                        for r in quotable])
    found = subtitles([r.passage.text for r in quotable], [0] * len(quotable), vectors,
                      {0: list(theme.keywords)})
    return found.get(0, "")


def pick_quotes(rows: list[ThemePassage], limit: int = 4) -> list[Quote]:
    """Return pinned quotes first, then the passages nearest the theme's centre.

    At most one quote per story until every story has had a turn, and audio only where
    consent covers playing it in workshops.
    """
    order = quote_order(rows)
    chosen: list[ThemePassage] = []
    stories: set[int] = set()
    for row in order:  # pinned, then one per story
        if row.pinned or row.passage.story_id not in stories:
            chosen.append(row)
            stories.add(row.passage.story_id)
    chosen += [row for row in order if row not in chosen]
    result = []
    for row in chosen[:limit]:
        story = row.passage.story
        result.append(Quote(
            passage_id=row.passage_id, story_id=story.id, text=row.passage.text,
            role=story.storyteller.role.label, start=row.passage.start, end=row.passage.end,
            pinned=row.pinned,
            playable=story.recording is not None
            and policy.decide(None, story, policy.Action.PLAY_CLIP).allowed))
    return result


def map_points(run: ThemeRun) -> dict:
    """Return the theme map's data: one trace per theme, points with hover text."""
    labels = {t.id: t.label for t in run.themes if not t.hidden}
    traces: dict[str, dict] = {}
    for row in run_passages(run):
        if row.theme_id is not None and row.theme_id not in labels:
            continue
        name = labels.get(row.theme_id, "No theme") if row.theme_id else "No theme"
        trace = traces.setdefault(name, {"name": name, "x": [], "y": [], "text": []})
        words = row.passage.text.split()
        snippet = " ".join(words[:40]) + (" …" if len(words) > 40 else "")
        trace["x"].append(round(row.x, 4))
        trace["y"].append(round(row.y, 4))
        trace["text"].append(f"{row.passage.story.storyteller.role.label}: {snippet}")
    return {"traces": sorted(traces.values(), key=lambda t: -len(t["x"]))}
