"""Reddit archive dumps: Pushshift / Arctic Shift NDJSON, plain or zstandard-compressed.

Streams line by line in bounded memory. Submissions (``title``/``selftext``) and comments
(``body``/``link_id``) may share one file. Items deleted or removed before the dump was
taken, or flagged ``_meta.was_deleted_later``, are dropped; a malformed line is counted and
skipped. A file already read with unchanged size, time and filters is not read again."""

from __future__ import annotations

import glob
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Iterator

from .base import BadItem, Collector, Post, SourceFailed, iso_utc
from .text import reddit_text

GONE = {"[deleted]", "[removed]"}
_GLOB_CHARS = set("*?[")


class RedditDumpCollector(Collector):
    platform = "reddit-dump"

    def __init__(
        self,
        name: str,
        path: Path,
        subreddits: list[str] | None = None,
        since=None,
        until=None,
        keywords: list[str] | None = None,
        reddit_factory=None,
    ):
        super().__init__(name)
        self.reddit_factory = reddit_factory  # praw.Reddit for recheck, made only when needed
        self.path = Path(path)
        self.subreddits = {s.lower().removeprefix("r/") for s in subreddits or []}
        self.since = since.timestamp() if since else None
        self.until = until.timestamp() if until else None
        self.keywords = [k.lower() for k in keywords or []]

    def files(self) -> list[Path]:
        if _GLOB_CHARS & set(str(self.path)):
            found = sorted(Path(p) for p in glob.glob(str(self.path)))
            if not found:
                raise SourceFailed(f"no file matches {self.path}")
            return found
        if not self.path.exists():
            raise SourceFailed(f"{self.path}: file not found")
        return [self.path]

    def _filters_key(self) -> str:
        key = json.dumps([sorted(self.subreddits), self.since, self.until, self.keywords])
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def fetch(self, state: dict[str, Any]) -> Iterator[dict]:
        seen = state.setdefault("files", {})
        for path in self.files():
            st = path.stat()
            fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "filters": self._filters_key()}
            if seen.get(str(path)) == fingerprint:
                self.counts["files_unchanged"] += 1
                continue
            yield from self._read(path)
            seen[str(path)] = fingerprint
            self.counts["files_read"] += 1

    def _read(self, path: Path) -> Iterator[dict]:
        try:
            fh = open(path, "rb")
        except OSError as e:
            raise SourceFailed(f"{path}: cannot open: {e.strerror}")
        with fh:
            lines = _zst_lines(fh, path) if path.suffix == ".zst" else fh
            for line in lines:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except (ValueError, RecursionError):  # bad JSON or UTF-8, a 5000-digit number, [[[[...
                    self.counts["malformed"] += 1
                    continue
                if not isinstance(item, dict):
                    self.counts["malformed"] += 1
                    continue
                yield item

    def to_post(self, raw: dict) -> Post | None:
        is_comment = "body" in raw or str(raw.get("name", "")).startswith("t1_")
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid.strip():
            raise BadItem("item without an id")
        subreddit = raw.get("subreddit")
        if not isinstance(subreddit, str) or not subreddit:
            raise BadItem(f"{rid}: no subreddit")
        if self.subreddits and subreddit.lower() not in self.subreddits:
            self.counts["filtered"] += 1
            return None
        created = raw.get("created_utc")
        created_at = iso_utc(created)
        ts = float(created)
        if (self.since and ts < self.since) or (self.until and ts >= self.until):
            self.counts["filtered"] += 1
            return None

        if is_comment:
            title, text = "", raw.get("body")
        else:
            title, text = raw.get("title"), raw.get("selftext") or ""
            if not isinstance(title, str):
                raise BadItem(f"{rid}: submission without a title")
        if not isinstance(text, str):
            raise BadItem(f"{rid}: text is not a string")
        title, text = reddit_text(title), reddit_text(text)
        meta = raw.get("_meta") if isinstance(raw.get("_meta"), dict) else {}
        if (
            text.strip() in GONE
            or (not is_comment and title.strip() in GONE)
            or meta.get("was_deleted_later")
            or raw.get("removed_by_category")
        ):
            self.counts["deleted"] += 1
            return None
        if self.keywords:
            hay = f"{title}\n{text}".lower()
            if not any(k in hay for k in self.keywords):
                self.counts["filtered"] += 1
                return None

        fullname = f"t1_{rid}" if is_comment else f"t3_{rid}"
        permalink = raw.get("permalink")
        url = f"https://www.reddit.com{permalink}" if isinstance(permalink, str) and permalink.startswith("/") else None
        author = raw.get("author")
        author = author if isinstance(author, str) and author not in GONE else None
        if is_comment:
            link_id = raw.get("link_id")
            parent = raw.get("parent_id")
            if not isinstance(link_id, str) or not link_id.startswith("t3_"):
                raise BadItem(f"{rid}: comment without a link_id")
            thread_id = f"reddit:{link_id}"
            parent_id = f"reddit:{parent}" if isinstance(parent, str) and parent[:3] in ("t1_", "t3_") else thread_id
        else:
            thread_id, parent_id = f"reddit:{fullname}", None
        return Post(
            id=f"reddit:{fullname}",
            source=self.name,
            platform=self.platform,
            community=f"r/{subreddit}",
            url=url,
            author=author,
            created_at=created_at,
            title=title.strip(),
            text=text,
            parent_id=parent_id,
            thread_id=thread_id,
            source_ref=fullname,
        )

    @property
    def can_recheck(self) -> bool:
        return self.reddit_factory is not None

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        """Archived posts are asked about on Reddit itself (praw), 100 at a time."""
        from .reddit import recheck_fullnames

        return recheck_fullnames(self.reddit_factory(), refs)


def _zst_lines(fh, path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Lines of a zstandard file (one or more frames), in bounded memory. A truncated or
    corrupt stream raises SourceFailed after yielding the lines before the damage."""
    import zstandard

    dctx = zstandard.ZstdDecompressor(max_window_size=2**31)
    dobj = dctx.decompressobj()
    in_frame = False
    pending = b""
    lines = 0
    while data := fh.read(chunk):
        while data:
            in_frame = True
            try:
                out = dobj.decompress(data)
            except zstandard.ZstdError as e:
                raise SourceFailed(f"{path}: corrupt zstandard stream after line {lines}: {e}")
            data = b""
            if dobj.eof:  # one frame ended; the next one starts in unused_data
                data, dobj, in_frame = dobj.unused_data, dctx.decompressobj(), False
            if out:
                *complete, pending = (pending + out).split(b"\n")
                lines += len(complete)
                yield from complete
    if in_frame:
        raise SourceFailed(f"{path}: truncated zstandard stream after line {lines}")
    if pending:
        yield pending
