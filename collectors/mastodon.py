"""Mastodon public hashtag timelines (``/api/v1/timelines/tag/{tag}``), paged back in
time with ``max_id`` until the newest status stored last run (``since_id`` kept per tag).
A status seen through several hashtags or instances is one row: its id is its ``uri``."""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from .base import BadItem, Collector, Post, SourceFailed, format_utc, parse_time, str_or_none
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
            url += f"&max_id={quote(max_id, safe='')}"  # an id is the server's text: "&", "#", controls
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
                last = None
                for status in page:
                    sid = _status_id(status)
                    if sid is None:  # not a status, or one without an id to page by
                        self.counts["bad_items"] += 1
                        continue
                    if since and _id_key(sid) <= _id_key(since):
                        reached = True
                        break
                    if top is None or _id_key(sid) > _id_key(top):
                        top = sid
                    last = sid
                    yield status
                if reached or last is None:
                    break
                max_id = last
            else:
                self.notes.append(f"#{tag}: stopped after {self.max_pages} pages; older statuses were not collected")
            if top:
                newest[tag] = top

    def to_post(self, raw: dict) -> Post | None:
        """A field of the wrong type counts as missing: without an id, uri or time the
        status is a BadItem; without text, a link or an account it is stored without."""
        sid = _status_id(raw)
        uri = str_or_none(raw.get("uri")) if sid else None
        if not uri:
            raise BadItem("status without id or uri")
        if raw.get("visibility") not in (None, "public", "unlisted"):
            self.counts["not_public"] += 1
            return None
        created = parse_time(raw.get("created_at"))
        if created is None:
            raise BadItem(f"status {sid}: bad created_at")
        spoiler = html_to_text(str_or_none(raw.get("spoiler_text")) or "")
        account = raw.get("account")
        return Post(
            id=f"mastodon:{uri}",
            source=self.name,
            platform=self.platform,
            community=self.host,
            url=str_or_none(raw.get("url")) or uri,
            author=str_or_none(account.get("acct")) if isinstance(account, dict) else None,
            created_at=format_utc(created),
            title=spoiler,
            text=html_to_text(str_or_none(raw.get("content")) or ""),
            parent_id=None,
            thread_id=None,
            source_ref=sid,
        )

    can_recheck = True

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        for post_id, ref in refs:
            url = f"{self.base}/api/v1/statuses/{ref}"
            data = self.client.get_json(url, gone=(404, 410), expect="a Mastodon instance")
            if data is not None and not isinstance(data, dict):
                raise SourceFailed(f"{url}: expected a status object")
            if data is None or data.get("visibility") not in (None, "public", "unlisted"):
                yield post_id, None
            else:
                yield post_id, html_to_text(str_or_none(data.get("content")) or "")


# Mastodon's ids are about 18 digits, other servers' (Pleroma, GoToSocial) under 30
# characters; the next page's URL carries the id, and a URL has a length limit.
MAX_ID_CHARS = 100


def _status_id(status: Any) -> str | None:
    """A status's id (a string, numeric on Mastodon itself); None where the status is not
    an object or its id is missing, empty, of another type or far too long to be one."""
    sid = status.get("id") if isinstance(status, dict) else None
    if type(sid) is int:
        sid = str(sid)
    return sid if isinstance(sid, str) and 0 < len(sid) <= MAX_ID_CHARS else None


def _id_key(sid: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings (snowflakes); compare them as numbers."""
    return (len(sid), sid)
