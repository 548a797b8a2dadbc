"""A small database with known stories, written directly (no model), for report and
Datasette tests. Everything here is fictional.

Stories, over 26 weeks from 2026-04-06:
- lakeshore (site, partner hope): steady and mostly positive, then from week 20 a surge of
  negative posts about a closure (commitment erodes);
- hope (group): mixed, named with calloway (sponsor) in the surge;
- lantern (group): many authors in three communities, mostly positive, transparency builds;
- circle (group): nine glowing posts, all in one week, by two authors, one community.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

from monitor import aggregate, storage

MODEL = "synth@1"
START = dt.date(2026, 4, 6)
SCORES = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}
ENTITIES = [
    ("lakeshore", "site", "Lakeshore Clinical Research Institute", ["hope"]),
    ("hope", "group", "ALS Hope Alliance", []),
    ("lantern", "group", "Lupus Lantern Network", []),
    ("circle", "group", "Motor Neuron Patient Circle", []),
    ("calloway", "sponsor", "Calloway Therapeutics", []),
]
SURFACE = {"lakeshore": "Lakeshore", "hope": "ALS Hope", "lantern": "Lupus Lantern", "circle": "MN Patient Circle",
           "calloway": "Calloway"}
PHRASES = {
    "negative": "{} closed the study with a form letter and nobody answers the phone.",
    "neutral": "Has anyone heard from {} about the next visit dates?",
    "positive": "{} staff were kind and explained everything in the consent form.",
}


class Writer:
    """Writes posts with mentions of known sentiment and themes straight into a database."""

    def __init__(self, path, seed: int = 3, entities=ENTITIES):
        self.db = db = storage.open_db(path)
        db["entities"].insert_all([{"id": i, "kind": k, "name": n, "aliases": "[]", "partners": json.dumps(p)}
                                   for i, k, n, p in entities], pk="id")
        storage.register_model(db, {"id": MODEL, "name": "synth", "version": "1",
                                    "metrics": {"forum_heldout": {"mention_sentiment_accuracy": 0.7,
                                                                  "post_sentiment_macro_f1": 0.71,
                                                                  "theme_micro": {"f1": 0.5}}}})
        self.rng = random.Random(seed)
        self.n = 0

    def post(self, week: int, mentions: list[tuple[str, str, dict]], author: str, community: str) -> None:
        self.n += 1
        n = self.n
        day = START + dt.timedelta(days=7 * week + self.rng.randrange(7))
        parts, rows = [], []
        offset = 0
        for entity, sentiment, themes in mentions:
            sentence = PHRASES[sentiment].format(SURFACE[entity])
            start = offset + sentence.index(SURFACE[entity])
            rows.append({"post_id": f"t:{n}", "entity_id": entity, "model": MODEL, "start": start,
                         "end": start + len(SURFACE[entity]), "surface": SURFACE[entity], "sentiment": sentiment,
                         **dict(zip(("negative", "neutral", "positive"), SCORES[sentiment])),
                         "themes": json.dumps(themes)})
            parts.append(sentence)
            offset += len(sentence) + 1
        pseudonym = "a_" + hashlib.sha256(author.encode()).hexdigest()[:20]
        self.db["posts"].insert({"id": f"t:{n}", "source": "synth", "platform": "reddit", "community": community,
                                 "url": f"https://www.reddit.com/r/x/comments/{n}/", "author": pseudonym,
                                 "created_at": f"{day}T12:00:00Z", "title": "", "text": " ".join(parts),
                                 "content_hash": str(n)}, pk="id")
        self.db["mentions"].insert_all(rows, pk=("post_id", "model", "start"))

    def done(self):
        aggregate.update(self.db, MODEL)
        return self.db


def build(path, seed: int = 3):
    w = Writer(path, seed)
    rng, post = w.rng, w.post
    for week in range(26):
        surge = week >= 20
        for i in range(3 if not surge else 12):
            if surge:
                s = "negative" if i < 9 else "neutral"
                themes = {"commitment": "erodes"} if i < 7 else {}
                extra = [("hope", "negative", {"conflict_of_interest": "erodes"}), ("calloway", "neutral", {})] \
                    if i < 4 else []
                post(week, [("lakeshore", s, themes), *extra], f"s{rng.randrange(30)}", "r/ALS")
            else:
                s = rng.choice(["positive", "positive", "neutral", "negative"])
                post(week, [("lakeshore", s, {"respect": "builds"} if s == "positive" else {})],
                     f"b{rng.randrange(30)}", "r/ALS")
        for i in range(2):
            s = rng.choice(["positive", "positive", "positive", "neutral", "negative"])
            post(week, [("lantern", s, {"transparency": "builds"} if s == "positive" else {})],
                 f"l{rng.randrange(40)}", rng.choice(["r/lupus", "r/clinicaltrials", "r/ChronicIllness"]))
        if week % 3 == 0:
            post(week, [("hope", rng.choice(["positive", "neutral"]), {})], f"h{rng.randrange(10)}", "r/ALS")
    for i in range(9):
        post(17, [("circle", "positive", {"respect": "builds"})], f"c{i % 2}", "r/ALS")
    return w.done()


def build_twins(path, seed: int = 5):
    """Two groups spoken of the same way (the same mix of sentiment, drawn at random)."""
    w = Writer(path, seed)
    for week in range(26):
        for entity in ("lantern", "circle"):
            for _ in range(2):
                s = w.rng.choice(["positive", "positive", "neutral", "negative"])
                w.post(week, [(entity, s, {})], f"{entity}{w.rng.randrange(60)}",
                       w.rng.choice(["r/lupus", "r/ALS", "r/clinicaltrials"]))
    return w.done()
