"""The demo project's content: made-up stories (stories.json), their audio, and passphrases.

The stories were written for StoryHub and spoken once by espeak-ng (make_audio.py); no real
person, case or office is in them. A story is the demo's if its recording is byte for byte one
of the files shipped here, which is how `storyhub demo` tells a demo instance from a real one.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from .. import dates
from ..accounts.models import Role
from ..stories.consent import Scope

HERE = Path(__file__).resolve().parent
AUDIO = HERE / "audio"


@dataclass(frozen=True)
class DemoAccount:
    """One account the demo makes, for one role."""

    username: str
    display_name: str
    role: Role
    what: str  # what to try with it, printed beside its password


ACCOUNTS = (
    DemoAccount("demo-reporter", "Robin (demo reporter)", Role.REPORTER,
                "stories, transcripts, redaction"),
    DemoAccount("demo-facilitator", "Dee (demo facilitator)", Role.FACILITATOR,
                "themes, theme board, workshop packs"),
    DemoAccount("demo-admin", "Alex (demo admin)", Role.ADMIN, "accounts, sites, audit log"),
    DemoAccount("demo-staff", "Sam (demo staff)", Role.STAFF,
                "the staff library: find, read and listen"),
)


@dataclass(frozen=True)
class DemoStory:
    key: str
    title: str
    story_type: str
    storyteller_role: str
    storyteller: str  # who tells it, within the demo: StoryHub gives each teller its own code
    prompt: str
    tags: tuple[str, ...]
    recorded_days_ago: int
    consent: frozenset[Scope]
    audio: Path
    # What the demo facilitator wrote for staff; a story without one is left to curate.
    library_summary: str = ""
    # What the storyteller says (the reporter heard it, and checks the transcript against it),
    # and the personal details in it the reporter knows to redact (names, places).
    said: str = ""
    personal: tuple[str, ...] = ()

    @property
    def recorded_on(self) -> date:
        return dates.today() - timedelta(days=self.recorded_days_ago)


@cache
def _data() -> dict:
    return json.loads((HERE / "stories.json").read_text(encoding="utf-8"))


def theme_names() -> dict[str, str]:
    """Return the name the demo facilitator gives a theme, by the tag its stories share most."""
    return _data()["theme_names"]


def site() -> dict:
    """Return the demo site: its name and the local names to redact in its stories."""
    return _data()["site"]


def stories(limit: int | None = None) -> list[DemoStory]:
    """Return the demo stories in loading order (the first `limit` of them, if given)."""
    found = [DemoStory(key=row["key"], title=row["title"], story_type=row["story_type"],
                       storyteller_role=row["storyteller_role"],
                       storyteller=row["storyteller"], prompt=row.get("prompt", ""),
                       tags=tuple(row.get("tags", ())),
                       recorded_days_ago=int(row["recorded_days_ago"]),
                       consent=frozenset(Scope(s) for s in row["consent"]),
                       audio=AUDIO / row["audio"],
                       library_summary=row.get("library_summary", ""),
                       said=row.get("text") or " ".join(turn for _who, turn in row["turns"]),
                       personal=tuple(row.get("personal", ())))
             for row in _data()["stories"]]
    return found if limit is None else found[:limit]


@cache
def _hashes() -> dict[str, str]:
    digests = {}
    for story in stories():
        with story.audio.open("rb") as fh:
            digests[story.key] = hashlib.file_digest(fh, "sha256").hexdigest()
    return digests


def recording_hash(story: DemoStory) -> str:
    """Return the SHA-256 of the story's recording (as intake stores it for each upload)."""
    return _hashes()[story.key]


def recording_hashes() -> frozenset[str]:
    """Return the SHA-256 of every demo recording."""
    return frozenset(_hashes().values())


# 256 plain words: each word of a passphrase adds 8 bits.
WORDS = """
    acorn alpaca amber anchor apple apricot arrow aspen autumn badger bakery bamboo banjo
    barley basil basket beacon beaver beetle bicycle birch biscuit blossom bluebell bonfire
    bramble bridge brook bucket buckle buffalo butter button cabin cactus camel candle canoe
    canvas canyon caramel carpet carrot castle cedar cello chalk cherry chestnut chimney cider
    cinema citrus clover cobalt cockle coconut comet compass copper coral cotton cradle crayon
    cricket crocus crystal cupboard dahlia daisy dolphin domino dragon drizzle dune eagle easel
    echo elbow ember emerald engine falcon feather fern ferry fiddle fig flannel flint forest
    fossil fountain fox gannet garden garnet gecko ginger glacier globe gravel guitar hammock
    hamster harbour harvest hazel heather hedge heron hickory honey horizon iceberg igloo
    island ivory ivy jacket jasmine jelly jigsaw juniper kayak kettle kingfisher kite kiwi
    ladder lagoon lantern larch lavender lemon lentil lilac linen lobster locket lotus mackerel
    magnet mango maple marble meadow melon meteor mint mitten monsoon mosaic moss muffin
    narwhal nectar nutmeg oak oasis ocean olive onion orbit orchard otter owl oyster paddle
    panda parsnip pebble pelican pepper piano pickle pigeon pillow pine planet plum pocket pony
    poppy puffin pumpkin quartz quill quince rabbit radish raft rainbow raven reef ribbon river
    robin rocket rosemary saddle saffron sail salmon satchel scarf seagull sequoia shell
    shingle silver sketch sled snowdrop sorrel sparrow spinach spruce squirrel starling stone
    sunflower swallow tangerine teapot thistle thunder tiger timber toffee tomato topaz tractor
    truffle tulip tundra turnip umbrella valley velvet violet volcano walnut walrus wander
    whistle willow window winter wombat wool yacht yarrow yoghurt zebra zephyr
""".split()


def passphrase(words: int = 6) -> str:
    """Return a random passphrase like `Maple-otter-quartz-ferry-linen-kite-4821` (61 bits)."""
    chosen = [secrets.choice(WORDS) for _ in range(words)]
    chosen[0] = chosen[0].capitalize()
    return "-".join([*chosen, str(1000 + secrets.randbelow(9000))])
