"""Sound, for every feature that needs it: decoding recordings (decoding.py) and checking,
normalising, muting and cutting them (audio.py). No feature of StoryHub is imported here."""
