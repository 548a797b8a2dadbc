import httpx
import pytest

from collectors import PoliteClient, SourceFailed
from collectors.http import retry_after, user_agent


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s):
        self.sleeps.append(round(s, 3))
        self.now += s

    def clock(self):
        return self.now


def client(handler, **kw):
    t = FakeTime()
    pc = PoliteClient(httpx.Client(transport=httpx.MockTransport(handler)), sleep=t.sleep, clock=t.clock, **kw)
    return pc, t


def test_user_agent_is_honest():
    assert user_agent("mailto:ops@example.org").startswith("trustwatch/")
    assert "ops@example.org" in user_agent("mailto:ops@example.org")


def test_503_then_200_retries_with_backoff():
    calls = []

    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        calls.append(request.headers["user-agent"])
        return httpx.Response(503 if len(calls) == 1 else 200, text="ok")

    pc, t = client(handler, min_interval=0)
    assert pc.get("https://f.example/x").text == "ok"
    assert len(calls) == 2 and calls[0].startswith("trustwatch/")
    assert len(t.sleeps) == 1 and 0.5 <= t.sleeps[0] <= 1.5


def test_429_honours_retry_after():
    n = []

    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        n.append(1)
        return httpx.Response(429, headers={"Retry-After": "7"}) if len(n) == 1 else httpx.Response(200)

    pc, t = client(handler, min_interval=0)
    assert pc.get("https://f.example/x").status_code == 200
    assert t.sleeps == [7]


def test_429_with_a_long_wait_gives_up_for_this_run():
    pc, _ = client(lambda r: httpx.Response(404) if r.url.path == "/robots.txt"
                   else httpx.Response(429, headers={"Retry-After": "3600"}), min_interval=0)
    with pytest.raises(SourceFailed, match="asked to wait 3600s"):
        pc.get("https://f.example/x")


def test_persistent_errors_fail_the_source():
    def handler(request):
        raise httpx.ConnectError("refused")

    pc, t = client(handler, min_interval=0, retries=2)
    with pytest.raises(SourceFailed, match="ConnectError"):
        pc.get("https://f.example/x")


def test_json_null_is_a_failure_not_a_deletion():
    """get_json's None means gone (recheck deletes the post): a 200 whose body is null must
    fail the source instead."""
    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return httpx.Response(200, content=b"null" if request.url.path == "/null" else b"[]",
                              headers={"Content-Type": "application/json"})

    pc, t = client(handler, min_interval=0)
    with pytest.raises(SourceFailed, match="answered null"):
        pc.get_json("https://f.example/null", gone=(404,))
    assert pc.get_json("https://f.example/empty") == []


def test_min_interval_per_host():
    pc, t = client(lambda r: httpx.Response(404 if r.url.path == "/robots.txt" else 200), min_interval=2.0)
    pc.get("https://a.example/1")
    pc.get("https://a.example/2")
    pc.get("https://b.example/1")
    assert sum(t.sleeps) >= 4.0  # robots + 2 pages on a, spaced 2s; b has its own clock


def test_robots_disallow():
    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(200, text="User-agent: *\nDisallow: /private/\n")
        return httpx.Response(200)

    pc, _ = client(handler, min_interval=0)
    assert pc.get("https://f.example/public/feed.xml").status_code == 200
    with pytest.raises(SourceFailed, match="robots.txt disallows"):
        pc.get("https://f.example/private/feed.xml")


def test_retry_after_parsing():
    assert retry_after("120") == 120
    assert retry_after(None) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None


def test_slow_server_times_out_and_fails_the_source_after_retries():
    calls = []

    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        calls.append(1)
        raise httpx.ReadTimeout("timed out", request=request)

    pc, t = client(handler, min_interval=0, retries=2)
    with pytest.raises(SourceFailed, match="ReadTimeout"):
        pc.get("https://slow.example/feed")
    assert len(calls) == 3 and len(t.sleeps) == 2


def test_default_client_has_timeouts():
    pc = PoliteClient()
    assert pc.client.timeout.read == 30.0 and pc.client.timeout.connect == 10.0
