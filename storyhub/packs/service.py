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
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from .. import audit, policy
from ..accounts.models import User
from ..extensions import db
from ..policy import Form
from ..stories.models import Story, StorytellerRole, StoryType
from ..themes import reading
from ..themes.facilitator_edits import passages_of
from ..themes.models import Passage, RunStatus, Theme, ThemePassage, ThemeRun
from ..themes.service import run_passages
from ..transcripts.models import Transcript, Word
from ..transcripts.text import text_between, unsure_between, unsure_counts
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
    """Return a theme's passages that may be quoted: pinned first, then those with no word
    left unchecked that the recogniser was unsure of, each the most typical first."""
    rows = reading.quote_order(passages_of(run, theme_id))
    unsure = unchecked_passages(rows)
    return sorted(rows, key=lambda row: (not row.pinned, row.passage_id in unsure))


def unchecked_passages(rows: list[ThemePassage]) -> set[int]:
    """Return the ids of the passages among `rows` holding unsure words nobody has checked."""
    transcripts = {t.id: t for t in db.session.scalars(select(Transcript).where(
        Transcript.story_id.in_({row.passage.story_id for row in rows})))}
    with_unsure = {transcripts[i].story_id: transcripts[i] for i in unsure_counts(transcripts)}
    return {row.passage_id for row in rows if row.passage.story_id in with_unsure
            and unsure_between(with_unsure[row.passage.story_id], row.passage.speaker,
                               row.passage.start, row.passage.end)}


def choose_quotes(ordered: list[list[ThemePassage]], per_theme: int) -> list[list[ThemePassage]]:
    """Pick quotes for each theme: pinned first; one per story until every story has a turn;
    within a theme, a storyteller role not heard yet before one heard already (so a theme told
    by staff and people on probation is quoted from both)."""
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
            heard = {r.passage.story.storyteller.role for r in chosen[i]}
            rest = [r for r in rows if r.passage.story_id not in here]
            fresh = [r for r in rest if r.passage.story_id not in used]
            pick = next((r for group in (fresh, rest) for r in group
                         if r.passage.story.storyteller.role not in heard), None) or next(
                iter(fresh or rest), None)
            if pick is not None:
                chosen[i].append(pick)
                used.add(pick.passage.story_id)
    return chosen


@dataclass(frozen=True)
class ThemeChoice:
    """A theme of the run as the facilitator chooses among them for a workshop."""

    theme: Theme
    stories: int
    passages: int
    quotable: int  # passages that may be quoted now
    roles: list[str]


def theme_choices(run: ThemeRun) -> list[ThemeChoice]:
    """Return the run's shown themes with passages, in board order, to choose a workshop's from."""
    views, _ = reading.theme_views(run, include_hidden=False)
    return [ThemeChoice(v.theme, len(v.stories), v.passages,
                        len(quote_candidates(run, v.theme.id)),
                        [role.label for role in StorytellerRole if v.stories_by_role.get(role)])
            for v in views if v.passages]


def quote_from(row: ThemePassage, position: int) -> WorkshopQuote:
    passage = row.passage
    return WorkshopQuote(story_id=passage.story_id, passage_id=passage.id, position=position,
                         speaker=passage.speaker, start=passage.start, end=passage.end,
                         text=passage.text)


def create_workshop(run_id: int, actor_id: int, title: str, held_on: date | None = None,
                    place: str = "", audience: str = Audience.MIXED.value,
                    facilitators: str = "", safeguarding_contact: str = "",
                    theme_ids: list[int] | None = None,
                    quotes: int = DEFAULT_QUOTES) -> Workshop:
    """Create a workshop from a finished run, with quotes: the themes chosen (`theme_ids`), or
    else the first shown ones in board order, as many as a workshop holds."""
    run = _done_run(run_id)
    title = title.strip()
    if not title:
        raise ValueError("Give the workshop a title.")
    views, _ = reading.theme_views(run, include_hidden=False)
    views = [v for v in views if v.passages]
    if theme_ids is None:
        views = views[:MAX_THEMES]
    else:
        wanted = set(theme_ids)
        if not wanted:
            raise ValueError("Choose at least one theme for the workshop.")
        if len(wanted) > MAX_THEMES:
            raise ValueError(f"A workshop can look at {MAX_THEMES} themes at most; you chose "
                             f"{len(wanted)}. Leave some out: you can add them later.")
        views = [v for v in views if v.theme.id in wanted]
        if len(views) != len(wanted):
            raise LookupError(sorted(wanted - {v.theme.id for v in views}))
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


