"""Short stories with known themes, written for the tests and spoken with espeak-ng.

Each is transcribed once per test session by the real Whisper model (the transcripts are then
reused, as a reviewed transcript would be), so theme tests see real transcription output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .speech import espeak

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


def corpus_audio(folder: Path) -> dict[str, Path]:
    """Speak every corpus story into `folder`; return key -> WAV file."""
    folder.mkdir(parents=True, exist_ok=True)
    return {s.key: espeak(folder / f"{s.key}.wav", s.text) for s in CORPUS}
