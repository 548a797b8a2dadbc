"""Bad input from APIs (issue #6): items missing fields, fields of the wrong type, null where
a string is expected, garbage timestamps, nested objects replaced by strings, lists or
numbers. Each item becomes a Post, is skipped, or is a BadItem the run counts; never a
traceback. A whole response of the wrong shape fails its source in one line, and the other
sources are still collected.

Payloads start from the shapes the collector tests use (tests/collectors, tests/test_*_source.py)
and are mutated by hypothesis: any subset of keys deleted, any value, nested ones included,
replaced. Fictional data throughout."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import (BadItem, DiscordCollector, DiscourseCollector, MastodonCollector, PoliteClient, Post,
                        RedditCollector, RedditDumpCollector, SourceFailed)
from collectors.base import iso_utc
from conftest import FIXTURES, query, write_config
from fakes import loopback_server
from monitor.cli import cli

PROPERTY = settings(max_examples=150, deadline=None)

# --- mutations ----------------------------------------------------------------------------

BAD_DATES = ["", " ", "yesterday", "2026-13-45T99:99:99Z", "0000-00-00T00:00:00Z", "2026-05-01",
             "2026-05-01T10:00:00", "2026-05-01T10:00:00+14:00", "0001-01-01T00:00:00+05:00",
             "9999-12-31T23:59:59-05:00", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "1778000000", "NaN", "-1e400"]
LONG = "long " * 20_000
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(BAD_DATES + [LONG, "\ud83d", "<p>x</p><script>q()</script>", "[deleted]", "0", "-1", "public"]),
)

NOT_OBJECTS = SCALARS | st.lists(SCALARS, max_size=2)  # where a list should hold objects


@functools.lru_cache
def values(keys: tuple[str, ...]) -> st.SearchStrategy:
    """Any JSON-like value; nested objects use the payload's own keys, so that a replaced
    ``account`` can be ``{"acct": 5}``. (Cached: building a strategy costs more than drawing.)"""
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=3),
                        max_leaves=6)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _keys(value) -> tuple[str, ...]:
    return tuple(sorted({p[-1] for p in _paths(value) if p and isinstance(p[-1], str)}))


def mutate(data: st.DataObject, payload, max_changes: int = 4):
    """A copy of payload with some of its top-level keys deleted, then up to max_changes
    values anywhere in it deleted or replaced."""
    tree = copy.deepcopy(payload)
    new_values = values(_keys(payload))
    if isinstance(tree, dict) and tree:
        for k in data.draw(st.sets(st.sampled_from(sorted(tree, key=str))), label="delete keys"):
            del tree[k]
    for _ in range(data.draw(st.integers(0, max_changes), label="changes")):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(new_values, label="value")
    return tree


ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def assert_usable(post: Post) -> None:
    """What storage, the pseudonymiser and the tagger take: real strings, an ISO UTC time."""
    assert isinstance(post, Post)
    for name in ("id", "source", "platform", "community", "created_at", "title", "text"):
        assert type(getattr(post, name)) is str, (name, getattr(post, name))
    for name in ("url", "author", "parent_id", "thread_id", "source_ref"):
        value = getattr(post, name)
        assert value is None or type(value) is str, (name, value)
    assert ISO_UTC.fullmatch(post.created_at), post.created_at
    dt.datetime.strptime(post.created_at, "%Y-%m-%dT%H:%M:%SZ")
    for value in vars(post).values():
        if isinstance(value, str):
            value.encode("utf-8")


def post_or_skip(collector, raw) -> Post | None:
    """to_post returns a usable Post, returns None, or raises BadItem; nothing else."""
    try:
        post = collector.to_post(raw)
    except BadItem:  # counted by the pipeline, never printed
        return None
    if post is not None:
        assert_usable(post)
    return post


def quiet_client(handler) -> PoliteClient:
    return PoliteClient(httpx.Client(transport=httpx.MockTransport(handler)), min_interval=0, sleep=lambda s: None)


def no_network(request):
    raise AssertionError(f"to_post made a request: {request.url}")


def collect_like_the_pipeline(collector, state: dict | None = None) -> list[Post]:
    """fetch + to_post as monitor.pipeline does them: BadItem counted and skipped."""
    posts = []
    for raw in collector.fetch({} if state is None else state):
        try:
            post = collector.to_post(raw)
        except BadItem:
            collector.counts["bad_items"] += 1
            continue
        if post is not None:
            assert_usable(post)
            posts.append(post)
    return posts


# --- realistic payloads (the shapes of tests/fakes.py and the source tests) -----------------

def discourse_post(tid: int, n: int) -> dict:
    return {"id": tid * 1000 + n, "post_number": n, "username": f"fict_user_{n}",
            "created_at": f"2026-05-01T{n % 24:02d}:00:00.000Z", "cooked": f"<p>Post {n} of topic {tid}</p>",
            "reply_to_post_number": n - 1 if n > 1 else None, "deleted_at": None, "hidden": False,
            "user_deleted": False}


def discourse_topic(tid: int, posts: list) -> dict:
    return {"id": tid, "title": "Travel grants at Lakeshore?", "slug": "travel-grants", "category_id": 5,
            "bumped_at": "2026-05-02T10:00:00Z",
            "post_stream": {"posts": posts, "stream": [p["id"] for p in posts if isinstance(p, dict) and "id" in p]}}


DISCOURSE_RAW = {"post": discourse_post(12, 2), "topic": discourse_topic(12, [discourse_post(12, 1)]),
                 "first_id": 12001, "numbers": {1: 12001, 2: 12002}}


def mastodon_status(i: int, visibility: str = "public") -> dict:
    return {"id": str(i), "uri": f"https://mastodon.example/users/fict{i}/statuses/{i}",
            "url": f"https://mastodon.example/@fict{i}/{i}", "created_at": f"2026-05-0{1 + i % 9}T10:00:00.000Z",
            "content": f"<p>Status {i} about <a href='#'>#ALS</a> trials</p>", "spoiler_text": "",
            "visibility": visibility, "account": {"acct": f"fict{i}@mastodon.example"}}


def discord_message(mid: int, cid: str = "111", content: str = "message about Lakeshore <@55>", ref=None) -> dict:
    m = {"id": str(mid), "channel_id": cid, "content": content, "type": 0,
         "timestamp": f"2026-05-01T10:{mid % 60:02d}:00.000000+00:00",
         "author": {"id": "7001", "username": "fict7001", "bot": False}, "_channel_name": "trial-talk"}
    if ref:
        m["message_reference"] = {"message_id": str(ref)}
    return m


DUMP_SUBMISSION = json.loads((FIXTURES / "dump.ndjson").read_text(encoding="utf-8").splitlines()[1])
DUMP_COMMENT = {"id": "fx0c01", "name": "t1_fx0c01", "subreddit": "ALS", "author": "fict_user_c01",
                "created_utc": 1772874000, "body": "Lakeshore CRI was kind to us.", "link_id": "t3_fx0001",
                "parent_id": "t3_fx0001", "permalink": "/r/ALS/comments/fx0001/x/fx0c01/"}

REDDIT_SUBMISSION = {"id": "s1", "name": "t3_s1", "title": "Post about Lakeshore", "selftext": "the visit went fine",
                     "author": "fict_poster", "created_utc": 1778000000, "subreddit": "ALS",
                     "permalink": "/r/ALS/comments/s1/p/", "url": "https://www.reddit.com/r/ALS/comments/s1/p/",
                     "num_comments": 1, "is_self": True}
REDDIT_COMMENT = {"id": "c1", "name": "t1_c1", "body": "The nurses at Lakeshore were kind.", "author": "fict_c1",
                  "created_utc": 1778000060, "link_id": "t3_s1", "parent_id": "t3_s1", "subreddit": "ALS",
                  "replies": "", "permalink": "/r/ALS/comments/s1/p/c1/", "depth": 0}


def discourse() -> DiscourseCollector:
    c = DiscourseCollector("cf-forum", "https://forum.example.org", quiet_client(no_network))
    c._category_names = {5: "Lupus trials"}
    return c


def praw_reddit():
    """A dummy praw.Reddit that never reaches the network, as praw's own unit tests build it."""
    import praw

    return praw.Reddit(client_id="dummy", client_secret="dummy", user_agent="trustwatch tests",
                       check_for_updates=False)


