"""All database access: schema, migrations, upserts, reads for tagging, run records.

SQLite through sqlite-utils, in WAL mode so Datasette can read while a run writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import sqlite_utils
from sqlite_utils import Migrations

from .alerts import public_message_sql
from .errors import InputError

migrations = Migrations("trustwatch")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["posts"].create(
        {
            "id": str, "source": str, "platform": str, "community": str, "url": str,
            "author": str, "created_at": str, "title": str, "text": str,
            "parent_id": str, "thread_id": str, "content_hash": str,
            "collected_at": str, "updated_at": str,
        },
        pk="id",
    )
    db["posts"].create_index(["created_at"])
    db["posts"].create_index(["source"])
    db["posts"].create_index(["thread_id"])
    db["posts"].enable_fts(["title", "text"], create_triggers=True, tokenize="porter")
    db["entities"].create(
        {"id": str, "kind": str, "name": str, "aliases": str, "partners": str}, pk="id"
    )
    db["models"].create(
        {"id": str, "name": str, "version": str, "encoder": str, "labels": str,
         "themes": str, "metrics": str, "first_used": str, "current": int},
        pk="id",
    )
    db["post_tags"].create(
        {
            "post_id": str, "model": str, "sentiment": str, "negative": float,
            "neutral": float, "positive": float, "themes": str,
            "content_hash": str, "watchlist_hash": str, "tagged_at": str,
        },
        pk=("post_id", "model"),
        foreign_keys=[("post_id", "posts", "id"), ("model", "models", "id")],
    )
    db["post_tags"].create_index(["model", "sentiment"])
    db["mentions"].create(
        {
            "post_id": str, "entity_id": str, "model": str, "start": int, "end": int,
            "surface": str, "sentiment": str, "negative": float, "neutral": float,
            "positive": float, "themes": str,
        },
        pk=("post_id", "model", "start"),
        foreign_keys=[("post_id", "posts", "id"), ("entity_id", "entities", "id")],
    )
    db["mentions"].create_index(["entity_id", "model"])
    db["runs"].create(
        {
            "id": int, "command": str, "started_at": str, "finished_at": str,
            "status": str, "posts_new": int, "posts_updated": int, "posts_tagged": int,
            "sources": str, "errors": str,
        },
        pk="id",
    )
    db["source_state"].create(
        {"source": str, "type": str, "state": str, "updated_at": str}, pk="source"
    )
    db["entity_weekly"].create(
        {
            "entity_id": str, "week": str, "model": str, "mentions": int, "posts": int,
            "negative": int, "neutral": int, "positive": int, "net_sentiment": float,
            "themes": str,
        },
        pk=("entity_id", "week", "model"),
    )


@migrations()
def m002_source_ref(db: sqlite_utils.Database) -> None:
    """What a collector needs to fetch an item again, for recheck."""
    db["posts"].add_column("source_ref", str)


@migrations()
def m003_sources(db: sqlite_utils.Database) -> None:
    """The configured sources, with the consent note of those that need one."""
    db["sources"].create({"name": str, "type": str, "consent": str, "updated_at": str}, pk="name")


_SHARES = {"negative_share": float, "negative_low": float, "negative_high": float,
           "positive_share": float, "positive_low": float, "positive_high": float}


@migrations()
def m004_incremental_aggregates(db: sqlite_utils.Database) -> None:
    """Daily aggregates, theme stances by week, Wilson intervals, alerts, and the dirty
    marks that let `aggregate` recompute only the weeks whose mentions changed."""
    for col, kind in {"authors": int, "communities": int, **_SHARES}.items():
        db["entity_weekly"].add_column(col, kind)
    db["entity_daily"].create(
        {"entity_id": str, "day": str, "model": str, "posts": int, "mentions": int, "authors": int,
         "communities": int, "negative": int, "neutral": int, "positive": int, "net_sentiment": float,
         **_SHARES, "themes": str},
        pk=("entity_id", "day", "model"),
    )
    db["entity_theme_weekly"].create(
        {"entity_id": str, "week": str, "model": str, "theme": str, "posts": int, "builds": int,
         "erodes": int, "erodes_share": float, "erodes_low": float, "erodes_high": float},
        pk=("entity_id", "week", "model", "theme"),
    )
    db["alerts"].create(
        {"id": str, "entity_id": str, "model": str, "week": str, "metric": str, "theme": str,
         "posts": int, "count": int, "share": float, "share_low": float, "share_high": float,
         "baseline_posts": int, "baseline_count": int, "baseline_share": float, "z": float,
         "message": str, "rules": str, "first_seen": str},
        pk="id",
    )
    db["alerts"].create_index(["entity_id", "model", "week"])
    db["agg_dirty"].create({"model": str, "day": str}, pk=("model", "day"))
    for event, row in (("insert", "new"), ("delete", "old")):
        db.execute(f"""
