"""Discourse forums over their public JSON API: latest topics (or chosen categories, or a
search), then every post of each topic that changed since the last run, long topics
included (``/t/{id}/posts.json`` in batches of post ids). Cooked HTML becomes text.

Incremental by topic activity: the state keeps, per topic, the highest post number
stored and that post's id; listing pages are walked newest-activity first until topics
are older than the last run's high-water mark (minus an overlap, so late posts are
caught). A bumped topic costs its page and the posts after the last one stored (its
post stream is in post order), not every post again; a new reply to a post stored in an
earlier run finds its parent's id with one ``/posts/by_number`` request."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from .base import BadItem, Collector, Post, SourceFailed, format_utc, parse_time, str_or_none
from .http import PoliteClient
from .text import html_to_text

OVERLAP = dt.timedelta(hours=6)
POSTS_PER_REQUEST = 20


def _id(value: Any) -> int | None:
    """Discourse ids and post numbers are positive integers; anything else is none."""
    return value if type(value) is int and value > 0 else None


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

    def _json(self, path: str, gone: tuple[int, ...] = (404,)) -> dict | None:
        """Every Discourse endpoint used here answers an object: anything else fails the source."""
        data = self.client.get_json(f"{self.base}{path}", gone=gone, expect="a Discourse forum")
        if data is not None and not isinstance(data, dict):
            raise SourceFailed(f"{self.base}{path}: expected a JSON object (is it a Discourse forum?)")
        return data

    def _posts(self, doc: dict) -> list[dict]:
        """The posts of a topic or /posts.json answer; what is there but is not a post
        object (a string, a number, a post_stream that is a list) is counted as bad."""
        stream = doc.get("post_stream")
        posts = stream.get("posts") if isinstance(stream, dict) else stream
        if posts is None:
            return []
        if not isinstance(posts, list):
            self.counts["bad_items"] += 1
            return []
        good = [p for p in posts if isinstance(p, dict)]
        if len(good) < len(posts):
            self.counts["bad_items"] += len(posts) - len(good)
        return good

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
                listing = data.get("topic_list") or {}
                if not isinstance(listing, dict):
                    raise SourceFailed(f"{self.base}{path}: topic_list is not an object (is it a Discourse forum?)")
                topics = data.get("topics") if "topics" in data else listing.get("topics")
                if not topics:
                    break
                if not isinstance(topics, list):
                    raise SourceFailed(f"{self.base}{path}: topics is not a list (is it a Discourse forum?)")
                older = 0
                for t in topics:
                    if not isinstance(t, dict) or _id(t.get("id")) is None:
                        self.counts["bad_items"] += 1
                        continue
                    bumped = parse_time(t.get("bumped_at") or t.get("last_posted_at"))
                    if since and bumped and bumped < since and not t.get("pinned"):
                        older += 1
                        continue
                    yield t
                if older or self.query or not listing.get("more_topics_url"):
                    break
            else:
                self.notes.append(f"stopped after {self.max_pages} listing pages of {path}; raise max_pages to go further back")

    def fetch(self, state: dict[str, Any]) -> Iterator[dict]:
        seen: dict[str, int] = state.setdefault("topics", {})
        last_ids: dict[str, int] = state.setdefault("topic_last_ids", {})
        mark = parse_time(state.get("high_water"))
        try:
            since = mark - OVERLAP if mark else None
        except OverflowError:  # a mark in year 1, from a forum's garbage dates
            since = None
        newest = mark
        if not self._category_names:
            cats = (self._json("/categories.json") or {}).get("category_list")
            listed = cats.get("categories") if isinstance(cats, dict) else None
            for c in listed if isinstance(listed, list) else []:
                if isinstance(c, dict) and _id(c.get("id")) and isinstance(c.get("name"), str):
                    self._category_names[c["id"]] = c["name"]
        for t in self._topics(since):
            tid = str(t["id"])
            topic = self._json(f"/t/{tid}.json")
            if topic is None:  # deleted or private since it was listed
                continue
            stream = topic.get("post_stream") if isinstance(topic.get("post_stream"), dict) else {}
            posts = self._posts(topic)
            have = {_id(p.get("id")) for p in posts}
            order = stream.get("stream") if isinstance(stream.get("stream"), list) else []
            newest_id = next((_id(pid) for pid in reversed(order) if _id(pid)), None)
            anchor = last_ids.get(tid)
            trimmed = anchor is not None and anchor in order
            if trimmed:  # stored up to it: only what follows is new
                order = order[order.index(anchor) + 1:]
            missing = [pid for pid in order if _id(pid) and pid not in have]
            for b in range(0, len(missing), POSTS_PER_REQUEST):
                ids = "&".join(f"post_ids[]={pid}" for pid in missing[b : b + POSTS_PER_REQUEST])
                posts += self._posts(self._json(f"/t/{tid}/posts.json?{ids}") or {})
            numbers = {_id(p.get("post_number")): _id(p.get("id")) for p in posts}
            numbers.pop(None, None)
            done = seen.get(tid, 0)
            # New replies to posts stored in earlier runs and not fetched again: their ids.
            # (Without the trim every visible post was fetched: a parent missing then is
            # deleted or hidden.) A parent hidden from visitors answers 403: no parent.
            parents = {_id(p.get("reply_to_post_number")) for p in posts if (_id(p.get("post_number")) or 0) > done}
            for n in sorted(n for n in parents - numbers.keys() if trimmed and n is not None and n <= done):
                parent = self._json(f"/posts/by_number/{tid}/{n}.json", gone=(403, 404, 410))
                if isinstance(parent, dict) and _id(parent.get("id")) is not None:
                    numbers[n] = _id(parent["id"])
            first = numbers.get(1)
            for p in sorted(posts, key=lambda p: _id(p.get("post_number")) or 0):
                number = _id(p.get("post_number"))
                if number is not None and number <= done:
                    continue
                yield {"post": p, "topic": topic, "first_id": first, "numbers": numbers}  # no number: a BadItem
            seen[tid] = max([done, *numbers])
            if newest_id is not None:  # every post up to the stream's last is stored or seen
                last_ids[tid] = newest_id
            bumped = parse_time(t.get("bumped_at") or t.get("last_posted_at"))
            if bumped and (newest is None or bumped > newest):
                newest = bumped
        if newest:
            state["high_water"] = newest.isoformat()

    def to_post(self, raw: dict) -> Post | None:
        """A field of the wrong type counts as missing: without an id, topic, number or
        time the post is a BadItem; without a title, text or author it is stored without."""
        p, topic = raw.get("post"), raw.get("topic")
        if not isinstance(p, dict) or not isinstance(topic, dict):
            raise BadItem("discourse post or topic that is not an object")
        pid, tid, number = _id(p.get("id")), _id(topic.get("id")), _id(p.get("post_number"))
        if pid is None or tid is None or number is None:
            raise BadItem("discourse post without id, topic or number")
        if p.get("deleted_at") or p.get("hidden") or p.get("user_deleted"):
            self.counts["deleted"] += 1
            return None
        created = parse_time(p.get("created_at"))
        if created is None:
            raise BadItem(f"post {pid}: bad created_at")
        key = lambda i: f"discourse:{self.host}:{i}"  # noqa: E731
        first = _id(raw.get("first_id"))
        thread_id = key(first) if first is not None else None
        numbers = raw.get("numbers") if isinstance(raw.get("numbers"), dict) else {}
        reply_to = _id(numbers.get(_id(p.get("reply_to_post_number"))))
        parent = key(reply_to) if reply_to is not None else (thread_id if number != 1 else None)
        slug = str_or_none(topic.get("slug")) or "topic"
        return Post(
            id=key(pid),
            source=self.name,
            platform=self.platform,
            community=self._category_names.get(_id(topic.get("category_id"))) or self.host,
            url=f"{self.base}/t/{slug}/{tid}/{number}",
            author=str_or_none(p.get("username")),
            created_at=format_utc(created),
            title=(str_or_none(topic.get("title")) or "") if number == 1 else "",
            text=html_to_text(str_or_none(p.get("cooked")) or ""),
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
                yield post_id, html_to_text(str_or_none(p.get("cooked")) or "")
