"""The figures reports are made of, read from the aggregates (and, for reach and
excerpts, from mentions and posts), for the current model only."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from dataclasses import dataclass, field

import sqlite_utils

from collectors.text import web_url

from .aggregate import wilson
from .alerts import THEME_LABELS, z_score
from .errors import InputError


@dataclass
class Share:
    count: int
    total: int

    @property
    def value(self) -> float:
        return self.count / self.total if self.total else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.count, self.total)

    def text(self) -> str:
        """'34% (95% interval 23-47%)'."""
        if not self.total:
            return "no posts"
        lo, hi = self.interval
        return f"{self.value:.0%} (95% interval {lo:.0%}–{hi:.0%})"


@dataclass
class Totals:
    """One entity over a run of weeks."""

    posts: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    authors: int = 0
    communities: list[tuple[str, int]] = field(default_factory=list)  # (community, posts), most first
    themes: dict[str, dict[str, int]] = field(default_factory=dict)  # theme -> builds/erodes posts
    busiest_week: tuple[str, int] | None = None
    top_author_posts: int = 0  # posts by the three most active authors

    @property
    def net(self) -> float:
        return (self.positive - self.negative) / self.posts if self.posts else 0.0

    def share(self, what: str) -> Share:
        return Share(getattr(self, what), self.posts)

    def theme_share(self, theme: str, stance: str) -> Share:
        return Share(self.themes.get(theme, {}).get(stance, 0), self.posts)


@dataclass
class Entity:
    id: str
    kind: str
    name: str
    partners: list[str]


def current_model(db: sqlite_utils.Database) -> dict:
    row = db.execute("select id, name, version, metrics from models where current = 1").fetchone()
    if row is None:
        raise InputError(f"{db_name(db)}: nothing has been tagged yet (run `trustwatch run` first)")
    return {"id": row[0], "name": row[1], "version": row[2], "metrics": json.loads(row[3] or "{}")}


def db_name(db: sqlite_utils.Database) -> str:
    """The database's file name (never its folder: pages may be public)."""
    path = db.execute("pragma database_list").fetchone()[2]
    return Path(path).name if path else "database"


def entity(db: sqlite_utils.Database, ident: str) -> Entity:
    row = db.execute("select id, kind, name, partners from entities where id = ?", [ident]).fetchone()
    if row is None:
        known = [r[0] for r in db.execute("select id from entities order by id")]
        hint = f" (watched: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})" if known else \
            " (the watchlist is empty)"
        raise InputError(f"no watched entity has id {ident!r}{hint}")
    return Entity(row[0], row[1], row[2], json.loads(row[3] or "[]"))


def partners_of(db: sqlite_utils.Database, e: Entity) -> list[Entity]:
    """The groups a site works with, or for a group the sites that name it as partner."""
    ids = list(e.partners)
    for r in db.execute("select id, partners from entities where id != ?", [e.id]):
        if e.id in json.loads(r[1] or "[]") and r[0] not in ids:
            ids.append(r[0])
    return [entity(db, i) for i in ids if db["entities"].count_where("id = ?", [i])]


def last_week(db: sqlite_utils.Database, model: str) -> str | None:
    row = db.execute("select max(week) from entity_weekly where model = ?", [model]).fetchone()
    return row[0]


# Reports look back at most MAX_WEEKS weeks (twice that with the period before) from a day
# in this range, so no date they work out falls off the calendar.
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9000, 12, 31)
MAX_WEEKS = 520


def end_week(db: sqlite_utils.Database, model: str, until: str | None = None) -> str:
    """The last week of a report: the week holding ``until`` (an ISO date), or the latest
    week with data."""
    from .aggregate import week_of

    if until:
        try:
            day = dt.date.fromisoformat(until)
        except (ValueError, TypeError):
            raise InputError(f"--until {until!r}: not a date like 2026-09-30")
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InputError(f"--until {until}: a date from {FIRST_DAY} to {LAST_DAY}")
        return week_of(day.isoformat())
    end = last_week(db, model)
    if end is None:
        raise InputError(f"{db_name(db)}: no aggregates yet (run `trustwatch run` first)")
    return end