def praw_thing(reddit, kind: str, data: dict):
    """A praw Submission or Comment built from (mutated) API data, as praw builds it from a
    listing; None where praw itself refuses the data (its own checks, before trustwatch)."""
    from praw.models import Comment, Submission

    try:
        thing = (Submission if kind == "submission" else Comment)(reddit, _data=data)
    except (AttributeError, TypeError, ValueError):
        return None
    thing._fetched = True  # a missing attribute is an AttributeError, not a request
    return thing


_REDDIT = praw_reddit()


def test_the_unmutated_payloads_are_posts():
    assert post_or_skip(discourse(), DISCOURSE_RAW).id == "discourse:forum.example.org:12002"
    assert post_or_skip(MastodonCollector("m", "https://mastodon.example", ["ALS"], quiet_client(no_network)),
                        mastodon_status(7)).created_at == "2026-05-08T10:00:00Z"
    assert post_or_skip(DiscordCollector("d", quiet_client(no_network)), discord_message(1005)).id == "discord:1005"
    dump = RedditDumpCollector("d", FIXTURES / "dump.ndjson")
    assert post_or_skip(dump, DUMP_SUBMISSION).id == "reddit:t3_fx0001"
    assert post_or_skip(dump, DUMP_COMMENT).parent_id == "reddit:t3_fx0001"
    r = RedditCollector("r", _REDDIT, ["ALS"])
    assert post_or_skip(r, ("submission", praw_thing(_REDDIT, "submission", REDDIT_SUBMISSION))).id == "reddit:t3_s1"
    assert post_or_skip(r, ("comment", praw_thing(_REDDIT, "comment", REDDIT_COMMENT))).thread_id == "reddit:t3_s1"


