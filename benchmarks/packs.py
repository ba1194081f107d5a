"""How long a workshop pack takes to build: 8 themes × 4 quotes over 40 stories, on this machine.

Forty stories go through the real intake (espeak-ng audio, the transcripts stored for the test
corpus), one real theme run finds their themes, and a workshop is built from it; where the run
found fewer than eight themes, more are added from its passages so the pack has 8 themes of 4
quotes. Then each output is timed: generating the pack (checks + Markdown), the A4 PDF, the A6
quote cards, the A3 poster, and the ZIP with every clip (cut fresh, then again from the clips
already cut).

The peer, measured in the same run, is Chromium printing the same HTML to PDF
(`chromium --headless --print-to-pdf`); `pdf_ratio` is WeasyPrint's time over Chromium's.

    .venv/bin/python benchmarks/packs.py [--quick]

--quick (CI, a test runs it): 8 stories with stored transcripts and 1 transcribed now, a pack of
2 themes × 2 quotes, the same outputs timed against the same peer, in seconds.

Last line: RESULT stories=40 themes=8 quotes=32 generate_s=… pdf_s=… cards_s=… poster_s=… zip_s=… …
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.theme_corpus import (  # noqa: E402
    BIG_CORPUS,
    recombined,
    seed_stories,
    stored_corpus,
    transcribe_corpus,
)

# (stories, themes, quotes a theme): the full run and --quick.
FULL = (40, 8, 4)
QUICK = (9, 2, 2)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="9 stories, 2 themes × 2 quotes: the same code in seconds (for CI)")
    args = parser.parse_args()
    stories, themes_wanted, per_theme = QUICK if args.quick else FULL
    folder = Path(tempfile.mkdtemp(prefix="storyhub-pack-bench-"))
    os.environ["STORYHUB_INSTANCE_PATH"] = str(folder / "instance")
    os.environ.setdefault("STORYHUB_THEME_WARM_UP", "0")
    from sqlalchemy import select

    from storyhub import create_app
    from storyhub.accounts import service as accounts
    from storyhub.accounts.models import Role, User
    from storyhub.database import upgrade_schema
    from storyhub.extensions import db
    from storyhub.jobs.runner import run_job
    from storyhub.packs import exports, render, service
    from storyhub.packs.models import Workshop, WorkshopQuote, WorkshopTheme
    from storyhub.redaction import service as redaction
    from storyhub.stories.models import Story
    from storyhub.themes import service as themes
    from storyhub.themes.models import ThemeRun

    # The 36 stories whose transcripts are stored for the tests, and 4 more transcribed now
    # (quick: 8 of the 36, 2 of each theme, and 1 more).
    stored = BIG_CORPUS if not args.quick else [
        s for s in BIG_CORPUS if s.key.endswith(("-1", "-2"))]
    known = {b.text for b in BIG_CORPUS}
    extra = [s for s in recombined(8, seed=11) if s.text not in known]
    extra = [s.__class__(f"extra-{i}", s.theme, s.role, s.text)
             for i, s in enumerate(extra[:stories - len(stored)])]
    corpus = stored_corpus(folder / "speech", stored) | transcribe_corpus(
        folder / "speech-extra", extra)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite'}",
                      "SECRET_KEY": "bench", "BROKER_URL": "", "SERVER_NAME": "bench.local"})
    upgrade_schema(app)
    with app.app_context():
        reporter = accounts.create_user("bench-reporter", "Bench", Role.REPORTER,
                                        "quiet lantern orchard 42")
        reporter.all_sites = True
        facilitator = accounts.create_user("bench-facilitator", "Fac", Role.FACILITATOR,
                                           "quiet lantern orchard 43")
        db.session.commit()
        reporter_id, facilitator_id = reporter.id, facilitator.id
    print(f"seeding {len(corpus)} stories …", flush=True)
    seed_stories(app, corpus, reporter_id)
    with app.app_context():
        # The stories name nobody: what StoryHub suggests redacting is a mishearing ("Dory's"),
        # which the reporter dismisses before the workshop (a quote waits for that decision).
        reporter = db.session.get(User, reporter_id)
        for story in db.session.scalars(select(Story)):
            redaction.reject(story, reporter, [o.value for o in redaction.offers(story, reporter)])
        db.session.commit()
        run = themes.start_run(facilitator_id)
        db.session.commit()
        run_id, job_id = run.id, run.job_id
    print("theme run …", flush=True)
    with app.app_context():
        _, run_seconds = timed(lambda: run_job(job_id))
    with app.test_request_context():
        chosen = [c.theme.id for c in service.theme_choices(db.session.get(
            ThemeRun, run_id))][:themes_wanted]
        workshop = service.create_workshop(run_id, facilitator_id, "Benchmark workshop",
                                           date(2026, 12, 10), theme_ids=chosen,
                                           quotes=per_theme)
        found = len(workshop.themes)
        spare = [r for r in themes.run_passages(workshop.run)
                 if r.passage_id not in {q.passage_id for t in workshop.themes
                                         for q in t.quotes}]
        for theme in workshop.themes:  # top each theme up to its quotes
            while len(theme.quotes) < per_theme and spare:
                row = spare.pop()
                theme.quotes.append(WorkshopQuote(
                    story_id=row.passage.story_id, passage_id=row.passage_id,
                    position=len(theme.quotes), speaker=row.passage.speaker,
                    start=row.passage.start, end=row.passage.end, text=row.passage.text))
        while len(workshop.themes) < themes_wanted and len(spare) >= per_theme:
            extra = WorkshopTheme(theme_id=workshop.themes[0].theme_id,
                                  position=len(workshop.themes),
                                  title=f"Added theme {len(workshop.themes) + 1}")
            for n in range(per_theme):
                row = spare.pop()
                extra.quotes.append(WorkshopQuote(
                    story_id=row.passage.story_id, passage_id=row.passage_id, position=n,
                    speaker=row.passage.speaker, start=row.passage.start,
                    end=row.passage.end, text=row.passage.text))
            workshop.themes.append(extra)
        db.session.commit()
        workshop_id = workshop.id
        (pack, _), generate_s = timed(lambda: service.generate_pack(workshop_id, facilitator_id))
        db.session.commit()
        quotes = sum(len(t["quotes"]) for t in pack.content["themes"])
        actor = db.session.get(User, facilitator_id)
        pdf, pdf_s = timed(lambda: exports.export(pack, "pdf"))
        _, cards_s = timed(lambda: exports.export(pack, "cards"))
        _, poster_s = timed(lambda: exports.export(pack, "poster"))
        _, zip_s = timed(lambda: exports.write_zip(pack, actor, io.BytesIO()))
        _, zip_again_s = timed(lambda: exports.write_zip(pack, actor, io.BytesIO()))
        html = render.html_for("pack", pack.markdown, "Benchmark")
        from pypdf import PdfReader

        pages = len(PdfReader(io.BytesIO(pdf.data)).pages)
        keep = os.environ.get("PACK_BENCH_KEEP")
        if keep:  # for looking at: the PDFs as made
            Path(keep).mkdir(parents=True, exist_ok=True)
            for fmt in ("pdf", "cards", "poster"):
                made = exports.export(pack, fmt)
                Path(keep, made.filename).write_bytes(made.data)
        themes_in_pack = len(db.session.get(Workshop, workshop_id).themes)  # type: ignore[union-attr]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    peer_s = float("nan")
    if chromium:
        page = folder / "pack.html"
        page.write_text(html)
        _, peer_s = timed(lambda: subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-pdf-header-footer",
             f"--print-to-pdf={folder / 'peer.pdf'}", page.as_uri()],
            capture_output=True, timeout=120, check=False))
    shutil.rmtree(folder, ignore_errors=True)
    print(f"theme run {run_seconds:.1f} s found {found} themes; pack has {themes_in_pack} themes, "
          f"{quotes} quotes, PDF {pages} pages, {len(pdf.data) / 1024:.0f} KB")
    print(f"generate {generate_s:.2f} s, PDF {pdf_s:.2f} s, cards {cards_s:.2f} s, "
          f"poster {poster_s:.2f} s, ZIP {zip_s:.2f} s (clips cut) / {zip_again_s:.2f} s "
          f"(clips kept); Chromium print-to-pdf of the same HTML {peer_s:.2f} s")
    print(f"RESULT stories={len(corpus)} themes={themes_in_pack} quotes={quotes} "
          f"generate_s={generate_s:.2f} pdf_s={pdf_s:.2f} cards_s={cards_s:.2f} "
          f"poster_s={poster_s:.2f} zip_s={zip_s:.2f} zip_again_s={zip_again_s:.2f} "
          f"peer_pdf_s={peer_s:.2f} pdf_ratio={pdf_s / peer_s:.2f}")


if __name__ == "__main__":
    main()
