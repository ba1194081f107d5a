"""A story's processing state, as the story list and page show it.

It is never stored: whoever does the processing (transcription) derives it from its own rows
(the job, the transcript) when asked through `signals.story_states`, so it cannot disagree with
them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import signals
from .models import Story, StoryStatus


@dataclass
class StoryState:
    status: StoryStatus = StoryStatus.UPLOADED
    progress: float = 0.0
    seconds_left: float | None = None
    error: str | None = None
    can_retry: bool = False
    attempts: int = 0
    # The transcript may be missing words: a person should listen and fill them in.
    needs_checking: bool = False

    @property
    def working(self) -> bool:
        return self.status in (StoryStatus.QUEUED, StoryStatus.TRANSCRIBING)

    def to_json(self) -> dict:
        return asdict(self) | {"status": self.status.value}


def states_of(stories: list[Story]) -> dict[int, StoryState]:
    """Return each story's state (uploaded, where nobody says otherwise)."""
    states = {story.id: StoryState() for story in stories}
    for _receiver, answer in signals.story_states.send(stories):
        states.update(answer or {})
    return states


def state_of(story: Story) -> StoryState:
    return states_of([story])[story.id]
