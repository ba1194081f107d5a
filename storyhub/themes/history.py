"""A run's edit history: what each facilitator's edit changed, and undoing the latest one.

Every rename, hide or show, merge, split, passage move and pin is recorded (`ThemeEdit`) with
the themes and passage places it touched as they were before it (`before`):

    {"summary": what the history list says, "themes": [each touched theme's fields, as they
     were], "deleted": [ids of themes it removed], "created": [ids of themes it made],
     "rows": [[passage id, theme id, moved, pinned], ...], "links": [[table, column, primary
     key, theme id], ...]}

Undoing puts exactly that back. A theme a merge removed comes back with its own id when the
id is still free, and whatever pointed at it before the merge (a workshop's theme, a published
theme's origin: keys that the database set to NULL when it went) points at it again. SQLite
may give the highest id, once freed, to a newer theme (of a new run, say): the theme then comes
back with a new id and those links follow it. Themes a split made go again; whatever was linked
to them since loses the link (a workshop keeps its own copy of the name and quotes).

Only the latest edit not yet undone can be undone, so each undo starts from exactly the state
its edit left. Undoing changes the run's draft only: staff see the run as it was published
(library/publishing.py) until a facilitator publishes it again.

When a story's words change or leave (a correction, a redaction, a withdrawal, an erasure),
story_changes.py takes them out of theme keywords and StoryHub's names. The history of every run
holding the story then drops what it kept, which may hold those words: an undo must not bring
them back, nor the table keep them. Those edits stay listed, and can no longer be undone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, update

from .. import audit, policy, signals
from ..database import utcnow
from ..extensions import db
from .models import Theme, ThemeEdit, ThemePassage, ThemeRun

# A theme's fields an edit may change, all put back by an undo.
FIELDS = ("number", "position", "label", "auto_label", "description", "keywords", "seed",
          "hidden", "edited", "merged_from", "split_of")
# What the history says of an edit whose details were dropped (a story's words changed).
PLAIN = {"rename": "Renamed or described a theme", "hide": "Hid a theme",
         "show": "Showed a theme again", "merge": "Merged themes", "split": "Split a theme",
         "move": "Moved a passage", "pin": "Pinned a quote", "unpin": "Unpinned a quote"}
RECENT = 8


class UndoError(ValueError):
    """An edit that cannot be undone now; the message says why."""


def _lock(run: ThemeRun) -> None:
    """Take the run's row, so edits and undos of one run follow each other (PostgreSQL).

    SQLite has one writer at a time anyway, and ignores FOR UPDATE.
    """
    db.session.execute(select(ThemeRun.id).where(ThemeRun.id == run.id).with_for_update())


def _state(theme: Theme) -> dict:
    state = {name: getattr(theme, name) for name in FIELDS}
    state["keywords"], state["merged_from"] = list(theme.keywords), list(theme.merged_from)
    return {"id": theme.id, **state}


def _links_to(theme_id: int) -> list[list]:
    """Return every row outside the themes' own tables whose key points at the theme.

    Read from the schema, so the themes need not know the features that link to them
    (workshops, the published themes).
    """
    found: list[list] = []
    for table in db.metadata.sorted_tables:
        if table.name in (Theme.__tablename__, ThemePassage.__tablename__):
            continue
        for key in table.foreign_keys:
            if key.column.table.name != Theme.__tablename__:
                continue
            primary = list(table.primary_key.columns)
            for row in db.session.execute(select(*primary).where(key.parent == theme_id)):
                found.append([table.name, key.parent.name,
                              {c.name: value for c, value in zip(primary, row, strict=True)},
                              theme_id])
    return found


class Recorder:
    """Keep what an edit is about to change, as it was; then record the edit.

    Nothing is kept for an edit made by StoryHub itself (no actor: carrying a previous run's
    edits over to a new run), which is not the facilitator's to undo.
    """

    def __init__(self, run: ThemeRun, action: str, actor_id: int | None, theme_id: int | None):
        self.run, self.action, self.actor_id, self.theme_id = run, action, actor_id, theme_id
        self.on = actor_id is not None
        self.themes: dict[int, dict] = {}
        self.rows: dict[int, list] = {}
        self.deleted: list[int] = []
        self.links: list[list] = []
        if self.on:
            _lock(run)

    def theme(self, *themes: Theme) -> None:
        if self.on:
            for theme in themes:
                self.themes.setdefault(theme.id, _state(theme))

    def passages(self, rows: Iterable[ThemePassage]) -> None:
        if self.on:
            for row in rows:
                self.rows.setdefault(row.passage_id,
                                     [row.passage_id, row.theme_id, row.moved, row.pinned])

    def deleting(self, theme: Theme) -> None:
        """Keep a theme about to be removed, and what links to it (before the database
        unlinks it)."""
        if self.on:
            self.theme(theme)
            self.deleted.append(theme.id)
            self.links += _links_to(theme.id)

    def done(self, summary: str, created: Iterable[int] = ()) -> ThemeEdit | None:
        if not self.on:
            return None
        edit = ThemeEdit(run_id=self.run.id, action=self.action, theme_id=self.theme_id,
                         actor_id=self.actor_id, before={
                             "summary": summary, "themes": list(self.themes.values()),
                             "deleted": self.deleted, "created": list(created),
                             "rows": list(self.rows.values()), "links": self.links})
        db.session.add(edit)
        return edit


def describe(edit: ThemeEdit) -> str:
    """Say what the edit did, in the history list's words."""
    if edit.before is None:
        return PLAIN.get(edit.action, "Changed the themes")
    return edit.before["summary"]


