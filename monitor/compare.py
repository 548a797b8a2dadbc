"""``trustwatch report --compare A B C``: candidate partner groups side by side, with a
plain-language summary that says where the evidence is thin instead of ranking on noise."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from . import charts
from . import reportdata as rd
from .errors import InputError
from .report import SIGNIFICANT, THEMES, day_text, direction_of, pct, template_env, write_report

KEY_THEMES = ("transparency", "commitment", "conflict_of_interest")
MIN_POSTS = 30  # below this, a group's figures are a handful of voices


@dataclass
class Candidate:
    entity: rd.Entity
    now: rd.Totals  # the whole window
    first: rd.Totals  # first half of the window
    second: rd.Totals  # second half
    trend: str  # fell | rose | mixed | steady | new | none (second half against first)
    co_mentions: list[tuple[str, str, int]]
    alerts: list[dict]
    examples: list[dict]
    weekly: dict[str, dict]
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.entity.name


@dataclass
class Comparison:
    db_name: str
    model: dict
    weeks: list[str]
    candidates: list[Candidate]
    summary: list[str]
    generated: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def period_text(self) -> str:
        return f"{day_text(self.weeks[0])} – {day_text(rd.next_day(self.weeks[-1], 6))}"


def thin_evidence(t: rd.Totals, weeks: list[str], min_cell: int = 0, public: bool = False) -> list[str]:
    """Plain reasons why one candidate's figures may not mean much (counts below
    ``min_cell`` are not quoted; ``public``: nor the posts of the most active authors)."""
    out = []
    if t.posts == 0:
        return ["no posts mention it in this window"]
    if t.posts < MIN_POSTS:
        out.append(f"only {t.posts} posts")
    if t.communities and t.communities[0][1] >= 0.8 * t.posts and t.posts >= 3:
        out.append(f"{t.communities[0][1]} of {t.posts} posts come from one community ({t.communities[0][0]})")
    if t.busiest_week and t.posts >= 5 and t.busiest_week[1] >= 0.4 * t.posts:
        out.append(f"{t.busiest_week[1]} of {t.posts} posts fall in one week (of {day_text(t.busiest_week[0])}): "
                   "a burst, not a steady view" if t.busiest_week[1] >= min_cell else
                   "a large share of its posts fall in one week: a burst, not a steady view")
    if t.posts >= 5 and t.top_author_posts >= 0.5 * t.posts:
        out.append(f"its three most active authors wrote {t.top_author_posts} of {t.posts} posts"
                   if t.top_author_posts >= min_cell and not public else "three authors wrote half of its posts")
    return out


def few_voices(t: rd.Totals) -> bool:
    """Too few independent voices for a test that treats posts as independent."""
    return t.posts < MIN_POSTS or t.top_author_posts >= 0.5 * t.posts


def summarise(cands: list[Candidate], min_cell: int = 0) -> list[str]:
    """Sentences a site lead can act on, claiming only differences larger than chance,
    and only between candidates with enough independent voices to test."""
    lines = []
    for c in cands:
        if not c.warnings:
            continue
        lines.append(f"{c.name}: read with care: {'; '.join(c.warnings)}."
                     + (" Its figures describe a few voices and are left out of the comparisons below."
                        if few_voices(c.now) else " Its figures say how it is seen there, not everywhere."))
    testable = [c for c in cands if not few_voices(c.now)]
    differences = []
    for a, b in itertools.combinations(testable, 2):
        said = []
        for what in ("negative", "positive"):
            z = rd.change(a.now.share(what), b.now.share(what))
            if abs(z) >= SIGNIFICANT:
                hi, lo = (a, b) if z > 0 else (b, a)
                said.append(f"{what} posts make up {pct(hi.now.share(what).value)} of {hi.name}'s against "
                            f"{pct(lo.now.share(what).value)} of {lo.name}'s")
        if said:
            differences.append(f"{a.name} and {b.name} are seen differently: {'; '.join(said)} "
                               "(larger than chance).")
    lines += differences
    if len(testable) >= 2 and not differences:
        lines.append("Among " + ", ".join(c.name for c in testable) + ", none is spoken of clearly more positively "
                     "or negatively than another: the 95% intervals overlap, so a ranking on these figures would be "
                     "a ranking on noise.")
    elif len(testable) < 2:
        lines.append("Fewer than two candidates have enough independent voices to compare; collect longer or from "
                     "more communities before choosing on these figures.")
    for c in cands:
        coi = c.now.theme_share("conflict_of_interest", "erodes")
        if coi.count >= max(3, min_cell):
            lines.append(f"{c.name}: {coi.count} posts question whose interests it serves (conflict of interest "
                         f"eroding trust, {pct(coi.value)} of its posts). Read them before committing.")
        if c.trend in ("fell", "rose") and c.now.posts >= 10:
            lines.append(f"{c.name}: trust {c.trend} between the first and second half of the window "
                         f"(net {c.first.net:+.2f} → {c.second.net:+.2f}).")
        if c.alerts:
            lines.append(f"{c.name}: {len(c.alerts)} alert{'s' if len(c.alerts) > 1 else ''} in the window, "
                         f"the latest in the week of {day_text(c.alerts[0]['week'])}.")
    solid = [c for c in testable if not c.warnings]
    if solid:
        broad = max(solid, key=lambda c: (len(c.now.communities), c.now.authors or 0))
        by = f" by {broad.now.authors} authors" if broad.now.authors is not None else ""
        lines.append(f"Broadest evidence: {broad.name}, {broad.now.posts} posts{by} "
                     f"in {len(broad.now.communities)} communities.")
    return lines


def build(db: sqlite_utils.Database, ids: list[str], weeks: int = 26, until: str | None = None,
          min_cell: int = 0) -> Comparison:
    """The entities side by side over ``weeks`` weeks; with ``min_cell`` (the public pages),
    every total over weeks with at least that many posts only (``suppress.comparison``
    withholds the rest)."""
    ids = list(dict.fromkeys(ids))
    if len(ids) < 2:
        raise InputError("--compare needs at least two different entity ids")
    if weeks < 2:
        raise InputError(f"--weeks {weeks}: must be at least 2 to compare halves")
    if weeks > rd.MAX_WEEKS:
        raise InputError(f"--weeks {weeks}: at most {rd.MAX_WEEKS} (ten years)")
    entities = [rd.entity(db, i) for i in ids]
    model = rd.current_model(db)
    span = rd.week_range(rd.end_week(db, model["id"], until), weeks)
    half = len(span) // 2
    cands = []
    for e in entities:
        now = rd.totals(db, model["id"], e.id, span, min_cell)
        first = rd.totals(db, model["id"], e.id, span[:half], min_cell)
        second = rd.totals(db, model["id"], e.id, span[half:], min_cell)
        trend, _, _ = direction_of(second, first)
        examples = []
        for s in ("positive", "negative", "neutral"):
            examples += rd.evidence(db, model["id"], e.id, span[0], rd.next_day(span[-1]), sentiment=s, limit=1)
        c = Candidate(e, now, first, second, trend, rd.co_mentions(db, model["id"], e.id, span, min_cell=min_cell),
                      rd.alerts_for(db, model["id"], [e.id], span), examples, rd.weekly(db, model["id"], e.id, span))
        c.warnings = thin_evidence(now, span)
        cands.append(c)
    return Comparison(rd.db_name(db), model, span, cands, summarise(cands))


def comparison_charts(c: Comparison) -> dict[str, tuple[str, str]]:
    from .report import rolling_share, weekly_counts

    out = {}
    for what in ("negative", "positive"):
        items = [(x.name, x.now.share(what).value, *x.now.share(what).interval) for x in c.candidates if x.now.posts]
        if items:
            caption = f"{what.capitalize()} share over the whole window, with 95% intervals"
            out[what] = (caption, charts.interval_dots(items, caption))
    series = {x.name: rolling_share(c.weeks, weekly_counts(x.weekly, "negative")) for x in c.candidates}
    caption = "Negative share over the 4 weeks to each date"
    out["trend"] = (caption, charts.share_lines(c.weeks, series, caption, band=False))
    return out


def render_html(c: Comparison, links: dict | None = None, excerpts: bool = True) -> str:
    return template_env().get_template("compare.html").render(
        c=c, charts=comparison_charts(c), themes=THEMES, key_themes=KEY_THEMES, links=links or {},
        excerpts=excerpts, rd=rd, k=getattr(c, "min_cell", 0))


def render_markdown(c: Comparison) -> str:
    names = [x.name for x in c.candidates]
    lines = [f"# Partner audit: {', '.join(names)}", "",
             f"*{c.period_text} ({len(c.weeks)} weeks) · generated {c.generated} from {c.db_name}*", "",
             "## Summary", ""] + [f"- {s}" for s in c.summary] + [""]
    lines += ["## Side by side", "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(x) for x in c.candidates) + " |")

    row("posts", lambda x: str(x.now.posts))
    row("different authors", lambda x: "withheld" if x.now.authors is None else str(x.now.authors))
    row("communities", lambda x: ", ".join(f"{k} ({n})" for k, n in x.now.communities[:4]) or "–")
    row("negative", lambda x: x.now.share("negative").text())
    row("positive", lambda x: x.now.share("positive").text())
    row("net sentiment", lambda x: f"{x.now.net:+.2f}")
    row("trend (first → second half)", lambda x: f"{x.first.net:+.2f} → {x.second.net:+.2f} ({x.trend})")
    for t in THEMES:
        row(f"{rd.theme_label(t)}: builds / erodes",
            lambda x, t=t: f"{x.now.theme_share(t, 'builds').count} / {x.now.theme_share(t, 'erodes').count}")
    row("named with (sponsors, sites)", lambda x: ", ".join(f"{n} ({k})" for _, n, k in x.co_mentions) or "–")
    row("alerts", lambda x: str(len(x.alerts)))
    row("evidence", lambda x: "; ".join(x.warnings) or "broad enough to compare")
    lines.append("")
    for x in c.candidates:
        lines += [f"## {x.name}", ""]
        for a in x.alerts:
            lines.append(f"- Alert, week of {day_text(a['week'])}: {a['message']}.")
        for ev in x.examples:
            lines.append(f"- > {ev['excerpt']} — {ev['author']}, {ev['community']}, {ev['date']}, "
                         f"{ev['sentiment']}" + (f" ([source]({ev['url']}))" if ev["url"] else ""))
        lines.append("")
    lines += ["## Method", "",
              "- Each post counts once per group; its sentiment toward the group comes from the words around the "
              "name. Shares carry 95% Wilson intervals; a difference is called only when a two-proportion test "
              "says it is larger than chance (95% level).",
              f"- Evidence is called thin below {MIN_POSTS} posts, when 80% of posts come from one community, "
              "when 40% fall in one week, or when three authors wrote half of them.",
              f"- Tagger: {c.model['id']}.", ""]
    return "\n".join(lines)


def write(db: sqlite_utils.Database, ids: list[str], out: Path, weeks: int = 26, until: str | None = None) -> Comparison:
    return write_report(out, lambda: build(db, ids, weeks, until), render_markdown, render_html)
