"""What every collector is: a name, ``fetch(state)`` yielding raw items, and a pure
``to_post(raw)`` turning one into a :class:`Post` (or ``None`` to skip it).

Collectors never touch the database: ``monitor.pipeline`` stores what they yield and
saves ``state`` only after everything fetched with it is stored, so a crash repeats work
instead of losing it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator


_SURROGATE = re.compile("[\ud800-\udfff]")


class BadItem(ValueError):
    """One collected item cannot be used; it is counted and skipped, the run goes on."""


class SourceFailed(RuntimeError):
    """The source as a whole failed (unreadable file, corrupt stream, refused API)."""


@dataclass
class Post:
    id: str  # unique across sources, e.g. "reddit:t3_abc12"
    source: str  # the config name of the source that collected it
    platform: str  # reddit, reddit-dump, discourse, feed, ...
    community: str
    url: str | None
    author: str | None  # the raw name: monitor.privacy hashes it before storage
    created_at: str  # ISO 8601 UTC
    title: str
    text: str
    parent_id: str | None = None
    thread_id: str | None = None
    source_ref: str | None = None  # what the source needs to fetch this item again (recheck)

    def __post_init__(self):
        # A JSON "\ud83d" escape without its pair (dumps have them) decodes to a lone
        # surrogate, which no UTF-8 database or hash takes: it becomes U+FFFD.
        for name in _POST_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
                setattr(self, name, _SURROGATE.sub("\ufffd", value))


_POST_FIELDS = [f.name for f in dataclasses.fields(Post)]


class Collector(ABC):
    platform: str = ""

    def __init__(self, name: str):
        self.name = name
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []  # things the run log should say (limits reached, ...)

    @abstractmethod
    def fetch(self, state: dict[str, Any]) -> Iterator[Any]:
        """Yield raw items; update ``state`` (a JSON-able dict) as you go."""

    @abstractmethod
    def to_post(self, raw: Any) -> Post | None:
        """One raw item -> Post; None to skip it silently (deleted, filtered)."""

    can_recheck = False

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        """For stored (post id, source_ref) pairs, yield (post id, current text), or
        (post id, None) where the author deleted it or a moderator removed it. Items
        the source cannot answer for now are not yielded."""
        raise NotImplementedError


def iso_utc(timestamp: Any) -> str:
    """Unix seconds (int, float or numeric string) -> '2026-03-01T12:00:00Z'."""
    try:
        ts = float(timestamp)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int like 10**400
        raise BadItem(f"bad timestamp {timestamp!r}")
    try:
        d = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadItem(f"timestamp out of range {timestamp!r}")
    return format_utc(d)


def str_or_none(value: Any) -> str | None:
    """A field an API documents as a string: itself where it is one; None where it is null,
    missing, a number, a list or an object."""
    return value if isinstance(value, str) else None


def parse_time(value: Any) -> dt.datetime | None:
    """An API's ISO 8601 time ('2026-03-01T12:00:00.000Z', '...+02:00') as an aware UTC
    datetime; None where it is absent, not a string, or not a time. No offset means UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        return d.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: year 1 at +05:00 is before year 1 in UTC
        return None


def format_utc(d: dt.datetime) -> str:
    """An aware datetime -> '2026-03-01T12:00:00Z' (years before 1000 zero-padded, which
    strftime's %Y does not do)."""
    return d.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
