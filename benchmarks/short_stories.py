"""Short stories as reporters record them: 15–60 s each, several voices, rates and containers.

The texts are written for StoryHub's benchmarks (about probation: housing, work, drugs and
alcohol, trust in the case manager, peer mentors, small practical help). Each story is spoken by
espeak-ng with its own voice and rate and saved in the container a phone or browser would send.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.audio_fixtures import ENCODING, Encoding, encode

STORIES = [
    "I got out on a Friday with forty six pounds and a bag of clothes. The hostel had no bed "
    "until Monday, so I walked around all night. My probation officer found me a room on the "
    "Monday morning, and I will never forget that she rang three places before she gave up on "
    "lunch.",
    "Work is the thing that keeps me straight. I started on a building site through a scheme "
    "the probation office ran. The first month I was nervous every day that someone would ask "
    "about my record. Nobody did, and now the foreman has asked me to stay on after the "
    "contract ends.",
    "I had been using since I was fourteen. Heroin first, then anything I could get. When I "
    "was told I had to see the drug service as part of my order I was angry, but the worker "
    "there never judged me. Eight months clean now, and I check in with her every Tuesday.",
    "My case manager changed three times in one year. Each new one read the file and not me. "
    "By the third I had stopped telling them anything real, because what was the point. It is "
    "hard to trust somebody when you know they will be gone before the summer.",
    "The peer mentor met me at the gate. He had done twelve years himself, so he knew what the "
    "first day feels like. He took me to get a phone, to sign on, and to buy a sandwich. Small "
    "things, but I could not have done them on my own.",
    "What nobody tells you is how much the paperwork weighs. You need ID to open a bank "
    "account, a bank account to get paid, and an address for both. I was stuck in that circle "
    "for six weeks until a volunteer paid for my birth certificate.",
    "I am a probation officer and I have ninety cases. I want to sit with people and listen, "
    "but most days I am typing up risk assessments until seven. The people who need me most "
    "get ten minutes, and I hate that. We need fewer cases, not another new system.",
    "When I missed one appointment because my daughter was ill, I was sure I would be "
    "breached. My officer rang me instead and asked what had happened. She moved the meeting "
    "to the afternoon. That phone call did more for me than any course I have been on.",
    "The hostel was full of people still using, and I was trying to stay off the drink. Every "
    "night there was noise and fighting in the corridor. I asked to move four times. In the "
    "end I slept at my sister's and nearly got recalled for not being at the address.",
    "Being a peer mentor has changed my life as much as theirs. I know the lies people tell "
    "because I told them all myself. When a lad says he is fine, I can hear that he is not, "
    "and I can tell him so without him walking out.",
    "I drink to sleep. I have done since prison. My doctor says it is trauma and the drink is "
    "me medicating it, which makes sense to me. The counselling waiting list is nine months, "
    "so for now it is just me and the group on a Thursday.",
    "A bus pass sounds like nothing. But my appointments are across town, the job centre is "
    "in the other direction, and the food bank is out by the ring road. Without the pass I "
    "would have had to choose which one to miss each week.",
    "I was released homeless and told to present to the council. They said I had made myself "
    "intentionally homeless because of my offence. I spent eleven nights in a tent by the "
    "canal before a charity found me a room in a shared house.",
    "The best officer I had was the one who remembered my son's name. She asked how his "
    "football was going before she asked about anything else. It made me feel like a person "
    "and not a case number, and I told her things I had never told anyone.",
    "Unpaid work was mostly painting fences and picking litter, but one supervisor showed me "
    "how to lay paving. I liked it and I was good at it. Now I have my own small landscaping "
    "business, and I take on lads from the same scheme when I can.",
    "My licence says I cannot go into the town where my mum lives. She is seventy and not "
    "well. I understand why the condition is there, but nobody has explained how I am meant to "
    "look after her. I have asked twice for it to be reviewed.",
    "We restructured twice in two years. Every time, the teams were broken up and the people "
    "on probation got new names to learn. Staff sickness went through the roof. If you want "
    "continuity for service users, you need continuity for staff first.",
    "I was scared of the group programme at first. Sitting in a circle talking about feelings "
    "is not me. But the facilitator let us talk about what mattered to us, not what was the "
    "matter with us, and by week four I actually looked forward to it.",
    "When I came out I had no clothes that fitted. I had lost a lot of weight inside. A "
    "church near the office gave me a coat and two pairs of jeans. It sounds small, but I went "
    "to my first interview looking like everybody else.",
    "I relapsed after my brother died. I told my officer straight away, because I thought "
    "lying would be worse. She did not send me back. She got me into detox within a week and "
    "came to see me there. That is when I started to trust the system a bit.",
    "Volunteering at the food bank gave me a reason to get up. I stack shelves on Mondays and "
    "Wednesdays. People there do not know my past and do not ask. For the first time in years "
    "I am somebody who helps rather than somebody who needs help.",
    "The approved premises had a curfew at eleven, and my job was on nights at a warehouse. I "
    "had to choose between the job and the bed. It took three weeks of letters before they "
    "agreed to change my curfew, and by then I had nearly lost the job.",
    "Mental health was never asked about properly. I had a form with tick boxes, and I ticked "
    "no to everything because I did not want to look weak. A peer mentor was the first person "
    "to say he had been on antidepressants, and that opened the door for me.",
    "I have done four short sentences in three years, all for shoplifting to buy drugs. Each "
    "time I came out with nothing and went straight back to the same people. This time I had "
    "a room waiting and a mentor, and I have been out nine months.",
    "Probation should be about helping people not to come back. Most of my week is checking, "
    "recording and chasing. The conversations that change things happen in the corridor or "
    "the car park, and none of that counts on the system.",
    "My biggest worry was my kids. Social services had them and I only saw them once a "
    "month. My officer wrote a letter about how well I was doing on my order, and at the next "
    "review I got weekly visits. That letter mattered more than she knows.",
    "The job centre sent me for warehouse jobs, but every application asked about "
    "convictions. I got nothing back from twenty applications. A charity helped me write a "
    "disclosure letter, and the next employer I sent it to gave me a trial shift.",
    "I do not like talking to people in offices. The first time I saw my officer she met me "
    "in a cafe instead. We sat by the window and she bought me a tea. It was still probation, "
    "but it felt like somebody was on my side for once.",
    "Being told to do a course online when you have no phone and no credit is a joke. I had to "
    "go to the library every day, and it closes at four. I kept getting warnings for not "
    "finishing modules I could not reach.",
    "Coming off methadone took me two years. The chemist was next to the pub where I used to "
    "drink, so every morning was a test. My key worker moved my prescription to another "
    "chemist and it sounds silly, but that one change made the difference.",
    "When the mentor scheme lost its funding we lost three of the best people we had. They "
    "knew the estates, they knew the families, and people trusted them. Nothing has replaced "
    "that, and the men on my caseload ask after them every week.",
    "I learned to read in prison. When I got out I was ashamed to fill in forms in front of "
    "people, so I would pretend I had forgotten my glasses. My officer noticed and quietly "
    "started reading the letters out to me. She never made a thing of it.",
    "Housing is the first question and the last one. If I have a door that locks, I can do "
    "everything else: the appointments, the courses, the job search. Without it, every day is "
    "just about where I will sleep tonight.",
    "My mentor still texts me on Sunday nights, even though my order finished a year ago. He "
    "says that is when it gets hard, and he is right. Just a message saying he is thinking of "
    "me is enough to stop me going to the shop for a bottle.",
    "The women's centre was the only place I felt safe. There was a creche, a nurse, and a "
    "probation officer who came on Wednesdays. I did not have to take two buses with a baby to "
    "sit in a waiting room full of men.",
    "I want the people who run probation to know one thing. Most of us want to change. We "
    "just need somebody to believe it before we can, and a place to live, and a reason to get "
    "up in the morning. That is all it takes.",
]

# espeak-ng voices a reporter's storytellers might sound like, and speaking rates (words/min).
VOICES = ("en-us", "en-gb", "en+f3", "en-gb-scotland", "en-029", "en-gb-x-rp", "en+m3",
          "en-us+f2", "en-gb-x-gbcwmd")
RATES = (130, 145, 160, 175, 190)


# The containers phones and browsers send, encoded with PyAV (no ffmpeg program needed).
CONTAINERS = tuple(ENCODING[name] for name in ("wav", "mp3", "m4a-aac", "ogg-opus", "webm-opus"))


# Target lengths in seconds, cycling: reporters' snapshots run from a quarter to a whole minute.
LENGTHS = (20, 25, 35, 45, 52)
MAX_SECONDS = 55
# espeak-ng speaks 1.17-1.27 times its nominal rate, pauses included, depending on the voice.
_WORDS_PER_SECOND_PER_WPM = 1.17 / 60


@dataclass(frozen=True)
class ShortStory:
    name: str
    text: str
    voice: str
    rate: int
    container: Encoding


def short_stories(count: int = 36) -> list[ShortStory]:
    """Return `count` recordings: voice, rate, container and length each cycle on their own.

    Recording i starts with story i and goes on with every seventh story after it (wrapping
    round) while it is short of its target length at its rate.
    """
    corpus = []
    for i in range(count):
        voice, rate = VOICES[i % len(VOICES)], RATES[(i * 2) % len(RATES)]
        container = CONTAINERS[i % len(CONTAINERS)]
        wanted = LENGTHS[(i // 2) % len(LENGTHS)] * rate * _WORDS_PER_SECOND_PER_WPM
        most = MAX_SECONDS * rate * _WORDS_PER_SECOND_PER_WPM
        parts: list[str] = []
        words = 0
        while words < wanted - 10:
            following = STORIES[(i + 7 * len(parts)) % len(STORIES)]
            if parts and words + len(following.split()) > most:
                break
            parts.append(following)
            words += len(following.split())
        corpus.append(ShortStory(f"s{i:02d}-{voice}-{rate}", " ".join(parts), voice, rate,
                                 container))
    return corpus


def render(story: ShortStory, folder: Path) -> Path:
    """Speak `story` with espeak-ng and encode it in its container; return the file's path."""
    wav = folder / f"{story.name}.raw.wav"
    subprocess.run(["espeak-ng", "-v", story.voice, "-s", str(story.rate), "-w", str(wav),
                    story.text], check=True)
    suffix = Path(story.container.filename).suffix
    return encode(wav, folder / f"{story.name}{suffix}", story.container)