create trigger if not exists mentions_mark_{event} after {event} on mentions begin
  insert or ignore into agg_dirty (model, day)
  values ({row}.model, (select substr(created_at, 1, 10) from posts where id = {row}.post_id));
end""")
    db.execute("insert or ignore into agg_dirty (model, day) select distinct m.model, substr(p.created_at, 1, 10) "
               "from mentions m join posts p on p.id = m.post_id")


@migrations()
def m005_publish_settings(db: sqlite_utils.Database) -> None:
    """What anonymous views withhold: `serve` writes min_cell from [publish]."""
    db["publish_settings"].create({"id": int, "min_cell": int}, pk="id")
    db["publish_settings"].insert({"id": 1, "min_cell": 5})


@migrations()
def m006_watchlist_state(db: sqlite_utils.Database) -> None:
    """The watchlist that the entities table, and so the stored mentions, reflect."""
    db["watchlist_state"].create({"id": int, "hash": str, "synced_at": str}, pk="id")


@migrations()
def m007_unescape_reddit(db: sqlite_utils.Database) -> None:
    """Reddit escapes &, < and > in titles and bodies; collectors before this version stored
    them escaped. Undo it once for stored Reddit posts (their tags follow the new content
    hash); collectors undo it as they collect from now on."""
    from collectors.text import reddit_text

    rows = db.execute("select id, title, text from posts where platform in ('reddit', 'reddit-dump') "
                      "and (title like '%&%' or text like '%&%')").fetchall()
    for post_id, title, text in rows:
        new_title, new_text = reddit_text(title or ""), reddit_text(text or "")
        if (new_title, new_text) != (title or "", text or ""):
            db.execute("update posts set title = ?, text = ?, content_hash = ? where id = ?",
                       [new_title, new_text, content_hash(new_title, new_text), post_id])


def synced_watchlist(db: sqlite_utils.Database) -> str | None:
    """The hash of the watchlist sync_entities last wrote (None before the first)."""
    row = db.execute("select hash from watchlist_state where id = 1").fetchone()
    return row[0] if row else None


# The threshold as a one-row table joined once per query (not a subquery per cell).
_THRESHOLD = "(select coalesce(max(min_cell), 5) as k from publish_settings) threshold"

# What anonymous visitors of the served Datasette see: aggregates of the current model,
# with every count drawn from fewer than min_cell posts withheld (NULL, suppressed = 1).
PUBLIC_VIEWS = {
    "public_entity_weekly": f"""
select w.entity_id, e.name as entity, e.kind, w.week,
       w.posts < threshold.k as suppressed,
       case when w.posts >= threshold.k then w.posts end as posts,
       case when w.posts >= threshold.k then w.negative end as negative,
       case when w.posts >= threshold.k then w.neutral end as neutral,
       case when w.posts >= threshold.k then w.positive end as positive,
       case when w.posts >= threshold.k then w.negative_share end as negative_share,
       case when w.posts >= threshold.k then w.negative_low end as negative_low,
       case when w.posts >= threshold.k then w.negative_high end as negative_high,
       case when w.posts >= threshold.k then w.positive_share end as positive_share,
       case when w.posts >= threshold.k then w.positive_low end as positive_low,
       case when w.posts >= threshold.k then w.positive_high end as positive_high,
       case when w.posts >= threshold.k then w.net_sentiment end as net_sentiment,
       case when w.posts >= threshold.k and w.authors >= threshold.k then w.authors end as authors,
       case when w.posts >= threshold.k then w.communities end as communities
