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


def test_a_bumped_long_topic_costs_only_its_new_posts_and_keeps_their_threading():
    forum = FakeForum()
    state = {}
    collect(forum, state)
    state = json.loads(json.dumps(state))
    forum.topics[11]["posts"] += [
        {"id": 11026, "post_number": 26, "username": "fict_late", "created_at": "2026-05-04T00:00:00Z",
         "cooked": "<p>answering post 22</p>", "reply_to_post_number": 22},
        {"id": 11027, "post_number": 27, "username": "fict_late2", "created_at": "2026-05-04T01:00:00Z",
         "cooked": "<p>and to the new one</p>", "reply_to_post_number": 26},
    ]
    forum.topics[11]["bumped_at"] = "2026-05-04T01:00:00Z"
    forum.requests.clear()
    _, posts = collect(forum, state)
    key = "discourse:forum.example.org:"
    assert [(p.id, p.parent_id) for p in posts] == [(key + "11026", key + "11022"), (key + "11027", key + "11026")]
    fetched = [r for r in forum.requests if r.startswith("/t/11/posts.json")]
    assert fetched == ["/t/11/posts.json?post_ids[]=11026&post_ids[]=11027"]  # not posts 21-25 again
    assert "/posts/by_number/11/22.json" in forum.requests
    assert state["topic_last_ids"]["11"] == 11027


def test_a_deleted_anchor_costs_one_full_fetch_and_a_hidden_parent_is_no_failure():
    forum = FakeForum()
    state = {}
    collect(forum, state)
    state = json.loads(json.dumps(state))
    forum.topics[11]["posts"].pop()  # the last stored post (#25) is deleted: gone from the stream
    forum.topics[11]["bumped_at"] = "2026-05-04T00:00:00Z"
    _, posts = collect(forum, state)
    assert posts == [] and state["topic_last_ids"]["11"] == 11024
    # The next reply answers a post hidden from visitors since (a 403 for its number).
    forum.topics[11]["posts"].append({"id": 11026, "post_number": 26, "username": "fict_late",
                                      "created_at": "2026-05-05T00:00:00Z", "cooked": "<p>re</p>",
                                      "reply_to_post_number": 23})
    forum.topics[11]["bumped_at"] = "2026-05-05T00:00:00Z"
    hidden = forum.handler
    forum.handler = lambda r: httpx.Response(403) if "/posts/by_number/" in str(r.url) else hidden(r)
    forum.requests.clear()
    _, posts = collect(forum, state)
    assert forum.requests.count("/t/11/posts.json?post_ids[]=11026") == 1  # only the new post
    thread = "discourse:forum.example.org:11001"
    assert [(p.id, p.parent_id) for p in posts] == [("discourse:forum.example.org:11026", thread)]


def test_a_state_from_before_the_post_anchors_still_takes_only_new_posts():
    forum = FakeForum()
    state = {}
    collect(forum, state)
    state = json.loads(json.dumps(state))
    del state["topic_last_ids"]  # written by an older trustwatch
    forum.topics[11]["posts"].append({"id": 11026, "post_number": 26, "username": "fict_late",
                                      "created_at": "2026-05-04T00:00:00Z", "cooked": "<p>late</p>"})
    forum.topics[11]["bumped_at"] = "2026-05-04T00:00:00Z"
    _, posts = collect(forum, state)
    assert [p.id for p in posts] == ["discourse:forum.example.org:11026"]
    assert state["topic_last_ids"]["11"] == 11026


def test_not_a_discourse_forum_fails_the_source():
    import pytest

    from collectors import SourceFailed

    def handler(request):
        return httpx.Response(200, text="<html>hello</html>")

    client = PoliteClient(httpx.Client(transport=httpx.MockTransport(handler)), min_interval=0, sleep=lambda s: None)
    with pytest.raises(SourceFailed, match="not JSON"):
        list(DiscourseCollector("x", "https://example.org", client).fetch({}))
