"""Weekly aggregates per watched entity, from one model's mentions.

One post counts once per entity and week: the scores of its mentions of that entity are
averaged before its sentiment is decided, and a theme stance counts once per post."""

from __future__ import annotations

import json
from collections import defaultdict

import sqlite_utils

PER_POST = """
with pe as (
  select m.post_id, m.entity_id,
         date(p.created_at, '-6 days', 'weekday 1') as week,
         count(*) as n, avg(m.negative) as neg, avg(m.neutral) as neu, avg(m.positive) as pos
  from mentions m join posts p on p.id = m.post_id
  where m.model = :model
  group by m.post_id, m.entity_id
)
select entity_id, week, count(*) as posts, sum(n) as mentions,
       sum(neg >= neu and neg >= pos) as negative,
       sum(neu > neg and neu >= pos) as neutral,
       sum(pos > neg and pos > neu) as positive
from pe group by entity_id, week
"""

THEMES = """
select distinct m.post_id, m.entity_id, date(p.created_at, '-6 days', 'weekday 1') as week,
       j.key as theme, j.value as stance
from mentions m join posts p on p.id = m.post_id, json_each(m.themes) j
where m.model = :model
"""


def rebuild_weekly(db: sqlite_utils.Database, model: str) -> int:
    """Recompute ``entity_weekly`` for one model; returns the number of rows."""
    themes: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"builds": 0, "erodes": 0})
    )
    for r in db.query(THEMES, {"model": model}):
        themes[(r["entity_id"], r["week"])][r["theme"]][r["stance"]] += 1
    rows = []
    for r in db.query(PER_POST, {"model": model}):
        key = (r["entity_id"], r["week"])
        rows.append(
            {
                **r,
                "model": model,
                "net_sentiment": round((r["positive"] - r["negative"]) / r["posts"], 4),
                "themes": json.dumps(themes.get(key, {}), sort_keys=True),
            }
        )
    with db.atomic():
        db.execute("delete from entity_weekly where model = ?", [model])
        if rows:
            db["entity_weekly"].insert_all(rows, pk=("entity_id", "week", "model"))
    return len(rows)
