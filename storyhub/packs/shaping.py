"""Shape a workshop: the order of its themes and quotes, which quotes, the questions.

Quotes are chosen only from a theme's passages that may be quoted (`service.quote_candidates`),
and keep the words they had when chosen until the facilitator takes the transcript's new ones.
"""

from __future__ import annotations

from ..extensions import db
from ..policy import Form
from ..themes import reading
from ..themes.models import RunStatus, ThemePassage
from ..transcripts.text import text_between
from .models import Workshop, WorkshopQuote, WorkshopTheme
from .service import (
    DEFAULT_QUESTIONS,
    DEFAULT_QUOTES,
    MAX_QUOTES,
    MAX_THEMES,
    choose_quotes,
    quote_candidates,
    quote_from,
    transcript_of,
)


def _theme_of(workshop: Workshop, workshop_theme_id: int) -> WorkshopTheme:
    found = next((t for t in workshop.themes if t.id == workshop_theme_id), None)
    if found is None:
        raise LookupError(workshop_theme_id)
    return found


def _renumber(items: list) -> None:
    for position, item in enumerate(items):
        item.position = position


def move_theme(workshop: Workshop, workshop_theme_id: int, offset: int) -> None:
    """Move a theme up (offset -1) or down (+1) the workshop's order."""
    themes = list(workshop.themes)
    theme = _theme_of(workshop, workshop_theme_id)
    index = themes.index(theme)
    target = min(max(index + offset, 0), len(themes) - 1)
    themes.insert(target, themes.pop(index))
    _renumber(themes)


def remove_theme(workshop: Workshop, workshop_theme_id: int) -> None:
    theme = _theme_of(workshop, workshop_theme_id)
    workshop.themes.remove(theme)
    _renumber(workshop.themes)


def addable_themes(workshop: Workshop) -> list:
    """Return the run's shown themes the workshop does not hold yet."""
    if workshop.run is None or workshop.run.status is not RunStatus.DONE:
        return []
    held = {t.theme_id for t in workshop.themes}
    views, _ = reading.theme_views(workshop.run, include_hidden=False)
    return [v.theme for v in views if v.passages and v.theme.id not in held]


def add_theme(workshop: Workshop, theme_id: int) -> WorkshopTheme:
    theme = next((t for t in addable_themes(workshop) if t.id == theme_id), None)
    if theme is None:
        raise LookupError(theme_id)
    if len(workshop.themes) >= MAX_THEMES:
        raise ValueError(f"A workshop can look at {MAX_THEMES} themes at most. Remove one "
                         "first.")
    picked = choose_quotes([quote_candidates(theme.run, theme.id)], DEFAULT_QUOTES)[0]
    added = WorkshopTheme(theme_id=theme.id, position=len(workshop.themes), title=theme.label,
                          description=theme.description or "", questions=DEFAULT_QUESTIONS,
                          quotes=[quote_from(row, n) for n, row in enumerate(picked)])
    workshop.themes.append(added)
    return added


def edit_theme(workshop: Workshop, workshop_theme_id: int, title: str, description: str,
               questions: str) -> WorkshopTheme:
    theme = _theme_of(workshop, workshop_theme_id)
    title = " ".join(title.split())
    if not title:
        raise ValueError("Give the theme a name.")
    theme.title = title[:120]
    theme.description = description.strip()
    theme.questions = "\n".join(q.strip() for q in questions.splitlines() if q.strip())
    return theme


def _quote_of(theme: WorkshopTheme, quote_id: int) -> WorkshopQuote:
    found = next((q for q in theme.quotes if q.id == quote_id), None)
    if found is None:
        raise LookupError(quote_id)
    return found


def swap_candidates(workshop: Workshop, workshop_theme_id: int) -> list[ThemePassage]:
    """Return the passages that could be quoted for a theme, less those already chosen."""
    theme = _theme_of(workshop, workshop_theme_id)
    if workshop.run is None or theme.theme_id is None:
        return []
    held = {q.passage_id for q in theme.quotes}
    return [r for r in quote_candidates(workshop.run, theme.theme_id)
            if r.passage_id not in held]


def choose_quote(workshop: Workshop, workshop_theme_id: int, passage_id: int,
                 replacing: int | None = None) -> WorkshopQuote:
    """Quote a passage for a theme, in place of `replacing` or added at the end."""
    theme = _theme_of(workshop, workshop_theme_id)
    row = next((r for r in swap_candidates(workshop, workshop_theme_id)
                if r.passage_id == passage_id), None)
    if row is None:
        raise LookupError(passage_id)
    if replacing is not None:
        old = _quote_of(theme, replacing)
        position = old.position
        theme.quotes.remove(old)
        db.session.flush()  # the old row goes before the new one takes its place
    else:
        if len(theme.quotes) >= MAX_QUOTES:
            raise ValueError(f"A theme has {MAX_QUOTES} quotes at most. Swap one instead.")
        position = len(theme.quotes)
    quote = quote_from(row, position)
    theme.quotes.insert(position, quote)
    _renumber(theme.quotes)
    return quote


def remove_quote(workshop: Workshop, workshop_theme_id: int, quote_id: int) -> None:
    theme = _theme_of(workshop, workshop_theme_id)
    theme.quotes.remove(_quote_of(theme, quote_id))
    _renumber(theme.quotes)


def move_quote(workshop: Workshop, workshop_theme_id: int, quote_id: int, offset: int) -> None:
    theme = _theme_of(workshop, workshop_theme_id)
    quotes = list(theme.quotes)
    quote = _quote_of(theme, quote_id)
    index = quotes.index(quote)
    quotes.insert(min(max(index + offset, 0), len(quotes) - 1), quotes.pop(index))
    _renumber(quotes)


def refresh_quote(workshop: Workshop, workshop_theme_id: int, quote_id: int) -> WorkshopQuote:
    """Take the transcript's current (redacted) words for a quote whose transcript changed."""
    quote = _quote_of(_theme_of(workshop, workshop_theme_id), quote_id)
    transcript = transcript_of(quote.story_id)
    if transcript is None:
        raise ValueError("This story has no transcript any more. Remove the quote.")
    text = text_between(transcript, quote.speaker, quote.start, quote.end, Form.REDACTED)
    if not text.strip():
        raise ValueError("The transcript no longer has words at this quote's times. Remove "
                         "the quote or choose another.")
    quote.text = text
    quote.keep_unsure = False  # new words: whether to print unchecked ones is asked again
    return quote


def keep_quote(workshop: Workshop, workshop_theme_id: int, quote_id: int) -> WorkshopQuote:
    """Print a quote as it is, although words in it the recogniser was unsure of are unchecked."""
    quote = _quote_of(_theme_of(workshop, workshop_theme_id), quote_id)
    quote.keep_unsure = True
    return quote
