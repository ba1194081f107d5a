"""The pilot-sized story collection of the theme benchmark: written, spoken, transcribed, cached.

The stories live in benchmarks/data/stories/pilot.yaml with their known themes. Each is spoken by
espeak-ng in its own voice and rate and transcribed by StoryHub's engine with the default
settings; transcripts are cached under --cache, keyed by the text, voice, rate and engine
settings, so only the first run (or a changed story) transcribes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
STORIES = HERE / "data" / "stories" / "pilot.yaml"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "storyhub-bench"
# espeak-ng voices and rates (words a minute) the storytellers are given, cycling.
VOICES = ("en-gb", "en-us", "en-gb-scotland", "en-029", "en-gb-x-rp", "en+f3",
          "en-gb-x-gbcwmd", "en-us+f2")
RATES = (145, 160, 135, 170, 150)


@dataclass(frozen=True)
class PilotStory:
    key: str
    role: str
    main: str
    second: str | None
    text: str
    voice: str = ""
    rate: int = 150


@dataclass
class PilotCorpus:
    stories: list[PilotStory]
    key_terms: dict[str, list[str]] = field(default_factory=dict)

    @property
    def themes(self) -> list[str]:
        return list(self.key_terms)


def load(path: Path = STORIES) -> PilotCorpus:
    import yaml

    data = yaml.safe_load(path.read_text())
    stories = []
    for i, row in enumerate(data["stories"]):
        stories.append(PilotStory(row["id"], row["role"], row["main"], row.get("second"),
                                  " ".join(row["text"].split()), VOICES[i % len(VOICES)],
                                  RATES[(i * 3) % len(RATES)]))
    return PilotCorpus(stories, {k: v["key_terms"] for k, v in data["themes"].items()})


def _settings():
    from storyhub.config import Settings
    from storyhub.transcripts.engines import EngineSettings

    return EngineSettings.from_config(Settings())


def cache_key(story: PilotStory) -> str:
    from storyhub.transcripts.engines import model_path

    settings = _settings()
    # The model as resolved: an empty WHISPER_MODEL means whichever model is the default.
    tag = f"{story.text}|{story.voice}|{story.rate}|{settings}|{model_path(settings.model)}"
    return hashlib.sha256(tag.encode()).hexdigest()[:24]


def transcribe_all(corpus: PilotCorpus, cache: Path = CACHE, log=print) -> dict[str, list]:
    """Return story key -> transcript segments (engine SegmentResults), transcribing once."""
    from benchmarks.short_stories import ShortStory, render
    from storyhub.transcripts import engine_audio
    from storyhub.transcripts.engines import SegmentResult, WordResult, get_engine
    from tests.support.audio_fixtures import ENCODING

    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, list] = {}
    todo = []
    for story in corpus.stories:
        path = cache / f"{story.key}-{cache_key(story)}.json"
        if path.exists():
            rows = json.loads(path.read_text())
            out[story.key] = [SegmentResult(r["start"], r["end"], r["text"],
                                            [WordResult(**w) for w in r["words"]],
                                            r["speaker"]) for r in rows]
        else:
            todo.append((story, path))
    if todo:
        engine = get_engine(_settings())
        with tempfile.TemporaryDirectory() as tmp:
            for story, path in todo:
                audio = render(ShortStory(story.key, story.text, story.voice, story.rate,
                                          ENCODING["wav"]), Path(tmp))
                segments = engine.transcribe(engine_audio.decode(audio), "en",
                                             lambda _t: None).segments
                path.write_text(json.dumps([asdict(s) for s in segments]))
                out[story.key] = segments
                log(f"transcribed {story.key} ({story.voice}, {story.rate} wpm)")
    return out


def transcript_of(segments) -> object:
    """Build an unsaved Transcript (one storyteller) from engine segments."""
    from storyhub.transcripts.models import Transcript
    from storyhub.transcripts.service import add_segments

    transcript = Transcript(speakers={"S1": "Storyteller"})
    add_segments(transcript, segments)
    return transcript


def written_segments(text: str) -> list:
    """Return the written text as engine segments (one a sentence, words 0.35 s apart)."""
    from storyhub.transcripts.engines import SegmentResult, WordResult

    segments, clock = [], 0.0
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        words = []
        for word in sentence.split():
            words.append(WordResult(clock, clock + 0.3, word, 1.0))
            clock += 0.35
        if words:
            segments.append(SegmentResult(words[0].start, words[-1].end, sentence, words))
        clock += 0.4
    return segments