# --- to_post on mutated items -------------------------------------------------------------

@PROPERTY
@given(st.data())
def test_discourse_post_is_a_post_a_skip_or_a_bad_item(data):
    post_or_skip(discourse(), mutate(data, DISCOURSE_RAW))


@PROPERTY
@given(st.data())
def test_mastodon_status_is_a_post_a_skip_or_a_bad_item(data):
    c = MastodonCollector("fedi", "https://mastodon.example", ["ALS"], quiet_client(no_network))
    post_or_skip(c, mutate(data, mastodon_status(7)))


@settings(PROPERTY, report_multiple_bugs=False)
@given(st.data())
def test_discord_message_is_a_post_a_skip_or_a_bad_item(data):
    c = DiscordCollector("mg-discord", quiet_client(no_network))
    post_or_skip(c, mutate(data, discord_message(1005, ref=1001)))


@PROPERTY
@given(st.data(), st.booleans())
def test_reddit_dump_item_is_a_post_a_skip_or_a_bad_item(data, comment):
    c = RedditDumpCollector("d", FIXTURES / "dump.ndjson")
    post_or_skip(c, mutate(data, DUMP_COMMENT if comment else DUMP_SUBMISSION))


@PROPERTY
@given(st.data(), st.booleans())
def test_reddit_praw_item_is_a_post_a_skip_or_a_bad_item(data, comment):
    kind, payload = ("comment", REDDIT_COMMENT) if comment else ("submission", REDDIT_SUBMISSION)
    thing = praw_thing(_REDDIT, kind, mutate(data, payload))
    if thing is not None:
        post_or_skip(RedditCollector("r", _REDDIT, ["ALS"]), (kind, thing))



# --- fetch over responses with mutated items ---------------------------------------------

