"""What a storyteller can agree to, scope by scope.

Whether a use of a story is covered is decided in one place, `storyhub.policy`, which every
view, export and job asks.
"""

from __future__ import annotations

import enum


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