@dataclass(frozen=True)
class Quoted:
    """Words to print from a story: who says them, where in the recording, and what they are."""

    story_id: int
    speaker: str
    start: float
    end: float
    text: str
    keep_unsure: bool = False  # printed as it is, words nobody checked and all


@dataclass(frozen=True)
class Fault:
    """Why words may not be printed now; `now` is what the transcript says there instead,
    when the person asking may still read it (for a facilitator to compare)."""

    kind: str
    why: str
    now: str | None = None

    @property
    def sentence(self) -> str:
        return self.why[0].upper() + self.why[1:]


def fault(quoted: Quoted, actor=None) -> Fault | None:
    """Return why these words may not be printed now, or None when they may.

    The one check behind building a pack, showing a workshop and handing out a stored
    version: the story's consent covers quoting today (not withdrawn, not past its review
    date), its transcript is still reviewed and still says exactly these words in the redacted
    form (so a word redacted since is never printed), and they hold no part of the
    storyteller's stored name. `why` never repeats the words.
    """
    story = db.session.get(Story, quoted.story_id)
    if story is None:
        return Fault("erased", "the story has been erased.")
    decision = policy.decide(actor, story, policy.Action.QUOTE)
    if not decision.allowed:
        return Fault("consent", str(decision.reason))
    transcript = transcript_of(story.id)
    current = (text_between(transcript, quoted.speaker, quoted.start, quoted.end, Form.REDACTED)
               if transcript is not None else None)
    if transcript is None or transcript.reviewed_at is None:
        return Fault("unreviewed", "the story's transcript is no longer marked as reviewed.",
                     current)
    if current != quoted.text:
        return Fault("changed", "the transcript was changed after the quote was chosen "
                     "(corrected or redacted), so the quote no longer matches it.", current)
    if story.storyteller.named_in(quoted.text):
        return Fault("named", "it holds the storyteller's name.")
    waiting = policy.waiting_redactions(story, (quoted.speaker, quoted.start, quoted.end))
    if waiting:  # the words are not shown: they may be the ones to redact
        return Fault("waiting", f"StoryHub suggests redacting {waiting} "
                     f"{'word' if waiting == 1 else 'words'} in it, and its reporter has not "
                     "redacted or dismissed "
                     f"{'it' if waiting == 1 else 'them'} yet.")
    unsure = unsure_between(transcript, quoted.speaker, quoted.start, quoted.end)
    if unsure and not quoted.keep_unsure:
        words = ", ".join(f"“{t.text}”" for t in unsure)
        return Fault("unsure", f"{len(unsure)} {'word' if len(unsure) == 1 else 'words'} in it "
                     f"the speech recogniser was unsure of ({words}) "
                     f"{'has' if len(unsure) == 1 else 'have'} not been checked against the "
                     "recording.", current)
    return None


ADVICE = {
    "erased": "Remove the quote.",
    "consent": "Remove the quote or choose another.",
    "unreviewed": "Ask its reporter to check it, or choose another quote.",
    "changed": "Use the transcript's new words or choose another quote.",
    "named": "Redact the name in the transcript, then use its new words.",
    "waiting": "Ask the reporter who gathered the story to decide on the transcript page, or "
               "choose another quote.",
    "unsure": "Check them in the transcript (or ask its reporter to), choose another quote, "
              "or keep the quote as it is.",
}


def as_quoted(quote: WorkshopQuote) -> Quoted:
    return Quoted(quote.story_id, quote.speaker, quote.start, quote.end, quote.text,
                  quote.keep_unsure)


def quote_problem(theme: WorkshopTheme, quote: WorkshopQuote, actor=None) -> str | None:
    """Return why a quote cannot go in a pack now, or None when it can."""
    found = fault(as_quoted(quote), actor)
    return None if found is None else _problem(theme, quote, found)


def _problem(theme: WorkshopTheme, quote: WorkshopQuote, found: Fault) -> str:
    return f"{quote_ref(theme, quote)}: {found.sentence} {ADVICE[found.kind]}"


def _speaker_of(quote: dict) -> str:
    """Return who says a stored version's quote (its passage knows; "" lets the times decide)."""
    passage = db.session.get(Passage, quote["passage_id"]) if quote.get("passage_id") else None
    return passage.speaker if passage is not None else ""


