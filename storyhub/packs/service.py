"""The verbs of workshops: build one from a theme run, shape it, and generate its pack.

Every quote is checked when a pack is generated: its story's consent must still cover quoting,
its transcript must still be reviewed and still say exactly the quoted words (in the redacted
form), and no storyteller's stored name may appear in it. Any failure stops generation with a
message naming the quote, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from .. import audit, policy
from ..extensions import db
from ..policy import Form
from ..stories.models import Story, StoryType
from ..themes import board
from ..themes.editing import passages_of
from ..themes.models import RunStatus, ThemePassage, ThemeRun
from ..themes.service import run_passages
from ..transcripts.models import Transcript
from ..transcripts.text import text_between
from . import render
from .models import Audience, Workshop, WorkshopPack, WorkshopQuote, WorkshopTheme

logger = logging.getLogger(__name__)

MAX_THEMES = 8
DEFAULT_QUOTES = 3
MIN_QUOTES, MAX_QUOTES = 2, 4
DEFAULT_QUESTIONS = ("What stands out for you in these stories?\n"
                     "Does this match what you have seen or lived?")


class PackError(ValueError):
    """A pack cannot be generated as the workshop stands; the message says what to fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(" ".join(problems))


def story_code(story_id: int) -> str:
    """Return the code a quote is printed with: the story's, never the storyteller's."""
    return f"S{story_id:03d}"


def long_date(day: date | None) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}" if day else ""


def short_date(day: date | None) -> str:
    return f"{day.day} {day:%B %Y}" if day else ""


# -- building and shaping a workshop -------------------------------------------------------

def get_workshop(workshop_id: int) -> Workshop:
    workshop = db.session.get(Workshop, workshop_id)
    if workshop is None:
        raise LookupError(workshop_id)
    return workshop


def _done_run(run_id: int) -> ThemeRun:
    run = db.session.get(ThemeRun, run_id)
    if run is None:
        raise LookupError(run_id)
    if run.status is not RunStatus.DONE:
        raise ValueError("That theme run has not finished yet. Build the workshop when it has.")
    return run


def quote_candidates(run: ThemeRun, theme_id: int) -> list[ThemePassage]:
    """Return a theme's passages that may be quoted, pinned first, then the most typical."""
    return board.quote_order(passages_of(run, theme_id))


def choose_quotes(ordered: list[list[ThemePassage]], per_theme: int) -> list[list[ThemePassage]]:
    """Pick quotes for each theme: pinned first; one per story until every story has a turn."""
    chosen: list[list[ThemePassage]] = [[] for _ in ordered]
    used: set[int] = set()
    for i, rows in enumerate(ordered):
        for row in rows:
            if row.pinned and len(chosen[i]) < per_theme:
                chosen[i].append(row)
                used.add(row.passage.story_id)
    for turn in range(per_theme):
        for i, rows in enumerate(ordered):
            if len(chosen[i]) > turn:
                continue
            here = {r.passage.story_id for r in chosen[i]}
            rest = [r for r in rows if r not in chosen[i]]
            pick = (next((r for r in rest if r.passage.story_id not in used | here), None)
                    or next((r for r in rest if r.passage.story_id not in here), None))
            if pick is not None:
                chosen[i].append(pick)
                used.add(pick.passage.story_id)
    return chosen


def quote_from(row: ThemePassage, position: int) -> WorkshopQuote:
    passage = row.passage
    return WorkshopQuote(story_id=passage.story_id, passage_id=passage.id, position=position,
                         speaker=passage.speaker, start=passage.start, end=passage.end,
                         text=passage.text)


