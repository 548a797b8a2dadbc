"""Discourse collector against a fake forum speaking Discourse's JSON API (fictional)."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from collectors import DiscourseCollector, PoliteClient


class FakeForum:
    def __init__(self):
        self.requests = []
        self.topics = {
            11: {"title": "Long thread about the LUMEN trial", "slug": "lumen-thread", "category_id": 5,
                 "bumped_at": "2026-05-02T10:00:00Z", "posts": self._posts(11, 25)},
            12: {"title": "Travel grants?", "slug": "travel-grants", "category_id": 5,
                 "bumped_at": "2026-05-01T09:00:00Z", "posts": self._posts(12, 2)},
        }
        self.topics[12]["posts"][1]["reply_to_post_number"] = 1
        self.topics[11]["posts"][3]["deleted_at"] = "2026-05-01T00:00:00Z"

    @staticmethod
    def _posts(tid, n):
        return [{"id": tid * 1000 + i, "post_number": i, "username": f"fict_user_{i}",
                 "created_at": f"2026-05-01T0{i % 10}:00:00.000Z",
                 "cooked": f"<p>Post {i} of topic {tid}</p><script>bad()</script>", "reply_to_post_number": None}
                for i in range(1, n + 1)]

    def handler(self, request):
        url = urlsplit(str(request.url))
        self.requests.append(url.path + ("?" + url.query if url.query else ""))
        q = parse_qs(url.query)
        if url.path == "/robots.txt":
            return httpx.Response(404)
        if url.path == "/categories.json":
            return httpx.Response(200, json={"category_list": {"categories": [{"id": 5, "name": "Lupus trials"}]}})
        if url.path == "/latest.json":
            page = int(q.get("page", ["0"])[0])
            order = sorted(self.topics, key=lambda t: self.topics[t]["bumped_at"], reverse=True)
            chunk = order[page:page + 1]  # one topic per page, to exercise paging
            topics = [{"id": t, "title": self.topics[t]["title"], "bumped_at": self.topics[t]["bumped_at"]} for t in chunk]
            more = f"/latest?page={page + 1}" if page + 1 < len(order) else None
            return httpx.Response(200, json={"topic_list": {"topics": topics, "more_topics_url": more}})
        m = re.fullmatch(r"/t/(\d+)\.json", url.path)
        if m:
            t = self.topics[int(m.group(1))]
            return httpx.Response(200, json={
                "id": int(m.group(1)), "title": t["title"], "slug": t["slug"], "category_id": t["category_id"],
                "post_stream": {"posts": t["posts"][:20], "stream": [p["id"] for p in t["posts"]]}})
        m = re.fullmatch(r"/t/(\d+)/posts\.json", url.path)
        if m:
            ids = {int(i) for i in q["post_ids[]"]}
            posts = [p for p in self.topics[int(m.group(1))]["posts"] if p["id"] in ids]
            return httpx.Response(200, json={"post_stream": {"posts": posts}})
        return httpx.Response(404)


def collect(forum, state):
    client = PoliteClient(httpx.Client(transport=httpx.MockTransport(forum.handler)), min_interval=0, sleep=lambda s: None)
    c = DiscourseCollector("cf-forum", "https://forum.example.org", client)
    posts = [p for p in (c.to_post(r) for r in c.fetch(state)) if p is not None]
    return c, posts


def test_every_post_of_long_topics_with_threading():
    forum = FakeForum()
    c, posts = collect(forum, {})
    assert len(posts) == 26  # 25 + 2 posts, one deleted
    assert c.counts["deleted"] == 1
    assert any(r.startswith("/t/11/posts.json?post_ids[]=11021") for r in forum.requests)
    first = next(p for p in posts if p.id == "discourse:forum.example.org:11001")
    assert first.title == "Long thread about the LUMEN trial" and first.community == "Lupus trials"
    assert first.text == "Post 1 of topic 11" and first.url == "https://forum.example.org/t/lumen-thread/11/1"
    reply = next(p for p in posts if p.id == "discourse:forum.example.org:12002")
    assert reply.parent_id == reply.thread_id == "discourse:forum.example.org:12001" and reply.title == ""


def test_second_run_takes_only_new_posts_of_bumped_topics():
    forum = FakeForum()
    state = {}
    collect(forum, state)
    state = json.loads(json.dumps(state))  # as stored between runs
    forum.topics[12]["posts"].append({"id": 12003, "post_number": 3, "username": "fict_new",
                                      "created_at": "2026-05-03T00:00:00Z", "cooked": "<p>new</p>"})
    forum.topics[12]["bumped_at"] = "2026-05-03T00:00:00Z"
    forum.requests.clear()
    _, posts = collect(forum, state)
    assert [p.id for p in posts] == ["discourse:forum.example.org:12003"]


def test_not_a_discourse_forum_fails_the_source():
    import pytest

    from collectors import SourceFailed

    def handler(request):
        return httpx.Response(200, text="<html>hello</html>")

    client = PoliteClient(httpx.Client(transport=httpx.MockTransport(handler)), min_interval=0, sleep=lambda s: None)
    with pytest.raises(SourceFailed, match="not JSON"):
        list(DiscourseCollector("x", "https://example.org", client).fetch({}))
