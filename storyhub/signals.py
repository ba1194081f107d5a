"""Signals by which features hear of each other without importing each other (as in Indico).

A feature connects its receivers when it is imported; the sender never knows who listens.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A story and its consent were stored (sender: the Story; actor_id). Transcription listens.
story_created = _signals.signal("story-created")

#: "What is the processing state of these stories?" (sender: a list of Story). A receiver
#: returns {story_id: StoryState} for the stories it knows about; see stories.state.
story_states = _signals.signal("story-states")