def create_workshop(run_id: int, actor_id: int, title: str, held_on: date | None = None,
                    place: str = "", audience: str = Audience.MIXED.value,
                    facilitators: str = "", safeguarding_contact: str = "",
                    themes: int = MAX_THEMES, quotes: int = DEFAULT_QUOTES) -> Workshop:
    """Create a workshop from a finished run: its shown themes in board order, with quotes."""
    run = _done_run(run_id)
    title = title.strip()
    if not title:
        raise ValueError("Give the workshop a title.")
    views, _ = board.theme_views(run, include_hidden=False)
    views = [v for v in views if v.passages][:themes]
    workshop = Workshop(title=title[:200], held_on=held_on, place=place.strip(),
                        audience=Audience(audience), facilitators=facilitators.strip(),
                        safeguarding_contact=safeguarding_contact.strip(), run_id=run.id,
                        created_by_id=actor_id)
    ordered = [quote_candidates(run, v.theme.id) for v in views]
    for position, (view, picked) in enumerate(zip(views, choose_quotes(ordered, quotes),
                                                  strict=True)):
        workshop.themes.append(WorkshopTheme(
            theme_id=view.theme.id, position=position, title=view.theme.label,
            description=view.theme.description or "", questions=DEFAULT_QUESTIONS,
            quotes=[quote_from(row, n) for n, row in enumerate(picked)]))
    db.session.add(workshop)
    db.session.flush()
    audit.record("workshop.create", actor_id, "workshop", workshop.id,
                 detail=f"from theme run {run.number}")
    return workshop


def update_details(workshop: Workshop, actor_id: int, **fields) -> None:
    for name in ("title", "place", "facilitators", "safeguarding_contact"):
        if name in fields:
            setattr(workshop, name, (fields[name] or "").strip())
    if not workshop.title:
        raise ValueError("Give the workshop a title.")
    if "held_on" in fields:
        workshop.held_on = fields["held_on"]
    if "audience" in fields:
        workshop.audience = Audience(fields["audience"])
    audit.record("workshop.edit", actor_id, "workshop", workshop.id)


# -- checking quotes and assembling a pack's content --------------------------------------

def transcript_of(story_id: int) -> Transcript | None:
    return db.session.scalar(select(Transcript).where(Transcript.story_id == story_id))


def quote_ref(theme: WorkshopTheme, quote: WorkshopQuote) -> str:
    return (f"Quote {quote.position + 1} in “{theme.title}” (story {story_code(quote.story_id)}, "
            f"{render.clock(quote.start)}–{render.clock(quote.end)})")


def _names_in(text: str, story: Story) -> bool:
    identity = story.storyteller.identity
    if identity is None:
        return False
    words = {w.lower() for w in re.findall(r"[\w'-]+", text)}
    return any(part.lower() in words for part in identity.real_name.split() if len(part) > 1)


def quote_problem(theme: WorkshopTheme, quote: WorkshopQuote, actor=None) -> str | None:
    """Return why a quote cannot go in a pack now, or None when it can."""
    ref = quote_ref(theme, quote)
    story = db.session.get(Story, quote.story_id)
    if story is None:
        return f"{ref}: the story has been erased. Remove the quote."
    decision = policy.decide(actor, story, policy.Action.QUOTE)
    if not decision.allowed:
        return f"{ref}: {decision.reason} Remove the quote or choose another."
    transcript = transcript_of(story.id)
    if transcript is None or transcript.reviewed_at is None:
        return (f"{ref}: the story's transcript is no longer marked as reviewed. Ask its "
                "reporter to check it, or choose another quote.")
    current = text_between(transcript, quote.speaker, quote.start, quote.end, Form.REDACTED)
    if current != quote.text:
        return (f"{ref}: the transcript was changed after the quote was chosen, so the quote "
                "no longer matches it. Use the transcript's new words or choose another quote.")
    if _names_in(quote.text, story):
        return (f"{ref}: it holds the storyteller's name. Redact the name in the transcript, "
                "then use its new words.")
    return None


def playable(quote: WorkshopQuote, actor) -> bool:
    """Say whether `actor` may play this quote's stretch of audio in a workshop."""
    story = db.session.get(Story, quote.story_id)
    return (story is not None and story.recording is not None and quote.passage_id is not None
            and policy.decide(actor, story, policy.Action.PLAY_CLIP).allowed)


