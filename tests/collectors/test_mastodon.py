"""Mastodon collector against a fake instance speaking the public timeline API (fictional)."""

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from collectors import MastodonCollector, PoliteClient, SourceFailed


def status(i, visibility="public"):
    return {"id": str(i), "uri": f"https://mastodon.example/users/fict{i}/statuses/{i}",
            "url": f"https://mastodon.example/@fict{i}/{i}", "created_at": f"2026-05-0{1 + i % 9}T10:00:00.000Z",
            "content": f"<p>Status {i} about <a href='#'>#ALS</a> trials</p>", "spoiler_text": "",
            "visibility": visibility, "account": {"acct": f"fict{i}@mastodon.example"}}


class FakeInstance:
    def __init__(self, n):
        self.statuses = [status(i) for i in range(n, 0, -1)]  # newest first
        self.requests = []

    def handler(self, request):
        url = urlsplit(str(request.url))
        if url.path == "/robots.txt":
            return httpx.Response(404)
        self.requests.append(url.path + "?" + url.query)
        q = parse_qs(url.query)
        limit = int(q["limit"][0])
        items = self.statuses
        if "max_id" in q:
            items = [s for s in items if int(s["id"]) < int(q["max_id"][0])]
        return httpx.Response(200, json=items[:limit])


def run(inst, state, max_pages=10):
    client = PoliteClient(httpx.Client(transport=httpx.MockTransport(inst.handler)), min_interval=0, sleep=lambda s: None)
    c = MastodonCollector("fedi", "https://mastodon.example", ["#ALS"], client, max_pages=max_pages)
    return c, [p for p in (c.to_post(r) for r in c.fetch(state)) if p is not None]


def test_pages_back_then_only_new_statuses():
    inst = FakeInstance(95)
    state = {}
    _, posts = run(inst, state)
    assert len(posts) == 95 and len({p.id for p in posts}) == 95
    assert any("max_id=56" in r for r in inst.requests)
    p = posts[0]
    assert p.id == "mastodon:https://mastodon.example/users/fict95/statuses/95"
    assert p.text == "Status 95 about #ALS trials" and p.platform == "mastodon"
    inst.statuses = [status(97), status(96, visibility="private")] + inst.statuses
    inst.requests.clear()
    c, again = run(inst, state)
    assert [p.id.rsplit("/", 1)[1] for p in again] == ["97"]
    assert c.counts["not_public"] == 1 and len(inst.requests) == 1


def test_page_limit_is_noted():
    c, posts = run(FakeInstance(95), {}, max_pages=1)
    assert len(posts) == 40 and "stopped after 1 pages" in c.notes[0]


def test_not_mastodon_fails_the_source():
    client = PoliteClient(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"error": "x"}))),
                          min_interval=0, sleep=lambda s: None)
    with pytest.raises(SourceFailed, match="expected a list"):
        list(MastodonCollector("f", "https://m.example", ["ALS"], client).fetch({}))
