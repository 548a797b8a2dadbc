"""Datasette pages for people who never use a command line:

- ``/-/trust``: the dashboard, every watched entity with its trend, charts over all weeks
  of the aggregates, recent alerts;
- ``/-/trust/<entity id>``: the same trust report `trustwatch report --entity` writes;
- ``/-/compare?ids=a&ids=b``: the partner audit, with a form to pick entities.

Pages read the database through their own read-only connection. Post excerpts appear
only to visitors allowed to view the ``posts`` table, so they follow the same access
rules as the raw data."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict
from html import escape
from urllib.parse import urlencode

import sqlite_utils
from datasette import hookimpl
from datasette.utils.asgi import Response

from monitor import charts, compare, report, reportdata as rd, suppress
from monitor.errors import InputError


# Rendered pages, keyed on what they show and on the database's state: pages change only
# when a run finishes (or the publishing threshold changes), so a busy dashboard is
# computed once per run, not once per visitor.
_CACHE: "OrderedDict[tuple, str]" = OrderedDict()
_CACHE_SIZE = 256


def _state(db) -> tuple:
    try:
        return tuple(db.execute(
            "select (select coalesce(max(id), 0) from runs), (select max(finished_at) from runs), "
            "(select count(*) from runs where finished_at is null), "
            "(select group_concat(min_cell) from publish_settings), "
            "(select group_concat(id) from models where current = 1)").fetchone())
    except sqlite3.Error:
        return ("no-schema",)


_INFLIGHT: dict[tuple, asyncio.Future] = {}


async def _cached(key: tuple, render) -> str:
    """The page for key, rendered once (in a worker thread) however many visitors ask at
    the same moment."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    if key in _INFLIGHT:
        return await asyncio.shield(_INFLIGHT[key])
    future = asyncio.get_running_loop().create_future()
    _INFLIGHT[key] = future
    try:
        html = await asyncio.to_thread(render)
    except BaseException as e:
        future.set_exception(e)
        future.exception()  # retrieved: waiters re-raise it, nobody logs it as unhandled
        raise
    finally:
        _INFLIGHT.pop(key, None)
    future.set_result(html)
    _CACHE[key] = html
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return html


