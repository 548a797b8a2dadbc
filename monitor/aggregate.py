"""Daily and weekly aggregates per watched entity, kept up to date incrementally.

Triggers on ``mentions`` (migration m004) note every (model, day) whose mentions changed in
``agg_dirty``, in the same transaction as the change. :func:`update` recomputes only the
weeks holding such days, then clears their marks in the same transaction as it writes the
new rows, so a crash at any point leaves either the old figures with their marks (and the
next run redoes them) or the new figures.

Counting: one post counts once per entity and period. The scores of its mentions of that
entity are averaged before its sentiment is decided, and a theme stance counts once per
post. Shares carry a 95% Wilson score interval."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from dataclasses import dataclass

import sqlite_utils

Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for k successes out of n (0, 1 when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, round(centre - half, 4)), min(1.0, round(centre + half, 4))


def week_of(day: str) -> str:
    """Monday (ISO date) of the week holding the ISO date ``day``."""
    d = dt.date.fromisoformat(day[:10])
    return (d - dt.timedelta(days=d.weekday())).isoformat()


def _next_week(week: str) -> str:
    return (dt.date.fromisoformat(week) + dt.timedelta(days=7)).isoformat()


# Every mention of one model in [start, end), with what its post adds.
MENTIONS_IN = """
select m.post_id, m.entity_id, substr(p.created_at, 1, 10) as day, p.author, p.community,
       m.negative, m.neutral, m.positive, m.themes
