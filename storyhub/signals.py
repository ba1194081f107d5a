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

#: A transcript's words changed (an edit or a redaction): sender is the story id. Theme runs
#: listen, to show the new words and say the run no longer matches them.
transcript_changed = _signals.signal("transcript-changed")

#: A story is being erased, whole or for some consent scopes (sender: the story id; scopes:
#: the Scope values erased, or None for the whole story). Each feature removes what it made
#: from the story, in the erasing transaction, and returns the storage keys to delete.
story_erasing = _signals.signal("story-erasing")

#: The story page is being shown (sender: the Story; actor: the User). A receiver returns HTML
#: (Markup) for a section of the page, or None; the library's curation panel is one.
story_page_panels = _signals.signal("story-page-panels")
