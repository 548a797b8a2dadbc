"""recheck: what authors deleted leaves every table; edits are updated and re-tagged."""

import re

import httpx
import pytest

import collectors
from collectors.http import PoliteClient
from conftest import write_config
from monitor import pipeline, storage
from monitor.config import load_config
from fakes import FakeForum


class RecheckForum(FakeForum):
    def __init__(self):
        super().__init__()
        self.topics[12]["posts"][1]["cooked"] = "<p>Lakeshore paid for our travel.</p>"
        self.gone: set[int] = set()

    def handler(self, request):
        m = re.fullmatch(r"/posts/(\d+)\.json", request.url.path)
        if m:
            pid = int(m.group(1))
            if pid in self.gone:
                return httpx.Response(404)
            post = next(p for t in self.topics.values() for p in t["posts"] if p["id"] == pid)
            return httpx.Response(200, json=post)
        return super().handler(request)


@pytest.fixture
def forum(monkeypatch):
    f = RecheckForum()

    def polite(**kw):
        return PoliteClient(httpx.Client(transport=httpx.MockTransport(f.handler)), sleep=lambda s: None, **kw)

    monkeypatch.setattr(collectors, "PoliteClient", polite)
    return f


def test_recheck_removes_deleted_everywhere_and_updates_edits(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, forum, tiny_tagger):
    cfg = load_config(write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources="""
        [[source]]
        name = "cf-forum"
        type = "discourse"
        base_url = "https://forum.example.org"
        """, extra="[collect]\nmin_interval = 0"))
    quiet = lambda m: None  # noqa: E731
    pipeline.run(cfg, log=quiet, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    gone_id = "discourse:forum.example.org:12002"
    assert db.execute("select count(*) from mentions where post_id = ?", [gone_id]).fetchone()[0] == 1
    assert list(db.query("select rowid from posts_fts where posts_fts match 'paid'"))

    forum.gone.add(12002)  # the author deleted it
    forum.topics[11]["posts"][0]["cooked"] = "<p>Edited: Calloway answered us.</p>"
    report = pipeline.run(cfg, log=quiet, tagger=tiny_tagger, steps=("recheck", "tag", "aggregate"))
    assert report.sources["cf-forum"] == {"checked": 26, "removed": 1, "edited": 1}
    assert report.tagged == 1  # the edited post
    for table, col in (("posts", "id"), ("post_tags", "post_id"), ("mentions", "post_id")):
        assert db.execute(f"select count(*) from {table} where {col} = ?", [gone_id]).fetchone()[0] == 0, table
    assert not list(db.query("select rowid from posts_fts where posts_fts match 'paid'"))
    assert db.execute("select count(*) from entity_weekly where entity_id = 'lakeshore'").fetchone()[0] == 0
    edited = db["posts"].get("discourse:forum.example.org:11001")
    assert edited["text"] == "Edited: Calloway answered us."
    assert [r[0] for r in db.execute("select entity_id from mentions where post_id = ?", [edited["id"]])] == ["calloway"]


def test_recheck_of_archived_reddit_posts_needs_reddit_access(dump_config, tiny_tagger, monkeypatch):
    monkeypatch.delenv("praw_client_id", raising=False)
    cfg = load_config(dump_config)
    pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    report = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger, steps=("recheck",))
    assert "praw configuration incomplete" in report.errors["fixture-dump"]  # loud, not skipped
