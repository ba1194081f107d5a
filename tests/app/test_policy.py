"""The access policy as a table: role × action × consent state → the form allowed.

The expected tables are written out here from the rules the product promises (the README's
"Who sees what"), not read back from `storyhub.policy`: changing a rule there fails a cell here.
Columns are the people asking:

  G  the reporter who gathered the story        S  another reporter at the same site
  O  a reporter at another site                 F  a facilitator        A  an admin
  T  probation staff                            J  StoryHub itself (a job, actor None)

Cells: F full (unredacted), R redacted, - refused.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from storyhub.accounts.models import Role, User
from storyhub.policy import AccessDenied, Action, Form, affected, decide, require
from storyhub.stories.consent import Scope
from storyhub.stories.models import Consent, ConsentMethod, Story

pytestmark = pytest.mark.no_database

TODAY = date(2026, 6, 1)
ACTORS = "GSOFATJ"
CELLS = {"F": Form.FULL, "R": Form.REDACTED, "-": Form.NONE}

# Every scope agreed, consent in force (and the same on its review date).
IN_FORCE = """
see             F R - R R - R
read            F R - R R - R
export          F R - R R - R
edit            F R - R - - R
transcribe      F F - F F - F
play            F R - R R - R
analyse         - - - R R - R
quote           - - - R R - R
play_clip       - - - R R - R
library         - - - R R R R
library_listen  - - - R R R R
curate          - - - R - - R
consent         F R - R R - R
erase           - - - - F - F
subject_access  - - - - F - F
"""
# Agreed to transcription and analysis only.
ANALYSIS_ONLY = """
see             F R - R R - R
read            F R - R R - R
export          F R - R R - R
edit            F R - R - - R
transcribe      F F - F F - F
play            F R - R R - R
analyse         - - - R R - R
quote           - - - - - - -
play_clip       - - - - - - -
library         - - - - - - -
library_listen  - - - - - - -
curate          - - - - - - -
consent         F R - R R - R
erase           - - - - F - F
subject_access  - - - - F - F
"""
# Agreed to everything but transcription and analysis: nothing reads its words, but the
# reporter can still play back what they recorded.
NOT_FOR_ANALYSIS = """
see             F R - R R - R
read            - - - - - - -
export          - - - - - - -
edit            - - - - - - -
transcribe      - - - - - - -
play            F - - - - - -
analyse         - - - - - - -
quote           - - - - - - -
play_clip       - - - - - - -
library         - - - - - - -
library_listen  - - - - - - -
curate          - - - - - - -
consent         F R - R R - R
erase           - - - - F - F
subject_access  - - - - F - F
"""
# Every scope agreed, but the review date has passed: nothing uses it until it is renewed.
OVERDUE = """
see             F R - R R - R
read            - - - - - - -
export          - - - - - - -
edit            - - - - - - -
transcribe      - - - - - - -
play            F - - - - - -
analyse         - - - - - - -
quote           - - - - - - -
play_clip       - - - - - - -
library         - - - - - - -
library_listen  - - - - - - -
curate          - - - - - - -
consent         F R - R R - R
erase           - - - - F - F
subject_access  - - - - F - F
"""
# Withdrawn: only its page (saying so), erasure and subject access remain.
WITHDRAWN = """
see             F R - R R - R
read            - - - - - - -
export          - - - - - - -
edit            - - - - - - -
transcribe      - - - - - - -
play            - - - - - - -
analyse         - - - - - - -
quote           - - - - - - -
play_clip       - - - - - - -
library         - - - - - - -
library_listen  - - - - - - -
curate          - - - - - - -
consent         - - - - - - -
erase           - - - - F - F
subject_access  - - - - F - F
"""
# No consent recorded at all (only reachable by damaged data): the same as withdrawn.
NO_CONSENT = WITHDRAWN


def parse(table: str) -> dict[tuple[Action, str], Form]:
    expected = {}
    for line in table.strip().splitlines():
        action, *cells = line.split()
        assert len(cells) == len(ACTORS), line
        for actor, cell in zip(ACTORS, cells, strict=True):
            expected[Action(action), actor] = CELLS[cell]
    assert {action for action, _ in expected} == set(Action), "a table misses an action"
    return expected


def people() -> dict[str, User | None]:
    def user(user_id: int, role: Role, site_id: int | None = 1) -> User:
        return User(id=user_id, username=f"u{user_id}", display_name="", role=role,
                    password_hash="", site_id=site_id, all_sites=False)
    return {"G": user(1, Role.REPORTER), "S": user(2, Role.REPORTER),
            "O": user(3, Role.REPORTER, site_id=2), "F": user(4, Role.FACILITATOR, None),
            "A": user(5, Role.ADMIN, None), "T": user(6, Role.STAFF, None), "J": None}


def story(state: str) -> Story:
    scopes = set(Scope)
    if state == "analysis_only":
        scopes = {Scope.TRANSCRIBE_ANALYSE}
    elif state == "not_for_analysis":
        scopes = set(Scope) - {Scope.TRANSCRIBE_ANALYSE}
    made = Story(id=10, title="t", site_id=1, reporter_id=1)
    if state == "no_consent":
        return made
    consent = Consent(method=ConsentMethod.SPOKEN, given_on=TODAY - timedelta(days=60),
                      **{scope.value: scope in scopes for scope in Scope})
    if state == "overdue":
        consent.review_on = TODAY - timedelta(days=1)
    elif state == "due_today":
        consent.review_on = TODAY
    elif state == "withdrawn":
        consent.withdrawn_at = datetime(2026, 5, 2, 9, 0)
    made.consent = consent
    return made


STATES = {"in_force": IN_FORCE, "due_today": IN_FORCE, "analysis_only": ANALYSIS_ONLY,
          "not_for_analysis": NOT_FOR_ANALYSIS, "overdue": OVERDUE, "withdrawn": WITHDRAWN,
          "no_consent": NO_CONSENT}


@pytest.mark.parametrize("state", list(STATES))
def test_policy_table(state: str) -> None:
    expected = parse(STATES[state])
    actors = people()
    subject = story(state)
    wrong = []
    for (action, who), form in expected.items():
        # As the library asks for a story a facilitator approved (see tests/library/).
        decision = decide(actors[who], subject, action, today=TODAY, curated=True)
        if decision.form is not form:
            wrong.append(f"{action.value}/{who}: expected {form.value}, got "
                         f"{decision.form.value} ({decision.reason})")
        if not decision.allowed:
            assert decision.reason, (action, who)  # every refusal says why
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("state", "action", "message"), [
    ("withdrawn", Action.READ, "The storyteller withdrew their consent on 02 May 2026, so this "
                               "story cannot be read."),
    ("overdue", Action.EXPORT, "The storyteller's consent was due for review on 31 May 2026. "
                               "Check with them and renew the consent before this story is "
                               "downloaded."),
    ("analysis_only", Action.QUOTE, "The storyteller did not agree to their story being "
                                    "quoted in workshop packs."),
    ("not_for_analysis", Action.PLAY, "The storyteller did not agree to their story being "
                                      "transcribed or analysed."),
    ("no_consent", Action.READ, "No consent has been recorded for this story, so it cannot be "
                                "read. Record the storyteller's consent first."),
])
def test_refusals_say_why(state: str, action: Action, message: str) -> None:
    with pytest.raises(AccessDenied) as refused:
        require(people()["F"], story(state), action, today=TODAY)
    assert str(refused.value) == message


def test_site_and_role_refusals_say_why() -> None:
    actors = people()
    assert decide(actors["O"], story("in_force"), Action.SEE).reason == (
        "This story belongs to another site.")
    assert decide(actors["T"], story("in_force"), Action.READ).reason == (
        "Your role does not include this.")


def test_a_reporter_for_all_sites_reaches_every_site() -> None:
    other = people()["O"]
    assert other is not None
    other.all_sites = True
    assert decide(other, story("in_force"), Action.READ, today=TODAY).form is Form.REDACTED


def test_refusal_is_not_an_os_error() -> None:
    """An escaped refusal must become a 403, never be taken for a disk problem (a 500)."""
    assert not issubclass(AccessDenied, OSError)
    assert AccessDenied.status == 403


def test_the_library_shows_only_approved_stories() -> None:
    """Consent to the library is not enough: a facilitator must have approved the story."""
    actors = people()
    for who in "FAT":
        decision = decide(actors[who], story("in_force"), Action.LIBRARY, today=TODAY)
        assert decision.form is Form.NONE
        assert decision.reason == "This story is not in the staff library."


def test_the_library_is_redacted_even_for_the_reporter_who_gathered_it() -> None:
    gatherer = people()["G"]
    assert gatherer is not None
    gatherer.role = Role.FACILITATOR
    assert decide(gatherer, story("in_force"), Action.READ, today=TODAY).form is Form.FULL
    assert decide(gatherer, story("in_force"), Action.LIBRARY, today=TODAY,
                  curated=True).form is Form.REDACTED


def test_listening_in_the_library_needs_consent_to_be_played() -> None:
    subject = story("in_force")
    assert subject.consent is not None
    subject.consent.play_in_workshops = False
    staff = people()["T"]
    assert decide(staff, subject, Action.LIBRARY, today=TODAY, curated=True).allowed
    decision = decide(staff, subject, Action.LIBRARY_LISTEN, today=TODAY, curated=True)
    assert decision.reason == ("The storyteller did not agree to their story being played in "
                               "workshops.")


# What each feature must erase when a scope is taken back, written out here (not read from
# NEEDS_SCOPE): the actions a story loses.
LOST_WITH: dict[Scope, set[Action]] = {
    Scope.TRANSCRIBE_ANALYSE: {Action.READ, Action.EXPORT, Action.EDIT, Action.TRANSCRIBE,
                               Action.PLAY, Action.ANALYSE, Action.QUOTE, Action.PLAY_CLIP,
                               Action.LIBRARY, Action.LIBRARY_LISTEN, Action.CURATE},
    Scope.QUOTE_IN_PACKS: {Action.QUOTE},
    Scope.PLAY_IN_WORKSHOPS: {Action.PLAY_CLIP, Action.LIBRARY_LISTEN},
    Scope.STAFF_LIBRARY: {Action.LIBRARY, Action.LIBRARY_LISTEN, Action.CURATE},
    Scope.PUBLISH_EXTERNAL: set(),
}


@pytest.mark.parametrize("scope", list(Scope))
def test_a_scope_taken_back_loses_the_actions_that_need_it(scope: Scope) -> None:
    assert affected([scope.value]) == LOST_WITH[scope]


def test_erasing_the_whole_story_loses_every_action() -> None:
    assert affected(None) == set(Action)
    assert affected([Scope.QUOTE_IN_PACKS.value, Scope.STAFF_LIBRARY.value]) == (
        LOST_WITH[Scope.QUOTE_IN_PACKS] | LOST_WITH[Scope.STAFF_LIBRARY])
