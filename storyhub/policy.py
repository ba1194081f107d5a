"""One answer to "may this person do this to this story, and in which form".

Every view, export, job and page builder that touches a story asks `decide` (or `require`),
so a rule is written once and holds whatever page, export or task asks. A decision combines:

- the person's role, and for reporters their site (or the stories they gathered themselves);
- what the storyteller agreed to, scope by scope, with the consent's review date: withdrawn
  consent stops everything but erasure, and consent past its review date stops every use of
  the story's words and voice until it is renewed;
- the form the content may take: `FULL` for the reporter who gathered the story, `REDACTED`
  (names and other personal details replaced, the audio muted over them) for everyone else.

Jobs ask with `actor=None` (StoryHub itself): only consent applies to them, and they too get
the redacted form (so a theme model never learns a redacted name), except transcription.
Refusals raise `AccessDenied`, whose message says why in words a user can act on; it is not an
`OSError` (as `PermissionError` would be), so it can never be mistaken for a disk problem.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, false, true

from . import dates, signals
from .accounts.models import Role
from .stories.consent import Scope
from .stories.models import Consent, Story

if TYPE_CHECKING:
    from .accounts.models import User


class Action(enum.StrEnum):
    """What someone wants to do with a story."""

    SEE = "see"  # its page: title, type, site, consent record, state; no words or voice
    READ = "read"  # the transcript, in the editor or as status
    EXPORT = "export"  # download the transcript
    EDIT = "edit"  # correct the transcript, name speakers, mark reviewed, redact
    TRANSCRIBE = "transcribe"  # start or retry transcription
    PLAY = "play"  # listen to the whole recording
    ANALYSE = "analyse"  # include it in theme runs, show its passages on theme pages
    QUOTE = "quote"  # quote it on the theme board and in workshop packs
    PLAY_CLIP = "play_clip"  # play a quote's stretch of audio in a workshop
    LIBRARY = "library"  # show it in the staff library: card, redacted transcript, search
    LIBRARY_LISTEN = "library_listen"  # hear it (muted over redacted words) in the library
    CURATE = "curate"  # write its library summary, pick highlights, approve or retire it
    CONSENT = "consent"  # record a change to consent: narrow, renew or withdraw it
    ERASE = "erase"  # erase everything held about the story
    SUBJECT_ACCESS = "subject_access"  # export everything held about its storyteller


class Work(enum.StrEnum):
    """What someone wants to do that is not about one story: a feature's own pages."""

    GATHER = "gather"  # add a story
    SHAPE_THEMES = "shape_themes"  # start theme runs and shape their themes
    PREPARE_WORKSHOPS = "prepare_workshops"  # workshops: their themes, quotes, packs, actions
    PUBLISH_THEMES = "publish_themes"  # publish a run's themes to the staff library
    READ_FEEDBACK = "read_feedback"  # read a workshop's "You said, we did" sheet
    EVALUATE = "evaluate"  # download the evaluation exports
    ADMINISTER = "administer"  # accounts, sites and the audit log


class Form(enum.StrEnum):
    """How much of a story's content a decision lets through."""

    NONE = "none"
    REDACTED = "redacted"
    FULL = "full"


class AccessDenied(Exception):  # noqa: N818 - the users' word, not an error class name
    """This person may not do this to this story; the message says why."""

    status = 403


@dataclass(frozen=True)
class Decision:
    form: Form
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.form is not Form.NONE


# The consent scope each action needs (besides consent being in force); None: no scope.
# Scopes are the consent columns (see stories/consent.py).
NEEDS_SCOPE: dict[Action, tuple[str, ...]] = {
    Action.SEE: (),
    Action.READ: ("transcribe_analyse",),
    Action.EXPORT: ("transcribe_analyse",),
    Action.EDIT: ("transcribe_analyse",),
    Action.TRANSCRIBE: ("transcribe_analyse",),
    Action.PLAY: ("transcribe_analyse",),
    Action.ANALYSE: ("transcribe_analyse",),
    Action.QUOTE: ("transcribe_analyse", "quote_in_packs"),
    Action.PLAY_CLIP: ("transcribe_analyse", "play_in_workshops"),
    # The library shows the transcript, so it needs transcription as well; a voice can be
    # recognised, so hearing it there also needs the storyteller's word that it may be played.
    Action.LIBRARY: ("transcribe_analyse", "staff_library"),
    Action.LIBRARY_LISTEN: ("transcribe_analyse", "staff_library", "play_in_workshops"),
    Action.CURATE: ("transcribe_analyse", "staff_library"),
    Action.CONSENT: (),
    Action.ERASE: (),
    Action.SUBJECT_ACCESS: (),
}

