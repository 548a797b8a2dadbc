import httpx

from collectors import FeedCollector, PoliteClient
from collectors.text import html_to_text
from conftest import FIXTURES

FEED = (FIXTURES / "feed.xml").read_bytes()


def feed_client(seen):
    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        seen.append(dict(request.headers))
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=FEED, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    return PoliteClient(httpx.Client(transport=httpx.MockTransport(handler)), min_interval=0, sleep=lambda s: None)


def test_feed_entries_become_posts_and_conditional_get_skips_unchanged():
    seen = []
    c = FeedCollector("lupus-feed", "https://forum.example.org/rss.xml", feed_client(seen))
    state = {}
    posts = []
    for raw in c.fetch(state):
        try:
            p = c.to_post(raw)
        except ValueError:
            continue
        posts.append(p)
    assert [p.title for p in posts] == ["Results summary & thanks", "Travel costs at Meridian Valley"]
    p = posts[0]
    assert p.platform == "feed" and p.community == "Lupus Lantern Network community blog"
    assert p.created_at == "2026-03-03T10:00:00Z" and p.url == "https://forum.example.org/t/101"
    assert "alert" not in p.text and "LUMEN trial team" in p.text
    assert p.id.startswith("feed:") and p.id != posts[1].id
    assert state["etag"] == '"v1"'
    again = list(FeedCollector("lupus-feed", "https://forum.example.org/rss.xml", feed_client(seen)).fetch(state))
    assert again == [] and seen[-1]["if-none-match"] == '"v1"'


def test_html_to_text_drops_scripts_and_keeps_paragraphs():
    assert html_to_text("<p>a &amp; b</p><script>x()</script><style>p{}</style><p>c<br>d</p>") == "a & b\n\nc\nd"
    assert html_to_text("") == ""


def test_a_link_that_is_not_http_is_not_kept():
    from collectors.text import web_url

    c = FeedCollector("f", "https://forum.example.org/rss.xml", feed_client([]))
    raw = {"id": "x1", "link": "javascript:alert(document.cookie)", "published_parsed": (2026, 3, 3, 10, 0, 0, 1, 62, 0),
           "title": "t", "summary": "s"}
    p = c.to_post(raw)
    assert p.url is None and p.source_ref is None and p.text == "s"
    for bad in ("javascript:alert(1)", " JAVASCRIPT:x", "data:text/html,<b>", "vbscript:x", "//evil.example/x",
                "http://", "", None, 5):
        assert web_url(bad) is None, bad
    assert web_url(" https://forum.example.org/t/1 ") == "https://forum.example.org/t/1"
    assert web_url("HTTP://a.example/") == "HTTP://a.example/"
