"""Shift detection: a week in which an entity's negative share, or the share of posts in
which a trust theme erodes, rises significantly above its trailing baseline.

A week is tested only when it and its baseline hold enough posts (three posts never
raise an alarm). The test is a one-sided two-proportion z-test against the pooled
baseline weeks, and the rise must also be large enough to matter (``min_change``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from dataclasses import dataclass

import sqlite_utils

from .aggregate import wilson

THEME_LABELS = {
    "transparency": "transparency",
    "commitment": "commitment and follow-through",
    "respect": "respect",
    "competence_safety": "competence and safety",
    "conflict_of_interest": "conflict of interest",
    "access_burden": "access and burden",
    "privacy_consent": "privacy and consent",
}


@dataclass(frozen=True)
class AlertRules:
    baseline_weeks: int = 8  # trailing weeks pooled into the baseline
    min_posts: int = 10  # posts in the week itself
    min_baseline_posts: int = 20  # posts in the baseline weeks together
    z: float = 2.58  # one-sided z threshold (about p < 0.005)
    min_change: float = 0.15  # the share must rise by at least this much (absolute)


def z_score(k: int, n: int, kb: int, nb: int) -> float:
    """Two-proportion z statistic of k/n against kb/nb (pooled variance)."""
    p = (k + kb) / (n + nb)
    if p in (0.0, 1.0):
        return 0.0
    se = math.sqrt(p * (1 - p) * (1 / n + 1 / nb))
    return (k / n - kb / nb) / se


def _weeks_before(week: str, count: int) -> list[str]:
    d = dt.date.fromisoformat(week)
    return [(d - dt.timedelta(days=7 * i)).isoformat() for i in range(1, count + 1)]


def _describe(metric: str, share: float, n: int, base: float, nb: int, weeks: int) -> str:
    if metric == "negative_share":
        what = "Negative posts"
    else:
        what = f"Posts where {THEME_LABELS.get(metric.split(':', 1)[1], metric)} erodes trust"
    return (f"{what}: {share:.0%} of {n} this week, against {base:.0%} of {nb} "
            f"in the previous {weeks} weeks")


def evaluate(db: sqlite_utils.Database, model: str, since: str | None = None,
             rules: AlertRules | None = None) -> int:
    """Re-evaluate alerts of one model for every week from ``since`` on (all weeks when
    None); returns how many alerts stand in that range."""
    rules = rules or AlertRules()
    posts: dict[str, dict[str, int]] = defaultdict(dict)  # entity -> week -> posts
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # (entity, metric) -> week -> k
    for r in db.query("select entity_id, week, posts, negative from entity_weekly where model = ?", [model]):
        posts[r["entity_id"]][r["week"]] = r["posts"]
        counts[(r["entity_id"], "negative_share")][r["week"]] = r["negative"]
    for r in db.query("select entity_id, week, theme, erodes from entity_theme_weekly where model = ? and erodes > 0",
                      [model]):
        counts[(r["entity_id"], f"erodes:{r['theme']}")][r["week"]] = r["erodes"]

    found = []
    for (entity, metric), ks in counts.items():
        for week, n in posts[entity].items():
            if (since and week < since) or n < rules.min_posts:
                continue
            base_weeks = _weeks_before(week, rules.baseline_weeks)
            nb = sum(posts[entity].get(w, 0) for w in base_weeks)
            if nb < rules.min_baseline_posts:
                continue
            k = ks.get(week, 0)
            kb = sum(ks.get(w, 0) for w in base_weeks)
            share, base = k / n, kb / nb
            if share - base < rules.min_change:
                continue
            z = z_score(k, n, kb, nb)
            if z < rules.z:
                continue
            low, high = wilson(k, n)
            found.append({
                "id": f"{entity}|{metric}|{week}|{model}",
                "entity_id": entity, "model": model, "week": week, "metric": metric,
                "theme": metric.split(":", 1)[1] if metric.startswith("erodes:") else None,
                "posts": n, "count": k, "share": round(share, 4), "share_low": low, "share_high": high,
                "baseline_posts": nb, "baseline_count": kb, "baseline_share": round(base, 4),
                "z": round(z, 2),
                "message": _describe(metric, share, n, base, nb, rules.baseline_weeks),
                "rules": json.dumps(rules.__dict__, sort_keys=True),
            })

    from .storage import now

    where, params = "model = ?", [model]
    if since:
        where, params = "model = ? and week >= ?", [model, since]
    first_seen = dict(db.execute(f"select id, first_seen from alerts where {where}", params).fetchall())
    stamp = now()
    for a in found:
        a["first_seen"] = first_seen.get(a["id"], stamp)
    with db.atomic():
        db.execute(f"delete from alerts where {where}", params)
        if found:
            db["alerts"].insert_all(found, pk="id")
    return len(found)