from entity_weekly w join entities e on e.id = w.entity_id, {_THRESHOLD}
where w.model = (select id from models where current = 1)
order by w.entity_id, w.week""",
    "public_entity_themes": f"""
select t.entity_id, e.name as entity, t.week, t.theme,
       t.posts < threshold.k as suppressed,
       case when t.posts >= threshold.k then t.posts end as posts,
       case when t.posts >= threshold.k and (t.builds = 0 or t.builds >= threshold.k) then t.builds end as builds,
       case when t.posts >= threshold.k and (t.erodes = 0 or t.erodes >= threshold.k) then t.erodes end as erodes,
       case when t.posts >= threshold.k and (t.erodes = 0 or t.erodes >= threshold.k) then t.erodes_share end as erodes_share,
       case when t.posts >= threshold.k and (t.erodes = 0 or t.erodes >= threshold.k) then t.erodes_low end as erodes_low,
       case when t.posts >= threshold.k and (t.erodes = 0 or t.erodes >= threshold.k) then t.erodes_high end as erodes_high
from entity_theme_weekly t join entities e on e.id = t.entity_id, {_THRESHOLD}
where t.model = (select id from models where current = 1)
order by t.entity_id, t.week, t.theme""",
    # This week's figures of an alert are published (its week has at least k posts), but
    # not a theme count below k, nor anything of the baseline weeks: their totals, less
    # the published weeks among them, would give the withheld weeks away. Nor z: with this
    # week's counts it can be solved for the baseline's. Nor first_seen: the run that first
    # raised an alert could date the posts that tipped it.
    "public_alerts": f"""
select week, entity_id, entity, metric, message, posts,
       case when shown then count end as count, case when shown then share end as share,
       case when shown then share_low end as share_low, case when shown then share_high end as share_high
from (
  select a.week, a.entity_id, e.name as entity, a.metric, {public_message_sql("a")} as message, a.posts,
         a.count, a.share, a.share_low, a.share_high, a.z,
         (a.metric not like 'erodes:%' or a.count = 0 or a.count >= threshold.k) as shown
  from alerts a join entities e on e.id = a.entity_id, {_THRESHOLD}
  where a.model = (select id from models where current = 1) and a.posts >= threshold.k
)
order by week desc, z desc""",
}

VIEWS = {
    "entity_weekly_sentiment": """
select w.entity_id, e.name as entity, e.kind, w.week, w.posts, w.mentions, w.authors, w.communities,
       w.negative, w.neutral, w.positive,
       w.negative_share, w.negative_low, w.negative_high,
       w.positive_share, w.positive_low, w.positive_high,
       w.net_sentiment, w.themes, w.model
from entity_weekly w join entities e on e.id = w.entity_id
where w.model = (select id from models where current = 1)
order by w.entity_id, w.week""",
}


def now(minus_days: float = 0) -> str:
    """UTC time as stored in the database ('2026-03-01T12:00:00Z'), optionally some days ago."""
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=minus_days)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: Path | str) -> sqlite_utils.Database:
    path = Path(path)
    if not path.parent.exists():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    import sqlite3

    try:
        conn = sqlite3.connect(str(path), timeout=30)
        db = sqlite_utils.Database(conn)
        db.execute("pragma busy_timeout = 30000")
        db.enable_wal()
        # In WAL mode, NORMAL syncs at checkpoints, not at every commit: a power cut can
        # lose the last commits (each step repeats what they did), never corrupt the file.
        db.execute("pragma synchronous = normal")
        migrations.apply(db)
        for name, sql in {**VIEWS, **PUBLIC_VIEWS}.items():
            db.create_view(name, sql.strip(), replace=True)
    except sqlite3.DatabaseError as e:
        raise InputError(f"{path}: not a usable SQLite database ({e})")
    return db


def is_trustwatch_db(path: Path | str) -> bool:
    """Whether ``path`` is a database trustwatch made (it has a posts table and a migration
    log), checked read-only: commands that only read must not turn another SQLite file, or
    an empty one, into a trustwatch database."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)  # as_uri: "?" or "#" in a name
        try:
            names = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False
    return {"posts", "_sqlite_migrations"} <= names


