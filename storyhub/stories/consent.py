"""What a storyteller agreed to, checked wherever a story is used.

Every step that uses a story (transcription, themes, packs, library, playback) calls `require`
in its service function, so the rule holds whatever page or job asks.
"""

from __future__ import annotations

import enum
from datetime import date

from .models import Consent, Story


class Scope(enum.StrEnum):
    TRANSCRIBE_ANALYSE = "transcribe_analyse"
    QUOTE_IN_PACKS = "quote_in_packs"
    PLAY_IN_WORKSHOPS = "play_in_workshops"
    STAFF_LIBRARY = "staff_library"
    PUBLISH_EXTERNAL = "publish_external"

    @property
    def label(self) -> str:
        return SCOPE_LABELS[self]

    @property
    def refusal(self) -> str:
        return SCOPE_REFUSALS[self]


SCOPE_LABELS = {
    Scope.TRANSCRIBE_ANALYSE: "Transcribe the recording and include it in theme analysis",
    Scope.QUOTE_IN_PACKS: "Quote it, anonymised, in workshop packs",
    Scope.PLAY_IN_WORKSHOPS: "Play the audio in Conversations for Change workshops",
    Scope.STAFF_LIBRARY: "Show it, anonymised, to probation staff in the story library",
    Scope.PUBLISH_EXTERNAL: "Publish it outside the organisation",
}
SCOPE_REFUSALS = {
    Scope.TRANSCRIBE_ANALYSE: "transcribed or analysed",
    Scope.QUOTE_IN_PACKS: "quoted in workshop packs",
    Scope.PLAY_IN_WORKSHOPS: "played in workshops",
    Scope.STAFF_LIBRARY: "shown in the staff library",
    Scope.PUBLISH_EXTERNAL: "published outside the organisation",
}


class ConsentRefused(PermissionError):
    """The storyteller's consent does not cover this use; the message says why."""


def check(story: Story, scope: Scope, today: date | None = None) -> str | None:
    """Return why `story` may not be used for `scope`, or None if consent covers it."""
    consent: Consent | None = story.consent
    today = today or date.today()
    if consent is None:
        return ("No consent has been recorded for this story, so it cannot be "
                f"{scope.refusal}. Record the storyteller's consent first.")
    if consent.withdrawn_at is not None:
        return (f"The storyteller withdrew their consent on "
                f"{consent.withdrawn_at:%d %B %Y}, so this story cannot be {scope.refusal}.")
    if consent.review_on is not None and consent.review_on < today:
        return (f"The storyteller's consent was due for review on {consent.review_on:%d %B %Y}. "
                "Check with them and update the consent before this story is "
                f"{scope.refusal}.")
    if not getattr(consent, scope.value):
        return f"The storyteller did not agree to their story being {scope.refusal}."
    return None


def require(story: Story, scope: Scope) -> None:
    """Raise ConsentRefused unless the story's consent covers `scope`."""
    reason = check(story, scope)
    if reason is not None:
        raise ConsentRefused(reason)
