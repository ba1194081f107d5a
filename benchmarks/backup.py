"""Backup and restore: time and size for a synthetic instance of many stories.

The stories are seeded as benchmarks/web_load.py seeds the library (passages, themes,
transcripts, library entries and full-text index), each with its own data key and three sealed
recordings of the demo's average size (1.6 MB a story, split as the demo's original,
16 kHz and playback copies are). Then `storyhub backup` (make_backup) and `storyhub restore`
(restore, with an erasure ledger naming one story) run in this process, and a plain copy of
the instance folder (shutil.copytree, with the SQLite file: no snapshot, no checksums, no
check that a file opens) is the peer.

    .venv/bin/python benchmarks/backup.py [--stories 1000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Of a story's stored bytes in the demo instance: original, 16 kHz copy, playback copy.
SPLIT = {"original": 0.30, "normalised": 0.55, "playback": 0.15}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _seal_recordings(app, mb_per_story: float) -> int:
    """Give every story a data key and sealed recordings; return the bytes stored."""
    from sqlalchemy import select

    from storyhub import keys
    from storyhub.extensions import db
    from storyhub.storage import get_storage
    from storyhub.stories.models import Recording, Story

    stored = 0
    with app.app_context():
        storage = get_storage()
        noise = os.urandom(int(mb_per_story * 1e6))
        for story, recording in db.session.execute(
                select(Story, Recording).join(Recording, Recording.story_id == Story.id)):
            data_key = keys.new_story_key(story)
            offset = 0
            for kind, share in SPLIT.items():
                size = int(len(noise) * share)
                plain = storage.temp_path()
                plain.write_bytes(noise[offset:offset + size])
                offset += size
                storage.put(plain, getattr(recording, f"{kind}_key"), data_key)
                stored += size
        db.session.commit()
    return stored


def _random_vectors():
    import numpy as np

    from benchmarks.web_load import TOPIC_NAMES, TOPICS

    pairs = [(sentence, t) for t, name in enumerate(TOPIC_NAMES) for sentence in TOPICS[name]]
    vectors = np.random.default_rng(7).normal(size=(len(pairs), 384)).astype(np.float32)
    return ([s for s, _t in pairs], vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
            [t for _s, t in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=1000)
    parser.add_argument("--passages-per-story", type=int, default=12)
    parser.add_argument("--mb-per-story", type=float, default=1.6)
    parser.add_argument("--database-url", default="",
                        help="an empty PostgreSQL database for the instance (default: SQLite); "
                             "a database of the same name with _restored is made for the restore")
    parser.add_argument("--quick", action="store_true", help="20 small stories (for CI)")
    args = parser.parse_args()
    if args.quick:
        args.stories, args.passages_per_story, args.mb_per_story = 20, 3, 0.05

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from benchmarks import web_load
    from storyhub import create_app
    from storyhub.backup import ledger
    from storyhub.backup.making import make_backup
    from storyhub.backup.restoring import Target, restore
    from storyhub.config import database_uri
    from storyhub.database import upgrade_schema
    from storyhub.extensions import db

    folder = Path(tempfile.mkdtemp(prefix="storyhub-backup-bench-"))
    instance = folder / "instance"
    os.environ.update(STORYHUB_INSTANCE_PATH=str(instance), STORYHUB_THEME_WARM_UP="0")
    url = database_uri(args.database_url or None, str(instance))
    restored_url = None
    if args.database_url:
        base = make_url(url)
        restored_url = base.set(database=f"{base.database}_restored").render_as_string(
            hide_password=False)
        admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in (base.database, f"{base.database}_restored"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "BROKER_URL": ""})
        upgrade_schema(app)
        with app.app_context():
            db.engine.dispose()
        started = time.perf_counter()
        if args.quick:  # the same seeding, with random passage vectors: no model to load
            web_load._sentences_and_vectors = _random_vectors
        web_load.seed(url, args.stories, args.passages_per_story, args.stories)
        stored = _seal_recordings(app, args.mb_per_story)
        print(f"Seeded {args.stories} stories ({stored / 1e6:,.0f} MB sealed) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        master_keys = (instance / "master.keys").read_text().strip()
        with app.app_context():
            from storyhub.stories.models import Story

            erased = db.session.get(Story, args.stories // 2)
            ledger.append(ledger.ledger_path(app), [ledger.entry_for(erased, None)])
            db.session.remove()

        backup = folder / "backup"
        started = time.perf_counter()
        with app.app_context():
            manifest = make_backup(app, backup)
            db.engine.dispose()
        backup_s = time.perf_counter() - started
        backup_mb = _size(backup) / 1e6

        started = time.perf_counter()
        result = restore(backup, Target(folder / "restored", restored_url, None, master_keys),
                         ledgers=[ledger.ledger_path(app)])
        restore_s = time.perf_counter() - started
        assert result.erased == [args.stories // 2], result.erased

        started = time.perf_counter()
        shutil.copytree(instance, folder / "plain-copy")
        copy_s = time.perf_counter() - started
        engine = "postgresql" if args.database_url else "sqlite"
        print(f"{engine}: {manifest.counts['stories']} stories, {manifest.counts['files']} files;"
              f" backup {backup_s:.1f} s ({backup_mb:,.1f} MB), restore {restore_s:.1f} s "
              f"(checks {manifest.counts['files']} files open, erases 1 story); a plain copy of "
              f"the folder {copy_s:.1f} s")
        print(f"RESULT stories={manifest.counts['stories']} files={manifest.counts['files']} "
              f"backup_mb={backup_mb:.1f} backup_s={backup_s:.2f} restore_s={restore_s:.2f} "
              f"copy_s={copy_s:.2f} backup_ratio={backup_s / max(copy_s, 1e-3):.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if args.database_url:
            base = make_url(url)
            admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for name in (base.database, f"{base.database}_restored"):
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