def writer_connection(db: sqlite_utils.Database) -> sqlite_utils.Database | None:
    """A second connection to the file behind ``db``, for a thread that only writes
    (WAL lets it commit while ``db`` reads); None for an in-memory database."""
    import sqlite3

    path = next((row[2] for row in db.execute("pragma database_list") if row[1] == "main"), "")
    if not path:
        return None
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("pragma synchronous = normal")
    return sqlite_utils.Database(conn)


def set_min_cell(db: sqlite_utils.Database, min_cell: int) -> None:
    """The threshold the public views apply (from [publish] min_cell)."""
    with db.atomic():
        db["publish_settings"].upsert({"id": 1, "min_cell": min_cell}, pk="id")


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\x00{text}".encode("utf-8")).hexdigest()[:16]


_POST_COLUMNS = ("id", "source", "platform", "community", "url", "author", "created_at", "title", "text",
                 "parent_id", "thread_id", "source_ref")


def save_posts(db: sqlite_utils.Database, posts: list, keep_after: str | None = None) -> tuple[int, int]:
    """Upsert posts; returns (new, updated). An unchanged post is not written at all;
    posts created before ``keep_after`` (retention) are not stored."""
    if keep_after:
        posts = [p for p in posts if p.created_at >= keep_after]
    if not posts:
        return 0, 0
    rows = {}
    for p in posts:
        row = {name: getattr(p, name) for name in _POST_COLUMNS}  # flat: cheaper than asdict
        row["content_hash"] = content_hash(row["title"], row["text"])
        rows[row["id"]] = row  # the same item twice in one batch: one row
    existing = {
        r[0]: r[1]
        for r in db.execute(
            f"select id, content_hash from posts where id in ({','.join('?' * len(rows))})",
            list(rows),
        ).fetchall()
    }
    stamp = now()
    new, changed = [], []
    for ident, row in rows.items():
        if ident not in existing:
            row["collected_at"] = row["updated_at"] = stamp
            new.append(row)
        elif existing[ident] != row["content_hash"]:
            row["updated_at"] = stamp
            changed.append(row)
    with db.atomic():
        if new:
            cols = list(new[0])
            db.conn.executemany(f"insert into posts ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                                [tuple(r[c] for c in cols) for r in new])
        if changed:
            db["posts"].upsert_all(changed, pk="id")
    return len(new), len(changed)


def delete_posts(db: sqlite_utils.Database, ids: list[str]) -> int:
    """Remove posts everywhere: tags, mentions, the post row and (by trigger) full-text search."""
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    with db.atomic():
        db.execute(f"delete from mentions where post_id in ({marks})", ids)
        db.execute(f"delete from post_tags where post_id in ({marks})", ids)
        n = db.execute(f"delete from posts where id in ({marks})", ids).rowcount
    return n


def purge_communities(db: sqlite_utils.Database, communities: list[str]) -> int:
    """Remove every post of communities that opted out (case-insensitive names)."""
    if not communities:
        return 0
    marks = ",".join("?" * len(communities))
    ids = [r[0] for r in db.execute(f"select id from posts where lower(community) in ({marks})", communities)]
    return delete_posts(db, ids)


def purge_text_before(db: sqlite_utils.Database, cutoff: str) -> int:
    """Blank the title and text of posts created before cutoff (ISO date). Their tags,
    mentions and the aggregates stay; the content hash stays too, so they are not
    re-tagged from the blank text."""
    with db.atomic():
        return db.execute(
            "update posts set title = '', text = '', updated_at = ? where created_at < ? and (text != '' or title != '')",
            [now(), cutoff]).rowcount


def update_texts(db: sqlite_utils.Database, texts: dict[str, str]) -> int:
    """New text for edited posts; their changed content hash makes `tag` re-tag them."""
    changed = 0
    stamp = now()
    with db.atomic():
        for ident, text in texts.items():
            row = db.execute("select title, content_hash from posts where id = ?", [ident]).fetchone()
            if row is None:
                continue
            h = content_hash(row[0], text)
            if h != row[1]:
                db["posts"].update(ident, {"text": text, "content_hash": h, "updated_at": stamp})
                changed += 1
    return changed


def stored_refs(db: sqlite_utils.Database, source: str, batch: int = 100) -> Iterator[list[tuple[str, str]]]:
    """(post id, source_ref) of one source's stored posts, in batches."""
    last = 0
    while True:
        rows = db.execute(
            "select rowid, id, source_ref from posts where source = ? and rowid > ? and source_ref is not null "
            "order by rowid limit ?", [source, last, batch]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [(r[1], r[2]) for r in rows]


def sync_entities(db: sqlite_utils.Database, entities: Iterable) -> None:
    """The entities table mirrors the watchlist; mentions of removed entities go too.
    Records the watchlist's hash (synced_watchlist)."""
    entities = list(entities)
    rows = [
        {
            "id": e.id, "kind": e.kind, "name": e.name,
            "aliases": json.dumps(list(e.aliases)), "partners": json.dumps(list(e.partners)),
        }
        for e in entities
    ]
    ids = [r["id"] for r in rows]
    with db.atomic():
        if rows:
            db["entities"].upsert_all(rows, pk="id")
        marks = ",".join("?" * len(ids))
        where = f"where entity_id not in ({marks})" if ids else ""
        db.execute(f"delete from mentions {where}", ids)
        for table in ("entity_weekly", "entity_daily", "entity_theme_weekly", "alerts"):
            db.execute(f"delete from {table} {where}", ids)
        db.execute(f"delete from entities where id not in ({marks})" if ids else "delete from entities", ids)
        db["watchlist_state"].upsert({"id": 1, "hash": watchlist_hash(entities), "synced_at": now()}, pk="id")


def sync_sources(db: sqlite_utils.Database, sources: Iterable) -> None:
    """The sources table mirrors the config's [[source]] tables (posts keep their source)."""
    rows = [{"name": s.name, "type": s.type, "consent": s.options.get("consent"), "updated_at": now()}
            for s in sources]
    with db.atomic():
        if rows:
            db["sources"].upsert_all(rows, pk="name")
        names = [r["name"] for r in rows]
        db.execute(f"delete from sources where name not in ({','.join('?' * len(names))})" if names
                   else "delete from sources", names)


def watchlist_hash(entities: Iterable) -> str:
    """The stamp of what finds mentions: the watchlist and the matcher's rules."""
    from models.mentions import MATCHER_RULES

    key = json.dumps(
        [MATCHER_RULES, sorted([e.id, e.kind, e.name, sorted(e.aliases)] for e in entities)], sort_keys=True
    )
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def register_model(db: sqlite_utils.Database, info: dict) -> None:
    """Record the model and make it the current one (what views and reports show)."""
    with db.atomic():
        if not db["models"].count_where("id = ?", [info["id"]]):
            _insert_model(db, info)
        db.execute("update models set current = (id = ?)", [info["id"]])


def _insert_model(db: sqlite_utils.Database, info: dict) -> None:
    db["models"].insert(
        {
            "id": info["id"], "name": info["name"], "version": info["version"],
            "encoder": info.get("encoder", ""),
            "labels": json.dumps(info.get("sentiment_labels", [])),
            "themes": json.dumps(info.get("themes", [])),
            "metrics": json.dumps(info.get("metrics", {})),
            "first_used": now(),
            "current": 0,
        },
        pk="id",
    )


# Posts that need tagging by :model: never tagged by it, or their text or the watchlist
# (:wl) changed since. Posts whose text retention blanked keep the tags they have.
_TO_TAG = """
from posts p left join post_tags t on t.post_id = p.id and t.model = :model
where (t.post_id is null or t.content_hash != p.content_hash or t.watchlist_hash != :wl)
  and not (t.post_id is not null and p.title = '' and p.text = '')"""


def posts_to_tag(
    db: sqlite_utils.Database, model: str, wl_hash: str, batch: int = 256
) -> Iterator[list[dict]]:
    """Posts with no tag from this model for their current text and watchlist, streamed
    in batches (keyset pagination: memory stays bounded however large the table)."""
    last = 0
    sql = f"select p.rowid as rid, p.id, p.title, p.text, p.content_hash {_TO_TAG} and p.rowid > :last order by p.rowid limit :batch"
    while True:
        rows = [dict(r) for r in db.query(sql, {"model": model, "last": last, "wl": wl_hash, "batch": batch})]
        if not rows:
            return
        last = rows[-1]["rid"]
        yield rows


def count_to_tag(db: sqlite_utils.Database, model: str, wl_hash: str) -> int:
    """How many posts posts_to_tag will yield."""
    return db.execute(f"select count(*) {_TO_TAG}", {"model": model, "wl": wl_hash}).fetchone()[0]


_TAG_COLUMNS = ("post_id", "model", "sentiment", "negative", "neutral", "positive", "themes",
                "content_hash", "watchlist_hash", "tagged_at")
_MENTION_COLUMNS = ("post_id", "entity_id", "model", "start", "end", "surface", "sentiment",
                    "negative", "neutral", "positive", "themes")
_SAVE_TAG = (
    f"insert into post_tags ({', '.join(f'[{c}]' for c in _TAG_COLUMNS)}) values ({', '.join('?' * len(_TAG_COLUMNS))}) "
    "on conflict (post_id, model) do update set "
    + ", ".join(f"[{c}] = excluded.[{c}]" for c in _TAG_COLUMNS[2:])
)
_SAVE_MENTION = (
    f"insert into mentions ({', '.join(f'[{c}]' for c in _MENTION_COLUMNS)}) "
    f"values ({', '.join('?' * len(_MENTION_COLUMNS))})"
)


def tag_rows(model: str, wl_hash: str, rows: list[dict], tags: list) -> TagRows:
    """The rows :func:`write_tags` stores for one batch of posts (``rows`` with id and
    content_hash) and their PostTags: plain tuples, made wherever the tags were (on a GPU,
    in tag's worker processes), so the process that writes only writes."""
    stamp = now()
    tag_rows, mention_rows = [], []
    for row, tag in zip(rows, tags):
        sc = tag.scores
        tag_rows.append((row["id"], model, tag.sentiment, sc["negative"], sc["neutral"], sc["positive"],
                         json.dumps(tag.themes, sort_keys=True), row["content_hash"], wl_hash, stamp))
        for m in tag.mentions:
            ms = m.scores
            mention_rows.append((row["id"], m.entity, model, m.start, m.end, m.surface, m.sentiment,
                                 ms["negative"], ms["neutral"], ms["positive"], json.dumps(m.themes, sort_keys=True)))
    return TagRows([r["id"] for r in rows], tag_rows, mention_rows)


@dataclass
class TagRows:
    post_ids: list[str]
    tags: list[tuple]
    mentions: list[tuple]


def write_tags(db: sqlite_utils.Database, model: str, rows: TagRows) -> None:
    """Store one batch of :func:`tag_rows` in one transaction, replacing this model's
    earlier tags and mentions for these posts. Plain executemany with fixed column lists:
    on a GPU the tagger outruns sqlite-utils' per-row dict handling."""
    with db.atomic():
        db.execute(
            f"delete from mentions where model = ? and post_id in ({','.join('?' * len(rows.post_ids))})",
            [model, *rows.post_ids],
        )
        db.conn.executemany(_SAVE_TAG, rows.tags)
        if rows.mentions:
            db.conn.executemany(_SAVE_MENTION, rows.mentions)


def load_state(db: sqlite_utils.Database, source: str) -> dict:
    row = db.execute("select state from source_state where source = ?", [source]).fetchone()
    return json.loads(row[0]) if row else {}


def save_state(db: sqlite_utils.Database, source: str, stype: str, state: dict) -> None:
    db["source_state"].upsert(
        {"source": source, "type": stype, "state": json.dumps(state, sort_keys=True), "updated_at": now()},
        pk="source",
    )


def start_run(db: sqlite_utils.Database, command: str) -> int:
    """Record a new run. Called under the run lock, so any run still marked 'running' was
    killed before it could finish: it is marked 'interrupted'."""
    with db.atomic():
        db.execute("update runs set status = 'interrupted' where status = 'running'")
        return db["runs"].insert(
            {"command": command, "started_at": now(), "status": "running"}, pk="id"
        ).last_pk


def finish_run(db: sqlite_utils.Database, run_id: int, **fields) -> None:
    for key in ("sources", "errors"):
        if key in fields and not isinstance(fields[key], str):
            fields[key] = json.dumps(fields[key], sort_keys=True)
    with db.atomic():
        db["runs"].update(run_id, {"finished_at": now(), **fields})
