"""The reddit source through praw for real, against a loopback server speaking Reddit's
API (OAuth token, listings with `after`, comment trees with `more`, /api/info), pointed at
by a praw.ini found through XDG_CONFIG_HOME. Fictional data."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import write_config
from fakes import loopback_server
from monitor import pipeline, storage
from monitor.config import load_config

T0 = 1778000000  # 2026-05-05


def sub_data(i, created, text="", author="fict_poster"):
    return {"id": f"s{i}", "name": f"t3_s{i}", "title": f"Post {i} about Lakeshore", "selftext": text,
            "author": author, "created_utc": created, "subreddit": "ALS", "permalink": f"/r/ALS/comments/s{i}/p/",
            "url": f"https://www.reddit.com/r/ALS/comments/s{i}/p/", "num_comments": 3, "is_self": True}


def com_data(cid, link, parent, body, created):
    return {"id": cid, "name": f"t1_{cid}", "body": body, "author": f"fict_{cid}", "created_utc": created,
            "link_id": f"t3_{link}", "parent_id": parent, "subreddit": "ALS", "replies": "",
            "permalink": f"/r/ALS/comments/{link}/p/{cid}/", "depth": 0}


class FakeReddit:
    def __init__(self, n=130):
        self.subs = [sub_data(i, T0 - i * 3600) for i in range(n)]  # newest first
        self.extra_comment_body = "Hidden behind more: Calloway never called."
        self.gone: set[str] = set()
        self.requests = []

    def handle(self, h):
        url = urlsplit(h.path)
        url = url._replace(path=url.path.rstrip("/"))  # praw adds trailing slashes
        q = parse_qs(url.query)
        self.requests.append(f"{h.command} {url.path}")
        if url.path == "/api/v1/access_token":
            return 200, {"access_token": "fict-token", "token_type": "bearer", "expires_in": 3600, "scope": "*"}
        if url.path == "/r/ALS/new":
            after = q.get("after", [None])[0]
            start = 0 if after is None else next(i for i, s in enumerate(self.subs) if s["name"] == after) + 1
            limit = int(q.get("limit", ["100"])[0])
            page = self.subs[start:start + limit]
            nxt = page[-1]["name"] if start + limit < len(self.subs) else None
            return 200, {"kind": "Listing", "data": {"after": nxt, "children": [{"kind": "t3", "data": s} for s in page]}}
        m = re.fullmatch(r"/comments/(\w+)/?", url.path)
        if m:
            sid = m.group(1)
            s = next(x for x in self.subs if x["id"] == sid)
            c1 = com_data(f"{sid}c1", sid, f"t3_{sid}", "The nurses at Lakeshore were kind.", s["created_utc"] + 60)
            c2 = com_data(f"{sid}c2", sid, f"t1_{sid}c1", "[deleted]", s["created_utc"] + 120)
            more = {"kind": "more", "data": {"count": 1, "name": f"t1_{sid}c3", "id": f"{sid}c3",
                                             "parent_id": f"t3_{sid}", "depth": 0, "children": [f"{sid}c3"]}}
            return 200, [{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": s}]}},
                         {"kind": "Listing", "data": {"children": [{"kind": "t1", "data": c1}, {"kind": "t1", "data": c2}, more]}}]
        if url.path == "/api/morechildren":
            body = parse_qs(h.rfile.read(int(h.headers.get("Content-Length", 0))).decode())
            link = body["link_id"][0].removeprefix("t3_")
            cid = body["children"][0]
            s = next(x for x in self.subs if x["id"] == link)
            c3 = com_data(cid, link, f"t3_{link}", self.extra_comment_body, s["created_utc"] + 180)
            return 200, {"json": {"errors": [], "data": {"things": [{"kind": "t1", "data": c3}]}}}
        if url.path == "/api/info":
            names = q["id"][0].split(",")
            things = []
            for name in names:
                if name in self.gone:
                    continue
                if name.startswith("t3_"):
                    s = next((x for x in self.subs if x["name"] == name), None)
                    if s:
                        things.append({"kind": "t3", "data": s})
                else:
                    cid = name[3:]
                    link = cid.split("c")[0]
                    things.append({"kind": "t1", "data": com_data(cid, link, f"t3_{link}", "still here", T0)})
            return 200, {"kind": "Listing", "data": {"after": None, "children": things}}
        return 404, {"message": "Not Found", "error": 404}


@pytest.fixture
def reddit_server(tmp_path, monkeypatch):
    fake = FakeReddit()

    def handle(h):
        status, body = fake.handle(h)
        return status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=UTF-8"}

    with loopback_server(handle, methods=("GET", "POST")) as base:
        xdg = tmp_path / "xdg"
        xdg.mkdir()
        (xdg / "praw.ini").write_text(
            f"[trustwatch-test]\noauth_url = {base}\nreddit_url = {base}\nshort_url = {base}\n")
        monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
        monkeypatch.setenv("praw_client_id", "fict-client")
        monkeypatch.setenv("praw_client_secret", "fict-secret")
        import praw.config

        monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # re-read praw.ini from XDG_CONFIG_HOME
        yield fake


def config(tmp_path, enc, heads, extra=""):
    return load_config(write_config(tmp_path, enc, heads, sources=f"""
        [[source]]
        name = "als-reddit"
        type = "reddit"
        praw_site = "trustwatch-test"
        subreddits = ["ALS"]
        replace_more = 4
        {extra}
        """))


def test_reddit_posts_and_comments_incremental_and_recheck(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, reddit_server, tiny_tagger):
    fake = reddit_server
    fake.subs = [sub_data(i, T0 - i * 86400) for i in range(5)]  # one a day
    fake.extra_comment_body = "Hidden behind more: Calloway &amp; Lakeshore never called &lt;3 &amp;lt;"  # as Reddit escapes
    cfg = config(tmp_path, tiny_encoder_dir, tiny_heads_path)
    quiet = lambda m: None  # noqa: E731
    first = pipeline.run(cfg, log=quiet, tagger=tiny_tagger)
    assert not first.failed, first.errors
    assert first.new == 15 and first.sources["als-reddit"]["deleted"] == 5  # 5 posts, 2 comments each kept
    db = storage.open_db(cfg.database)
    c3 = db["posts"].get("reddit:t1_s0c3")
    assert c3["text"] == "Hidden behind more: Calloway & Lakeshore never called <3 &lt;" and c3["thread_id"] == "reddit:t3_s0"
    assert c3["author"].startswith("a_") and c3["url"] == "https://www.reddit.com/r/ALS/comments/s0/p/s0c3/"
    assert any(r == "POST /api/morechildren" for r in fake.requests)

    fake.subs.insert(0, sub_data(99, T0 + 3600))
    fake.requests.clear()
    second = pipeline.run(cfg, log=quiet, tagger=tiny_tagger)
    assert second.new == 3  # the new post and its two comments
    # the listing stopped at posts older than last run's newest minus the 48 h overlap:
    # comments fetched again for the new post and the 3 posts within the overlap only
    assert sum(r.startswith("GET /comments/") for r in fake.requests) == 4

    fake.gone.add("t1_s1c1")
    fake.subs[1]["selftext"] = "edited: Lakeshore finally called &amp; apologised"
    report = pipeline.run(cfg, log=quiet, tagger=tiny_tagger, steps=("recheck", "tag", "aggregate"))
    assert report.sources["als-reddit"]["removed"] >= 1 and report.sources["als-reddit"]["edited"] >= 1
    assert db["posts"].count_where("id = 'reddit:t1_s1c1'") == 0
    assert db["posts"].get("reddit:t3_s0")["text"] == "edited: Lakeshore finally called & apologised"


def test_listing_limit_is_noted(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, reddit_server, tiny_tagger, monkeypatch):
    import collectors.reddit

    monkeypatch.setattr(collectors.reddit, "LISTING_LIMIT", 120)
    lines = []
    cfg = config(tmp_path, tiny_encoder_dir, tiny_heads_path, extra="comments = false")
    report = pipeline.run(cfg, log=lines.append, tagger=tiny_tagger)
    assert report.new == 120
    assert any("listing ended at 120 items" in line and "reddit-dump" in line for line in lines)


def test_missing_praw_credentials_fail_only_that_source(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, reddit_server, tiny_tagger, monkeypatch):
    monkeypatch.delenv("praw_client_id")
    report = pipeline.run(config(tmp_path, tiny_encoder_dir, tiny_heads_path), log=lambda m: None, tagger=tiny_tagger)
    assert "praw configuration incomplete" in report.errors["als-reddit"]


def test_archived_dump_posts_are_rechecked_on_reddit(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, reddit_server, tiny_tagger):
    import shutil

    from conftest import FIXTURES

    fake = reddit_server
    fake.subs = [dict(sub_data(0, T0), id="fx0001", name="t3_fx0001", selftext="still the same")]
    shutil.copy(FIXTURES / "dump.ndjson", tmp_path / "dump.ndjson")
    cfg = load_config(write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources="""
        [[source]]
        name = "archive"
        type = "reddit-dump"
        path = "dump.ndjson"
        praw_site = "trustwatch-test"
        """))
    pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    report = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger, steps=("recheck", "tag", "aggregate"))
    assert not report.failed, report.errors
    assert report.sources["archive"] == {"checked": 5, "removed": 2, "edited": 3}
    db = storage.open_db(cfg.database)
    assert sorted(r[0] for r in db.execute("select id from posts")) == [
        "reddit:t1_fx0c01", "reddit:t1_fx0c02", "reddit:t3_fx0001"]