# Who may ask for each action at all (before site and consent), and who may do each work: the
# one role table. Views are guarded from it (`web.allowed`), services ask it (`may`, `decide`).
GATHERERS = frozenset({Role.REPORTER, Role.FACILITATOR, Role.ADMIN})
CORRECTORS = frozenset({Role.REPORTER, Role.FACILITATOR})
SHAPERS = frozenset({Role.FACILITATOR, Role.ADMIN})
READERS_OF_LIBRARY = frozenset({Role.STAFF, Role.FACILITATOR, Role.ADMIN})
ROLES: dict[Action | Work, frozenset[Role]] = {
    Action.SEE: GATHERERS,
    Action.READ: GATHERERS,
    Action.EXPORT: GATHERERS,
    Action.EDIT: CORRECTORS,
    Action.TRANSCRIBE: GATHERERS,
    Action.PLAY: GATHERERS,
    Action.ANALYSE: SHAPERS,
    Action.QUOTE: SHAPERS,
    Action.PLAY_CLIP: SHAPERS,
    Action.LIBRARY: READERS_OF_LIBRARY,
    Action.LIBRARY_LISTEN: READERS_OF_LIBRARY,
    Action.CURATE: frozenset({Role.FACILITATOR}),
    Action.CONSENT: GATHERERS,
    Action.ERASE: frozenset({Role.ADMIN}),
    Action.SUBJECT_ACCESS: frozenset({Role.ADMIN}),
    Work.GATHER: GATHERERS,
    Work.SHAPE_THEMES: SHAPERS,
    Work.PREPARE_WORKSHOPS: SHAPERS,
    Work.PUBLISH_THEMES: SHAPERS,
    Work.READ_FEEDBACK: READERS_OF_LIBRARY,
    Work.EVALUATE: SHAPERS,
    Work.ADMINISTER: frozenset({Role.ADMIN}),
}
# Actions that need the story whole, whoever asks: transcription hears the recording, erasure
# and subject access reach everything held.
WHOLE = frozenset({Action.TRANSCRIBE, Action.ERASE, Action.SUBJECT_ACCESS})
# Actions that show a story only in the staff library, and only once a facilitator approved it:
# always redacted, whoever asks (the library is the same for everyone who reads it).
IN_LIBRARY = frozenset({Action.LIBRARY, Action.LIBRARY_LISTEN})
# Actions still allowed once consent is withdrawn or past its review date.
AFTER_WITHDRAWAL = frozenset({Action.SEE, Action.ERASE, Action.SUBJECT_ACCESS})
WHILE_OVERDUE = AFTER_WITHDRAWAL | {Action.CONSENT}

REFUSALS = {
    Action.READ: "read", Action.EXPORT: "downloaded", Action.EDIT: "changed",
    Action.TRANSCRIBE: "transcribed", Action.PLAY: "played", Action.ANALYSE: "analysed",
    Action.QUOTE: "quoted in workshop packs", Action.PLAY_CLIP: "played in workshops",
    Action.LIBRARY: "shown in the staff library", Action.CONSENT: "changed",
    Action.LIBRARY_LISTEN: "played in the staff library",
    Action.CURATE: "shown in the staff library",
}


def may(actor: User | None, what: Action | Work) -> bool:
    """Return True when `actor`'s role may ask for `what` at all (before site and consent)."""
    return actor is not None and actor.role in ROLES[what]


def affected(scopes: Iterable[str] | None) -> frozenset[Action]:
    """Return the actions a story can no longer have once `scopes` are taken back (None: the
    whole story is erased).

    The one answer to what a consent change means: each feature erases what it made for an
    action that is now lost (signals.story_erasing), rather than restating the scopes.
    """
    if scopes is None:
        return frozenset(Action)
    gone = {Scope(scope).value for scope in scopes}
    return frozenset(action for action, needs in NEEDS_SCOPE.items() if gone & set(needs))


def gathered_by(actor: User | None, story: Story) -> bool:
    """Return True when `actor` is the reporter who gathered `story`."""
    return actor is not None and story.reporter_id is not None and story.reporter_id == actor.id


