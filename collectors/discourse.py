"""Discourse forums over their public JSON API: latest topics (or chosen categories, or a
search), then every post of each topic that changed since the last run, long topics
included (``/t/{id}/posts.json`` in batches of post ids). Cooked HTML becomes text.

Incremental by topic activity: the state keeps, per topic, the highest post number
stored; listing pages are walked newest-activity first until topics are older than the
last run's high-water mark (minus an overlap, so late posts are caught)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from .base import BadItem, Collector, Post, SourceFailed
from .http import PoliteClient
from .text import html_to_text

OVERLAP = dt.timedelta(hours=6)
POSTS_PER_REQUEST = 20


def _when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class DiscourseCollector(Collector):
    platform = "discourse"

    def __init__(self, name: str, base_url: str, client: PoliteClient, categories: list[str] | None = None,
                 query: str | None = None, max_pages: int = 10):
        super().__init__(name)
        self.base = base_url.rstrip("/")
        self.host = urlsplit(self.base).netloc
        self.client = client
        self.categories = categories or []
        self.query = query
        self.max_pages = max_pages
        self._category_names: dict[int, str] = {}

    def _json(self, path: str, gone: tuple[int, ...] = (404,)) -> Any:
        return self.client.get_json(f"{self.base}{path}", gone=gone, expect="a Discourse forum")

    def _listing_paths(self) -> list[str]:
        if self.query:
            return [f"/search.json?q={quote(self.query)}"]
        if self.categories:
            return [f"/c/{quote(c)}.json" for c in self.categories]
        return ["/latest.json"]

    def _topics(self, since: dt.datetime | None) -> Iterator[dict]:
        for path in self._listing_paths():
            for page in range(self.max_pages):
                sep = "&" if "?" in path else "?"
                data = self._json(f"{path}{sep}page={page}" if page else path)
                if data is None:
                    raise SourceFailed(f"{self.base}{path}: not found")
                topics = data.get("topics") if "topics" in data else (data.get("topic_list") or {}).get("topics", [])
                if not topics:
                    break
                older = 0
                for t in topics:
                    if not isinstance(t, dict) or "id" not in t:
                        self.counts["bad_items"] += 1
                        continue
                    bumped = _when(t.get("bumped_at") or t.get("last_posted_at"))
                    if since and bumped and bumped < since and not t.get("pinned"):
                        older += 1
                        continue
                    yield t
                if older or self.query or not (data.get("topic_list") or {}).get("more_topics_url"):
                    break
            else:
                self.notes.append(f"stopped after {self.max_pages} listing pages of {path}; raise max_pages to go further back")

    def fetch(self, state: dict[str, Any]) -> Iterator[dict]:
        seen: dict[str, int] = state.setdefault("topics", {})
        mark = _when(state.get("high_water"))
        since = mark - OVERLAP if mark else None
        newest = mark
        if not self._category_names:
            cats = self._json("/categories.json") or {}
            for c in (cats.get("category_list") or {}).get("categories", []):
                self._category_names[c.get("id")] = c.get("name", "")
        for t in self._topics(since):
            tid = str(t["id"])
            topic = self._json(f"/t/{tid}.json")
            if topic is None:  # deleted or private since it was listed
                continue
            stream = topic.get("post_stream") or {}
            posts = list(stream.get("posts") or [])
            have = {p.get("id") for p in posts}
            missing = [pid for pid in stream.get("stream") or [] if pid not in have]
            for b in range(0, len(missing), POSTS_PER_REQUEST):
                ids = "&".join(f"post_ids[]={pid}" for pid in missing[b : b + POSTS_PER_REQUEST])
                more = self._json(f"/t/{tid}/posts.json?{ids}") or {}
                posts += (more.get("post_stream") or {}).get("posts") or []
            numbers = {p.get("post_number"): p.get("id") for p in posts}
            first = numbers.get(1)
            done = seen.get(tid, 0)
            for p in sorted(posts, key=lambda p: p.get("post_number") or 0):
                if (p.get("post_number") or 0) <= done:
                    continue
                yield {"post": p, "topic": topic, "first_id": first, "numbers": numbers}
            seen[tid] = max([done] + [p.get("post_number") or 0 for p in posts])
            bumped = _when(t.get("bumped_at") or t.get("last_posted_at"))
            if bumped and (newest is None or bumped > newest):
                newest = bumped
        if newest:
            state["high_water"] = newest.isoformat()

    def to_post(self, raw: dict) -> Post | None:
        p, topic = raw.get("post") or {}, raw.get("topic") or {}
        pid, tid, number = p.get("id"), topic.get("id"), p.get("post_number")
        if pid is None or tid is None or number is None:
            raise BadItem("discourse post without id, topic or number")
        if p.get("deleted_at") or p.get("hidden") or p.get("user_deleted"):
            self.counts["deleted"] += 1
            return None
        created = _when(p.get("created_at"))
        if created is None:
            raise BadItem(f"post {pid}: bad created_at")
        key = lambda i: f"discourse:{self.host}:{i}"  # noqa: E731
        first = raw.get("first_id")
        thread_id = key(first) if first is not None else None
        reply_to = (raw.get("numbers") or {}).get(p.get("reply_to_post_number"))
        parent = key(reply_to) if reply_to is not None else (thread_id if number != 1 else None)
        slug = topic.get("slug") or "topic"
        return Post(
            id=key(pid),
            source=self.name,
            platform=self.platform,
            community=self._category_names.get(topic.get("category_id")) or self.host,
            url=f"{self.base}/t/{slug}/{tid}/{number}",
            author=p.get("username"),
            created_at=created.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            title=topic.get("title", "") if number == 1 else "",
            text=html_to_text(p.get("cooked", "")),
            parent_id=parent,
            thread_id=thread_id,
            source_ref=str(pid),
        )

    can_recheck = True

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        for post_id, ref in refs:
            # 403: moved out of public view; 404, 410: deleted
            p = self._json(f"/posts/{ref}.json", gone=(403, 404, 410))
            if p is None or p.get("deleted_at") or p.get("hidden") or p.get("user_deleted"):
                yield post_id, None
            else:
                yield post_id, html_to_text(p.get("cooked", ""))
