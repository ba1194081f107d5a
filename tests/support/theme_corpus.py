"""Short stories with known themes, written for the tests and spoken with espeak-ng.

Their transcripts, made once by the real Whisper model, are kept in `data/theme_corpus.json`, so
theme tests get the same words on every machine (int8 output differs between CPUs) without
transcribing for minutes. The recordings themselves are spoken again by espeak-ng in each test
session and go through the real intake. After changing the stories, make the file again with

    .venv/bin/python -m tests.support.theme_corpus

Tests that need the real engine end to end (test_themes_from_real_audio) still transcribe.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select

from storyhub import dates
from storyhub.accounts.models import User
from storyhub.config import Settings
from storyhub.database import utcnow
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.transcripts import engine_audio
from storyhub.transcripts.coverage import NOT_CHECKED
from storyhub.transcripts.engines import (
    EngineSettings,
    SegmentResult,
    Transcription,
    WordResult,
    get_engine,
)
from storyhub.transcripts.service import build_transcript

from .speech import espeak

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "theme_corpus.json"
PROBATION = "person_on_probation"
STAFF = "staff"


@dataclass(frozen=True)
class CorpusStory:
    key: str
    theme: str
    role: str
    text: str


CORPUS = [
    CorpusStory("housing-1", "housing", PROBATION,
                "When I came out of prison I had nowhere to live. The council said the housing "
                "list was two years long, so I slept on a friend's sofa and then in a hostel. "
                "Without an address I could not get a bank account. Having a safe flat with my "
                "own front door is what finally let me settle down."),
    CorpusStory("housing-2", "housing", STAFF,
                "Most of the people on my caseload who reoffend are homeless or sofa surfing. "
                "We spend hours ringing landlords and the council housing team. A bed in an "
                "approved premises or a hostel is only a few weeks. If we could find a tenancy "
                "before release day, half the problems would never start."),
    CorpusStory("housing-3", "housing", PROBATION,
                "The hostel was noisy and there were drugs on every floor, so I left and ended "
                "up homeless again. My landlord now wants a deposit and a guarantor I do not "
                "have. Rent for a room costs more than my benefits. I just want a flat where I "
                "feel safe at night."),
    CorpusStory("work-1", "work", PROBATION,
                "Getting a job changed everything for me. I did a forklift course and a "
                "construction skills card while I was inside. An employer who gave ex offenders "
                "a chance took me on at the warehouse. Earning a wage and paying tax makes me "
                "feel like a normal person with a career again."),
    CorpusStory("work-2", "work", STAFF,
                "Employment is the best protective factor we see. I link people with training "
                "providers and employers who are willing to hire someone with a conviction. "
                "Disclosure on job applications worries them most. When someone gets paid work "
                "and a steady income their whole week has a shape."),
    CorpusStory("work-3", "work", PROBATION,
                "Every job application asks about criminal convictions and I never hear back. "
                "I have applied for warehouse work, cleaning and kitchen jobs. The job centre "
                "sent me on a course but no employer would interview me. I want to work, earn "
                "money and support my kids."),
    CorpusStory("drugs-1", "drugs", PROBATION,
                "Heroin took ten years of my life. I was using every day and stealing to pay "
                "for it. The drug service put me on methadone and a recovery group. Now I am "
                "clean and I go to meetings every week. Staying away from dealers and old "
                "friends who use is the hardest part of recovery."),
    CorpusStory("drugs-2", "drugs", PROBATION,
                "Alcohol was my problem. I drank a bottle of vodka a day and most of my "
                "offences happened when I was drunk. Detox in the hospital was hard. The "
                "alcohol worker helped me find a rehab and now I have been sober for eight "
                "months, one day at a time."),
    CorpusStory("drugs-3", "drugs", STAFF,
                "A lot of the people I supervise have an addiction to crack cocaine, heroin or "
                "alcohol. Drug testing alone does not help them stop using. What works is fast "
                "referral to treatment, a key worker in the substance misuse service and "
                "someone to meet them at the door of rehab."),
    CorpusStory("officer-1", "officer", PROBATION,
                "My probation officer actually listens to me. She explains my licence "
                "conditions, answers her phone and does not judge me. When I missed an "
                "appointment she asked what was wrong instead of sending a breach letter. I "
                "trust her, and that trust keeps me coming to supervision."),
    CorpusStory("officer-2", "officer", STAFF,
                "As a probation practitioner the relationship is everything. If the person "
                "trusts their officer they tell you the truth about what is going on. I try "
                "to be honest about licence conditions and recall, keep my promises and turn "
                "up on time for every supervision appointment."),
    CorpusStory("officer-3", "officer", PROBATION,
                "I have had five different probation officers in two years. Every time I had "
                "to tell my story again to a stranger. One threatened me with recall over a "
                "late appointment. It is hard to trust someone who changes every few months "
                "and never reads your file."),
]


THEME_OF = {s.key: s.theme for s in CORPUS}
ALL_SCOPES = set(Scope)


@dataclass
class Spoken:
    story: CorpusStory
    audio: Path
    segments: list[SegmentResult]


def recombined(per_theme: int, seed: int = 7) -> list[CorpusStory]:
    """Return more stories per theme, each four sentences drawn from that theme's stories."""
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    pools: dict[str, list[str]] = {}
    for story in CORPUS:
        pools.setdefault(story.theme, []).extend(re.split(r"(?<=[.])\s+", story.text))
    made: list[CorpusStory] = []
    seen = {story.text for story in CORPUS}
    for theme, pool in pools.items():
        while len([m for m in made if m.theme == theme]) < per_theme:
            text = " ".join(pool[j] for j in sorted(rng.sample(range(len(pool)), 4)))
            if text not in seen:  # the same words would be the same recording
                seen.add(text)
                i = len([m for m in made if m.theme == theme])
                made.append(CorpusStory(f"{theme}-r{i + 1}", theme, (PROBATION, STAFF)[i % 2],
                                        text))
    return made