def json_response(body) -> httpx.Response:
    """JSON as a server may send it: lone surrogates escaped, NaN and Infinity written out
    (Python's json, which httpx uses, reads both back)."""
    return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def forum_handler(listing, topic: dict | None = None, categories=None):
    """A Discourse forum of one listing page and one topic, every post in the topic JSON."""

    def handler(request):
        path = request.url.path
        if path == "/robots.txt":
            return httpx.Response(404)
        if path == "/categories.json":
            return json_response(categories if categories is not None else
                                 {"category_list": {"categories": [{"id": 5, "name": "Lupus trials"}]}})
        if path == "/latest.json":
            return json_response(listing)
        if topic is not None and path == f"/t/{topic.get('id')}.json":
            return json_response(topic)
        if re.fullmatch(r"/t/\d+/posts\.json", path):
            return json_response({"post_stream": {"posts": []}})
        return httpx.Response(404)

    return handler


@PROPERTY
@given(st.data())
def test_discourse_topic_with_broken_posts_keeps_the_good_ones(data):
    posts = [discourse_post(12, n) for n in range(1, 7)]
    broken = data.draw(st.sets(st.integers(0, 5), min_size=1), label="broken posts")
    mutated = [mutate(data, p, max_changes=2) if i in broken else p for i, p in enumerate(posts)]
    if data.draw(st.booleans(), label="add non-objects"):
        mutated += data.draw(st.lists(NOT_OBJECTS, min_size=1, max_size=3), label="non-objects")
    topic = discourse_topic(12, mutated)
    listing = {"topic_list": {"topics": [{"id": 12, "title": "t", "bumped_at": "2026-05-02T10:00:00Z"}]}}
    c = DiscourseCollector("cf-forum", "https://forum.example.org", quiet_client(forum_handler(listing, topic)))
    collected = collect_like_the_pipeline(c)
    ids = {p.id for p in collected}
    for i, p in enumerate(posts):
        if i not in broken:
            assert f"discourse:forum.example.org:{p['id']}" in ids
    # every entry of the post list is accounted for exactly once
    assert len(collected) + c.counts["bad_items"] + c.counts["deleted"] == len(mutated)


@PROPERTY
@given(st.data())
def test_discourse_listing_and_categories_with_broken_entries(data):
    """Broken topic entries are counted; a listing whose shape is wrong fails the source in one line."""
    topics = [{"id": 12, "title": "t", "bumped_at": "2026-05-02T10:00:00Z", "pinned": False}, {"id": 13, "title": "u"}]
    listing = mutate(data, {"topic_list": {"topics": topics, "more_topics_url": None}})
    categories = mutate(data, {"category_list": {"categories": [{"id": 5, "name": "Lupus trials"}, {"id": 6, "name": "x"}]}})
    topic = discourse_topic(12, [discourse_post(12, 1), discourse_post(12, 2)])
    c = DiscourseCollector("cf-forum", "https://forum.example.org", quiet_client(forum_handler(listing, topic, categories)))
    try:
        collect_like_the_pipeline(c)
    except SourceFailed as e:
        assert "\n" not in str(e)


@PROPERTY
@given(st.data())
def test_mastodon_page_with_broken_statuses_keeps_the_good_ones(data):
    statuses = [mastodon_status(i) for i in range(20, 14, -1)]  # newest first
    broken = data.draw(st.sets(st.integers(0, 5), min_size=1), label="broken statuses")
    page = [data.draw(NOT_OBJECTS, label="not an object") if i in broken and
            data.draw(st.booleans(), label="replace whole") else mutate(data, s) if i in broken else s
            for i, s in enumerate(statuses)]

    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return json_response([] if "max_id" in request.url.query.decode() else page)

    c = MastodonCollector("fedi", "https://mastodon.example", ["ALS"], quiet_client(handler))
    state: dict = {}
    posts = collect_like_the_pipeline(c, state)
    ids = {p.id for p in posts}
    for i, s in enumerate(statuses):
        if i not in broken:
            assert f"mastodon:{s['uri']}" in ids
    assert len(posts) + c.counts["bad_items"] + c.counts["not_public"] == len(page)
    json.dumps(state)  # the state is stored as JSON


def test_mastodon_pages_on_from_an_id_that_is_not_url_safe():
    """The next page's max_id is the last status's id, text from the server: "\x1f" was
    an httpx.InvalidURL (a traceback), "a&b" a different query."""
    asked = []

    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        asked.append(parse_qs(request.url.query.decode()).get("max_id"))
        return json_response([] if asked[-1] else [{**mastodon_status(9), "id": "a&b\x1f"}])

    c = MastodonCollector("fedi", "https://mastodon.example", ["ALS"], quiet_client(handler))
    assert len(collect_like_the_pipeline(c)) == 1 and asked == [None, ["a&b\x1f"]]