def week_range(end: str, count: int) -> list[str]:
    """``count`` Mondays ending with ``end``, oldest first."""
    d = dt.date.fromisoformat(end)
    return [(d - dt.timedelta(days=7 * i)).isoformat() for i in range(count - 1, -1, -1)]


def next_day(week: str, days: int = 7) -> str:
    return (dt.date.fromisoformat(week) + dt.timedelta(days=days)).isoformat()


def weekly(db: sqlite_utils.Database, model: str, ident: str, weeks: list[str]) -> dict[str, dict]:
    if not weeks:
        return {}
    rows = db.query(
        "select * from entity_weekly where model = ? and entity_id = ? and week >= ? and week <= ?",
        [model, ident, weeks[0], weeks[-1]])
    keep = set(weeks)
    return {r["week"]: r for r in rows if r["week"] in keep}


def theme_weekly(db: sqlite_utils.Database, model: str, ident: str, weeks: list[str]) -> dict[str, dict[str, dict]]:
    """theme -> week -> row of entity_theme_weekly."""
    out: dict[str, dict[str, dict]] = {}
    if not weeks:
        return out
    keep = set(weeks)
    for r in db.query(
            "select * from entity_theme_weekly where model = ? and entity_id = ? and week >= ? and week <= ?",
            [model, ident, weeks[0], weeks[-1]]):
        if r["week"] in keep:
            out.setdefault(r["theme"], {})[r["week"]] = r
    return out


def published(db: sqlite_utils.Database, model: str, ident: str, weeks: list[str], min_cell: int) -> list[str]:
    """Those of ``weeks`` in which at least ``min_cell`` posts mention the entity: the only
    weeks a public figure may draw on. A sum over a period that took in a withheld week
    would give that week away to anyone who subtracts the published weeks from it."""
    if not min_cell:
        return list(weeks)
    return [w for w, r in weekly(db, model, ident, weeks).items() if r["posts"] >= min_cell]


def shown(n: int, min_cell: int) -> int:
    """A count within a published week as the public weekly views show it (0 or at least
    min_cell), else 0: summed over weeks, the difference between two periods is then never
    a withheld cell. Without min_cell, the count itself."""
    return n if not min_cell or n == 0 or n >= min_cell else 0


def _community_cells(cells: Counter, min_cell: int) -> dict:
    """(community, week) -> posts as the public may see them: with ``min_cell``, only cells
    of at least min_cell posts, and where the week's other communities (its total less the
    cells shown) would come to 0 < n < min_cell, the smallest shown cell of that week is left
    out too, so that no subtraction gives a small remainder. Without it, every cell. The
    entity_reach query in datasette/metadata.yml applies the same rule."""
    if not min_cell:
        return dict(cells)
    weeks: dict[str, list] = {}
    for (community, week), n in cells.items():
        weeks.setdefault(week, []).append((n, community or "", community))
    out = {}
    for week, items in weeks.items():
        big = sorted(i for i in items if i[0] >= min_cell)
        rest = sum(n for n, _, _ in items if n < min_cell)
        if big and 0 < rest < min_cell:
            big = big[1:]
        out.update({(community, week): n for n, _, community in big})
    return out


# The Monday (UTC) of a post's week, as aggregate.week_of gives it, in SQL.
POST_WEEK = "date(substr(p.created_at, 1, 10), '-6 days', 'weekday 1')"


def _in_weeks(weeks: list[str]) -> tuple[str, list[str]]:
    """SQL that keeps posts of exactly these weeks: a range of times, and where some weeks
    in it were left out (the public's withheld weeks), each post's week as well."""
    span, params = "p.created_at >= ? and p.created_at < ?", [weeks[0], next_day(weeks[-1])]
    if (dt.date.fromisoformat(weeks[-1]) - dt.date.fromisoformat(weeks[0])).days // 7 + 1 != len(weeks):
        span += f" and {POST_WEEK} in ({','.join('?' * len(weeks))})"
        params += weeks
    return span, params


