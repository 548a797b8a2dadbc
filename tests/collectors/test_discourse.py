"""Discourse collector against a fake forum speaking Discourse's JSON API (fictional)."""

import json
import httpx

from collectors import DiscourseCollector, PoliteClient
from fakes import FakeForum


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