def latest(run: ThemeRun) -> ThemeEdit | None:
    """Return the run's latest edit not undone yet: the one Undo undoes."""
    return db.session.scalar(select(ThemeEdit).where(
        ThemeEdit.run_id == run.id, ThemeEdit.undone_at.is_(None))
        .order_by(ThemeEdit.id.desc()).limit(1))


def recent(run: ThemeRun, limit: int = RECENT) -> list[ThemeEdit]:
    """Return the run's latest edits, newest first (undone ones too, marked so)."""
    return list(db.session.scalars(select(ThemeEdit).where(ThemeEdit.run_id == run.id)
                                   .order_by(ThemeEdit.id.desc()).limit(limit)))


def _restore(theme: Theme, state: dict) -> None:
    for name in FIELDS:
        setattr(theme, name, state[name])


def _renumber(run: ThemeRun, now_id: dict[int, int]) -> None:
    """Follow themes that came back under new ids: in the run's themes (`split_of`) and in the
    earlier edits, which an undo may yet put back."""
    for theme in db.session.scalars(select(Theme).where(Theme.run_id == run.id,
                                                        Theme.split_of.in_(now_id))):
        theme.split_of = now_id[theme.split_of]  # type: ignore[index]

    def new(theme_id):
        return now_id.get(theme_id, theme_id) if theme_id is not None else None

    for edit in db.session.scalars(select(ThemeEdit).where(
            ThemeEdit.run_id == run.id, ThemeEdit.undone_at.is_(None),
            ThemeEdit.before.is_not(None))):
        before = edit.before or {}
        edit.theme_id = new(edit.theme_id)
        edit.before = before | {  # a new value: JSON columns do not see changes in place
            "themes": [state | {"id": new(state["id"]), "split_of": new(state["split_of"])}
                       for state in before["themes"]],
            "deleted": [new(i) for i in before["deleted"]],
            "created": [new(i) for i in before["created"]],
            "rows": [[pid, new(tid), moved, pinned]
                     for pid, tid, moved, pinned in before["rows"]],
            "links": [[*link[:3], new(link[3])] for link in before["links"]]}


