"""Every benchmark runs in its --quick mode, so none can rot unnoticed.

Each runs as a user runs it (a subprocess from the repository root) and must end with its
RESULT line: the same keys, in order, each a finite number. The figures themselves are not
checked: they depend on the CPU and on whatever else the machine is doing. The redaction
benchmark's quick run is in test_redaction.py, with its quality targets.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.one_database]

REPO = Path(__file__).resolve().parents[2]
FEEDBACK = REPO.parent / "shared" / "data" / "feedback" / "text_data.csv"

# name: (arguments after the script, the RESULT keys in order, programs it needs: "a|b" for
# either)
BENCHMARKS = {
    "sealed": (["benchmarks/sealed.py"],
               "seal_mb_s read_mb_s plain_read_mb_s read_ratio peak_mb", ()),
    "audio_intake": (["benchmarks/audio_intake.py"], "pyav_s ffmpeg_s ratio",
                     ("espeak-ng", "sox", "ffmpeg", "ffprobe")),
    "transcribe": (["benchmarks/transcribe.py"],
                   "rtf wer worst_wer lost ref_rtf ref_wer speedup rss_mb", ("espeak-ng",)),
    "themes": (["benchmarks/themes.py"],
               "nmi_sub nmi_label ari unassigned seconds base_nmi_sub base_unassigned", ()),
    "story_themes": (["benchmarks/themes.py", "--stories", "--cache", "{tmp}/transcripts"],
                     "stories themes story_nmi story_ari seed_ari text_ari label_hit seconds",
                     ("espeak-ng",)),
    "written_themes": (["benchmarks/written_themes.py"],
                       "stories pilot_nmi pilot_ari corpus_nmi corpus_ari demo_nmi demo_ari "
                       "passages_per_second seconds", ()),
    "packs": (["benchmarks/packs.py"],
              "stories themes quotes generate_s pdf_s cards_s poster_s zip_s zip_again_s "
              "peer_pdf_s pdf_ratio", ("espeak-ng", "chromium|chromium-browser")),
    "web_load": (["benchmarks/web_load.py"],
                 "db stories passages users p50_ms p95_ms p99_ms errors", ()),
    "backup": (["benchmarks/backup.py"],
               "stories files backup_mb backup_s restore_s copy_s backup_ratio", ()),
}
# RESULT values that are words, not figures.
WORDS = {("web_load", "db"): "sqlite"}


def benchmark_env(tmp: Path) -> dict[str, str]:
    """The caller's environment without StoryHub settings (a database URL there would be
    filled with benchmark data), temporary files and any instance in `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYHUB_")}
    env.update(TMPDIR=str(tmp), STORYHUB_INSTANCE_PATH=str(tmp / "instance"),
               STORYHUB_THEME_WARM_UP="0", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_runs_quick_to_its_result_line(name, tmp_path) -> None:
    args, keys, programs = BENCHMARKS[name]
    missing = [p for p in programs if not any(shutil.which(x) for x in p.split("|"))]
    if missing:
        pytest.skip(f"the {name} benchmark needs {', '.join(missing)} (apt-get install them)")
    if name == "themes" and not FEEDBACK.exists():
        pytest.skip(f"{FEEDBACK} is not here (the shared data sits beside the repository)")

    command = [sys.executable, *(a.format(tmp=tmp_path) for a in args), "--quick"]
    done = subprocess.run(command, cwd=REPO, env=benchmark_env(tmp_path), capture_output=True,
                          text=True, timeout=300, check=False)
    output = f"{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    lines = done.stdout.strip().splitlines()
    last = lines[-1] if lines else ""
    assert last.startswith("RESULT "), output
    pairs = [pair.partition("=") for pair in last.split()[1:]]
    assert [k for k, _, _ in pairs] == keys.split(), last
    for key, _, value in pairs:
        if (name, key) in WORDS:
            assert value == WORDS[name, key], last
        else:
            assert math.isfinite(float(value)), last
    if name == "web_load":  # every page the simulated staff asked for was served
        assert dict((k, v) for k, _, v in pairs)["errors"] == "0", output