def totals(db: sqlite_utils.Database, model: str, ident: str, weeks: list[str], min_cell: int = 0) -> Totals:
    """Posts, sentiment, themes, authors and communities of the entity over ``weeks``;
    with ``min_cell``, over those of the weeks that are published (:func:`published`), and
    within them only the counts the public weekly views show (:func:`shown`)."""
    rows = {w: r for w, r in weekly(db, model, ident, weeks).items() if r["posts"] >= min_cell}
    weeks = list(rows)
    t = Totals()
    busiest = None
    for w, r in rows.items():
        t.posts += r["posts"]
        t.negative += r["negative"]
        t.neutral += r["neutral"]
        t.positive += r["positive"]
        if busiest is None or r["posts"] > busiest[1]:
            busiest = (w, r["posts"])
    t.busiest_week = busiest
    for theme, by_week in theme_weekly(db, model, ident, weeks).items():
        t.themes[theme] = {"builds": sum(shown(r["builds"], min_cell) for r in by_week.values()),
                           "erodes": sum(shown(r["erodes"], min_cell) for r in by_week.values())}
    if t.posts:
        by_author: Counter = Counter()
        by_community: Counter = Counter()
        span, params = _in_weeks(weeks)
        rows = db.execute(
            f"""select distinct p.id, p.author, p.community, {POST_WEEK} from mentions m join posts p on p.id = m.post_id
               where m.model = ? and m.entity_id = ? and {span}""",
            [model, ident, *params]).fetchall()
        for _, author, community, week in rows:
            by_author[author] += 1
            by_community[(community, week)] += 1
        t.authors = len([a for a in by_author if a is not None])
        communities: Counter = Counter()
        for (community, _), n in _community_cells(by_community, min_cell).items():
            communities[community] += n
        t.communities = sorted(((c, n) for c, n in communities.items() if n),
                               key=lambda c: (-c[1], c[0] or ""))
        t.top_author_posts = sum(n for _, n in by_author.most_common(3))
    return t


def change(now: Share, before: Share) -> float:
    """z statistic of a share's change between two periods (0 when either is empty)."""
    if not now.total or not before.total:
        return 0.0
    return z_score(now.count, now.total, before.count, before.total)


def co_mentions(db: sqlite_utils.Database, model: str, ident: str, weeks: list[str], kinds=("sponsor", "site"),
                limit: int = 6, min_cell: int = 0) -> list[tuple[str, str, int]]:
    """(id, name, posts) of other entities of the given kinds named in the same posts
    (with ``min_cell``, in the published weeks only)."""
    weeks = published(db, model, ident, weeks, min_cell)
    if not weeks:
        return []
    marks = ",".join("?" * len(kinds))
    span, params = _in_weeks(weeks)
    # Per week and entity first: with min_cell, a week's pair counts only where it could be shown.
    return [tuple(r) for r in db.execute(f"""
        select id, name, sum(n) as n from (
            select e.id, e.name, {POST_WEEK} as week, count(distinct m2.post_id) as n
            from mentions m join posts p on p.id = m.post_id
            join mentions m2 on m2.post_id = m.post_id and m2.model = m.model and m2.entity_id != m.entity_id
            join entities e on e.id = m2.entity_id
            where m.model = ? and m.entity_id = ? and {span} and e.kind in ({marks})
            group by e.id, week
        ) where n >= ? group by id order by n desc, name limit ?""",
        [model, ident, *params, *kinds, max(min_cell, 1), limit])]


def alerts_for(db: sqlite_utils.Database, model: str, ids: list[str], weeks: list[str]) -> list[dict]:
    marks = ",".join("?" * len(ids))
    return [dict(r) for r in db.query(
        f"select a.*, e.name as entity from alerts a join entities e on e.id = a.entity_id "
        f"where a.model = ? and a.entity_id in ({marks}) and a.week >= ? and a.week <= ? order by a.week desc, a.z desc",
        [model, *ids, weeks[0], weeks[-1]])]


# User names inside quoted text: Reddit's u/name, /u/name, /user/name and reddit.com/user/name
# (any case), and @name with dots and hyphens (Discourse, Mastodon), @name@instance included.
_USER_REF = re.compile(
    r"(?i)\b(?:[a-z]+\.)?reddit\.com/(?:u|user)/[a-z0-9_-]+"
    r"|(?<![\w/])(?:/?u|/user)/[a-z0-9_-]{2,}"
    r"|(?<![\w@.])@[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?(?:@[a-z0-9-]+(?:\.[a-z0-9-]+)+)?")


