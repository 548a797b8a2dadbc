"""Synthetic, clearly fictional data at any scale, for the benchmarks.

- :func:`fill_db` writes tagged posts straight into a trustwatch database (posts,
  mentions and tags of a known model, then the aggregates), so serving and query
  benchmarks need no model;
- :func:`write_dump` writes a Reddit-dump NDJSON file for the ingest benchmark.

Post lengths follow a log-normal around ~100 tokens (drugsCom-like); about 40% of posts
name a watched entity (a few name two); sentiment and themes are drawn per mention.
Every name, user and text here is invented."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = {"id": "bench-synthetic@1", "name": "bench-synthetic", "version": "1",
         "metrics": {"note": "synthetic tags for benchmarks; no model ran"}}
ENTITIES = [
    ("lakeshore", "site", "Lakeshore Clinical Research Institute", "Lakeshore", ["als-hope"]),
    ("pinecrest", "site", "Pinecrest University Hospital Trials Unit", "Pinecrest", ["breathe-together"]),
    ("meridian", "site", "Meridian Valley Research Clinic", "Meridian Valley", ["lupus-lantern"]),
    ("calloway", "sponsor", "Calloway Therapeutics", "Calloway", []),
    ("brightwater", "sponsor", "Brightwater Bio", "Brightwater", []),
    ("als-hope", "group", "ALS Hope Alliance", "ALS Hope", []),
    ("breathe-together", "group", "Breathe Together CF Foundation", "Breathe Together", []),
    ("lupus-lantern", "group", "Lupus Lantern Network", "Lupus Lantern", []),
    ("mn-circle", "group", "Motor Neuron Patient Circle", "MN Patient Circle", []),
    ("calm-als", "trial", "CALM-ALS", "CALM-ALS", []),
]
# Everyday words make up most of a post; topical words appear in a few posts each, as in
# real forums (so a full-text search for one matches a realistic few percent of posts).
WORDS = ("i the and to a of it my in was for that is on with we but he she they have had this "
         "just so not be at are about what like can all her his from one or when out up there "
         "if do been get would time our them some more me back know really now think go still "
         "day week months doctor visit nurse study trial waiting family appointment phone letter "
         "tired hope grateful worried answer site drug dose scan bloods results side effects").split()
TOPICAL = {"placebo": 0.03, "consent": 0.05, "travel": 0.04, "enrolment": 0.02, "extension": 0.02,
           "parking": 0.01, "coordinator": 0.04, "screening": 0.03}
THEMES = ["transparency", "commitment", "respect", "competence_safety", "conflict_of_interest",
          "access_burden", "privacy_consent"]
COMMUNITIES = ["r/ALS", "r/clinicaltrials", "r/CysticFibrosis", "r/lupus", "r/ChronicIllness",
               "forum.example.org/c/trials"]
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _text(rng: random.Random) -> str:
    n = max(5, min(900, int(rng.lognormvariate(4.3, 0.7))))  # words; median ~74, mean ~95
    words = rng.choices(WORDS, k=n)
    for word, share in TOPICAL.items():
        if rng.random() < share:
            words[rng.randrange(n)] = word
    return " ".join(words) + "."


def posts(n: int, seed: int = 7, weeks: int = 104):
    """Yield (post row, [(entity id, surface, start)]) for n fictional posts."""
    rng = random.Random(seed)
    span = weeks * 7 * 86400
    for i in range(n):
        when = START + dt.timedelta(seconds=int(span * i / max(n, 1)) + rng.randrange(3600))
        body = _text(rng)
        found = []
        if rng.random() < 0.4:
            for e in rng.sample(ENTITIES, 2 if rng.random() < 0.15 else 1):
                at = len(body) + 1
                body = f"{body} {e[3]} {' '.join(rng.choices(WORDS, k=12))}."
                found.append((e[0], e[3], at))
        title = "" if rng.random() < 0.7 else "Fictional post about " + rng.choice(WORDS)
        offset = len(title) + 2 if title else 0
        author = "a_" + hashlib.sha256(f"user{rng.randrange(max(50, n // 8))}".encode()).hexdigest()[:20]
        row = {"id": f"bench:{i:08d}", "source": "bench", "platform": "reddit",
               "community": rng.choice(COMMUNITIES), "url": f"https://example.org/fictional/{i}",
               "author": author, "created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "title": title,
               "text": body, "parent_id": None, "thread_id": f"bench:t{i // 5}",
               "content_hash": hashlib.sha256(body.encode()).hexdigest()[:16],
               "collected_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
               "source_ref": None}
        yield row, [(eid, surface, start + offset) for eid, surface, start in found], rng


def _scores(rng: random.Random) -> tuple[str, dict]:
    s = rng.choices(["negative", "neutral", "positive"], weights=[3, 4, 3])[0]
    hi = 0.5 + rng.random() * 0.45
    lo = (1 - hi) / 2
    return s, {k: (hi if k == s else lo) for k in ("negative", "neutral", "positive")}


def fill_db(path: Path, n: int, seed: int = 7, weeks: int = 104, batch: int = 5000) -> None:
    """A trustwatch database with n tagged fictional posts and up-to-date aggregates."""
    from monitor import aggregate, storage

    db = storage.open_db(path)
    db["entities"].upsert_all([{"id": e[0], "kind": e[1], "name": e[2], "aliases": json.dumps([e[3]]),
                                "partners": json.dumps(e[4])} for e in ENTITIES], pk="id")
    storage.register_model(db, MODEL)
    rows, tags, mentions = [], [], []

    def flush():
        with db.atomic():
            db["posts"].insert_all(rows, pk="id", batch_size=1000)
            db["post_tags"].insert_all(tags, pk=("post_id", "model"), batch_size=1000)
            if mentions:
                db["mentions"].insert_all(mentions, pk=("post_id", "model", "start"), batch_size=1000)
        rows.clear(), tags.clear(), mentions.clear()

    for row, found, rng in posts(n, seed, weeks):
        rows.append(row)
        s, sc = _scores(rng)
        tags.append({"post_id": row["id"], "model": MODEL["id"], "sentiment": s, **sc, "themes": "{}",
                     "content_hash": row["content_hash"], "watchlist_hash": "bench", "tagged_at": row["updated_at"]})
        for eid, surface, start in found:
            ms, msc = _scores(rng)
            themes = {rng.choice(THEMES): rng.choice(["builds", "erodes"])} if rng.random() < 0.3 else {}
            mentions.append({"post_id": row["id"], "entity_id": eid, "model": MODEL["id"], "start": start,
                             "end": start + len(surface), "surface": surface, "sentiment": ms, **msc,
                             "themes": json.dumps(themes)})
        if len(rows) >= batch:
            flush()
    if rows:
        flush()
    aggregate.update(db, MODEL["id"])
    db.close()


def write_dump(path: Path, n: int, seed: int = 7, weeks: int = 104) -> None:
    """An Arctic Shift-style NDJSON dump of n fictional submissions."""
    with open(path, "w", encoding="utf-8") as fh:
        for row, _, _ in posts(n, seed, weeks):
            i = int(row["id"].split(":")[1])
            created = int(dt.datetime.strptime(row["created_at"], "%Y-%m-%dT%H:%M:%SZ")
                          .replace(tzinfo=dt.timezone.utc).timestamp())
            fh.write(json.dumps({
                "id": f"b{i:07x}", "name": f"t3_b{i:07x}", "subreddit": row["community"].split("/")[-1],
                "author": f"fictional_user_{row['author'][2:10]}", "created_utc": created,
                "title": row["title"] or "Fictional post", "selftext": row["text"],
                "permalink": f"/r/x/comments/b{i:07x}/fictional/", "url": row["url"],
            }) + "\n")
