import datetime as dt
import json
import shutil

import pytest
import zstandard

from collectors import BadItem, RedditDumpCollector, SourceFailed
from conftest import FIXTURES


def collect(c, state=None):
    state = {} if state is None else state
    posts = [p for p in (c.to_post(r) for r in c.fetch(state)) if p is not None]
    return posts, state


def test_plain_dump_posts_comments_and_skips(tmp_path):
    posts, state = collect(RedditDumpCollector("d", FIXTURES / "dump.ndjson"))
    ids = [p.id for p in posts]
    assert ids == ["reddit:t3_fx0001", "reddit:t3_fx0002", "reddit:t3_fx0003",
                   "reddit:t1_fx0c01", "reddit:t1_fx0c02"]
    s = posts[0]
    assert s.platform == "reddit-dump" and s.community == "r/ALS" and s.source == "d"
    assert s.created_at == "2026-03-07T08:00:00Z"
    assert s.url == "https://www.reddit.com/r/ALS/comments/fx0001/x/"
    assert s.thread_id == s.id and s.parent_id is None
    reply = posts[4]
    assert reply.parent_id == "reddit:t1_fx0c01" and reply.thread_id == "reddit:t3_fx0001"
    assert reply.title == ""


def test_reddit_escaping_is_undone():
    """Reddit (and the dumps taken from its API) escape &, < and > as &amp;, &lt;, &gt;."""
    c = RedditDumpCollector("d", FIXTURES / "dump.ndjson")
    base = {"id": "e1", "subreddit": "ALS", "created_utc": 1772870400, "permalink": "/r/ALS/comments/e1/x/"}
    post = c.to_post({**base, "title": "Q&amp;A with Lakeshore", "selftext": "&gt; they said &lt;2 weeks\n\n&amp;amp; no"})
    assert post.title == "Q&A with Lakeshore" and post.text == "> they said <2 weeks\n\n&amp; no"
    comment = c.to_post({**base, "id": "e2", "body": "AT&amp;T &lt;3", "link_id": "t3_e1", "parent_id": "t3_e1"})
    assert comment.text == "AT&T <3"


def test_deleted_removed_and_malformed_are_counted():
    c = RedditDumpCollector("d", FIXTURES / "dump.ndjson")
    collect(c)
    assert c.counts["deleted"] == 4  # [deleted], [removed], deleted comment, was_deleted_later
    assert c.counts["malformed"] == 2  # the comment line and the broken line


