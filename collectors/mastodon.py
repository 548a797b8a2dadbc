"""Mastodon public hashtag timelines (``/api/v1/timelines/tag/{tag}``), paged back in
time with ``max_id`` until the newest status stored last run (``since_id`` kept per tag).
A status seen through several hashtags or instances is one row: its id is its ``uri``."""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from .base import BadItem, Collector, Post, SourceFailed
from .http import PoliteClient
from .text import html_to_text

PAGE = 40


class MastodonCollector(Collector):
    platform = "mastodon"

    def __init__(self, name: str, base_url: str, hashtags: list[str], client: PoliteClient, max_pages: int = 10):
        super().__init__(name)
        self.base = base_url.rstrip("/")
        self.host = urlsplit(self.base).netloc
        self.hashtags = [h.lstrip("#") for h in hashtags]
        self.client = client
        self.max_pages = max_pages

    def _page(self, tag: str, max_id: str | None) -> list[dict]:
        url = f"{self.base}/api/v1/timelines/tag/{quote(tag)}?limit={PAGE}"
        if max_id:
            url += f"&max_id={max_id}"
        data = self.client.get_json(url, expect="a Mastodon instance")
        if not isinstance(data, list):
            raise SourceFailed(f"{url}: expected a list of statuses")
        return data

    def fetch(self, state: dict[str, Any]) -> Iterator[dict]:
        newest: dict[str, str] = state.setdefault("since_id", {})
        for tag in self.hashtags:
            since = newest.get(tag)
            top = since
            max_id = None
            for page_no in range(self.max_pages):
                page = self._page(tag, max_id)
                if not page:
                    break
                reached = False
                for status in page:
                    sid = str(status.get("id", ""))
                    if since and _id_key(sid) <= _id_key(since):
                        reached = True
                        break
                    if top is None or _id_key(sid) > _id_key(top):
                        top = sid
                    yield status
                if reached:
                    break
                max_id = str(page[-1].get("id"))
            else:
                self.notes.append(f"#{tag}: stopped after {self.max_pages} pages; older statuses were not collected")
            if top:
                newest[tag] = top

    def to_post(self, raw: dict) -> Post | None:
        uri, sid = raw.get("uri"), raw.get("id")
        if not uri or not sid:
            raise BadItem("status without id or uri")
        if raw.get("visibility") not in (None, "public", "unlisted"):
            self.counts["not_public"] += 1
            return None
        created = raw.get("created_at")
        if not isinstance(created, str) or len(created) < 19:
            raise BadItem(f"status {sid}: bad created_at")
        spoiler = html_to_text(raw.get("spoiler_text") or "")
        account = raw.get("account") or {}
        return Post(
            id=f"mastodon:{uri}",
            source=self.name,
            platform=self.platform,
            community=self.host,
            url=raw.get("url") or uri,
            author=account.get("acct") if isinstance(account, dict) else None,
            created_at=created[:19] + "Z",
            title=spoiler,
            text=html_to_text(raw.get("content") or ""),
            parent_id=None,
            thread_id=None,
            source_ref=str(sid),
        )

    can_recheck = True

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        for post_id, ref in refs:
            data = self.client.get_json(f"{self.base}/api/v1/statuses/{ref}", gone=(404, 410),
                                        expect="a Mastodon instance")
            if data is None or data.get("visibility") not in (None, "public", "unlisted"):
                yield post_id, None
            else:
                yield post_id, html_to_text(data.get("content") or "")


def _id_key(sid: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings (snowflakes); compare them as numbers."""
    return (len(sid), sid)