def redacted_words() -> set[str]:
    """Return every word redacted in any transcript (lower case, bare): none may be printed."""
    return {bare for text in db.session.scalars(select(Word.text).where(
        Word.redaction.is_not(None)).distinct()) if (bare := _bare(text))}


def _bare(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def name_problem(number: int, title: str, description: str, redacted: set[str]) -> str | None:
    """Say why a theme's name or description may not be printed: it holds a redacted word.

    A workshop keeps its own copy of each theme's name, taken when the theme was added; a word
    redacted since (a name the run's own default name has lost) would stay in the copy.
    """
    said = {_bare(w) for w in f"{title} {description}".split()} & redacted
    if not said:
        return None
    return (f"Theme {number}'s name or description holds a word redacted in the stories since. "
            "Rename the theme (or change its description) before printing.")


def version_problems(pack: WorkshopPack, actor=None) -> list[str]:
    """Say why a stored pack version may not be handed out now (empty when it may).

    Asked at every download and whenever versions are listed: a version printed words that
    may since have been withdrawn, gone past their consent's review date or been redacted.
    """
    problems = []
    redacted = redacted_words()
    for theme in pack.content.get("themes", []):
        named = name_problem(theme.get("number", 0), theme["title"],
                             theme.get("description", ""), redacted)
        if named:
            problems.append(named)
        for number, quote in enumerate(theme["quotes"], start=1):
            found = fault(Quoted(quote["story_id"], _speaker_of(quote), quote["start"],
                                 quote["end"], quote["text"], quote.get("keep_unsure", False)),
                          actor)
            if found is not None:
                problems.append(f"Quote {number} in “{theme['title']}” (story {quote['code']}): "
                                f"{found.sentence}")
    return problems


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
    # What the workshop page may show of a quote with a problem, by WorkshopQuote.id: the
    # transcript's current (redacted) words where the story may still be quoted, else None.
    # Never the words kept with the quote: they may hold a word redacted since.
    shown_instead: dict[int, str | None] = field(default_factory=dict)
    quote_kinds: dict[int, str] = field(default_factory=dict)  # by id: the Fault's kind
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


def assemble_checked(workshop: Workshop, actor=None) -> Checked:
    """Assemble the pack's content from the workshop as it stands, checking every quote."""
    run = _done_run_of(workshop)
    rows = run_passages(run) if run is not None else []
    views = ({v.theme.id: v for v in reading.theme_views(run, rows=rows)[0]}
             if run is not None else {})
    checked = Checked({})
    problems = checked.problems
    themes: list[dict] = []
    quoted: list[int] = []
    clip = 0
    for number, theme in enumerate(workshop.themes, start=1):
        quotes = []
        for quote in theme.quotes:
            found = fault(as_quoted(quote), actor)
            if found is not None:
                problem = _problem(theme, quote, found)
                problems.append(problem)
                checked.quote_problems[quote.id] = problem
                checked.shown_instead[quote.id] = found.now
                checked.quote_kinds[quote.id] = found.kind
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
            if quote.keep_unsure:  # only when set, so versions made before read the same
                quotes[-1]["keep_unsure"] = True
            quoted.append(story.id)
        view = views.get(theme.theme_id) if theme.theme_id is not None else None
        themes.append({
            "number": number, "title": theme.title, "description": theme.description,
            "questions": theme.question_list,
            "stories": len(view.stories) if view else len({q["story_id"] for q in quotes}),
            "shared_label": view.shared_label if view else "",
            "quotes": quotes})
    redacted = redacted_words()
    for shown in themes:
        named = name_problem(shown["number"], shown["title"], shown["description"], redacted)
        if named:
            problems.append(named)
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
    workshop = get_workshop(workshop_id)
    checked = assemble_checked(workshop, db.session.get(User, actor_id))
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
    checked = assemble_checked(workshop, actor)
    latest = workshop.packs[0] if workshop.packs else None
    reasons = [workshop.notice] if workshop.notice else []
    if latest is not None:
        if checked.problems:
            reasons.append("Some quotes can no longer be used as they are (see below).")
        elif latest.digest != checked.digest:
            reasons += _changes(latest.content, checked.content) or [
                "The workshop changed since this version was made."]
    return PackState(latest, reasons, checked.problems, checked)