def undo(run: ThemeRun, edit_id: int, actor_id: int) -> ThemeEdit:
    """Undo the run's latest edit, which must be `edit_id` (the one the facilitator saw)."""
    _lock(run)
    edit = latest(run)
    if edit is None or edit.id != edit_id:
        raise UndoError("The themes changed since this page was loaded, so that is no longer "
                        "the latest change. Look at the list of changes again before "
                        "undoing.")
    before = edit.before
    if before is None:
        raise UndoError("This change can no longer be undone: a story in this run was "
                        "corrected, redacted or withdrawn since, and undoing might bring its "
                        "old words back. Make the change you want by hand instead.")
    # Themes the edit removed come back first, with their own ids where still free, so
    # passages and links can point at them again.
    now_id: dict[int, int] = {}
    for state in before["themes"]:
        if state["id"] in before["deleted"]:
            theme = Theme(run_id=run.id)
            _restore(theme, state)
            if db.session.get(Theme, state["id"]) is None:
                theme.id = state["id"]
            db.session.add(theme)
            db.session.flush()
            now_id[state["id"]] = theme.id
    renamed: list[tuple[int, str, str]] = []
    for state in before["themes"]:
        if state["id"] in before["deleted"]:
            continue
        kept = db.session.get(Theme, state["id"])
        if kept is None or kept.run_id != run.id:
            raise UndoError("This change can no longer be undone: a theme it changed has gone "
                            "since.")
        if kept.label != state["label"]:
            renamed.append((kept.id, kept.label, state["label"]))
        _restore(kept, state)
    for passage_id, theme_id, moved, pinned in before["rows"]:
        row = db.session.get(ThemePassage, (run.id, passage_id))
        if row is None:  # its story was erased since
            continue
        row.theme_id = now_id.get(theme_id, theme_id)
        row.moved, row.pinned = moved, pinned
    db.session.flush()
    for theme_id in before["created"]:
        made = db.session.get(Theme, theme_id)
        if made is not None and made.run_id == run.id:
            db.session.delete(made)
    db.session.flush()
    for table_name, column, key, theme_id in before["links"]:
        table = db.metadata.tables[table_name]
        db.session.execute(update(table).where(
            and_(*(table.c[name] == value for name, value in key.items())),
            table.c[column].is_(None)).values({column: now_id.get(theme_id, theme_id)}))
    edit.undone_at, edit.undone_by_id = utcnow(), actor_id
    db.session.flush()
    moved = {old: new for old, new in now_id.items() if old != new}
    if moved:
        _renumber(run, moved)
        db.session.flush()
    db.session.expire(run, ["themes"])
    audit.record("themes.undo", actor_id, "theme_run", run.id,
                 detail=f"{edit.action} (edit {edit.id})")
    for theme_id, old, new in renamed:
        signals.theme_renamed.send(theme_id, old=old, new=new)
    return edit


@dataclass(frozen=True)
class StaffView:
    """What staff see of themes, as the run's pages say it: which run, and what is draft."""

    published_at: datetime | None  # when this run was published, if it is the one
    other: ThemeRun | None  # the run staff see instead, if another
    drafts: int  # edits of this run since it was published (undos count off theirs)


def staff_view(run: ThemeRun) -> StaffView:
    if run.published_at is None:
        other = db.session.scalar(select(ThemeRun).where(ThemeRun.published_at.is_not(None))
                                  .order_by(ThemeRun.published_at.desc()).limit(1))
        return StaffView(None, other, 0)
    when = run.published_at
    made = select(func.count()).where(ThemeEdit.run_id == run.id, ThemeEdit.created_at > when,
                                      ThemeEdit.undone_at.is_(None))
    unmade = select(func.count()).where(ThemeEdit.run_id == run.id,
                                        ThemeEdit.created_at <= when,
                                        ThemeEdit.undone_at > when)
    return StaffView(when, None, (db.session.scalar(made) or 0)
                     + (db.session.scalar(unmade) or 0))


def forget_story(story_id: int) -> None:
    """Drop what the history of each run holding the story kept: it may hold its old words."""
    runs = select(ThemePassage.run_id).where(ThemePassage.story_id == story_id).distinct()
    db.session.execute(update(ThemeEdit).where(ThemeEdit.run_id.in_(runs),
                                               ThemeEdit.before.is_not(None))
                       .values(before=None).execution_options(synchronize_session=False))


@signals.transcript_changed.connect
def _words_changed(story_id: int, **_kwargs) -> None:
    forget_story(story_id)


@signals.story_erasure_requested.connect
def _erasure_requested(story_id: int, scopes: list[str] | None = None, **_kwargs) -> None:
    if policy.Action.ANALYSE in policy.affected(scopes):
        forget_story(story_id)


@signals.story_erasing.connect
def _erasing(story_id: int, scopes: list[str] | None = None, **_kwargs) -> list[str]:
    if policy.Action.ANALYSE in policy.affected(scopes):
        forget_story(story_id)
    return []
