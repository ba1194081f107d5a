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
#: the Scope values erased, or None for the whole story; removed: a Counter). Each feature
#: removes what it made from the story (`policy.affected(scopes)` says which uses are lost),
#: in the erasing transaction, counts the rows it removed in `removed` for the audit entry
#: (e.g. removed["transcripts"]), and returns the storage folders to delete.
story_erasing = _signals.signal("story-erasing")

#: A story's erasure was just asked for (consent withdrawn or narrowed, an admin's erasure,
#: retention), before the job that erases it runs (sender: the story id; scopes: as for
#: story_erasing). A receiver takes the story's words out of what it shows or keeps made from
#: many stories, in the asking transaction, so nothing shows them even while no worker runs.
#: The erasure does it again, so a receiver must not mind being called twice.
story_erasure_requested = _signals.signal("story-erasure-requested")

#: "Which stories had their transcript reviewed before this time?" (sender: a datetime). The
#: transcripts feature answers with a Select of story ids; retention deletes their originals.
stories_reviewed_before = _signals.signal("stories-reviewed-before")

#: A storyteller asked what is held about them (sender: one of their Stories). A receiver
#: returns {file name: text} for that story's folder in the subject access ZIP, or None.
subject_access_parts = _signals.signal("subject-access-parts")

#: The story page is being shown (sender: the Story; actor: the User). A receiver returns HTML
#: (Markup) for a section of the page, or None; the library's curation panel is one.
story_page_panels = _signals.signal("story-page-panels")

#: The transcript editor is being shown to someone who may edit it (sender: the Story; actor:
#: the User; transcript; full: True if they read it unredacted). A receiver returns HTML
#: (Markup) for a section of the editor, or None; redaction's "Personal details" is one.
transcript_editor_panels = _signals.signal("transcript-editor-panels")

#: A story's title changed (sender: the story id). The library indexes the new title.
story_renamed = _signals.signal("story-renamed")

#: "How many redactions does StoryHub suggest in this story that nobody has made or dismissed?"
#: (sender: the Story; within: (speaker, start, end) to count only those in that stretch, or
#: None.) The redaction feature answers with a count; see `policy.waiting_redactions`.
redactions_waiting = _signals.signal("redactions-waiting")

#: "Which "You said, we did" sheets are there to read?" (sender: None; limit: how many at
#: most). The workshop packs answer with a list of dicts (title, held_on: a date or None,
#: url): the workshops that recorded actions, latest first. The staff home page and the
#: library link to them; the sheet's page says who may read it.
feedback_sheets = _signals.signal("feedback-sheets")

#: A facilitator renamed a theme of a run (sender: the theme id; old, new: its names). A
#: workshop's copy of the name follows, unless the workshop renamed its copy itself.
theme_renamed = _signals.signal("theme-renamed")