BIG_CORPUS = CORPUS + recombined(6)
BIG_THEME_OF = {s.key: s.theme for s in BIG_CORPUS}


def transcribe(audio: Path) -> list[SegmentResult]:
    """Transcribe `audio` with the real engine and the default settings (tiny.en, as the
    stored transcripts were made)."""
    engine = get_engine(EngineSettings.from_config(Settings(whisper_model="tiny.en")))
    return engine.transcribe(engine_audio.decode(audio), "en", lambda _t: None).segments


def transcribe_corpus(folder: Path, corpus: list[CorpusStory] = CORPUS) -> dict[str, Spoken]:
    """Speak every story and transcribe it with the real model; return key -> Spoken."""
    folder.mkdir(parents=True, exist_ok=True)
    spoken = {}
    for story in corpus:
        audio = espeak(folder / f"{story.key}.wav", story.text)
        spoken[story.key] = Spoken(story, audio, transcribe(audio))
    return spoken


def _segments_from_json(rows: list[dict]) -> list[SegmentResult]:
    return [SegmentResult(row["start"], row["end"], row["text"],
                          [WordResult(**w) for w in row["words"]], row["speaker"])
            for row in rows]


def stored_corpus(folder: Path, corpus: list[CorpusStory] = CORPUS) -> dict[str, Spoken]:
    """Speak every story, with the transcript stored for it in the fixture; key -> Spoken."""
    saved = json.loads(FIXTURE.read_text())["stories"]
    folder.mkdir(parents=True, exist_ok=True)
    spoken = {}
    for story in corpus:
        entry = saved.get(story.key)
        if entry is None or entry["text"] != story.text:
            raise RuntimeError(f"{FIXTURE.name} is out of date for {story.key}: make it again "
                               "with `.venv/bin/python -m tests.support.theme_corpus`")
        audio = espeak(folder / f"{story.key}.wav", story.text)
        spoken[story.key] = Spoken(story, audio, _segments_from_json(entry["segments"]))
    return spoken


def seed_stories(app, corpus: dict[str, Spoken], user_id: int, keys=None, scopes=None,
                 reviewed: bool = True) -> dict[str, int]:
    """Add stories through the real intake, with their transcripts; return key -> story id."""
    ids = {}
    with app.app_context():
        actor = db.session.get(User, user_id)
        for key, item in corpus.items():
            if keys is not None and key not in keys:
                continue
            chosen = (scopes or {}).get(key, ALL_SCOPES)
            story = stories.create_story(
                stories.NewStory(f"Story {key}", item.story.role, "snapshot", dates.today()),
                stories.NewConsent(set(chosen), "spoken", dates.today(), 0.0), item.audio, actor)
            transcript = build_transcript(story, Transcription(item.segments, NOT_CHECKED), 1.0)
            # The transcript is the session's real transcription of this audio, so the job
            # the upload queued is done already.
            for job in db.session.scalars(select(Job).where(Job.story_id == story.id)):
                job.status, job.progress = JobStatus.DONE, 100.0
            if reviewed:  # the reporter listened, checking each word the model was unsure of
                transcript.reviewed_at = utcnow()
                for segment in transcript.segments:
                    for word in segment.words:
                        word.checked = True
            db.session.add(transcript)
            db.session.commit()
            ids[key] = story.id
    return ids


def filler(corpus: dict[str, Spoken]):
    """Return a function that fills an instance with `corpus`, reported by a lead reporter."""

    def fill(app) -> dict:
        from storyhub.accounts import service as accounts
        from storyhub.accounts.models import Role

        with app.app_context():
            reporter = accounts.create_user("corpus-reporter", "Corpus Reporter", Role.REPORTER,
                                            "quiet lantern orchard 42")
            reporter.all_sites = True
            db.session.commit()
            reporter_id = reporter.id
        return {"ids": seed_stories(app, corpus, reporter_id), "reporter": reporter_id}

    return fill


def _rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def main() -> None:
    """Transcribe every corpus story with the real engine and store the transcripts."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/storyhub-theme-corpus"))
    args = parser.parse_args()
    stories_out = {}
    for key, item in transcribe_corpus(args.folder, BIG_CORPUS).items():
        stories_out[key] = {"text": item.story.text,
                            "segments": [_rounded(asdict(seg)) for seg in item.segments]}
        print(key, " ".join(seg.text for seg in item.segments)[:70])
    settings = EngineSettings.from_config(Settings())
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps({"engine": settings.engine, "model": "bundled tiny.en",
                                   "stories": stories_out}, separators=(",", ":")) + "\n")
    print(f"Wrote {len(stories_out)} transcripts to {FIXTURE}")


if __name__ == "__main__":
    main()