@dataclass
class Checked:
    """A workshop's pack content as it stands, and what stops it being generated."""

    content: dict
    problems: list[str] = field(default_factory=list)
    story_ids: list[int] = field(default_factory=list)
    quote_problems: dict[int, str] = field(default_factory=dict)  # by WorkshopQuote.id
    playable: set[int] = field(default_factory=set)  # WorkshopQuote ids with a clip

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.content, sort_keys=True).encode()).hexdigest()


def _counted(counter: Counter, labels: dict) -> list[dict]:
    return [{"label": labels[key], "count": counter[key]} for key in labels if counter[key]]


def _gathering(rows: list[ThemePassage], quoted: set[int]) -> dict:
    """Count the stories the themes were drawn from, by storyteller role and story type.

    `rows` are `run_passages`, whose stories' consent is checked there already.
    """
    ids = {row.passage.story_id for row in rows} | quoted
    stories = db.session.scalars(select(Story).where(Story.id.in_(ids))).all() if ids else []
    roles = Counter(s.storyteller.role for s in stories)
    types = Counter(s.story_type for s in stories)
    days = sorted(s.recorded_on for s in stories)
    from ..stories.models import StorytellerRole

    return {
        "stories": len(stories),
        "reporters": len({s.reporter_id for s in stories if s.reporter_id is not None}),
        "first": short_date(days[0]) if days else "",
        "last": short_date(days[-1]) if days else "",
        "by_role": _counted(roles, {r: r.label for r in StorytellerRole}),
        "by_type": _counted(types, {t: t.label.split(" – ")[0] for t in StoryType}),
    }


def workshop_details(workshop: Workshop) -> dict:
    return {"title": workshop.title, "held_on": workshop.held_on.isoformat()
            if workshop.held_on else "", "held_on_text": long_date(workshop.held_on),
            "place": workshop.place, "audience": workshop.audience.label,
            "facilitators": workshop.facilitators,
            "safeguarding_contact": workshop.safeguarding_contact}


def _done_run_of(workshop: Workshop) -> ThemeRun | None:
    return workshop.run if workshop.run and workshop.run.status is RunStatus.DONE else None


def gathering_of(workshop: Workshop, quoted: set[int]) -> dict:
    """Count the stories behind a workshop's themes (see `_gathering`)."""
    run = _done_run_of(workshop)
    return _gathering(run_passages(run) if run is not None else [], quoted)


def check(workshop: Workshop, actor=None) -> Checked:
    """Assemble the pack's content from the workshop as it stands, checking every quote."""
    run = _done_run_of(workshop)
    rows = run_passages(run) if run is not None else []
    views = ({v.theme.id: v for v in board.theme_views(run, rows=rows)[0]}
             if run is not None else {})
    checked = Checked({})
    problems = checked.problems
    themes: list[dict] = []
    quoted: list[int] = []
    clip = 0
    for number, theme in enumerate(workshop.themes, start=1):
        quotes = []
        for quote in theme.quotes:
            problem = quote_problem(theme, quote, actor)
            if problem:
                problems.append(problem)
                checked.quote_problems[quote.id] = problem
                continue
            story = db.session.get(Story, quote.story_id)
            if story is None:  # erased since quote_problem looked
                continue
            audio = playable(quote, actor)
            if audio:
                checked.playable.add(quote.id)
            clip += audio
            quotes.append({
                "code": story_code(story.id), "role": story.storyteller.role.label,
                "start": round(quote.start, 2), "end": round(quote.end, 2), "text": quote.text,
                "passage_id": quote.passage_id, "story_id": story.id,
                "clip": f"{clip:02d}" if audio else ""})
            quoted.append(story.id)
        view = views.get(theme.theme_id) if theme.theme_id is not None else None
        themes.append({
            "number": number, "title": theme.title, "description": theme.description,
            "questions": theme.question_list,
            "stories": len(view.stories) if view else len({q["story_id"] for q in quotes}),
            "shared_label": view.shared_label if view else "",
            "quotes": quotes})
    if not themes:
        problems.append("Add at least one theme to the workshop.")
    elif not quoted and not problems:
        problems.append("Choose at least one quote: a pack shows the stories in their "
                        "storytellers' words.")
    checked.content = {
        "workshop": workshop_details(workshop),
        "run": {"number": run.number if run else 0,
                "finished_on": short_date(run.finished_at.date())
                if run and run.finished_at else "",
                "analysed_stories": len({r.passage.story_id for r in rows}),
                "passages": len(rows)},
        "gathering": _gathering(rows, set(quoted)),
        "themes": themes,
        "method": {"engine": "Whisper speech recognition",
                   "embedding_model": "all-MiniLM-L6-v2"},
    }
    checked.story_ids = sorted(set(quoted))
    return checked