def test_zst_dump_streams_the_same(tmp_path):
    raw = (FIXTURES / "dump.ndjson").read_bytes()
    (tmp_path / "d.ndjson.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    posts, _ = collect(RedditDumpCollector("d", tmp_path / "d.ndjson.zst"))
    assert len(posts) == 5


def _big_zst(n=5000) -> bytes:
    lines = [json.dumps({"id": f"z{i:05d}", "subreddit": "ALS", "created_utc": 1772870400 + i * 977,
                         "title": f"post {i * 7919 % 10007}", "selftext": str(i * 104729 % 1000003)})
             for i in range(n)]
    return zstandard.ZstdCompressor(write_checksum=True).compress("\n".join(lines).encode())


def test_truncated_zst_fails_the_source_after_what_it_read(tmp_path):
    data = _big_zst()
    (tmp_path / "cut.zst").write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(SourceFailed, match="truncated zstandard stream after line"):
        for raw_item in RedditDumpCollector("d", tmp_path / "cut.zst").fetch({}):
            got.append(raw_item)
    assert 0 < len(got) < 5000


def test_corrupt_zst_fails_the_source(tmp_path):
    data = bytearray(_big_zst())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    (tmp_path / "bad.zst").write_bytes(bytes(data))
    with pytest.raises(SourceFailed, match="corrupt zstandard stream"):
        list(RedditDumpCollector("d", tmp_path / "bad.zst").fetch({}))


def test_multi_frame_zst(tmp_path):
    one = zstandard.ZstdCompressor().compress((FIXTURES / "dump.ndjson").read_bytes())
    (tmp_path / "two.zst").write_bytes(one + one)
    posts, _ = collect(RedditDumpCollector("d", tmp_path / "two.zst"))
    assert len(posts) == 10


def test_unchanged_file_is_not_read_again(tmp_path):
    shutil.copy(FIXTURES / "dump.ndjson", tmp_path / "d.ndjson")
    c = RedditDumpCollector("d", tmp_path / "d.ndjson")
    posts, state = collect(c)
    again, _ = collect(RedditDumpCollector("d", tmp_path / "d.ndjson"), json.loads(json.dumps(state)))
    assert posts and again == []
    with open(tmp_path / "d.ndjson", "a") as f:
        f.write(json.dumps({"id": "fx0009", "subreddit": "ALS", "created_utc": 1775000000,
                            "title": "new", "selftext": "post"}) + "\n")
    grown, _ = collect(RedditDumpCollector("d", tmp_path / "d.ndjson"), state)
    assert "reddit:t3_fx0009" in [p.id for p in grown]


def test_filters():
    since = dt.datetime(2026, 3, 10, tzinfo=dt.timezone.utc)
    posts, _ = collect(RedditDumpCollector("d", FIXTURES / "dump.ndjson", subreddits=["r/ALS"], since=since))
    assert [p.id for p in posts] == ["reddit:t3_fx0002"]
    posts, _ = collect(RedditDumpCollector("d", FIXTURES / "dump.ndjson", keywords=["paid"]))
    assert [p.id for p in posts] == ["reddit:t3_fx0003"]


def test_glob_and_missing_paths(tmp_path):
    with pytest.raises(SourceFailed, match="file not found"):
        list(RedditDumpCollector("d", tmp_path / "none.ndjson").fetch({}))
    with pytest.raises(SourceFailed, match="no file matches"):
        list(RedditDumpCollector("d", tmp_path / "*.zst").fetch({}))


@pytest.mark.parametrize("raw", [
    {"subreddit": "ALS", "created_utc": 1, "title": "t"},
    {"id": "x", "created_utc": 1, "title": "t"},
    {"id": "x", "subreddit": "ALS", "created_utc": "soon", "title": "t"},
    {"id": "x", "subreddit": "ALS", "created_utc": 1, "body": "b"},
    {"id": "x", "subreddit": "ALS", "created_utc": 1, "title": None},
])
def test_items_missing_fields_are_bad_items(raw):
    with pytest.raises(BadItem):
        RedditDumpCollector("d", FIXTURES / "dump.ndjson").to_post(raw)


def test_reddit_posts_stored_escaped_by_older_versions_are_unescaped_once(tmp_path):
    """Migration m007: stored Reddit titles and texts lose Reddit's escaping, with a new
    content hash (so they are re-tagged); other platforms' text is left alone."""
    from monitor import storage

    path = tmp_path / "old.db"
    db = storage.open_db(path)
    rows = [("reddit:t3_a", "reddit", "Q&amp;A", "&gt; quoted &amp;lt;"), ("feed:x", "feed", "R&amp;D", "a &amp; b")]
    for post_id, platform, title, text in rows:
        db["posts"].insert({"id": post_id, "source": "s", "platform": platform, "community": "c", "url": None,
                            "author": None, "created_at": "2026-05-01T00:00:00Z", "title": title, "text": text,
                            "content_hash": storage.content_hash(title, text)})
    db.execute("delete from _sqlite_migrations where name = 'm007_unescape_reddit'")
    db.conn.commit()
    db.close()
    db = storage.open_db(path)
    reddit, feed = db["posts"].get("reddit:t3_a"), db["posts"].get("feed:x")
    assert (reddit["title"], reddit["text"]) == ("Q&A", "> quoted &lt;")
    assert reddit["content_hash"] == storage.content_hash("Q&A", "> quoted &lt;")
    assert (feed["title"], feed["text"]) == ("R&amp;D", "a &amp; b")
    assert [r["title"] for r in db.query("select title from posts_fts where posts_fts match 'quoted'")] == ["Q&A"]