def test_a_mastodon_status_with_an_absurdly_long_id_is_a_bad_item():
    """Found by the property test above: a 5,000-character id went into the next page's
    URL, and httpx refused it ("URL too long") with a traceback."""
    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return json_response([] if "max_id" in request.url.query.decode() else
                             [mastodon_status(9), {**mastodon_status(8), "id": "7" * 5000}])

    c = MastodonCollector("fedi", "https://mastodon.example", ["ALS"], quiet_client(handler))
    assert len(collect_like_the_pipeline(c)) == 1 and c.counts["bad_items"] == 1


@pytest.fixture(scope="module")
def discord_token():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCORD_BOT_TOKEN", "fictional-bot-token")
        yield


@settings(PROPERTY, report_multiple_bugs=False)
@given(data=st.data())
def test_discord_page_with_broken_messages_keeps_the_good_ones(discord_token, data):
    messages = [discord_message(m) for m in range(1010, 1004, -1)]  # newest first
    for m in messages:
        m.pop("_channel_name")
    broken = data.draw(st.sets(st.integers(0, 5), min_size=1), label="broken messages")
    page = [data.draw(NOT_OBJECTS | st.sampled_from([{"id": "\u00b2"}, {"id": "\u0663"}]), label="not a message")
            if i in broken and data.draw(st.booleans(), label="replace whole") else mutate(data, m) if i in broken else m
            for i, m in enumerate(messages)]

    def handler(request):
        path = request.url.path.removeprefix("/api/v10")
        if path == "/channels/111":
            return json_response({"id": "111", "type": 0, "name": "trial-talk", "guild_id": "9"})
        if "/threads/archived/" in path:
            return json_response({"threads": [], "has_more": False})
        query = request.url.query.decode()
        return json_response([] if "before=" in query or "after=" in query else page)

    c = DiscordCollector("mg-discord", quiet_client(handler), channels=["111"], api_base="https://discord.example/api/v10")
    posts = collect_like_the_pipeline(c)
    ids = {p.id for p in posts}
    for i, m in enumerate(messages):
        if i not in broken:
            assert f"discord:{m['id']}" in ids
    assert len(posts) + c.counts["bad_items"] + c.counts["bots"] + c.counts["system"] == len(page)


def test_discord_archived_threads_page_only_by_a_time(discord_token):
    """The next page of archived threads carries the last thread's archive time: a value
    that is not a time (here 5,000 characters, too long for a URL) ends the paging."""
    asked = []

    def handler(request):
        path = request.url.path.removeprefix("/api/v10")
        if path == "/channels/111":
            return json_response({"id": "111", "type": 0, "name": "trial-talk", "guild_id": "9"})
        if path == "/channels/111/threads/archived/public":
            asked.append(request.url.query.decode())
            return json_response({"threads": [{"id": "222", "name": "old", "thread_metadata":
                                               {"archive_timestamp": "7" * 5000}}], "has_more": True})
        if "/threads/archived/" in path:
            return json_response({"threads": [], "has_more": False})
        return json_response([])

    c = DiscordCollector("mg-discord", quiet_client(handler), channels=["111"], api_base="https://discord.example/api/v10")
    assert collect_like_the_pipeline(c) == [] and asked == ["limit=100"]


# --- times ----------------------------------------------------------------------------------

def test_times_are_utc_and_zero_padded():
    mastodon = MastodonCollector("m", "https://mastodon.example", ["ALS"], quiet_client(no_network))
    # an offset is converted, not cut off ("10:00+02:00" was stored as 10:00Z)
    assert mastodon.to_post({**mastodon_status(7), "created_at": "2026-05-01T10:00:00.000+02:00"}).created_at \
        == "2026-05-01T08:00:00Z"
    # strftime writes year 100 as "100": "100-01-01T..." sorted after "2026-..." and escaped retention
    assert iso_utc(-59011459200) == "0100-01-01T00:00:00Z"
    raw = copy.deepcopy(DISCOURSE_RAW)
    raw["post"]["created_at"] = "0100-01-01T00:00:00Z"
    assert discourse().to_post(raw).created_at == "0100-01-01T00:00:00Z"