from posts p join mentions m on m.post_id = p.id and m.model = :model
where p.created_at >= :start and p.created_at < :end
"""


class _Cell:
    """Running totals for one entity and period."""

    __slots__ = ("posts", "mentions", "negative", "neutral", "positive", "authors", "communities", "themes")

    def __init__(self) -> None:
        self.posts = self.mentions = self.negative = self.neutral = self.positive = 0
        self.authors: set[str] = set()
        self.communities: set[str] = set()
        self.themes: dict[str, dict[str, int]] = defaultdict(lambda: {"builds": 0, "erodes": 0})

    def add(self, post: dict) -> None:
        self.posts += 1
        self.mentions += post["n"]
        setattr(self, post["sentiment"], getattr(self, post["sentiment"]) + 1)
        if post["author"]:
            self.authors.add(post["author"])
        if post["community"]:
            self.communities.add(post["community"])
        for theme, stances in post["themes"].items():
            for stance in stances:
                self.themes[theme][stance] += 1

    def row(self, **key) -> dict:
        neg_lo, neg_hi = wilson(self.negative, self.posts)
        pos_lo, pos_hi = wilson(self.positive, self.posts)
        return {
            **key,
            "posts": self.posts, "mentions": self.mentions, "authors": len(self.authors),
            "communities": len(self.communities),
            "negative": self.negative, "neutral": self.neutral, "positive": self.positive,
            "net_sentiment": round((self.positive - self.negative) / self.posts, 4),
            "negative_share": round(self.negative / self.posts, 4),
            "negative_low": neg_lo, "negative_high": neg_hi,
            "positive_share": round(self.positive / self.posts, 4),
            "positive_low": pos_lo, "positive_high": pos_hi,
            "themes": json.dumps({t: dict(s) for t, s in sorted(self.themes.items())}, sort_keys=True),
        }


def _per_post(rows) -> dict[tuple[str, str], dict]:
    """(post, entity) -> averaged scores, decided sentiment and the union of theme stances."""
    acc: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["post_id"], r["entity_id"])
        a = acc.get(key)
        if a is None:
            a = acc[key] = {"day": r["day"], "author": r["author"], "community": r["community"],
                            "n": 0, "neg": 0.0, "neu": 0.0, "pos": 0.0, "themes": defaultdict(set)}
        a["n"] += 1
        a["neg"] += r["negative"] or 0.0
        a["neu"] += r["neutral"] or 0.0
        a["pos"] += r["positive"] or 0.0
        for theme, stance in json.loads(r["themes"] or "{}").items():
            if stance in ("builds", "erodes"):
                a["themes"][theme].add(stance)
    for a in acc.values():
        neg, neu, pos = a["neg"], a["neu"], a["pos"]
        a["sentiment"] = "negative" if neg >= neu and neg >= pos else ("neutral" if neu >= pos else "positive")
    return acc


def _recompute_week(db: sqlite_utils.Database, model: str, week: str) -> tuple[list, list, list]:
    end = _next_week(week)
    posts = _per_post(db.query(MENTIONS_IN, {"model": model, "start": week, "end": end}))
    daily: dict[tuple[str, str], _Cell] = defaultdict(_Cell)
    weekly: dict[str, _Cell] = defaultdict(_Cell)
    for (_, entity), post in posts.items():
        daily[(entity, post["day"])].add(post)
        weekly[entity].add(post)
    daily_rows = [c.row(entity_id=e, day=d, model=model) for (e, d), c in sorted(daily.items())]
    weekly_rows = [c.row(entity_id=e, week=week, model=model) for e, c in sorted(weekly.items())]
    theme_rows = []
    for entity, cell in sorted(weekly.items()):
        for theme, stances in sorted(cell.themes.items()):
            lo, hi = wilson(stances["erodes"], cell.posts)
            theme_rows.append({
                "entity_id": entity, "week": week, "model": model, "theme": theme,
                "posts": cell.posts, "builds": stances["builds"], "erodes": stances["erodes"],
                "erodes_share": round(stances["erodes"] / cell.posts, 4), "erodes_low": lo, "erodes_high": hi,
            })
    return daily_rows, weekly_rows, theme_rows


@dataclass
class Update:
    weeks: int = 0  # weeks recomputed
    rows: int = 0  # entity-week rows written
    alerts: int = 0  # alerts standing in the recomputed range


def update(db: sqlite_utils.Database, model: str, alert_rules=None) -> Update:
    """Recompute the weeks whose mentions changed since the last update, for one model,
    then re-evaluate alerts from the earliest such week on."""
    from . import alerts

    days = [r[0] for r in db.execute("select day from agg_dirty where model = ? order by day", [model])]
    result = Update()
    if not days:
        return result
    weeks = sorted({week_of(d) for d in days if d})
    for week in weeks:
        daily, weekly, themes = _recompute_week(db, model, week)
        end = _next_week(week)
        with db.atomic():
            db.execute("delete from entity_daily where model = ? and day >= ? and day < ?", [model, week, end])
            db.execute("delete from entity_weekly where model = ? and week = ?", [model, week])
            db.execute("delete from entity_theme_weekly where model = ? and week = ?", [model, week])
            if daily:
                db["entity_daily"].insert_all(daily, pk=("entity_id", "day", "model"))
            if weekly:
                db["entity_weekly"].insert_all(weekly, pk=("entity_id", "week", "model"))
            if themes:
                db["entity_theme_weekly"].insert_all(themes, pk=("entity_id", "week", "model", "theme"))
            db.execute("delete from agg_dirty where model = ? and day >= ? and day < ?", [model, week, end])
        result.weeks += 1
        result.rows += len(weekly)
    # Marks with no usable day (a post without created_at) have nothing to recompute.
    with db.atomic():
        db.execute("delete from agg_dirty where model = ? and (day is null or day = '')", [model])
    result.alerts = alerts.evaluate(db, model, since=weeks[0], rules=alert_rules)
    return result


def rebuild(db: sqlite_utils.Database, model: str, alert_rules=None) -> Update:
    """Mark every day with mentions of this model dirty and update: a full rebuild."""
    with db.atomic():
        db.execute(
            "insert or ignore into agg_dirty (model, day) select distinct :model, substr(p.created_at, 1, 10) "
            "from mentions m join posts p on p.id = m.post_id where m.model = :model", {"model": model})
    return update(db, model, alert_rules)