def generate_pack(workshop_id: int, actor_id: int) -> tuple[WorkshopPack, bool]:
    """Generate the next pack version; return it and whether it is new.

    The same workshop and stories give the same content: asking again without a change
    returns the latest version rather than a copy of it.
    """
    from ..accounts.models import User

    workshop = get_workshop(workshop_id)
    checked = check(workshop, db.session.get(User, actor_id))
    if checked.problems:
        raise PackError(checked.problems)
    latest = workshop.packs[0] if workshop.packs else None
    if latest is not None and latest.digest == checked.digest:
        return latest, False
    version = max([p.version for p in workshop.packs] + [workshop.last_version]) + 1
    text = render.markdown_for("pack", checked.content, version=version)
    for piece in ("cards", "poster"):  # a broken template fails here, before anything is kept
        render.markdown_for(piece, checked.content, version=version)
    pack = WorkshopPack(workshop_id=workshop.id, version=version, digest=checked.digest,
                        content=checked.content, markdown=text, story_ids=checked.story_ids,
                        created_by_id=actor_id)
    db.session.add(pack)
    workshop.last_version = version
    workshop.notice = None
    db.session.flush()
    db.session.refresh(workshop)
    audit.record("pack.generate", actor_id, "workshop", workshop.id, detail=f"version {version}")
    logger.info("Workshop %s: pack version %s generated", workshop.id, version)
    return pack, True


def get_pack(workshop: Workshop, version: int) -> WorkshopPack:
    found = next((p for p in workshop.packs if p.version == version), None)
    if found is None:
        raise LookupError(version)
    return found


@dataclass
class PackState:
    latest: WorkshopPack | None
    reasons: list[str]
    problems: list[str]
    checked: Checked

    @property
    def stale(self) -> bool:
        return self.latest is not None and bool(self.reasons)


def _changes(old: dict, new: dict) -> list[str]:
    """Say what differs between two pack contents, in a facilitator's words."""
    reasons = []
    if old["workshop"] != new["workshop"]:
        reasons.append("The workshop's details changed.")
    strip = [{k: v for k, v in t.items() if k != "quotes"} for t in old["themes"]]
    if strip != [{k: v for k, v in t.items() if k != "quotes"} for t in new["themes"]]:
        reasons.append("Themes, their order or their questions changed.")
    if [t["quotes"] for t in old["themes"]] != [t["quotes"] for t in new["themes"]]:
        reasons.append("Quotes changed (chosen again, or their audio consent changed).")
    if old["gathering"] != new["gathering"] or old["run"] != new["run"]:
        reasons.append("The stories behind the themes changed (added, withdrawn or re-run).")
    return reasons


def pack_state(workshop: Workshop, actor=None) -> PackState:
    """Say whether the latest pack still matches the workshop and its stories, and why not."""
    checked = check(workshop, actor)
    latest = workshop.packs[0] if workshop.packs else None
    reasons = [workshop.notice] if workshop.notice else []
    if latest is not None:
        if checked.problems:
            reasons.append("Some quotes can no longer be used as they are (see below).")
        elif latest.digest != checked.digest:
            reasons += _changes(latest.content, checked.content) or [
                "The workshop changed since this version was made."]
    return PackState(latest, reasons, checked.problems, checked)
