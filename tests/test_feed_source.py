"""A feed source end to end through the config, against a real server on 127.0.0.1."""

import pytest

from conftest import FIXTURES, write_config
from fakes import loopback_server
from monitor import pipeline, storage
from monitor.config import load_config


@pytest.fixture
def feed_server():
    hits = []

    def handle(h):
        hits.append((h.path, h.headers.get("If-None-Match"), h.headers.get("User-Agent")))
        if h.path == "/robots.txt":
            return 200, b"User-agent: *\nDisallow: /private/\n", {}
        if h.path.startswith("/private/"):
            return 200, b"", {}
        if h.headers.get("If-None-Match") == '"v1"':
            return 304, b"", {}
        return 200, (FIXTURES / "feed.xml").read_bytes(), {"ETag": '"v1"', "Content-Type": "application/rss+xml"}

    with loopback_server(handle) as base:
        yield base, hits


def test_feed_source_collects_once_then_304(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, feed_server, tiny_tagger):
    base, hits = feed_server
    cfg_path = write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources=f"""
        [[source]]
        name = "lupus-feed"
        type = "feed"
        url = "{base}/rss.xml"
        """, extra='[collect]\ncontact = "mailto:ops@example.org"\nmin_interval = 0')
    cfg = load_config(cfg_path)
    first = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    assert (first.new, first.sources["lupus-feed"]["bad_items"]) == (2, 1)
    second = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    assert second.new == 0 and second.sources["lupus-feed"]["not_modified"] == 1
    assert hits[-1][1] == '"v1"' and "ops@example.org" in hits[-1][2]
    db = storage.open_db(cfg.database)
    post = next(db.query("select * from posts where title like 'Results%'"))
    assert "[phone]" in post["text"] and post["author"].startswith("a_")
    mentions = {r[0] for r in db.execute("select entity_id from mentions")}
    assert mentions == set()  # the fixture watchlist has no lupus entities


def test_robots_disallowed_feed_fails_only_that_source(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, feed_server, tiny_tagger):
    base, _ = feed_server
    cfg = load_config(write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources=f"""
        [[source]]
        name = "private-feed"
        type = "feed"
        url = "{base}/private/rss.xml"
        """, extra="[collect]\nmin_interval = 0"))
    report = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    assert report.failed and "robots.txt disallows" in report.errors["private-feed"]


def test_recheck_removes_feed_items_whose_page_is_gone(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, tiny_tagger):
    from fakes import loopback_server

    pages = {"/t/101": 200, "/t/102": 404}

    def handle(h):
        if h.path == "/rss.xml":
            base = f"http://{h.headers['Host']}"
            xml = (FIXTURES / "feed.xml").read_text().replace("https://forum.example.org", base)
            return 200, xml.encode(), {"Content-Type": "application/rss+xml"}
        return pages.get(h.path, 404), b"<html>page</html>", {"Content-Type": "text/html"}

    with loopback_server(handle) as base:
        cfg = load_config(write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources=f"""
            [[source]]
            name = "lupus-feed"
            type = "feed"
            url = "{base}/rss.xml"
            """, extra="[collect]\nmin_interval = 0"))
        assert pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger).new == 2
        report = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger, steps=("recheck",))
    assert report.sources["lupus-feed"] == {"checked": 2, "removed": 1, "edited": 0}
    db = storage.open_db(cfg.database)
    assert [r["title"] for r in db.query("select title from posts")] == ["Results summary & thanks"]
