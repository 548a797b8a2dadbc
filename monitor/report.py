"""``trustwatch report --entity ID``: where trust in one watched entity stands, which way
it moved against the previous period, and why, beside its partners.

:func:`build` gathers the figures (no formatting); :func:`render_html` and
:func:`render_markdown` write them for a non-technical reader. The served Datasette shows
the same HTML (datasette/plugins/trustwatch_pages.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from . import charts
from . import reportdata as rd
from .errors import InputError
from .reportdata import Entity, Totals

THEMES = list(rd.THEME_LABELS)
SIGNIFICANT = 1.96  # |z| for a change between periods we call more than chance


@dataclass
class Driver:
    theme: str
    stance: str  # erodes or builds
    now: rd.Share
    before: rd.Share
    z: float
    evidence: list[dict]

    @property
    def label(self) -> str:
        return rd.theme_label(self.theme)


@dataclass
class Side:
    """An entity shown beside the subject (a partner group, or the site a group works with)."""

    entity: Entity
    now: Totals
    before: Totals
    weekly: dict[str, dict]


@dataclass
class EntityReport:
    db_name: str
    entity: Entity
    model: dict
    weeks: list[str]  # this period's Mondays
    previous: list[str]  # the same number of weeks before
    now: Totals
    before: Totals
    direction: str  # fell | rose | mixed | steady | new | none
    headline: str
    summary: list[str]
    drivers: list[Driver]
    frequent: list[tuple[str, str, int]]
    sides: list[Side]
    alerts: list[dict]
    weekly: dict[str, dict]
    themes_weekly: dict[str, dict[str, dict]]
    examples: dict[str, list[dict]]
    consent: list[tuple[str, str, str]]
    caveats: list[str]
    generated: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def period_text(self) -> str:
        return f"{day_text(self.weeks[0])} – {day_text(rd.next_day(self.weeks[-1], 6))}"

    @property
    def previous_text(self) -> str:
        return f"{day_text(self.previous[0])} – {day_text(rd.next_day(self.previous[-1], 6))}"


def day_text(iso: str) -> str:
    d = dt.date.fromisoformat(iso)
    return f"{d.day} {d.strftime('%b %Y')}"


def _posts(n: int) -> str:
    return f"{n} post" if n == 1 else f"{n} posts"


def pct(x: float) -> str:
    return f"{x:.0%}"


def direction_of(now: Totals, before: Totals) -> tuple[str, float, float]:
    """How trust moved: (direction, z of the negative share's change, z of the positive's)."""
    if not now.posts:
        return "none", 0.0, 0.0
    if not before.posts:
        return "new", 0.0, 0.0
    neg_z = rd.change(now.share("negative"), before.share("negative"))
    pos_z = rd.change(now.share("positive"), before.share("positive"))
    worse = neg_z >= SIGNIFICANT or pos_z <= -SIGNIFICANT
    better = neg_z <= -SIGNIFICANT or pos_z >= SIGNIFICANT
    if worse and better:
        return "mixed", neg_z, pos_z
    return ("fell" if worse else "rose" if better else "steady"), neg_z, pos_z


def volume_change(now: int, before: int) -> str | None:
    """A sentence when the number of posts changed by more than chance (Poisson, 95%) and
    by at least half; None otherwise."""
    from .alerts import poisson_tail

    if before and now >= 1.5 * before and now >= 10 and poisson_tail(now, before) < 0.025:
        return (f"It drew far more attention: {now} posts against {before} in the previous period "
                f"({now / before:.1f} times as many).")
    if before >= 10 and now <= before / 1.5 and 1 - poisson_tail(now + 1, before) < 0.025:
        return f"It drew less attention: {now} posts against {before} in the previous period."
    return None


def headline(name: str, weeks: int, now: Totals, before: Totals) -> tuple[str, str, list[str]]:
    """(direction, one-sentence headline, supporting sentences) in plain language."""
    direction, _, _ = direction_of(now, before)
    span = f"the last {weeks} weeks"
    if direction == "none":
        return direction, f"No posts mentioned {name} in {span} of collected data.", []
    neg, pos = now.share("negative"), now.share("positive")
    said = (f"Of the {now.posts} posts that mention {name}, {pct(neg.value)} were negative "
            f"(95% interval {pct(neg.interval[0])}–{pct(neg.interval[1])}) and {pct(pos.value)} positive")
    lines = []
    if direction == "new":
        head = f"{name} was discussed in {now.posts} posts in {span}, and not at all in the {weeks} weeks before."
        lines.append(said + ".")
    else:
        bneg, bpos = before.share("negative"), before.share("positive")
        head = {
            "fell": f"Trust in {name} fell over {span}.",
            "rose": f"Trust in {name} rose over {span}.",
            "mixed": f"Talk about {name} polarised over {span}: both praise and criticism grew.",
            "steady": f"Trust in {name} held steady over {span}.",
        }[direction]
        lines.append(f"{said}, against {pct(bneg.value)} negative and {pct(bpos.value)} positive "
                     f"of {before.posts} posts in the {weeks} weeks before.")
        lines.append(f"Net sentiment (positive minus negative share) went from {before.net:+.2f} to {now.net:+.2f}.")
        volume = volume_change(now.posts, before.posts)
        if volume:
            lines.append(volume)
        if direction == "steady":
            lines.append("The differences are within what chance alone produces with this many posts.")
        else:
            lines.append("The change is larger than chance alone would explain (two-proportion test, 95% level).")
    if now.posts < 20:
        lines.append(f"Only {now.posts} posts: read this as a handful of voices, not a trend.")
    return direction, head, lines


DRIVER_Z = 1.64  # one-sided 95%: a theme's rise we call more than chance


def drivers(db, model: str, ident: str, weeks: list[str], previous: list[str], now: Totals,
            before: Totals, limit: int = 3) -> list[Driver]:
    """Themes whose share of posts eroding (or building) trust rose by more than chance
    between the periods, largest rise first. With no previous posts, the most frequent
    themes of this period (``z`` is then 0)."""
    found = []
    for theme in THEMES:
        for stance in ("erodes", "builds"):
            a, b = now.theme_share(theme, stance), before.theme_share(theme, stance)
            if a.count < 3:
                continue
            if before.posts:
                z = rd.change(a, b)
                if z < DRIVER_Z:
                    continue
            else:
                z = 0.0
            found.append((z, a.count, theme, stance, a, b))
    found.sort(key=lambda f: (-f[0], -f[1], f[2]))
    out = []
    for z, _, theme, stance, a, b in found[:limit]:
        ev = rd.evidence(db, model, ident, weeks[0], rd.next_day(weeks[-1]), theme=(theme, stance), limit=2,
                         prefer="negative" if stance == "erodes" else "positive")
        out.append(Driver(theme, stance, a, b, round(z, 2), ev))
    return out


def frequent_themes(now: Totals, limit: int = 3) -> list[tuple[str, str, int]]:
    """(theme, stance, posts) most often tagged this period."""
    items = [(t, s, now.themes.get(t, {}).get(s, 0)) for t in THEMES for s in ("erodes", "builds")]
    return sorted([i for i in items if i[2]], key=lambda i: (-i[2], i[0]))[:limit]


def period_line(now: Totals) -> str:
    """The caveat that says how many posts, authors and communities a period rests on
    (authors left out where they are withheld: ``now.authors`` None)."""
    by = f" by {now.authors} different authors" if now.authors is not None else ""
    return (f"This period: {now.posts} posts{by} in {len(now.communities)} "
            f"communit{'y' if len(now.communities) == 1 else 'ies'}"
            + (f" ({', '.join(c for c, _ in now.communities[:5])})." if now.communities else "."))


def caveats(model: dict, now: Totals, sides: list[Side], rules_text: str) -> list[str]:
    m = model.get("metrics", {})
    forum = m.get("forum_heldout", {})
    lines = []
    if forum:
        lines.append(
            f"Sentiment and themes come from an automatic tagger ({model['id']}). On posts it never saw during "
            f"training it agreed with human labels on the sentiment toward a named organisation "
            f"{forum.get('mention_sentiment_accuracy', 0):.0%} of the time, and on post sentiment with a macro-F1 of "
            f"{forum.get('post_sentiment_macro_f1', 0):.2f}. Trust themes are harder (micro-F1 "
            f"{forum.get('theme_micro', {}).get('f1', 0):.2f}): treat theme counts as pointers to posts worth "
            "reading, not as measurements.")
    else:
        lines.append(f"Sentiment and themes come from an automatic tagger ({model['id']}) whose accuracy on "
                     "patient forum posts has not been measured; read the posts behind any figure before acting on it.")
    lines += [
        "A post counts once per organisation and week, however often it names it; its sentiment toward the "
        "organisation comes from the words around the name, not from the whole post.",
        "Shares are given with 95% intervals (Wilson): the range that the share in a larger sample of similar "
        "posts would likely fall in. Wide intervals mean few posts.",
        period_line(now),
        "Public posts come from people who chose to write: they are not a survey of patients, and some voices "
        "(people without time, language or internet access) are missing. A few very active authors can tilt a "
        "small sample.",
        "Sarcasm, quotes of other people and questions are the tagger's known weak spots.",
        rules_text,
    ]
    return lines


def build(db: sqlite_utils.Database, ident: str, weeks: int = 13, rules=None, until: str | None = None,
          min_cell: int = 0) -> EntityReport:
    """The report on ``ident`` for the ``weeks`` weeks ending with the latest week that has
    data (or the week holding the date ``until``), against the same number before. With
    ``min_cell`` (the public pages), the period totals take in only weeks with at least
    that many posts; ``suppress.entity_report`` then withholds the rest."""
    from .alerts import AlertRules

    if weeks < 1:
        raise InputError(f"--weeks {weeks}: must be at least 1")
    if weeks > rd.MAX_WEEKS:
        raise InputError(f"--weeks {weeks}: at most {rd.MAX_WEEKS} (ten years)")
    e = rd.entity(db, ident)
    model = rd.current_model(db)
    end = rd.end_week(db, model["id"], until)
    span = rd.week_range(end, 2 * weeks)
    previous, current = span[:weeks], span[weeks:]
    now = rd.totals(db, model["id"], ident, current, min_cell)
    before = rd.totals(db, model["id"], ident, previous, min_cell)
    direction, head, summary = headline(e.name, weeks, now, before)
    sides = [Side(p, rd.totals(db, model["id"], p.id, current, min_cell),
                  rd.totals(db, model["id"], p.id, previous, min_cell),
                  rd.weekly(db, model["id"], p.id, span))
             for p in rd.partners_of(db, e)]
    alert_rows = rd.alerts_for(db, model["id"], [e.id] + [s.entity.id for s in sides], span)
    for a in alert_rows[:8]:
        end_day = rd.next_day(a["week"])
        a["evidence"] = rd.evidence(
            db, model["id"], a["entity_id"], a["week"], end_day,
            sentiment="negative" if a["metric"] == "negative_share" else None,
            theme=(a["theme"], "erodes") if a["theme"] else None, limit=3)
    r = rules or AlertRules()
    rules_text = (f"Alerts flag a week whose negative share (or share of posts where a theme erodes trust) rose "
                  f"at least {r.min_change:.0%} above the previous {r.baseline_weeks} weeks and more than chance "
                  f"explains (z ≥ {r.z}), with at least {r.min_posts} posts that week and {r.min_baseline_posts} "
                  "before it.")
    start, stop = current[0], rd.next_day(current[-1])
    examples = {s: rd.evidence(db, model["id"], ident, start, stop, sentiment=s, limit=2)
                for s in ("negative", "positive")}
    return EntityReport(
        db_name=rd.db_name(db), entity=e, model=model, weeks=current, previous=previous, now=now, before=before,
        direction=direction, headline=head, summary=summary,
        drivers=drivers(db, model["id"], ident, current, previous, now, before), frequent=frequent_themes(now),
        sides=sides,
        alerts=alert_rows[:8], weekly=rd.weekly(db, model["id"], ident, span),
        themes_weekly=rd.theme_weekly(db, model["id"], ident, span), examples=examples,
        consent=rd.consent_notes(db, ident), caveats=caveats(model, now, sides, rules_text),
    )


# ---- charts ------------------------------------------------------------------------------

ROLLING = 4  # weeks pooled into each point of the share charts


def rolling_share(span: list[str], counts: dict[str, tuple[int, int]], window: int = ROLLING) -> dict:
    """week -> (share, low, high) over the ``window`` weeks ending with it, from
    week -> (count, posts); weeks with no posts in the window are left out."""
    out = {}
    for i, w in enumerate(span):
        k = sum(counts.get(x, (0, 0))[0] for x in span[max(0, i - window + 1): i + 1])
        n = sum(counts.get(x, (0, 0))[1] for x in span[max(0, i - window + 1): i + 1])
        if n:
            out[w] = (k / n, *rd.wilson(k, n))
    return out


def report_charts(r: EntityReport) -> dict[str, tuple[str, str]]:
    """name -> (caption, inline SVG)."""
    span = r.previous + r.weeks
    out = {}
    caption = f"Posts mentioning {r.entity.name} each week, by sentiment toward it (shaded: this period)"
    out["sentiment"] = (caption, charts.sentiment_bars(span, r.weekly, caption, mark_from=r.weeks[0]))
    series = {r.entity.name: rolling_share(span, weekly_counts(r.weekly, "negative"))}
    for s in r.sides:
        series[s.entity.name] = rolling_share(span, weekly_counts(s.weekly, "negative"))
    caption = f"Share of posts that are negative, over the {ROLLING} weeks to each date, with 95% intervals"
    out["negative"] = (caption, charts.share_lines(span, series, caption))
    top = sorted((t for t in r.themes_weekly if any(x["erodes"] for x in r.themes_weekly[t].values())),
                 key=lambda t: -sum(x["erodes"] for x in r.themes_weekly[t].values()))[:3]
    if top:
        theme_series = {}
        for t in top:
            counts = {w: (r.themes_weekly[t][w]["erodes"] if w in r.themes_weekly[t] else 0, row["posts"])
                      for w, row in r.weekly.items()}
            theme_series[rd.theme_label(t).capitalize()] = rolling_share(span, counts)
        caption = f"Share of posts in which a theme erodes trust, over the {ROLLING} weeks to each date"
        out["themes"] = (caption, charts.share_lines(span, theme_series, caption, band=False))
    if r.sides and r.now.posts:
        items = [(r.entity.name, r.now.share("negative").value, *r.now.share("negative").interval)]
        items += [(s.entity.name, s.now.share("negative").value, *s.now.share("negative").interval)
                  for s in r.sides if s.now.posts]
        caption = "Negative share this period, with 95% intervals: overlapping bars mean no clear difference"
        out["sides"] = (caption, charts.interval_dots(items, caption))
    return out


def weekly_counts(weekly: dict[str, dict], what: str) -> dict[str, tuple[int, int]]:
    return {w: (row[what], row["posts"]) for w, row in weekly.items()}


# ---- rendering ---------------------------------------------------------------------------

def template_env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = pct
    env.filters["day"] = day_text
    env.filters["theme"] = rd.theme_label
    env.filters["posts"] = _posts
    from .suppress import cell

    env.filters["cell"] = cell
    env.filters["signed"] = lambda x: f"{x:+.2f}"
    # A period's net sentiment, or "–" where it has no posts (in public: no published week)
    env.filters["net"] = lambda t: f"{t.net:+.2f}" if t.posts else "–"
    return env


def render_html(r: EntityReport, links: dict | None = None, excerpts: bool = True) -> str:
    """The self-contained HTML report. ``links`` (Datasette pages) adds links to the
    canned queries behind the figures; ``excerpts=False`` leaves post text out."""
    figures = report_charts(r)
    return template_env().get_template("entity_report.html").render(
        r=r, charts=figures, themes=THEMES, links=links or {}, excerpts=excerpts, rd=rd,
        k=getattr(r, "min_cell", 0))


def quote_md(ev: dict) -> str:
    """One excerpt as a Markdown quote with its pseudonym, community, date and link."""
    link = f" ([source]({ev['url']}))" if ev["url"] else ""
    return f"> {ev['excerpt']} — {ev['author']}, {ev['community']}, {ev['date']}{link}"


def render_markdown(r: EntityReport) -> str:
    span = r.previous + r.weeks
    lines = [f"# Trust report: {r.entity.name}", "",
             f"*{r.entity.kind.title()} · {r.period_text} (compared with {r.previous_text}) · "
             f"generated {r.generated} from {r.db_name}*", "", f"**{r.headline}**", ""]
    for sentence in r.summary:
        lines += [sentence, ""]
    lines += ["## What moved it", ""]
    if not r.drivers:
        lines.append("No trust theme rose by more than chance would explain. Most often tagged this period: "
                     + (", ".join(f"{rd.theme_label(t)} {'eroding' if s == 'erodes' else 'building'} trust ({_posts(n)})"
                                  for t, s, n in r.frequent) or "none") + ".")
    for d in r.drivers:
        lines.append(f"- **{d.label.capitalize()} {'eroding' if d.stance == 'erodes' else 'building'} trust**: "
                     f"{pct(d.now.value)} of posts this period, {pct(d.before.value)} before.")
        for ev in d.evidence:
            lines.append("  - " + quote_md(ev))
    lines.append("")
    lines += ["## Week by week", "", "| week | posts | negative | neutral | positive | negative share (95% interval) |",
              "|---|---:|---:|---:|---:|---|"]
    for w in span:
        row = r.weekly.get(w)
        if row:
            lines.append(f"| {w}{' *' if w in r.weeks else ''} | {row['posts']} | {row['negative']} | {row['neutral']} | "
                         f"{row['positive']} | {pct(row['negative_share'])} ({pct(row['negative_low'])}–{pct(row['negative_high'])}) |")
        else:
            lines.append(f"| {w}{' *' if w in r.weeks else ''} | 0 | | | | |")
    lines += ["", "\\* this period. Negative share trend: "
              + charts.sparkline([r.weekly[w]["negative_share"] if w in r.weekly else None for w in span]), ""]
    lines += ["## Trust themes this period", "", "| theme | builds trust | erodes trust | erodes, previous period |",
              "|---|---:|---:|---:|"]
    for t in THEMES:
        a, b = r.now.theme_share(t, "builds"), r.now.theme_share(t, "erodes")
        lines.append(f"| {rd.theme_label(t)} | {a.count} | {b.count} | {r.before.theme_share(t, 'erodes').count} |")
    lines.append("")
    if r.sides:
        lines += ["## Beside its partners", "", "| | posts | negative | positive | net, this period | net, before |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, now, before in [(r.entity.name, r.now, r.before)] + [(s.entity.name, s.now, s.before) for s in r.sides]:
            lines.append(f"| {name} | {now.posts} | {now.share('negative').text() if now.posts else '–'} | "
                         f"{now.share('positive').text() if now.posts else '–'} | {now.net:+.2f} | "
                         f"{before.net:+.2f} |")
        lines.append("")
    lines += ["## Alerts", ""]
    if not r.alerts:
        lines += ["No week in this period or the one before crossed the alert threshold.", ""]
    for a in r.alerts:
        lines.append(f"- **{a['entity']}, week of {day_text(a['week'])}**: {a['message']}.")
        for ev in a.get("evidence", []):
            lines.append("  - " + quote_md(ev))
    lines.append("")
    if r.consent:
        lines += ["## Consent", ""] + [f"- {name} ({stype}): {note}" for name, stype, note in r.consent] + [""]
    lines += ["## Method and caveats", ""] + [f"- {c}" for c in r.caveats] + [""]
    return "\n".join(lines)


def write_report(out: Path, build_fn, render_md, render_html_fn):
    """Check ``out``, build, render as Markdown or HTML by its suffix, and replace the file
    atomically; returns what was built. Shared by the entity report and the comparison."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".markdown"):
        raise InputError(f"--out {out}: give a .html or .md file name")
    if not out.parent.exists():
        raise InputError(f"--out {out}: the folder {out.parent} does not exist")
    built = build_fn()
    text = render_md(built) if suffix in (".md", ".markdown") else render_html_fn(built)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return built


def write(db: sqlite_utils.Database, ident: str, out: Path, weeks: int = 13, rules=None,
          until: str | None = None) -> EntityReport:
    """Build the report and write it as HTML or Markdown (by ``out``'s suffix)."""
    return write_report(out, lambda: build(db, ident, weeks, rules, until), render_markdown, render_html)
