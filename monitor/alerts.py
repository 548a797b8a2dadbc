"""Shift detection: a week in which an entity's negative share, or the share of posts in
which a trust theme erodes, rises significantly above its trailing baseline; or in which
far more posts than usual name it (a burst of attention, whatever its tone).

A week is tested only when it holds enough posts (three posts never raise an alarm).
Shares: a one-sided two-proportion z-test against the pooled baseline weeks, which must
hold enough posts too, and the rise must be large enough to matter (``min_change``).
Volume: the week's count against a Poisson with the baseline's weekly mean, at the same
significance, at least doubling it, and only where the database holds posts for most
baseline weeks (so the first weeks of collection are not a 'burst')."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import NormalDist

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


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    term = total = math.exp(-mean)
    for i in range(1, k):
        term *= mean / i
        total += term
    return max(0.0, 1.0 - total)


def _tail_z(p: float) -> float:
    """The one-sided z with the same tail probability (capped at 10)."""
    return 10.0 if p <= 1e-23 else min(10.0, NormalDist().inv_cdf(1 - p))


def _weeks_before(week: str, count: int) -> list[str]:
    d = dt.date.fromisoformat(week)
    return [(d - dt.timedelta(days=7 * i)).isoformat() for i in range(1, count + 1)]


def _describe(metric: str, share: float, n: int, base: float, nb: int, weeks: int) -> str:
    if metric == "volume":
        return (f"A burst of attention: {n} posts this week, against {nb / weeks:.1f} a week "
                f"in the previous {weeks} weeks ({share:.0%} of this week's posts negative)")
    if metric == "negative_share":
        what = "Negative posts"
    else:
        what = f"Posts where {THEME_LABELS.get(metric.split(':', 1)[1], metric)} erodes trust"
    return (f"{what}: {share:.0%} of {n} this week, against {base:.0%} of {nb} "
            f"in the previous {weeks} weeks")


def public_message(a: dict) -> str:
    """What anonymous visitors read of an alert: no figure of the baseline weeks (some of
    them may be withheld, and the baseline's totals would give them away) and no count of
    a theme (it may be below the publishing threshold). This week's posts are published
    (public views list alerts only in weeks with at least min_cell posts).
    ``storage.PUBLIC_VIEWS["public_alerts"]`` writes the same words in SQL."""
    try:
        weeks = int(json.loads(a.get("rules") or "{}").get("baseline_weeks"))
        before = f"the previous {weeks} weeks"
    except (TypeError, ValueError, AttributeError):
        before = "the weeks before"
    metric = a["metric"]
    if metric == "volume":
        return f"A burst of attention: {a['posts']} posts this week, far more than in {before}"
    if metric == "negative_share":
        return f"Negative posts: a larger share this week than in {before}"
    theme = metric.split(":", 1)[1] if ":" in metric else metric
    return f"Posts where {THEME_LABELS.get(theme, theme)} erodes trust: a larger share this week than in {before}"


def public_message_sql(alias: str = "a") -> str:
    """:func:`public_message` as an SQL expression over the alerts row ``alias``."""
    weeks = f"cast(json_extract({alias}.rules, '$.baseline_weeks') as integer)"
    before = f"(case when {weeks} > 0 then 'the previous ' || {weeks} || ' weeks' else 'the weeks before' end)"
    labels = " ".join(f"when 'erodes:{t}' then '{label}'" for t, label in THEME_LABELS.items())
    theme = f"(case {alias}.metric {labels} else substr({alias}.metric, 8) end)"
    return (f"(case {alias}.metric "
            f"when 'volume' then 'A burst of attention: ' || {alias}.posts || ' posts this week, far more than in ' || {before} "
            f"when 'negative_share' then 'Negative posts: a larger share this week than in ' || {before} "
            f"else 'Posts where ' || {theme} || ' erodes trust: a larger share this week than in ' || {before} end)")


def _alert(entity: str, model: str, week: str, metric: str, n: int, k: int, low: float, high: float,
           nb: int, kb: int, z: float, rules: AlertRules, message: str) -> dict:
    return {
        "id": f"{entity}|{metric}|{week}|{model}",
        "entity_id": entity, "model": model, "week": week, "metric": metric,
        "theme": metric.split(":", 1)[1] if metric.startswith("erodes:") else None,
        "posts": n, "count": k, "share": round(k / n, 4), "share_low": low, "share_high": high,
        "baseline_posts": nb, "baseline_count": kb, "baseline_share": round(kb / nb, 4) if nb else None,
        "z": round(z, 2), "message": message, "rules": json.dumps(rules.__dict__, sort_keys=True),
    }


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
    covered = {w for weeks in posts.values() for w in weeks}  # weeks the database holds posts for
    for entity, by_week in posts.items():
        for week, n in by_week.items():
            if (since and week < since) or n < rules.min_posts:
                continue
            base_weeks = _weeks_before(week, rules.baseline_weeks)
            if sum(w in covered for w in base_weeks) < (rules.baseline_weeks + 1) // 2:
                continue
            nb = sum(by_week.get(w, 0) for w in base_weeks)
            mean = nb / rules.baseline_weeks
            if n < 2 * max(mean, 1.0):
                continue
            z = _tail_z(poisson_tail(n, mean))
            if z < rules.z:
                continue
            k = counts[(entity, "negative_share")].get(week, 0)
            low, high = wilson(k, n)
            found.append(_alert(entity, model, week, "volume", n, k, low, high, nb, sum(
                counts[(entity, "negative_share")].get(w, 0) for w in base_weeks), z, rules,
                _describe("volume", k / n, n, 0, nb, rules.baseline_weeks)))
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
            found.append(_alert(entity, model, week, metric, n, k, low, high, nb, kb, z, rules,
                                _describe(metric, share, n, base, nb, rules.baseline_weeks)))

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