def test_a_forum_dated_in_year_1_does_not_break_the_next_run():
    """The high-water mark is the newest bumped_at; a mark in year 1 minus the overlap
    was an OverflowError at the start of every later run."""
    topic = discourse_topic(12, [discourse_post(12, 1)])
    listing = {"topic_list": {"topics": [{"id": 12, "title": "t", "bumped_at": "0001-01-01T00:00:00Z"}]}}
    state: dict = {}
    c = DiscourseCollector("f", "https://forum.example.org", quiet_client(forum_handler(listing, topic)))
    assert len(collect_like_the_pipeline(c, state)) == 1
    state = json.loads(json.dumps(state))  # as stored between runs
    c = DiscourseCollector("f", "https://forum.example.org", quiet_client(forum_handler(listing, topic)))
    assert collect_like_the_pipeline(c, state) == []  # nothing new, and no OverflowError


# --- end to end: broken items among good ones, through the command line ------------------
# `trustwatch collect` runs monitor.pipeline for real against one loopback server for the
# module (each server costs half a second to stop); each test sets the routes it answers.
# Collect only: the model is never loaded, so the config's model paths need not exist.

@pytest.fixture(scope="module")
def api():
    server = type("Api", (), {"routes": staticmethod(lambda path, q: None)})()

    def handle(h):
        url = urlsplit(h.path)
        found = server.routes(url.path, parse_qs(url.query))
        if found is None:
            return 404, b"{}", {"Content-Type": "application/json"}
        status, body = found
        return status, body if isinstance(body, bytes) else json.dumps(body).encode(), {"Content-Type": "application/json"}

    with loopback_server(handle) as base:
        server.base = base
        yield server


def collect(tmp_path: Path, sources: str):
    config = write_config(tmp_path, tmp_path / "no-encoder", tmp_path / "no-heads.npz",
                          extra="[collect]\nmin_interval = 0", sources=sources)
    return CliRunner().invoke(cli, ["collect", "--config", str(config)], catch_exceptions=False)


def run_record(db: Path, source: str) -> tuple[str, dict, dict]:
    status, sources, errors = query(db, "select status, sources, errors from runs order by rowid desc limit 1")[0]
    return status, json.loads(sources)[source], json.loads(errors or "{}")


