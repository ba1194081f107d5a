"""Facilitator edits to a theme run, and carrying them over to the next run.

A new run matches its themes to the previous run's by shared passages; where they match, the
facilitator's names, descriptions, hidden marks, merges, splits, moves and pins come along.
Each edit a facilitator makes is recorded, with what it changed, so it can be undone
(history.py); carrying edits over to a new run is not recorded.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from sqlalchemy import func, select

from .. import audit, signals
from ..extensions import db
from . import modeling
from .history import Recorder
from .models import Passage, Theme, ThemePassage, ThemeRun

# A new theme takes an old one's edits when most of the new theme's passages were in it.
MATCH_SHARE = 0.5


def _theme_in(run: ThemeRun, theme_id: int) -> Theme:
    theme = db.session.get(Theme, theme_id)
    if theme is None or theme.run_id != run.id:
        raise LookupError(theme_id)
    return theme


def _assignment(run: ThemeRun, passage_id: int) -> ThemePassage:
    row = db.session.get(ThemePassage, (run.id, passage_id))
    if row is None:
        raise LookupError(passage_id)
    return row


def _quoted(label: str) -> str:
    return f"“{label}”"


def rename(run: ThemeRun, theme_id: int, label: str, description: str, actor_id: int) -> Theme:
    theme = _theme_in(run, theme_id)
    label = " ".join(label.split())[:120]
    if not label:
        raise ValueError("Give the theme a name.")
    old = theme.label
    recorder = Recorder(run, "rename", actor_id, theme.id)
    recorder.theme(theme)
    theme.label, theme.description, theme.edited = label, description.strip()[:2000], True
    recorder.done(f"Renamed {_quoted(old)} to {_quoted(label)}" if label != old
                  else f"Described {_quoted(label)}")
    audit.record("themes.rename", actor_id, "theme", theme.id)
    if label != old:
        signals.theme_renamed.send(theme.id, old=old, new=label)
    return theme


def set_hidden(run: ThemeRun, theme_id: int, hidden: bool, actor_id: int) -> Theme:
    theme = _theme_in(run, theme_id)
    recorder = Recorder(run, "hide" if hidden else "show", actor_id, theme.id)
    recorder.theme(theme)
    theme.hidden = hidden
    recorder.done(f"Hid {_quoted(theme.label)}" if hidden
                  else f"Showed {_quoted(theme.label)} again")
    audit.record("themes.hide" if hidden else "themes.show", actor_id, "theme", theme.id)
    return theme


def merging(run: ThemeRun, target_id: int, source_ids: list[int]) -> tuple[Theme, list[Theme]]:
    """Return the themes a merge would join (target, sources), or say why it cannot."""
    target = _theme_in(run, target_id)
    sources = [_theme_in(run, s) for s in dict.fromkeys(source_ids) if s != target_id]
    if not sources:
        raise ValueError("Choose at least one other theme to merge into this one.")
    return target, sources


def merge(run: ThemeRun, target_id: int, source_ids: list[int], actor_id: int | None) -> Theme:
    """Move every passage of the source themes into the target and remove the sources."""
    target, sources = merging(run, target_id, source_ids)
    recorder = Recorder(run, "merge", actor_id, target.id)
    recorder.theme(target)
    for source in sources:
        rows = db.session.scalars(select(ThemePassage).where(
            ThemePassage.run_id == run.id, ThemePassage.theme_id == source.id)).all()
        recorder.passages(rows)
        for row in rows:
            row.theme_id = target.id
        target.keywords = list(dict.fromkeys(target.keywords + source.keywords))[:12]
        target.merged_from = [*target.merged_from, source.label]
        recorder.deleting(source)
        db.session.delete(source)
    db.session.flush()
    target.edited = True
    recorder.done(f"Merged {' and '.join(_quoted(s.label) for s in sources)} into "
                  f"{_quoted(target.label)}")
    audit.record("themes.merge", actor_id, "theme", target.id)
    return target


def split(run: ThemeRun, theme_id: int, actor_id: int, parts: int | None = None) -> list[Theme]:
    """Re-cluster one theme's passages into two or more themes (the first keeps the theme)."""
    theme = _theme_in(run, theme_id)
    rows = db.session.scalars(select(ThemePassage).where(
        ThemePassage.run_id == run.id, ThemePassage.theme_id == theme.id)
        .order_by(ThemePassage.passage_id)).all()
    if len(rows) < 2:
        raise ValueError("A theme needs at least 2 passages to be split.")
    if parts is not None and not 2 <= parts <= len(rows):
        raise ValueError(f"This theme can be split into 2 to {len(rows)} themes.")
    if parts is None and len(rows) < 4:
        parts = 2
    vectors = np.stack([np.frombuffer(r.passage.embedding, dtype=np.float32)  # type: ignore
                        for r in rows])
    params = modeling.params_for(len(rows))
    params.max_themes = parts or min(4, len(rows) // 2)
    if parts:
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(parts).fit(modeling._unit(vectors)).labels_
    else:
        labels = modeling._agglomerative(modeling._unit(vectors), params)
    groups = sorted(set(labels.tolist()), key=lambda g: -(labels == g).sum())
    if len(groups) < 2:
        raise ValueError("These passages are too alike to split.")
    recorder = Recorder(run, "split", actor_id, theme.id)
    recorder.theme(theme)
    recorder.passages(rows)
    old_label = theme.label
    texts = [r.passage.text for r in rows]
    keywords = _keywords(texts, labels)
    created = [theme]
    next_number = (db.session.scalar(select(func.max(Theme.number)).where(
        Theme.run_id == run.id)) or 0) + 1
    # A split's names are StoryHub's (made of the passages' words), until the facilitator's.
    theme.keywords = keywords[groups[0]]
    theme.label = theme.auto_label = modeling.readable_label(keywords[groups[0]])[:120]
    theme.edited = True
    for offset, group in enumerate(groups[1:]):
        label = modeling.readable_label(keywords[group])[:120]
        new = Theme(run_id=run.id, number=next_number + offset, position=theme.position,
                    label=label, auto_label=label, keywords=keywords[group], edited=True,
                    split_of=theme.id)
        db.session.add(new)
        db.session.flush()
        for row, lab in zip(rows, labels, strict=True):
            if lab == group:
                row.theme_id = new.id
        created.append(new)
    recorder.done(f"Split {_quoted(old_label)} into {len(created)} themes",
                  created=[t.id for t in created[1:]])
    audit.record("themes.split", actor_id, "theme", theme.id)
    return created


def _keywords(texts: list[str], labels) -> dict[int, list[str]]:
    """Return the distinctive words of each group (class-based TF-IDF, as BERTopic does)."""
    from bertopic.vectorizers import ClassTfidfTransformer

    groups = sorted(set(labels.tolist()))
    joined = [" ".join(t for t, lab in zip(texts, labels, strict=True) if lab == g)
              for g in groups]
    vectorizer = modeling.keyword_vectorizer(len(texts))
    vectorizer.min_df = 1
    counts = vectorizer.fit_transform(joined)
    scores = ClassTfidfTransformer().fit_transform(counts).toarray()
    words = vectorizer.get_feature_names_out()
    return {g: [words[i] for i in np.argsort(-scores[j])[:8] if scores[j, i] > 0]
            for j, g in enumerate(groups)}


def _label(run: ThemeRun, theme_id: int | None) -> str:
    if theme_id is None:
        return "no theme"
    return _quoted(_theme_in(run, theme_id).label)


def move(run: ThemeRun, passage_id: int, theme_id: int | None, actor_id: int) -> ThemePassage:
    """Put a passage in another theme (or in none)."""
    row = _assignment(run, passage_id)
    if theme_id is not None:
        _theme_in(run, theme_id)
    if theme_id == row.theme_id:
        raise ValueError("The passage is already there: choose another theme to move it to."
                         if theme_id is not None else
                         "The passage is in no theme: choose a theme to move it to.")
    recorder = Recorder(run, "move", actor_id, row.theme_id)
    recorder.passages([row])
    summary = f"Moved a passage from {_label(run, row.theme_id)} to {_label(run, theme_id)}"
    row.theme_id, row.moved = theme_id, True
    recorder.done(summary)
    audit.record("themes.move", actor_id, "theme_run", run.id)
    return row


def pin(run: ThemeRun, passage_id: int, pinned: bool, actor_id: int) -> ThemePassage:
    row = _assignment(run, passage_id)
    recorder = Recorder(run, "pin" if pinned else "unpin", actor_id, row.theme_id)
    recorder.passages([row])
    row.pinned = pinned
    recorder.done(f"{'Pinned' if pinned else 'Unpinned'} a quote in {_label(run, row.theme_id)}")
    audit.record("themes.pin" if pinned else "themes.unpin", actor_id, "theme_run", run.id)
    return row


def _members(run: ThemeRun) -> dict[int, set[int]]:
    """Return theme id -> ids of its passages."""
    members: dict[int, set[int]] = defaultdict(set)
    for passage_id, theme_id in db.session.execute(select(
            ThemePassage.passage_id, ThemePassage.theme_id).where(
            ThemePassage.run_id == run.id, ThemePassage.theme_id.is_not(None))):
        members[theme_id].add(passage_id)  # type: ignore[index]
    return members


def carry_over(previous: ThemeRun, run: ThemeRun) -> None:
    """Apply the facilitator's edits in `previous` to the matching themes of the new `run`."""
    old_members, new_members = _members(previous), _members(run)
    old_themes = {t.id: t for t in previous.themes}
    new_themes = {t.id: t for t in run.themes}
    old_of = {pid: theme_id for theme_id, ids in old_members.items() for pid in ids}
    # Each new theme: which old themes its passages were in.
    matched: dict[int, int] = {}
    for theme_id, ids in new_members.items():
        counts = Counter(old_of[p] for p in ids if p in old_of)
        if counts:
            best, shared = counts.most_common(1)[0]
            if shared / len(ids) >= MATCH_SHARE:
                matched[theme_id] = best
    # Splits: an old split, now one new theme again, is split along the old lines.
    for theme_id, ids in list(new_members.items()):
        parts = [o for o, o_ids in old_members.items()
                 if len(o_ids & ids) >= 0.6 * len(o_ids) and _split_family(old_themes, o)]
        if len(parts) >= 2:
            _resplit(run, new_themes[theme_id], ids, parts, old_members, old_themes, matched)
    new_themes = {t.id: t for t in db.session.scalars(
        select(Theme).where(Theme.run_id == run.id))}
    # Merges: several new themes matching one old theme become one again.
    by_old: dict[int, list[int]] = defaultdict(list)
    for new_id, old_id in matched.items():
        by_old[old_id].append(new_id)
    for old_id, new_ids in by_old.items():
        old = old_themes[old_id]
        keep = new_themes[new_ids[0]]
        if len(new_ids) > 1 and old.merged_from:
            merge(run, keep.id, new_ids[1:], actor_id=None)
        if old.edited:
            keep.label, keep.description, keep.edited = old.label, old.description, True
            if old.label == old.auto_label:  # StoryHub's name (of a merge or split), carried
                keep.auto_label = old.auto_label
            keep.merged_from = list(old.merged_from)
        keep.hidden = old.hidden
    # Moves and pins follow the passage.
    new_for_old = {old_id: new_ids[0] for old_id, new_ids in by_old.items()}
    for row in db.session.scalars(select(ThemePassage).where(
            ThemePassage.run_id == previous.id,
            (ThemePassage.moved.is_(True)) | (ThemePassage.pinned.is_(True)))):
        target = db.session.get(ThemePassage, (run.id, row.passage_id))
        if target is None:
            continue
        if row.moved:
            target.theme_id = new_for_old.get(row.theme_id) if row.theme_id else None
            target.moved = True
        target.pinned = row.pinned
    db.session.flush()


def _split_family(old_themes: dict[int, Theme], theme_id: int) -> bool:
    theme = old_themes[theme_id]
    return theme.split_of is not None or any(t.split_of == theme_id
                                             for t in old_themes.values())


def _resplit(run: ThemeRun, theme: Theme, ids: set[int], parts: list[int],
             old_members: dict[int, set[int]], old_themes: dict[int, Theme],
             matched: dict[int, int]) -> None:
    parts.sort(key=lambda o: -len(old_members[o] & ids))
    matched[theme.id] = parts[0]
    for old_id in parts[1:]:
        old = old_themes[old_id]
        new = Theme(run_id=run.id, number=theme.number * 100 + old_id, position=theme.position,
                    label=old.label, auto_label=old.auto_label, keywords=old.keywords,
                    edited=True, split_of=theme.id)
        db.session.add(new)
        db.session.flush()
        for row in db.session.scalars(select(ThemePassage).where(
                ThemePassage.run_id == run.id,
                ThemePassage.passage_id.in_(old_members[old_id] & ids))):
            row.theme_id = new.id
        matched[new.id] = old_id


def passages_of(run: ThemeRun, theme_id: int | None) -> list[ThemePassage]:
    return list(db.session.scalars(
        select(ThemePassage).join(Passage).where(
            ThemePassage.run_id == run.id, ThemePassage.theme_id == theme_id)
        .order_by(ThemePassage.pinned.desc(), Passage.story_id, Passage.position)))