def _open(datasette) -> tuple[str, sqlite_utils.Database]:
    database = datasette.get_database()
    conn = sqlite3.connect(f"file:{database.path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("pragma busy_timeout = 5000")
    return database.name, sqlite_utils.Database(conn)


def database_path(datasette) -> str:
    return datasette.get_database().path


async def _may_read_posts(datasette, request, db_name: str) -> bool:
    """Researchers (those who may view the posts table) see exact figures and excerpts;
    everyone else sees small counts withheld and no post text."""
    return await datasette.permission_allowed(request.actor, "view-table", resource=(db_name, "posts"),
                                              default=True)


def _min_cell(db) -> int:
    try:
        row = db.execute("select min_cell from publish_settings where id = 1").fetchone()
    except sqlite3.Error:
        row = None
    return row[0] if row else 5


def _links(datasette, db_name: str, ident: str | None = None) -> dict:
    base = datasette.urls.database(db_name)
    links = {
        "nav": [("← Dashboard", datasette.urls.path("/-/trust")), ("Compare groups", datasette.urls.path("/-/compare")),
                ("Browse the data", base)],
        "entity": datasette.urls.path("/-/trust/"),
        "alerts": f"{base}/recent_alerts",
    }
    if ident:
        links["trend"] = f"{base}/entity_trend?{urlencode({'entity': ident})}"
        links["themes"] = f"{base}/theme_breakdown?{urlencode({'entity': ident})}"
        links["partners"] = f"{base}/site_vs_partners?{urlencode({'entity': ident})}"
    return links


def _error_page(message: str, status: int) -> Response:
    return Response.html(
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>trustwatch</title></head>"
        f"<body><h1>Cannot show this page</h1><p class=\"error\">{escape(message)}</p>"
        f"<p><a href=\"/-/trust\">Back to the dashboard</a></p></body></html>", status=status)


def _weeks(request, default: int) -> int:
    raw = request.args.get("weeks") or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= 520:
        raise InputError(f"weeks={raw!r}: give a whole number of weeks between 1 and 520")
    return int(raw)


async def entity_page(request, datasette):
    ident = request.url_vars["entity"]
    db_name, db = _open(datasette)
    try:
        excerpts = await _may_read_posts(datasette, request, db_name)
        weeks = _weeks(request, 13)

        until = request.args.get("until") or None

        def render():
            k = 0 if excerpts else _min_cell(db)
            r = report.build(db, ident, weeks, until=until, min_cell=k)
            r.db_name = db_name
            if not excerpts:
                r = suppress.entity_report(r, k)
            return report.render_html(r, links=_links(datasette, db_name, ident), excerpts=excerpts)

        key = ("entity", str(database_path(datasette)), ident, weeks, until, excerpts, _state(db))
        return Response.html(await _cached(key, render))
    except InputError as e:
        return _error_page(str(e), 404 if "no watched entity" in str(e) else 400)
    finally:
        db.conn.close()


def _compare_form(db, chosen: list[str], weeks: int) -> str:
    rows = list(db.query("select id, kind, name from entities order by kind = 'group' desc, kind, name"))
    boxes = "".join(
        f'<label style="display:inline-block;margin:.1rem 1rem .1rem 0"><input type="checkbox" name="ids" '
        f'value="{escape(r["id"])}"{" checked" if r["id"] in chosen else ""}> {escape(r["name"])} '
        f'<span class="note">({escape(r["kind"])})</span></label>' for r in rows)
    return (f'<form method="get" action="/-/compare" class="pick"><fieldset><legend>Compare two or more '
            f'entities (usually advocacy groups)</legend>{boxes}<p><label>Weeks <input type="number" name="weeks" '
            f'min="2" max="520" value="{weeks}"></label> <button type="submit">Compare</button></p></fieldset></form>')


async def compare_page(request, datasette):
    db_name, db = _open(datasette)
    try:
        excerpts = await _may_read_posts(datasette, request, db_name)
        ids = request.args.getlist("ids")
        try:
            weeks = _weeks(request, 26)
        except InputError as e:
            return _error_page(str(e), 400)
        form = _compare_form(db, ids, weeks)
        links = _links(datasette, db_name)
        links["form"] = form
        base = datasette.urls.database(db_name)

        until = request.args.get("until") or None

        def build():
            k = 0 if excerpts else _min_cell(db)
            c = compare.build(db, ids, weeks, until, min_cell=k)
            c.db_name = db_name
            if not excerpts:
                c = suppress.comparison(c, k)
            span = {"start": c.weeks[0], "end": rd.next_day(c.weeks[-1])}
            query = {"summary": "entity_period_summary", "reach": "entity_reach", "themes": "entity_theme_stances",
                     "co": "co_mentions", "alerts": "entity_alerts"}
            links["checks"] = lambda key, x: f"{base}/{query[key]}?{urlencode({'entity': x.entity.id, **span})}"
            return compare.render_html(c, links=links, excerpts=excerpts)

        if len(ids) < 2:
            body = ('<h1>Partner audit</h1><p>Pick two or more watched entities to see them side by side: how '
                    'patients speak of each, how sure we can be, and where the evidence is thin.</p>' + form)
            if ids:
                body += '<p class="error">Pick at least two entities.</p>'
            return Response.html(_shell("Partner audit", body, links["nav"]), status=400 if ids else 200)
        try:
            key = ("compare", str(database_path(datasette)), tuple(ids), weeks, until, excerpts, _state(db))
            return Response.html(await _cached(key, build))
        except InputError as e:
            return _error_page(str(e), 400)
    finally:
        db.conn.close()


def _shell(title: str, body: str, nav: list[tuple[str, str]]) -> str:
    """A page in the report's look (its template's head and style)."""
    env = report.template_env()
    return env.from_string('{% extends "_base.html" %}{% block title %}{{ title }}{% endblock %}{% block body %}'
                           '<nav class="top">{% for label, href in nav %}<a href="{{ href }}">{{ label }}</a>'
                           '{% endfor %}</nav>{{ body|safe }}{% endblock %}').render(title=title, body=body, nav=nav)


def dashboard(db, db_name: str, datasette, min_cell: int = 0) -> str:
    """The dashboard's body; with ``min_cell``, entities and weeks with fewer posts are
    withheld (the public view)."""
    model = rd.current_model(db)
    end = rd.last_week(db, model["id"])
    if end is None:
        raise InputError("no aggregates yet: run `trustwatch run` first")
    first = db.execute("select min(week) from entity_weekly where model = ?", [model["id"]]).fetchone()[0]
    import datetime as dt

    span = rd.week_range(end, (dt.date.fromisoformat(end) - dt.date.fromisoformat(first)).days // 7 + 1)
    recent = span[-13:]
    base = datasette.urls.database(db_name)
    entities = [rd.Entity(r["id"], r["kind"], r["name"], []) for r in db.query(
        "select id, kind, name from entities order by case kind when 'site' then 0 when 'group' then 1 "
        "when 'sponsor' then 2 when 'trial' then 3 else 4 end, name")]
    rows, by_kind = [], {}
    for e in entities:
        t = rd.totals(db, model["id"], e.id, recent, min_cell)
        weekly = {w: row for w, row in rd.weekly(db, model["id"], e.id, span).items() if row["posts"] >= min_cell}
        alerts = [a for a in rd.alerts_for(db, model["id"], [e.id], span[-26:]) if a["posts"] >= min_cell]
        rows.append((e, t, sum(w["posts"] for w in weekly.values()), len(alerts)))
        by_kind.setdefault(e.kind, {})[e.name] = report.rolling_share(span, report.weekly_counts(weekly, "negative"))
    out = [f'<h1>How patient communities see the watched organisations</h1><p class="meta">{len(span)} weeks of '
           f'data to the week of {report.day_text(end)} · tagger {escape(model["id"])} · '
           f'<a href="{base}/entity_overview">all figures as a table</a></p>',
           '<h2>Every watched entity</h2><p>Click a name for its trust report. The last 13 weeks:</p><table><thead><tr>'
           '<th>entity</th><th>kind</th><th class="num">posts, all weeks</th><th class="num">posts, last 13 weeks</th>'
           '<th>negative, last 13 weeks</th><th class="num">net</th><th class="num">alerts (26 weeks)</th><th></th>'
           '</tr></thead><tbody>']
    for e, t, total, n_alerts in rows:
        if t.posts < min_cell:
            figures = (f'<td class="num">{suppress.cell(total, min_cell) if total else "–"}</td>'
                       '<td class="num">–</td>'
                       f'<td colspan="2">withheld (no week with {min_cell} or more posts)</td>')
        else:
            figures = (f'<td class="num">{total}</td><td class="num">{t.posts}</td>'
                       f'<td>{escape(t.share("negative").text())}</td><td class="num">{t.net:+.2f}</td>')
        out.append(
            f'<tr><td><a href="/-/trust/{escape(e.id)}">{escape(e.name)}</a></td><td>{escape(e.kind)}</td>'
            f'{figures}<td class="num">{n_alerts}</td>'
            f'<td><a href="{base}/entity_trend?{urlencode({"entity": e.id})}">numbers</a></td></tr>')
    out.append("</tbody></table>")
    if min_cell:
        out.append(f'<p class="note">Public view: an entity\'s weeks with fewer than {min_cell} posts are left '
                   'out of every figure and chart, and any other figure drawn from fewer posts is withheld.</p>')
    labels = {"site": "Trial sites", "group": "Advocacy groups", "sponsor": "Sponsors", "trial": "Trials",
              "condition": "Conditions"}
    for kind in ("site", "group", "sponsor", "trial"):
        by_kind[kind] = {name: pts for name, pts in by_kind.get(kind, {}).items() if pts}
        if by_kind[kind]:
            caption = (f"{labels[kind]}: share of posts negative toward each, over the 4 weeks to each date "
                       f"(all {len(span)} weeks)")
            out.append(f'<h2>{labels[kind]}</h2><figure><figcaption>{escape(caption)}</figcaption>'
                       f'{charts.share_lines(span, by_kind[kind], caption, band=False)}</figure>'
                       f'<p class="note"><a href="{base}/weekly_by_kind?{urlencode({"kind": kind})}">The weekly '
                       f'numbers behind this chart</a></p>')
    alerts = rd.alerts_for(db, model["id"], [e.id for e in entities], span[-26:])
    alerts = suppress.public_alerts(alerts, min_cell) if min_cell else alerts
    out.append('<h2>Recent alerts</h2>')
    if not alerts:
        out.append("<p>No alerts in the last 26 weeks.</p>")
    for a in alerts[:12]:
        out.append(f'<div class="alert"><strong><a href="/-/trust/{escape(a["entity_id"])}">{escape(a["entity"])}'
                   f'</a>, week of {report.day_text(a["week"])}</strong>: {escape(a["message"])}.</div>')
    out.append(f'<p class="note"><a href="{base}/recent_alerts">All alerts as a table</a> · '
               '<a href="/-/compare">Compare advocacy groups</a></p>')
    return "".join(out)


async def dashboard_page(request, datasette):
    db_name, db = _open(datasette)
    try:
        k = 0 if await _may_read_posts(datasette, request, db_name) else _min_cell(db)
        links = _links(datasette, db_name)

        def render():
            return _shell("trustwatch dashboard", dashboard(db, db_name, datasette, k), links["nav"][1:])

        key = ("dashboard", str(database_path(datasette)), k, _state(db))
        return Response.html(await _cached(key, render))
    except InputError as e:
        return _error_page(str(e), 503)
    finally:
        db.conn.close()


@hookimpl
def register_routes():
    return [
        (r"^/-/trust/?$", dashboard_page),
        (r"^/-/trust/(?P<entity>[^/]+)$", entity_page),
        (r"^/-/compare/?$", compare_page),
    ]


@hookimpl
def startup(datasette):
    """Row pages count the rows of other tables that point at a row ("40 rows from
    entity_id in mentions"), whoever asks and whatever those tables' permissions: a total
    of mentions over every week, withheld ones included. The counts are dropped (Datasette
    asks for them through get_all_foreign_keys; links to a row's own references stay)."""
    for db in datasette.databases.values():
        if getattr(db, "_trustwatch_no_incoming", False):
            continue
        original = db.get_all_foreign_keys

        async def outgoing_only(original=original):
            keys = await original()
            return {table: dict(fks, incoming=[]) for table, fks in keys.items()}

        db.get_all_foreign_keys = outgoing_only
        db._trustwatch_no_incoming = True


@hookimpl
def extra_template_vars(template, datasette):
    if template != "index.html":
        return {}

    async def inner():
        try:
            database = datasette.get_database()
            rows = await database.execute(
                "select id, kind, name from entities order by case kind when 'site' then 0 when 'group' then 1 "
                "when 'sponsor' then 2 when 'trial' then 3 else 4 end, name")
            return {"trust_entities": [dict(r) for r in rows]}
        except sqlite3.Error:  # a database without trustwatch's schema: no list, the page still renders
            return {"trust_entities": []}

    return inner


# Failed researcher sign-ins (datasette-auth-passwords redisplays its form, status 200, on a
# wrong password and redirects on a right one), per client address: after LOGIN_FAILURES
# within LOGIN_WINDOW seconds, /-/login answers 429 with Retry-After until the oldest
# failure ages out. Each attempt counts as a failure before the password is checked, so
# guesses sent at once are counted too; it is taken back unless the form came back, and a
# right password does not wipe earlier failures (they age out), so an account cannot be
# used to reset the count between guesses at another. Password hashes are slow to check,
# but not slow enough to leave an unlimited guessing endpoint on the internet. Behind a
# reverse proxy every visitor shares the proxy's address, so the limit is then shared too.
LOGIN_FAILURES = 10
LOGIN_WINDOW = 15 * 60
LOGIN_ADDRESSES = 10_000  # addresses tracked; past this, expired ones are swept


@hookimpl
def asgi_wrapper(datasette):
    import time
    from collections import deque

    failures: dict[str, deque] = {}

    def sweep(now: float) -> None:
        for client in [c for c, seen in failures.items() if not seen or seen[-1] <= now - LOGIN_WINDOW]:
            del failures[client]
        while len(failures) >= LOGIN_ADDRESSES:  # all recent: forget the oldest-active first
            del failures[min(failures, key=lambda c: failures[c][-1])]

    def wrap(app):
        async def limited(scope, receive, send):
            if scope.get("type") != "http" or scope.get("method") != "POST" or \
                    not scope.get("path", "").endswith("/-/login"):  # also under base_url
                return await app(scope, receive, send)
            client = (scope.get("client") or ("unknown", 0))[0]
            now = time.monotonic()
            if client not in failures and len(failures) >= LOGIN_ADDRESSES:
                sweep(now)
            seen = failures.setdefault(client, deque())
            while seen and seen[0] <= now - LOGIN_WINDOW:
                seen.popleft()
            if len(seen) >= LOGIN_FAILURES:
                wait = int(seen[0] + LOGIN_WINDOW - now) + 1
                body = f"Too many failed sign-ins from this address; try again in {wait // 60 + 1} minutes.\n".encode()
                await send({"type": "http.response.start", "status": 429,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"retry-after", str(wait).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            seen.append(now)  # counted before the check: parallel guesses all count
            receive = await _even_out_unknown_users(datasette, receive)
            status = {}

            async def watch(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, watch)
            finally:
                if status.get("code") != 200:  # not the form again (signed in, or no check made)
                    try:
                        seen.remove(now)
                    except ValueError:
                        pass
                if not seen:
                    failures.pop(client, None)

        async def secured(scope, receive, send):
            if scope.get("type") != "http":
                return await limited(scope, receive, send)
            if scope.get("path", "").rstrip("/").endswith("/-/password-tool"):
                # The auth plugin's hashing page: anyone could make the server hash on its
                # event loop at will. `trustwatch hash-password` does the same offline.
                await send({"type": "http.response.start", "status": 404,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await send({"type": "http.response.body", "body": b"Not found: use `trustwatch hash-password`.\n"})
                return

            async def harden(message):
                if message["type"] == "http.response.start":
                    message = dict(message, headers=secure_headers(message.get("headers") or []))
                await send(message)

            await limited(scope, receive, harden)

        return secured

    return wrap


async def _even_out_unknown_users(datasette, receive):
    """The sign-in form checks a password only for a user it knows (a slow PBKDF2 hash), so
    a wrong password for a real account took far longer to refuse than one for a made-up
    name: the accounts could be found by timing. For a name it does not know, the same
    hash is worked out here (off the event loop) before the form answers. Returns a
    ``receive`` that hands the form's body on unchanged."""
    import asyncio
    import hashlib
    from urllib.parse import parse_qs

    messages, body = [], b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body") or len(body) > 65536:
            break
    user = (parse_qs(body.decode("utf-8", "replace")).get("username") or [""])[0]
    config = datasette.plugin_config("datasette-auth-passwords") or {}
    hashes = [v for k, v in config.items() if k.endswith("_password_hash") and isinstance(v, str)]
    if hashes and f"{user}_password_hash" not in config:
        try:
            _, rounds, salt, _ = hashes[0].split("$", 3)
            await asyncio.to_thread(hashlib.pbkdf2_hmac, "sha256", b"-", salt.encode(), int(rounds))
        except ValueError:
            pass

    async def replay():
        return messages.pop(0) if messages else await receive()

    return replay


# Sent with every response: no framing (clickjacking of the sign-in form), no content
# sniffing, no full URLs (with their query) in Referer headers to other sites.
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def secure_headers(headers) -> list:
    """The response's headers plus SECURITY_HEADERS (where it did not set them), and the
    sign-in cookie made HttpOnly: no script on a page can read it."""
    out = []
    for name, value in headers:
        name_l = bytes(name).lower()
        if name_l == b"set-cookie" and bytes(value).startswith(b"ds_actor=") and b"httponly" not in bytes(value).lower():
            value = bytes(value) + b"; HttpOnly"
        out.append((name, value))
    present = {bytes(n).lower() for n, _ in out}
    out += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
    return out