def assert_collected(result, tmp_path: Path, source: str, ids: list[str], bad: int) -> None:
    """Exit 0; exactly the good items stored; the bad ones counted in the run record."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "FAILED" not in result.output
    db = tmp_path / "tw.db"
    assert sorted(r[0] for r in query(db, "select id from posts")) == sorted(ids)
    status, counts, errors = run_record(db, source)
    assert status == "ok" and errors == {}
    assert counts["new"] == len(ids) and counts["bad_items"] == bad, counts
    assert f"collect {source}: {len(ids)} new, 0 updated" in result.output and f"{bad} bad_items" in result.output


def test_discourse_broken_posts_are_counted_and_the_good_ones_stored(tmp_path, salt, api):
    good = [discourse_post(21, n) for n in (1, 2, 3)]
    bad = [
        {k: v for k, v in discourse_post(21, 4).items() if k != "id"},  # no id
        {k: v for k, v in discourse_post(21, 5).items() if k != "created_at"},  # no timestamp
        {**discourse_post(21, 6), "created_at": 1778000000},  # a number where a date is expected
        {**discourse_post(21, 7), "created_at": "last tuesday"},  # a date that is garbage
        {**discourse_post(21, 8), "post_number": "eight"},  # a string where a number is expected
        {**discourse_post(21, 9), "id": [21009]},  # a list where an id is expected
        "<p>not a post</p>",  # a string where an object is expected
        None,
    ]
    lenient = {**discourse_post(21, 10), "username": {"name": "x"}, "cooked": None}  # stored, without author or text
    topic = discourse_topic(21, good[:2] + bad + good[2:] + [lenient])
    broken_topic = {**discourse_topic(22, []), "post_stream": "not an object"}
    listing = {"topic_list": {"topics": [{"id": 21, "title": "t", "bumped_at": "2026-05-02T10:00:00Z"},
                                         {"id": 22, "title": "u", "bumped_at": "2026-05-01T10:00:00Z"},
                                         {"title": "a topic without an id"}, ["not", "a", "topic"]],
                              "more_topics_url": None}}
    api.routes = lambda path, q: {
        "/latest.json": (200, listing), "/t/21.json": (200, topic), "/t/22.json": (200, broken_topic),
        "/categories.json": (200, {"category_list": {"categories": [{"id": 5, "name": "Lupus trials"}, "x"]}}),
    }.get(path)
    result = collect(tmp_path, f"""
        [[source]]
        name = "forum"
        type = "discourse"
        base_url = "{api.base}"
        """)
    host = urlsplit(api.base).netloc
    # the broken posts, the topic whose post_stream is a string, the two broken topic entries
    assert_collected(result, tmp_path, "forum", [f"discourse:{host}:{21000 + n}" for n in (1, 2, 3, 10)], len(bad) + 3)
    row = query(tmp_path / "tw.db", f"select author, text, community from posts where id = 'discourse:{host}:21010'")
    assert row == [(None, "", "Lupus trials")]


def test_mastodon_broken_statuses_are_counted_and_the_good_ones_stored(tmp_path, salt, api):
    good = [mastodon_status(i) for i in (30, 29, 28)]
    lenient = {**mastodon_status(27), "account": "not-an-object", "spoiler_text": None, "url": ["x"]}
    bad = [
        {k: v for k, v in mastodon_status(26).items() if k != "id"},
        {k: v for k, v in mastodon_status(25).items() if k != "uri"},
        {**mastodon_status(24), "created_at": None},
        {**mastodon_status(23), "created_at": "the day before yesterday"},
        {**mastodon_status(22), "uri": {"href": "https://mastodon.example/x"}},
        42,
        "status",
    ]
    page = good[:1] + bad[:3] + good[1:] + [lenient] + bad[3:]
    api.routes = lambda path, q: (200, [] if "max_id" in q else page) if path == "/api/v1/timelines/tag/ALS" else None
    result = collect(tmp_path, f"""
        [[source]]
        name = "fedi"
        type = "mastodon"
        base_url = "{api.base}"
        hashtags = ["ALS"]
        """)
    assert_collected(result, tmp_path, "fedi", [f"mastodon:{s['uri']}" for s in good + [lenient]], len(bad))
    row = query(tmp_path / "tw.db", f"select author, url from posts where id = 'mastodon:{lenient['uri']}'")
    assert row == [(None, lenient["uri"])]  # an account that is not an object: no author; a url list: the uri


def test_discord_broken_messages_are_counted_and_the_good_ones_stored(tmp_path, salt, api, monkeypatch):
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "fictional-bot-token")
    good = [discord_message(m) for m in (1010, 1009, 1008)]
    bad = [
        {k: v for k, v in discord_message(1007).items() if k != "id"},
        {k: v for k, v in discord_message(1006).items() if k != "timestamp"},
        {**discord_message(1005), "timestamp": 1778000000},
        {**discord_message(1004), "channel_id": None},
    ]
    for m in good + bad:
        m.pop("_channel_name")
    page = good[:2] + bad + good[2:]

    def routes(path, q):
        path = path.removeprefix("/api/v10")
        if path == "/channels/111":
            return 200, {"id": "111", "type": 0, "name": "trial-talk", "guild_id": "9"}
        if path.startswith("/channels/111/") and "/threads/archived/" in path:
            return 200, {"threads": [], "has_more": False}
        if path == "/channels/111/messages":
            return 200, [] if "before" in q or "after" in q else page
        return None

    api.routes = routes
    result = collect(tmp_path, f"""
        [[source]]
        name = "mg-discord"
        type = "discord"
        channels = ["111"]
        api_base = "{api.base}/api/v10"
        """)
    assert_collected(result, tmp_path, "mg-discord", ["discord:1008", "discord:1009", "discord:1010"], len(bad))


# --- a whole response of the wrong shape fails its source only ---------------------------

NOT_AN_OBJECT = {
    "a list": b'[{"id": 21}]',
    "a string": b'"hello"',
    "a number": b"42",
    "HTML": b"<!DOCTYPE html><html><body>Maintenance</body></html>",
    "an empty body": b"",
    "JSON cut off": b'{"topic_list": {"topics": [{"id": 21',
}
DISCOURSE_CASES = (
    [("listing", what) for what in NOT_AN_OBJECT]
    + [("listing", "null"), ("listing", "topic_list a list"), ("listing", "topics an object")]
    + [(where, what) for where in ("topic", "categories", "posts") for what in ("a list", "HTML", "an empty body")]
)
LISTING_SHAPES = {"null": b"null", "topic_list a list": b'{"topic_list": [{"id": 21}]}',
                  "topics an object": b'{"topic_list": {"topics": {"id": 21}}}'}


def with_fixture_dump(tmp_path: Path, broken: str) -> str:
    shutil.copy(FIXTURES / "dump.ndjson", tmp_path / "dump.ndjson")
    return '[[source]]\nname = "fixture-dump"\ntype = "reddit-dump"\npath = "dump.ndjson"\n' + broken


@pytest.mark.parametrize("where, what", DISCOURSE_CASES)
def test_discourse_response_that_is_not_an_object_fails_the_source_in_one_line(tmp_path, salt, api, where, what):
    body = NOT_AN_OBJECT[what] if what in NOT_AN_OBJECT else LISTING_SHAPES[what]
    posts = [discourse_post(21, n) for n in range(1, 4)]
    topic = discourse_topic(21, posts[:2])
    topic["post_stream"]["stream"].append(posts[2]["id"])  # the third post comes from /t/21/posts.json
    answers = {
        "/categories.json": {"category_list": {"categories": [{"id": 5, "name": "Lupus trials"}]}},
        "/latest.json": {"topic_list": {"topics": [{"id": 21, "title": "t", "bumped_at": "2026-05-02T10:00:00Z"}]}},
        "/t/21.json": topic,
        "/t/21/posts.json": {"post_stream": {"posts": posts[2:]}},
    }
    wrong = {"listing": "/latest.json", "topic": "/t/21.json", "categories": "/categories.json",
             "posts": "/t/21/posts.json"}[where]
    api.routes = lambda path, q: (200, body if path == wrong else answers[path]) if path in answers else None
    result = collect(tmp_path, with_fixture_dump(tmp_path, f'[[source]]\nname = "broken"\ntype = "discourse"\n'
                                                           f'base_url = "{api.base}"\n'))
    assert_failed_alone(result, tmp_path)


@pytest.mark.parametrize("what", ["an object", "null", *sorted(set(NOT_AN_OBJECT) - {"a list"})])
def test_mastodon_response_that_is_not_a_list_fails_the_source_in_one_line(tmp_path, salt, api, what):
    body = {"an object": b'{"statuses": [{"id": "1"}]}', "null": b"null", **NOT_AN_OBJECT}[what]
    api.routes = lambda path, q: (200, body) if path == "/api/v1/timelines/tag/ALS" else None
    result = collect(tmp_path, with_fixture_dump(tmp_path, f'[[source]]\nname = "broken"\ntype = "mastodon"\n'
                                                           f'base_url = "{api.base}"\nhashtags = ["ALS"]\n'))
    assert_failed_alone(result, tmp_path)


def assert_failed_alone(result, tmp_path: Path) -> None:
    """Exit 1, one FAILED line for the broken source, no traceback; the dump is collected."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    failed = [line for line in result.output.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("collect broken: FAILED: http://127.0.0.1:"), result.output
    db = tmp_path / "tw.db"
    assert query(db, "select source, count(*) from posts group by source") == [("fixture-dump", 5)]
    status, _, errors = run_record(db, "broken")
    assert status == "partial" and list(errors) == ["broken"] and "\n" not in errors["broken"]