def excerpt(title: str, text: str, start: int, end: int, width: int = 260) -> str:
    """The words around a mention, at most about ``width`` characters, kept within its
    paragraph where it can be, cut at word boundaries, user names masked. Offsets are
    into the tagged text (``title + "\n\n" + text``, or the text alone without a title)."""
    full = f"{title}\n\n{text}" if title else text
    start, end = max(0, min(start, len(full))), max(0, min(end, len(full)))
    para_lo = full.rfind("\n", 0, start) + 1
    para_hi = full.find("\n", end)
    para_hi = len(full) if para_hi == -1 else para_hi
    room = max(0, width - (end - start))
    lo = max(para_lo, start - room // 2)
    hi = min(para_hi, end + room - (start - lo))
    lo = max(para_lo, min(lo, hi - width))
    snippet = full[lo:hi]
    if lo > para_lo and " " in snippet[: start - lo]:
        snippet = "…" + snippet[snippet.index(" ") + 1:]
    if end < hi < para_hi and " " in snippet[end - hi:]:  # cut after the mention: end on a word
        snippet = snippet[: snippet.rindex(" ")] + "…"
    return _USER_REF.sub("[user]", " ".join(snippet.split()))


def evidence(db: sqlite_utils.Database, model: str, ident: str, start: str, end: str, *, sentiment: str | None = None,
             theme: tuple[str, str] | None = None, limit: int = 3, order: str = "strength",
             prefer: str | None = None) -> list[dict]:
    """Posts behind a figure: mentions of the entity in [start, end) whose sentiment (or
    theme stance) matches, strongest first (or most ``prefer``-sentiment first), one per post and at most one per author,
    with a short excerpt, a pseudonym, the community and a link."""
    where, params = ["m.model = :model", "m.entity_id = :entity", "p.created_at >= :start",
                     "p.created_at < :end", "(p.text != '' or p.title != '')"], {
        "model": model, "entity": ident, "start": start, "end": end}
    score = f"m.{prefer}" if prefer in ("negative", "neutral", "positive") else "max(m.negative, m.positive)"
    if sentiment:
        where.append("m.sentiment = :sentiment")
        params["sentiment"] = sentiment
        score = f"m.{sentiment}"
    if theme:
        where.append("json_extract(m.themes, '$.' || :theme) = :stance")
        params["theme"], params["stance"] = theme
    rows = db.query(f"""
        select p.id, p.created_at, p.community, p.url, p.author, p.title, p.text, m.start, m.end,
               m.sentiment, {score} as strength
        from mentions m join posts p on p.id = m.post_id
        where {' and '.join(where)}
        order by {'strength desc' if order == 'strength' else 'p.created_at desc'}, p.id
        limit 200""", params)
    out, seen_posts, seen_authors = [], set(), set()
    for r in rows:
        if r["id"] in seen_posts or r["author"] in seen_authors:
            continue
        seen_posts.add(r["id"])
        seen_authors.add(r["author"])
        out.append({
            "post_id": r["id"], "date": r["created_at"][:10], "community": r["community"], "url": web_url(r["url"]),
            "author": pseudonym(r["author"]), "sentiment": r["sentiment"],
            "excerpt": excerpt(r["title"] or "", r["text"] or "", r["start"], r["end"]),
        })
        if len(out) >= limit:
            break
    return out


def pseudonym(author: str | None) -> str:
    """A short, stable label for a keyed author hash ('author 6856c0')."""
    if not author:
        return "unknown author"
    return "author " + author.split("_", 1)[-1][:6]


def theme_label(theme: str) -> str:
    return THEME_LABELS.get(theme, theme.replace("_", " "))


def consent_notes(db: sqlite_utils.Database, ident: str) -> list[tuple[str, str, str]]:
    """(source, type, consent) of sources with a consent note whose posts mention the entity."""
    return [tuple(r) for r in db.execute("""
        select s.name, s.type, s.consent from sources s
        where s.consent is not null and s.consent != ''
          and exists (select 1 from posts p join mentions m on m.post_id = p.id
                      where p.source = s.name and m.entity_id = ?)
        order by s.name""", [ident])]