def _reaches(actor: User, story: Story) -> bool:
    """Return True when the story is within the actor's sites."""
    if actor.role is not Role.REPORTER:
        return True
    return (actor.all_sites or gathered_by(actor, story)
            or (story.site_id is not None and story.site_id == actor.site_id))


def visible(actor: User) -> ColumnElement[bool]:
    """Return a filter on Story for the stories whose page `actor` may see (as `_reaches`)."""
    if actor.role not in ROLES[Action.SEE]:
        return false()
    if actor.role is not Role.REPORTER or actor.all_sites:
        return true()
    return (Story.reporter_id == actor.id) | (Story.site_id == actor.site_id)


def library_filter(actor: User | None, action: Action = Action.LIBRARY,
                   today: date | None = None) -> ColumnElement[bool]:
    """Return a filter on Consent (the caller joins it) for `decide`'s answer to a library action.

    Lists and searches over thousands of stories ask in SQL; curation is the caller's to join.
    """
    if action not in IN_LIBRARY or (actor is not None and actor.role not in ROLES[action]):
        return false()
    today = today or dates.today()
    condition = Consent.withdrawn_at.is_(None) & (
        Consent.review_on.is_(None) | (Consent.review_on >= today))
    for scope in NEEDS_SCOPE[action]:
        condition = condition & getattr(Consent, scope).is_(True)
    return condition


def _consent_refusal(story: Story, action: Action, today: date,
                     own_playback: bool) -> str | None:
    consent = story.consent
    if action in AFTER_WITHDRAWAL:
        return None
    what = REFUSALS.get(action, "used")
    if consent is None:
        return (f"No consent has been recorded for this story, so it cannot be {what}. "
                "Record the storyteller's consent first.")
    if consent.withdrawn_at is not None:
        if action is Action.CONSENT:
            return "Consent for this story has already been withdrawn."
        return (f"The storyteller withdrew their consent on {consent.withdrawn_at:%d %B %Y}, "
                f"so this story cannot be {what}.")
    overdue = consent.review_on is not None and consent.review_on < today
    if overdue and action not in WHILE_OVERDUE and not own_playback:
        return (f"The storyteller's consent was due for review on {consent.review_on:%d %B %Y}. "
                f"Check with them and renew the consent before this story is {what}.")
    if own_playback:
        return None
    for scope in NEEDS_SCOPE[action]:
        if not getattr(consent, scope):
            return f"The storyteller did not agree to their story being {Scope(scope).refusal}."
    return None


def decide(actor: User | None, story: Story, action: Action,
           today: date | None = None, *, curated: bool = False) -> Decision:
    """Return whether `actor` (None: StoryHub itself) may do `action` to `story`, and how.

    `curated`: a facilitator approved the story for the staff library (and did not retire it);
    people see a story in the library only then. The library feature knows, and says so.
    """
    today = today or dates.today()
    if actor is not None:
        if actor.role not in ROLES[action]:
            return Decision(Form.NONE, "Your role does not include this.")
        if not _reaches(actor, story):
            return Decision(Form.NONE, "This story belongs to another site.")
    # The reporter who gathered a story may play it back until consent is withdrawn, to check
    # it, even before the storyteller agreed to it being transcribed.
    own_playback = action is Action.PLAY and gathered_by(actor, story)
    if action in IN_LIBRARY and actor is not None and not curated:
        return Decision(Form.NONE, "This story is not in the staff library.")
    reason = _consent_refusal(story, action, today, own_playback)
    if reason is not None:
        return Decision(Form.NONE, reason)
    if action in IN_LIBRARY:
        return Decision(Form.REDACTED)
    if action in WHOLE or gathered_by(actor, story):
        # The reporter who gathered the story heard it all anyway.
        return Decision(Form.FULL)
    return Decision(Form.REDACTED)


def waiting_redactions(story: Story,
                       within: tuple[str, float, float] | None = None) -> int:
    """Return how many redactions StoryHub suggests in `story` that its reporter has neither
    made nor dismissed; with `within` (speaker, start, end), only those in that stretch.

    The one rule for what waits on them: nothing of the story goes into the staff library, and
    no quote holding one is printed, until the reporter has decided.
    """
    return sum(count or 0 for _receiver, count in
               signals.redactions_waiting.send(story, within=within))


def require(actor: User | None, story: Story, action: Action,
            today: date | None = None, *, curated: bool = False) -> Form:
    """Return the form `actor` may have `story` in for `action`; raise AccessDenied if none."""
    decision = decide(actor, story, action, today, curated=curated)
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    return decision.form
