"""Small-count suppression for what anonymous visitors see: no figure drawn from fewer
than ``min_cell`` posts ([publish] min_cell), and no post text.

Works on reports built with the same ``min_cell`` (:mod:`monitor.report`,
:mod:`monitor.compare`), whose period totals take in only the weeks with at least
``min_cell`` posts (a total that took in a withheld week would give it away to anyone who
subtracts the published weeks); only the public pages pass through here."""

from __future__ import annotations

import copy
from dataclasses import replace

from . import reportdata as rd
from .alerts import public_message
from .compare import Comparison, summarise, thin_evidence
from .report import EntityReport, period_line


def cell(n: int | None, k: int) -> str:
    """A count as shown publicly: withheld ('<5') when 0 < n < k."""
    if n is None:
        return "–"
    return f"<{k}" if k and 0 < n < k else str(n)


def public_alerts(alerts: list[dict], k: int) -> list[dict]:
    """Alerts of weeks with at least k posts, in their public words, without evidence."""
    return [dict(a, message=public_message(a), evidence=[]) for a in alerts if a["posts"] >= k]


def _weekly(rows: dict[str, dict], k: int) -> dict[str, dict]:
    return {w: row for w, row in rows.items() if row["posts"] >= k}


def _no_authors(t):
    """Totals without the number of distinct authors: distinct counts do not add up, so two
    periods' counts compared would tell how many people wrote in both (a count of people
    that may be below k). Public views give authors per published week only."""
    return replace(t, authors=None)


def entity_report(r: EntityReport, k: int) -> EntityReport:
    """A copy of the report with every figure below k posts withheld and no excerpts."""
    out = copy.copy(r)
    out.min_cell = k
    out.weekly = _weekly(r.weekly, k)
    out.themes_weekly = {t: {w: dict(row, builds=rd.shown(row["builds"], k), erodes=rd.shown(row["erodes"], k))
                             for w, row in by.items() if w in out.weekly}
                         for t, by in r.themes_weekly.items()}
    out.now, out.before = _no_authors(r.now), _no_authors(r.before)
    out.caveats = [period_line(out.now) if c.startswith("This period:") else c for c in r.caveats]
    out.sides = [replace(s, weekly=_weekly(s.weekly, k), now=_no_authors(s.now), before=_no_authors(s.before))
                 for s in r.sides if s.now.posts >= k]
    out.alerts = public_alerts(r.alerts, k)
    out.drivers = [replace(d, evidence=[]) for d in r.drivers
                   if d.now.count >= k and (d.before.count == 0 or d.before.count >= k)]
    out.frequent = [f for f in r.frequent if f[2] >= k]
    out.examples = {s: [] for s in r.examples}
    name = r.entity.name
    if r.now.posts < k:
        out.direction = "none"
        out.headline = (f"No week of this period had {k} or more posts mentioning {name}: its figures are withheld "
                        "from public view.")
        out.summary = ["Signed-in researchers can see them."]
        out.drivers, out.frequent = [], []
    elif r.before.posts < k:
        neg, pos = r.now.share("negative"), r.now.share("positive")
        out.direction = "new"
        out.headline = f"{name} was discussed in {r.now.posts} posts in the last {len(r.weeks)} weeks."
        out.summary = [f"{neg.value:.0%} were negative and {pos.value:.0%} positive. No week of the period before "
                       f"had {k} or more posts, so it cannot be compared in public."]
    return out


def comparison(c: Comparison, k: int) -> Comparison:
    """A copy of the comparison without candidates below k posts and with small cells withheld."""
    out = copy.copy(c)
    out.min_cell = k
    kept, withheld = [], []
    for x in c.candidates:
        if x.now.posts < k:
            withheld.append(x.name)
            continue
        x = copy.copy(x)
        x.now, x.first, x.second = _no_authors(x.now), _no_authors(x.first), _no_authors(x.second)
        x.now.communities = [(name, n) for name, n in x.now.communities if n >= k]
        x.weekly = _weekly(x.weekly, k)
        x.co_mentions = [m for m in x.co_mentions if m[2] >= k]
        x.alerts = public_alerts(x.alerts, k)
        x.examples = []
        x.warnings = thin_evidence(x.now, c.weeks, k, public=True)
        kept.append(x)
    out.candidates = kept
    out.summary = summarise(kept, k) + [f"{name}: no week in this window had {k} or more posts; withheld from public view."
                                        for name in withheld]
    return out
