"""Far ends for collector tests: fake servers speaking a platform's API (fictional data)."""

import contextlib
import http.server
import re
import threading
from urllib.parse import parse_qs, urlsplit

import httpx


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
        m = re.fullmatch(r"/posts/by_number/(\d+)/(\d+)\.json", url.path)
        if m:
            t = self.topics.get(int(m.group(1)))
            post = next((p for p in (t or {}).get("posts", []) if p["post_number"] == int(m.group(2))), None)
            return httpx.Response(200, json=post) if post else httpx.Response(404)
        m = re.fullmatch(r"/t/(\d+)/posts\.json", url.path)
        if m:
            ids = {int(i) for i in q["post_ids[]"]}
            posts = [p for p in self.topics[int(m.group(1))]["posts"] if p["id"] in ids]
            return httpx.Response(200, json={"post_stream": {"posts": posts}})
        return httpx.Response(404)


@contextlib.contextmanager
def loopback_server(handle, methods=("GET",)):
    """A real HTTP server on 127.0.0.1 for the duration of a test. ``handle(request)``
    gets the BaseHTTPRequestHandler and returns (status, body bytes, headers)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _respond(self):
            status, body, headers = handle(self)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._respond)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
