"""Reddit through praw (read-only): the newest posts of subreddits, or a search within
them, with their comments. praw is configured the way praw documents it: praw.ini (a
``praw_site`` section) and ``praw_*`` environment variables for the app's credentials.

Incremental: listings are read newest first and stop at posts older than the newest one
stored last run, minus an overlap window so comments added since are caught. Reddit's
listings end near 1,000 items: when a run reaches that, the run log says so (use
`reddit-dump` sources for backfills)."""

from __future__ import annotations

from typing import Any, Iterator

from .base import BadItem, Collector, Post, SourceFailed, iso_utc
from .text import reddit_text

GONE = {"[deleted]", "[removed]"}
LISTING_LIMIT = 1000


class RedditCollector(Collector):
    platform = "reddit"

    def __init__(self, name: str, reddit, subreddits: list[str], query: str | None = None,
                 comments: bool = True, replace_more: int = 8, overlap_hours: float = 48):
        super().__init__(name)
        self.reddit = reddit
        self.subreddits = [s.removeprefix("r/") for s in subreddits]
        self.query = query
        self.comments = comments
        self.replace_more = replace_more
        self.overlap = overlap_hours * 3600

    def _listing(self, sub: str):
        subreddit = self.reddit.subreddit(sub)
        if self.query:
            return subreddit.search(self.query, sort="new", limit=LISTING_LIMIT)
        return subreddit.new(limit=LISTING_LIMIT)

    def fetch(self, state: dict[str, Any]) -> Iterator[tuple]:
        import prawcore

        newest: dict[str, float] = state.setdefault("newest", {})
        for sub in self.subreddits:
            since = newest.get(sub)
            top = since or 0.0
            seen = 0
            try:
                for s in self._listing(sub):
                    seen += 1
                    created = float(s.created_utc)
                    if since is not None and created < since - self.overlap:
                        break
                    top = max(top, created)
                    yield ("submission", s)
                    if self.comments:
                        s.comments.replace_more(limit=self.replace_more)
                        for c in s.comments.list():
                            yield ("comment", c)
                else:
                    if seen >= LISTING_LIMIT:
                        self.notes.append(f"r/{sub}: Reddit's listing ended at {seen} items; older posts "
                                          "need a reddit-dump source (Pushshift / Arctic Shift) for a backfill")
            except prawcore.exceptions.ResponseException as e:
                raise SourceFailed(f"r/{sub}: Reddit answered {e.response.status_code} ({e})")
            except prawcore.exceptions.RequestException as e:
                raise SourceFailed(f"r/{sub}: cannot reach Reddit ({e.original_exception})")
            except prawcore.exceptions.PrawcoreException as e:
                raise SourceFailed(f"r/{sub}: {type(e).__name__}: {e}")
            if top:
                newest[sub] = top

    def to_post(self, raw: tuple) -> Post | None:
        kind, thing = raw
        try:
            fullname = thing.fullname
            author = str(thing.author) if thing.author else None
            created = iso_utc(thing.created_utc)
            sub = str(thing.subreddit)
            permalink = thing.permalink
            if kind == "submission":
                title, text = thing.title, thing.selftext or ""
                parent, thread = None, f"reddit:{fullname}"
            else:
                title, text = "", thing.body
                thread = f"reddit:{thing.link_id}"
                parent = f"reddit:{thing.parent_id}"
        except (AttributeError, TypeError) as e:  # TypeError: praw's fullname or author name of a null
            raise BadItem(f"reddit item missing a field: {e}")
        if not isinstance(title, str) or not isinstance(text, str):
            raise BadItem(f"{fullname}: title or text is not a string")
        title, text = reddit_text(title), reddit_text(text)
        if text.strip() in GONE or getattr(thing, "removed_by_category", None):
            self.counts["deleted"] += 1
            return None
        return Post(
            id=f"reddit:{fullname}",
            source=self.name,
            platform=self.platform,
            community=f"r/{sub}",
            url=f"https://www.reddit.com{permalink}",
            author=author,
            created_at=created,
            title=title,
            text=text,
            parent_id=parent,
            thread_id=thread,
            source_ref=fullname,
        )

    can_recheck = True

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        return recheck_fullnames(self.reddit, refs)


def recheck_fullnames(reddit, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
    """reddit.info() for (post id, fullname) pairs, at most 100 per request: items gone
    from Reddit, or whose text is now [deleted] / [removed], are removed (None); others
    give their current text."""
    import prawcore

    for b in range(0, len(refs), 100):
        by_name = {ref: post_id for post_id, ref in refs[b : b + 100]}
        try:
            things = {t.fullname: t for t in reddit.info(fullnames=list(by_name))}
        except prawcore.exceptions.PrawcoreException as e:
            raise SourceFailed(f"reddit info: {type(e).__name__}: {e}")
        for name, post_id in by_name.items():
            t = things.get(name)
            text = None if t is None else (t.selftext if name.startswith("t3_") else t.body) or ""
            if t is None or text.strip() in GONE or getattr(t, "removed_by_category", None):
                yield post_id, None
            else:
                yield post_id, reddit_text(text)


def make_reddit(praw_site: str | None, user_agent: str):
    """praw.Reddit from praw.ini / praw_* environment variables, read-only."""
    import configparser

    import praw
    import praw.exceptions

    try:
        reddit = praw.Reddit(praw_site or "DEFAULT", user_agent=user_agent, check_for_updates=False)
    except praw.exceptions.MissingRequiredAttributeException as e:
        raise SourceFailed(f"praw configuration incomplete: {str(e).splitlines()[0]} "
                           "(set praw_client_id / praw_client_secret or a praw.ini section)")
    except (configparser.Error, praw.exceptions.ClientException) as e:
        raise SourceFailed(f"praw configuration: {e}")
    reddit.read_only = True
    return reddit
